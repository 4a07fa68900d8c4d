/*
 * pg_stmtcache.c — the per-connection prepared-statement cache (see
 * pg_stmtcache.h).
 *
 * Entries live in one array of `capacity` slots, chained into a hash table
 * by index; the least recently used one is found by a scan, which only an
 * eviction pays for. The "seen" table is direct-mapped: one hash per slot,
 * a collision merely forgets that a statement was seen (it is then prepared
 * one execution later).
 *
 * Ownership: the cache owns its entries' copies of SQL and types and the
 * garbage string.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/pg/pg_stmtcache.h"

struct sc_entry {
    uint64_t hash;
    uint64_t last_use;
    char *sql;                /* owned copy; NULL = free slot */
    size_t sql_len;
    unsigned *types;          /* owned copy (NULL when ntypes is 0) */
    size_t ntypes;
    unsigned id;
    int next;                 /* next entry in the hash chain, -1 = end */
};

struct stmt_cache {
    unsigned cap, count;
    struct sc_entry *e;
    int *bucket;              /* first entry per bucket, -1 = empty */
    unsigned nbuckets;        /* a power of two */
    uint64_t *seen;
    unsigned nseen;           /* a power of two */
    uint64_t tick;
    unsigned next_id;
    char *garbage;            /* "DEALLOCATE x; DEALLOCATE y" or NULL */
    size_t garbage_len, garbage_cap;
};

static unsigned pow2_at_least(unsigned n)
{
    unsigned p = 16;

    while (p < n)
        p <<= 1;
    return p;
}

struct stmt_cache *stmt_cache_new(unsigned capacity)
{
    struct stmt_cache *sc;

    if (capacity == 0 || !(sc = calloc(1, sizeof(*sc))))
        return NULL;
    sc->cap = capacity;
    sc->nbuckets = pow2_at_least(capacity * 2);
    sc->nseen = pow2_at_least(capacity * 4);
    sc->e = calloc(capacity, sizeof(*sc->e));
    sc->bucket = malloc(sc->nbuckets * sizeof(*sc->bucket));
    sc->seen = calloc(sc->nseen, sizeof(*sc->seen));
    if (!sc->e || !sc->bucket || !sc->seen) {
        stmt_cache_free(sc);
        return NULL;
    }
    memset(sc->bucket, 0xff, sc->nbuckets * sizeof(*sc->bucket));   /* all -1 */
    return sc;
}

static void entry_release(struct sc_entry *e)
{
    free(e->sql);
    free(e->types);
    memset(e, 0, sizeof(*e));
}

void stmt_cache_free(struct stmt_cache *sc)
{
    if (!sc)
        return;
    if (sc->e)
        for (unsigned i = 0; i < sc->cap; i++)
            entry_release(&sc->e[i]);
    free(sc->e);
    free(sc->bucket);
    free(sc->seen);
    free(sc->garbage);
    free(sc);
}

/* A word-at-a-time multiplicative hash over the SQL and the type OIDs (the
 * cache compares the text on a hit, so this only has to spread well);
 * never 0, which marks an empty seen slot. */
static uint64_t mix(uint64_t h, uint64_t w)
{
    h = (h ^ w) * 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 29);
}

static uint64_t stmt_hash(const char *sql, size_t len, const unsigned *types, size_t n)
{
    uint64_t h = len, w;
    size_t i = 0;

    for (; i + 8 <= len; i += 8) {
        memcpy(&w, sql + i, 8);
        h = mix(h, w);
    }
    if (i < len) {
        w = 0;
        memcpy(&w, sql + i, len - i);
        h = mix(h, w);
    }
    for (size_t k = 0; k < n; k++)
        h = mix(h, types[k] | ((uint64_t)(k + 1) << 32));
    return h ? h : 1;
}

static bool entry_matches(const struct sc_entry *e, uint64_t h, const char *sql, size_t len,
                          const unsigned *types, size_t n)
{
    return e->hash == h && e->sql_len == len && e->ntypes == n &&
           memcmp(e->sql, sql, len) == 0 && (n == 0 || memcmp(e->types, types, n * sizeof(*types)) == 0);
}

static void format_name(char *dst, unsigned id)
{
    snprintf(dst, STMT_NAME_LEN, "dbpool_s%u", id);
}

enum stmt_verdict stmt_cache_lookup(struct stmt_cache *sc, const char *sql, size_t len,
                                    const unsigned *types, size_t ntypes, struct stmt_ref *ref)
{
    uint64_t h = stmt_hash(sql, len, types, ntypes);

    for (int i = sc->bucket[h & (sc->nbuckets - 1)]; i >= 0; i = sc->e[i].next) {
        struct sc_entry *e = &sc->e[i];
        if (entry_matches(e, h, sql, len, types, ntypes)) {
            e->last_use = ++sc->tick;
            ref->hash = h;
            ref->id = e->id;
            format_name(ref->name, e->id);
            return SC_PREPARED;
        }
    }
    uint64_t *seen = &sc->seen[h & (sc->nseen - 1)];
    if (*seen != h) {
        *seen = h;
        return SC_UNNAMED;
    }
    ref->hash = h;
    ref->id = ++sc->next_id;
    format_name(ref->name, ref->id);
    return SC_PREPARE;
}

