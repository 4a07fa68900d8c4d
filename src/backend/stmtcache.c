/*
 * stmtcache.c — the per-connection prepared-statement cache (see
 * stmtcache.h).
 *
 * Entries live in one array of `capacity` slots, chained into a hash table
 * by index; the least recently used one is found by a scan, which only an
 * eviction pays for. The "seen" table is direct-mapped: one hash per slot,
 * a collision merely forgets that a statement was seen (it is then prepared
 * one execution later).
 *
 * Ownership: the cache owns its entries' copies of SQL and types and the
 * garbage array; the handles are the driver's (see stmt_drop_fn).
 */
#include <stdlib.h>
#include <string.h>

#include "backend/stmtcache.h"

struct sc_entry {
    uint64_t hash;
    uint64_t last_use;
    char *sql;                /* owned copy (with the types after it); NULL = free slot */
    size_t sql_len;
    size_t types_len;         /* bytes of types stored after sql's NUL */
    uintptr_t handle;
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
    stmt_drop_fn *drop;
    void *drop_arg;
    struct stmt_garbage *garbage;
    size_t ngarbage, garbage_cap;
};

static unsigned pow2_at_least(unsigned n)
{
    unsigned p = 16;

    while (p < n)
        p <<= 1;
    return p;
}

struct stmt_cache *stmt_cache_new(unsigned capacity, stmt_drop_fn *drop, void *drop_arg)
{
    struct stmt_cache *sc;

    if (capacity == 0 || !(sc = calloc(1, sizeof(*sc))))
        return NULL;
    sc->cap = capacity;
    sc->drop = drop;
    sc->drop_arg = drop_arg;
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

static void drop_handle(const struct stmt_cache *sc, uintptr_t handle)
{
    if (sc->drop)
        sc->drop(handle, sc->drop_arg);
}

static void entry_release(struct sc_entry *e)
{
    free(e->sql);
    memset(e, 0, sizeof(*e));
}

/* Drop (client side only) every cached statement and every one on the
 * garbage list, and empty both. */
static void drop_everything(struct stmt_cache *sc)
{
    for (unsigned i = 0; i < sc->cap; i++) {
        if (sc->e[i].sql) {
            drop_handle(sc, sc->e[i].handle);
            entry_release(&sc->e[i]);
        }
    }
    for (size_t i = 0; i < sc->ngarbage; i++)
        drop_handle(sc, sc->garbage[i].handle);
    sc->ngarbage = 0;
    memset(sc->bucket, 0xff, sc->nbuckets * sizeof(*sc->bucket));
    sc->count = 0;
}

void stmt_cache_free(struct stmt_cache *sc)
{
    if (!sc)
        return;
    if (sc->e && sc->bucket)
        drop_everything(sc);
    free(sc->e);
    free(sc->bucket);
    free(sc->seen);
    free(sc->garbage);
    free(sc);
}

/* A word-at-a-time multiplicative hash over the SQL and the types (the
 * cache compares the bytes on a hit, so this only has to spread well);
 * never 0, which marks an empty seen slot. */
static uint64_t mix(uint64_t h, uint64_t w)
{
    h = (h ^ w) * 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 29);
}

static uint64_t hash_bytes(uint64_t h, const void *p, size_t len)
{
    const char *s = p;
    uint64_t w;
    size_t i = 0;

    for (; i + 8 <= len; i += 8) {
        memcpy(&w, s + i, 8);
        h = mix(h, w);
    }
    if (i < len) {
        w = 0;
        memcpy(&w, s + i, len - i);
        h = mix(h, w);
    }
    return h;
}

static uint64_t stmt_hash(const char *sql, size_t len, const void *types, size_t types_len)
{
    uint64_t h = hash_bytes(len, sql, len);

    if (types_len)
        h = hash_bytes(mix(h, types_len | (1ull << 63)), types, types_len);
    return h ? h : 1;
}

static bool entry_matches(const struct sc_entry *e, uint64_t h, const char *sql, size_t len,
                          const void *types, size_t types_len)
{
    return e->hash == h && e->sql_len == len && e->types_len == types_len &&
           memcmp(e->sql, sql, len) == 0 &&
           (types_len == 0 || memcmp(e->sql + len + 1, types, types_len) == 0);
}

enum stmt_verdict stmt_cache_lookup(struct stmt_cache *sc, const char *sql, size_t len,
                                    const void *types, size_t types_len, struct stmt_ref *ref)
{
    uint64_t h = stmt_hash(sql, len, types, types_len);

    for (int i = sc->bucket[h & (sc->nbuckets - 1)]; i >= 0; i = sc->e[i].next) {
        struct sc_entry *e = &sc->e[i];
        if (entry_matches(e, h, sql, len, types, types_len)) {
            e->last_use = ++sc->tick;
            ref->hash = h;
            ref->id = e->id;
            ref->handle = e->handle;
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
    ref->handle = 0;
    return SC_PREPARE;
}

/* Put a statement on the garbage list. Out of memory, it is dropped
 * instead: its server copy then stays until the session ends. */
static void garbage_add(struct stmt_cache *sc, unsigned id, uintptr_t handle)
{
    if (sc->ngarbage == sc->garbage_cap) {
        size_t cap = sc->garbage_cap ? sc->garbage_cap * 2 : 16;
        struct stmt_garbage *g = realloc(sc->garbage, cap * sizeof(*g));
        if (!g) {
            drop_handle(sc, handle);
            return;
        }
        sc->garbage = g;
        sc->garbage_cap = cap;
    }
    sc->garbage[sc->ngarbage].id = id;
    sc->garbage[sc->ngarbage].handle = handle;
    sc->ngarbage++;
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

/* Move entry idx from the cache to the garbage list. */
static void evict(struct stmt_cache *sc, int idx)
{
    garbage_add(sc, sc->e[idx].id, sc->e[idx].handle);
    unlink_entry(sc, idx);
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
    evict(sc, lru);
    return lru;
}

bool stmt_cache_add(struct stmt_cache *sc, const struct stmt_ref *ref, uintptr_t handle,
                    const char *sql, size_t len, const void *types, size_t types_len)
{
    int idx = free_slot(sc);
    struct sc_entry *e = &sc->e[idx];

    e->sql = malloc(len + 1 + types_len);
    if (!e->sql) {
        garbage_add(sc, ref->id, handle);
        return false;
    }
    memcpy(e->sql, sql, len);
    e->sql[len] = '\0';
    if (types_len)
        memcpy(e->sql + len + 1, types, types_len);
    e->sql_len = len;
    e->types_len = types_len;
    e->hash = ref->hash;
    e->id = ref->id;
    e->handle = handle;
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
            evict(sc, i);
            return;
        }
    }
}

void stmt_cache_forget_all(struct stmt_cache *sc)
{
    for (unsigned i = 0; i < sc->cap; i++) {
        if (sc->e[i].sql) {
            garbage_add(sc, sc->e[i].id, sc->e[i].handle);
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
            drop_handle(sc, sc->e[i].handle);
            unlink_entry(sc, (int)i);
            return;
        }
    }
}

void stmt_cache_clear(struct stmt_cache *sc)
{
    drop_everything(sc);
}

const struct stmt_garbage *stmt_cache_garbage(const struct stmt_cache *sc, size_t *n)
{
    *n = sc->ngarbage;
    return sc->ngarbage ? sc->garbage : NULL;
}

void stmt_cache_garbage_done(struct stmt_cache *sc)
{
    sc->ngarbage = 0;
}

unsigned stmt_cache_count(const struct stmt_cache *sc)
{
    return sc ? sc->count : 0;
}
