/*
 * stmtcache.h — the per-connection cache of server-side prepared statements
 * behind a driver's transparent statement caching (pool key
 * statementCacheSize, doc/configuration.md). Used by the PostgreSQL driver
 * (pg/pg_stmtcache.h adds its statement names and DEALLOCATE text) and
 * meant for any driver whose server prepares statements.
 *
 * A statement (SQL text plus the parameter types the driver declares, as
 * bytes: PostgreSQL OIDs, MySQL enum_field_types, ...) is prepared on its
 * server connection the second time that connection sees it, and from then
 * on executed through its handle: the server skips parsing and planning.
 * One-off SQL is never prepared (the "seen" table remembers hashes of
 * statements met once). When the cache is full the least recently used
 * statement is evicted onto a garbage list the driver drains (deallocates
 * on the server) when it suits it.
 *
 * Each entry carries a serial id (unique per cache, never reused) and the
 * driver's handle (a uintptr_t: PostgreSQL stores nothing and names the
 * statement after the id; MySQL stores its MYSQL_STMT *). Statements the
 * server no longer has (stmt_cache_gone, stmt_cache_clear) and, at
 * stmt_cache_free, every statement left, are handed to the driver's drop
 * callback instead: it releases the client side only.
 *
 * This file knows no database: it only decides and remembers. The driver
 * owns one struct stmt_cache per connection; no call allocates except
 * stmt_cache_add and the growth of the garbage list.
 */
#ifndef DBPOOLD_BACKEND_STMTCACHE_H
#define DBPOOLD_BACKEND_STMTCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct stmt_cache;

enum stmt_verdict {
    SC_UNNAMED,    /* first sight (now remembered): run it without preparing */
    SC_PREPARED,   /* prepared on this connection: execute it through ref->handle */
    SC_PREPARE     /* seen before: prepare it (ref->id is its new id), then execute */
};

/* The identity of one lookup, handed back to stmt_cache_add / _forget. */
struct stmt_ref {
    uint64_t hash;
    unsigned id;
    uintptr_t handle;     /* SC_PREPARED: what the driver stored; else 0 */
};

/* A statement the driver still has to deallocate on the server. */
struct stmt_garbage {
    unsigned id;
    uintptr_t handle;
};

/* Releases the client side of a statement the server no longer has, or of
 * any statement left when the cache is freed. */
typedef void stmt_drop_fn(uintptr_t handle, void *arg);

/* A cache for at most `capacity` statements; NULL when capacity is 0
 * (caching off) or memory ran out. drop may be NULL (nothing to release). */
struct stmt_cache *stmt_cache_new(unsigned capacity, stmt_drop_fn *drop, void *drop_arg);
/* Drops every cached statement and every one on the garbage list. */
void stmt_cache_free(struct stmt_cache *sc);

/* What to do with a statement (types: types_len bytes of the driver's
 * parameter types, compared and hashed as bytes). Fills ref for
 * SC_PREPARED and SC_PREPARE. */
enum stmt_verdict stmt_cache_lookup(struct stmt_cache *sc, const char *sql, size_t len,
                                    const void *types, size_t types_len, struct stmt_ref *ref);

/* The server prepared ref's statement as `handle`: remember it (evicting
 * the least recently used one onto the garbage list when full). False
 * when out of memory: the statement then goes on the garbage list at once. */
bool stmt_cache_add(struct stmt_cache *sc, const struct stmt_ref *ref, uintptr_t handle,
                    const char *sql, size_t len, const void *types, size_t types_len);

/* The server's copy of ref's statement is unusable (its result type
 * changed): forget it, onto the garbage list. */
void stmt_cache_forget(struct stmt_cache *sc, const struct stmt_ref *ref);

/* The schema changed (DDL ran through the pool): every statement may have
 * a stale plan. Forget them all, onto the garbage list. */
void stmt_cache_forget_all(struct stmt_cache *sc);

/* The server no longer has statement `id` (the user deallocated it):
 * forget it and drop it, nothing to deallocate. */
void stmt_cache_gone(struct stmt_cache *sc, unsigned id);

/* The session's prepared statements were dropped on the server (DISCARD
 * ALL, a session reset): forget and drop them all, the garbage list too. */
void stmt_cache_clear(struct stmt_cache *sc);

/* The statements to deallocate, oldest first (*n of them), or NULL when
 * there are none; stmt_cache_garbage_done once the driver dealt with them. */
const struct stmt_garbage *stmt_cache_garbage(const struct stmt_cache *sc, size_t *n);
void stmt_cache_garbage_done(struct stmt_cache *sc);

/* Statements the cache holds (for the tests and the status socket). */
unsigned stmt_cache_count(const struct stmt_cache *sc);

#endif
