/*
 * pg_stmtcache.c — the PostgreSQL side of the statement cache (see
 * pg_stmtcache.h; the cache itself is backend/stmtcache.c).
 */
#include <stdio.h>
#include <stdlib.h>

#include <libpq-fe.h>

#include "backend/backend.h"
#include "backend/pg/pg_stmtcache.h"

/* The driver passes its Oid arrays as the header's unsigned ones. */
_Static_assert(sizeof(Oid) == sizeof(unsigned), "Oid is an unsigned int");

static void format_name(char *dst, unsigned id)
{
    snprintf(dst, STMT_NAME_LEN, "dbpool_s%u", id);
}

enum stmt_verdict pg_stmt_lookup(struct stmt_cache *sc, const char *sql, size_t len,
                                 const unsigned *types, size_t ntypes, struct pg_stmt_ref *ref)
{
    enum stmt_verdict v = stmt_cache_lookup(sc, sql, len, types, ntypes * sizeof(*types), &ref->r);

    if (v != SC_UNNAMED)
        format_name(ref->name, ref->r.id);
    return v;
}

bool pg_stmt_add(struct stmt_cache *sc, const struct pg_stmt_ref *ref, const char *sql,
                 size_t len, const unsigned *types, size_t ntypes)
{
    return stmt_cache_add(sc, &ref->r, 0, sql, len, types, ntypes * sizeof(*types));
}

const char *pg_stmt_dealloc_sql(const struct stmt_cache *sc, char **buf, size_t *cap)
{
    size_t n, len = 0;
    const struct stmt_garbage *g = stmt_cache_garbage(sc, &n);
    size_t need = n * (STMT_NAME_LEN + 16) + 1;   /* "; DEALLOCATE " + name, each */

    if (!g)
        return NULL;
    if (need > *cap) {
        char *p = realloc(*buf, need < 256 ? 256 : need);
        if (!p)
            return NULL;
        *buf = p;
        *cap = need < 256 ? 256 : need;
    }
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(*buf + len, *cap - len, "%sDEALLOCATE dbpool_s%u",
                                i ? "; " : "", g[i].id);
    return *buf;
}

bool pg_stmt_cacheable(const char *sql, size_t len)
{
    static const char *const kinds[] = { "SELECT", "INSERT", "UPDATE", "DELETE", "MERGE",
                                         "VALUES", "TABLE", "WITH", NULL };

    return sql_starts_with_keyword(sql, len, kinds);
}
