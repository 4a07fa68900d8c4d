/*
 * pg_stmtcache.h — the per-connection cache of server-side prepared
 * statements behind the PostgreSQL driver's transparent statement caching
 * (exec.c, results.c; pool key statementCacheSize, doc/configuration.md).
 *
 * A statement (SQL text plus the parameter type OIDs the driver declares)
 * is prepared on its server connection the second time that connection sees
 * it, and from then on executed by name: the server skips parsing and
 * planning. One-off SQL is never prepared (the "seen" table remembers
 * hashes of statements met once). When the cache is full the least recently
 * used statement is evicted; its name goes on a garbage list the driver
 * deallocates on the server before its next PREPARE.
 *
 * This file knows nothing of libpq: it only decides and remembers. The
 * driver owns one struct stmt_cache per connection.
 */
#ifndef DBPOOLD_PG_STMTCACHE_H
#define DBPOOLD_PG_STMTCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STMT_NAME_LEN 24

struct stmt_cache;

enum stmt_verdict {
    SC_UNNAMED,    /* first sight (now remembered): run it as an unnamed statement */
    SC_PREPARED,   /* prepared on this connection: execute by name */
    SC_PREPARE     /* seen before: prepare it under the name given, then execute */
};

/* The identity of one lookup, handed back to stmt_cache_add. */
struct stmt_ref {
    uint64_t hash;
    unsigned id;
    char name[STMT_NAME_LEN];
};

/* A cache for at most `capacity` statements; NULL when capacity is 0
 * (caching off) or memory ran out. */
struct stmt_cache *stmt_cache_new(unsigned capacity);
void stmt_cache_free(struct stmt_cache *sc);

/* What to do with a statement (types: one OID per parameter, 0 = let the
 * server infer). Fills ref for SC_PREPARED and SC_PREPARE. */
enum stmt_verdict stmt_cache_lookup(struct stmt_cache *sc, const char *sql, size_t len,
                                    const unsigned *types, size_t ntypes, struct stmt_ref *ref);

/* The server prepared ref's statement: remember it (evicting the least
 * recently used one when full). False when out of memory: the statement
 * then goes on the garbage list at once. */
bool stmt_cache_add(struct stmt_cache *sc, const struct stmt_ref *ref, const char *sql,
                    size_t len, const unsigned *types, size_t ntypes);

/* The server's copy of ref's statement is unusable (its result type
 * changed): forget it and deallocate it later. */
void stmt_cache_forget(struct stmt_cache *sc, const struct stmt_ref *ref);

/* The schema changed (DDL ran through the pool): every statement may have
 * a stale plan. Forget them all and deallocate them later. */
void stmt_cache_forget_all(struct stmt_cache *sc);

/* The server no longer has statement dbpool_s<id> (the user deallocated
 * it): forget it, nothing to deallocate. */
void stmt_cache_gone(struct stmt_cache *sc, unsigned id);

/* The session's prepared statements were dropped on the server (DISCARD
 * ALL, DEALLOCATE by the user): forget them all, nothing to deallocate. */
void stmt_cache_clear(struct stmt_cache *sc);

/* SQL deallocating the evicted statements ("DEALLOCATE a; DEALLOCATE b"),
 * or NULL when there are none; stmt_cache_garbage_done once it was sent. */
const char *stmt_cache_garbage(const struct stmt_cache *sc);
void stmt_cache_garbage_done(struct stmt_cache *sc);

/* Statements the cache holds (for the tests and the status socket). */
unsigned stmt_cache_count(const struct stmt_cache *sc);

/* Whether a statement is worth caching: only the kinds PREPARE accepts
 * (SELECT, INSERT, UPDATE, DELETE, MERGE, VALUES, TABLE, WITH). */
bool stmt_cacheable(const char *sql, size_t len);

#endif
