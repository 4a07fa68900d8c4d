/*
 * pg_stmtcache.h — what the PostgreSQL driver adds to the generic
 * statement cache (backend/stmtcache.h): statement names formed from the
 * entry's id (dbpool_s<id>; PostgreSQL needs no handle), the parameter
 * types as OIDs (passed as unsigned), the DEALLOCATE text for the garbage list, and which
 * statements PREPARE accepts.
 */
#ifndef DBPOOLD_PG_STMTCACHE_H
#define DBPOOLD_PG_STMTCACHE_H

#include <stdbool.h>
#include <stddef.h>

#include "backend/stmtcache.h"

#define STMT_NAME_LEN 24

/* A lookup's identity and the server-side name it goes by. */
struct pg_stmt_ref {
    struct stmt_ref r;
    char name[STMT_NAME_LEN];
};

/* stmt_cache_lookup with OIDs; fills ref->name for SC_PREPARED and SC_PREPARE. */
enum stmt_verdict pg_stmt_lookup(struct stmt_cache *sc, const char *sql, size_t len,
                                 const unsigned *types, size_t ntypes, struct pg_stmt_ref *ref);

/* stmt_cache_add with OIDs (see there). */
bool pg_stmt_add(struct stmt_cache *sc, const struct pg_stmt_ref *ref, const char *sql,
                 size_t len, const unsigned *types, size_t ntypes);

/* "DEALLOCATE dbpool_s1; DEALLOCATE dbpool_s2" for the garbage list, built
 * in *buf (grown as needed, owned by the caller); NULL when the list is
 * empty or memory ran out. stmt_cache_garbage_done once it was sent. */
const char *pg_stmt_dealloc_sql(const struct stmt_cache *sc, char **buf, size_t *cap);

/* Whether a statement is worth caching: only the kinds PREPARE accepts
 * (SELECT, INSERT, UPDATE, DELETE, MERGE, VALUES, TABLE, WITH). */
bool pg_stmt_cacheable(const char *sql, size_t len);

#endif