/* Append "DEALLOCATE name" to the garbage SQL. False when out of memory
 * (the statement then just stays on the server until the session ends). */
static bool garbage_add(struct stmt_cache *sc, unsigned id)
{
    char stmt[STMT_NAME_LEN + 16];
    int n = snprintf(stmt, sizeof(stmt), "%sDEALLOCATE dbpool_s%u", sc->garbage_len ? "; " : "", id);
    size_t need = sc->garbage_len + (size_t)n + 1;

    if (need > sc->garbage_cap) {
        size_t cap = need < 256 ? 256 : need * 2;
        char *g = realloc(sc->garbage, cap);
        if (!g)
            return false;
        sc->garbage = g;
        sc->garbage_cap = cap;
    }
    memcpy(sc->garbage + sc->garbage_len, stmt, (size_t)n + 1);
    sc->garbage_len += (size_t)n;
    return true;
}

static void unlink_entry(struct stmt_cache *sc, int idx)
{
    int *p = &sc->bucket[sc->e[idx].hash & (sc->nbuckets - 1)];

    while (*p != idx)
        p = &sc->e[*p].next;
    *p = sc->e[idx].next;
    entry_release(&sc->e[idx]);
    sc->count--;
}

/* A free slot, evicting the least recently used entry when there is none. */
static int free_slot(struct stmt_cache *sc)
{
    int lru = -1;

    for (unsigned i = 0; i < sc->cap; i++) {
        if (!sc->e[i].sql)
            return (int)i;
        if (lru < 0 || sc->e[i].last_use < sc->e[lru].last_use)
            lru = (int)i;
    }
    (void)garbage_add(sc, sc->e[lru].id);
    unlink_entry(sc, lru);
    return lru;
}

bool stmt_cache_add(struct stmt_cache *sc, const struct stmt_ref *ref, const char *sql,
                    size_t len, const unsigned *types, size_t ntypes)
{
    int idx = free_slot(sc);
    struct sc_entry *e = &sc->e[idx];

    e->sql = malloc(len + 1);
    e->types = ntypes ? malloc(ntypes * sizeof(*types)) : NULL;
    if (!e->sql || (ntypes && !e->types)) {
        entry_release(e);
        (void)garbage_add(sc, ref->id);
        return false;
    }
    memcpy(e->sql, sql, len);
    e->sql[len] = '\0';
    if (ntypes)
        memcpy(e->types, types, ntypes * sizeof(*types));
    e->sql_len = len;
    e->ntypes = ntypes;
    e->hash = ref->hash;
    e->id = ref->id;
    e->last_use = ++sc->tick;
    e->next = sc->bucket[ref->hash & (sc->nbuckets - 1)];
    sc->bucket[ref->hash & (sc->nbuckets - 1)] = idx;
    sc->count++;
    return true;
}

void stmt_cache_forget(struct stmt_cache *sc, const struct stmt_ref *ref)
{
    for (int i = sc->bucket[ref->hash & (sc->nbuckets - 1)]; i >= 0; i = sc->e[i].next) {
        if (sc->e[i].id == ref->id) {
            (void)garbage_add(sc, ref->id);
            unlink_entry(sc, i);
            return;
        }
    }
}

void stmt_cache_forget_all(struct stmt_cache *sc)
{
    for (unsigned i = 0; i < sc->cap; i++) {
        if (sc->e[i].sql) {
            (void)garbage_add(sc, sc->e[i].id);
            entry_release(&sc->e[i]);
        }
    }
    memset(sc->bucket, 0xff, sc->nbuckets * sizeof(*sc->bucket));
    sc->count = 0;
}

void stmt_cache_gone(struct stmt_cache *sc, unsigned id)
{
    for (unsigned i = 0; i < sc->cap; i++) {
        if (sc->e[i].sql && sc->e[i].id == id) {
            unlink_entry(sc, (int)i);
            return;
        }
    }
}

void stmt_cache_clear(struct stmt_cache *sc)
{
    for (unsigned i = 0; i < sc->cap; i++)
        entry_release(&sc->e[i]);
    memset(sc->bucket, 0xff, sc->nbuckets * sizeof(*sc->bucket));
    sc->count = 0;
    stmt_cache_garbage_done(sc);
}

const char *stmt_cache_garbage(const struct stmt_cache *sc)
{
    return sc->garbage_len ? sc->garbage : NULL;
}

void stmt_cache_garbage_done(struct stmt_cache *sc)
{
    sc->garbage_len = 0;
    if (sc->garbage)
        sc->garbage[0] = '\0';
}

unsigned stmt_cache_count(const struct stmt_cache *sc)
{
    return sc ? sc->count : 0;
}

bool stmt_cacheable(const char *sql, size_t len)
{
    static const char *const kinds[] = { "SELECT", "INSERT", "UPDATE", "DELETE", "MERGE",
                                         "VALUES", "TABLE", "WITH", NULL };

    return sql_starts_with_keyword(sql, len, kinds);
}
