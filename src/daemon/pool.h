/*
 * pool.h — one pool per configured database: its server connections, the
 * FIFO wait queue, sizing, recycling, health checks, connect retry, counters.
 *
 * A server connection's state is the list it is on (connecting, idle,
 * active, checking, resetting). A client gets a server with pool_acquire(),
 * runs operations through server_exec() & co. (so the pool sees every
 * completion: counters, broken connections), and gives it back with
 * pool_release() — or pool_abandon() when the client vanished mid-operation,
 * in which case the pool cancels the statement and has the driver reset the
 * connection (driver->reset: ROLLBACK, ...) before reuse.
 *
 * Ownership: the daemon owns pools (pool_new / pool_free); a pool owns its
 * servers. Waiters are embedded in the client that waits (the client owns
 * the memory and must pool_cancel_wait() before freeing it).
 */
#ifndef DBPOOLD_POOL_H
#define DBPOOLD_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "backend/backend.h"
#include "daemon/clock.h"
#include "daemon/configuration.h"
#include "daemon/latency.h"

struct event_base;
struct pool;
struct server;

/* Called when a waiter gets a server (err == NULL) or gives up (sv == NULL;
 * err says why: DBPOOL_E_POOL_TIMEOUT, DBPOOL_E_UNAVAILABLE, DBPOOL_E_SHUTDOWN). */
typedef void (*pool_grant_fn)(void *arg, struct server *sv, const struct backend_error *err);

struct pool_waiter {
    TAILQ_ENTRY(pool_waiter) link;
    enum backend_role want;
    uint64_t enqueued_us;
    pool_grant_fn fn;
    void *arg;
    bool queued;
    bool pin;                 /* a PIN's wait: holds one of maxPinned's places (pool_acquire_pin) */
};

/* A consistent snapshot for the status socket (all counters since start). */
struct pool_stats {
    const char *name;
    const char *type;
    bool healthy;
    bool paused;                     /* pool_pause: no server is handed out */
    bool down;                       /* more than maxRetries connect failures in a row:
                                        requests fail at once with UNAVAILABLE */
    int connect_failures;            /* consecutive failed connection attempts */
    int64_t next_connect_in_ms;      /* until the retry timer's attempt; -1: none due */
    char last_error[256];            /* last connect/health error, "" if none */
    int max_open;                    /* configured maxOpenConns */
    int servers_open;                /* all states */
    int servers_idle;
    int servers_busy;                /* active + checking + resetting */
    int servers_connecting;
    int clients_connected;           /* sessions attached to this pool */
    int clients_active;              /* bound to a server */
    int clients_waiting;             /* in the wait queue */
    int clients_pinned;              /* sessions pinned to a server (pool_pin) */
    int max_pinned;                  /* configured maxPinned */
    uint64_t longest_wait_us;        /* of the clients waiting now */
    uint64_t total_transactions;     /* server bindings released (xact pooling unit) */
    uint64_t total_statements;
    uint64_t total_errors;           /* failed statements */
    uint64_t total_cached_execs;     /* executed as statements the server had prepared */
    uint64_t total_prepares;         /* statements prepared by the statement cache */
    uint64_t total_wait_us;          /* time clients spent waiting for a server */
    uint64_t total_waits;            /* acquisitions that had to wait */
    uint64_t total_acquire_timeouts;
    uint64_t total_connect_attempts; /* connections the pool tried to open */
    uint64_t total_connects;
    uint64_t total_connect_errors;
    uint64_t total_unavailable;      /* requests failed with UNAVAILABLE */
    uint64_t total_server_closes;
    struct lat_summary tx_latency;   /* server bound to a client, acquire to release */
    struct lat_summary wait_latency; /* acquisitions: 0 when a server was idle */
};

struct pool *pool_new(const struct pool_config *cfg, const struct backend_driver *drv,
                      struct event_base *base);
/* Open the first writer connection and start the maintenance timer.
 * -1 with a message when the timer cannot be armed: the pool must not run
 * without it (it is the backstop of every other timer). */
int pool_start(struct pool *p, char *errbuf, size_t errlen);
/* Fail all waiters (SHUTDOWN) and close every server; frees p. */
void pool_free(struct pool *p);

const struct pool_config *pool_config(const struct pool *p);
const char *pool_backend_name(const struct pool *p);   /* "sqlite", "postgres", "mysql" */
bool pool_healthy(const struct pool *p);
void pool_get_stats(const struct pool *p, struct pool_stats *out);

/* Session bookkeeping (for clients_connected). */
/* False (nothing changed) when the pool already has maxClientsPerPool. */
bool pool_client_attach(struct pool *p);
void pool_client_detach(struct pool *p);

/* Ask for a server of role `want` (normalized to what the pool has). Returns
 * the server at once when one is idle (fn is not called); otherwise queues w
 * and returns NULL; fn is called later exactly once unless the wait is
 * cancelled. */
struct server *pool_acquire(struct pool *p, struct pool_waiter *w, enum backend_role want,
                            pool_grant_fn fn, void *arg);
void pool_cancel_wait(struct pool *p, struct pool_waiter *w);
/* Give a server back. No operation may be running on it. If it is inside a
 * transaction the driver resets it first (a reset that fails or leaves a
 * transaction open closes it); broken ones are closed. */
void pool_release(struct pool *p, struct server *sv);
/* The client is gone: any running operation is cancelled and its callbacks
 * suppressed, then the server is rolled back and released. */
void pool_abandon(struct pool *p, struct server *sv);

/* The backend's side of the session's transaction plan (request.c): the
 * session asks the pool, never the driver. pool_route: the role an
 * autocommit statement goes to; pool_begin_with: a protocol BEGIN may be
 * deferred to the next statement; pool_begin_sql / pool_tx_sql: the
 * backend's spelling of BEGIN (for a server of that role), COMMIT,
 * ROLLBACK and the savepoint statements (prefixes completed with a name). */
enum backend_role pool_route(const struct pool *p, const char *sql, size_t len);
bool pool_begin_with(const struct pool *p);
const char *pool_begin_sql(const struct pool *p, bool read_only, enum backend_role role);
const char *pool_tx_sql(const struct pool *p, enum backend_tx_op op);

/* ---- pinned sessions (pool_pin.c; doc/protocol.md "Pinned sessions") ----
 * A session pins the server it holds (a writer) so that it keeps it across
 * transactions; the pool counts the pins against maxPinned. pool_release of
 * a pinned server ends the pin: the driver resets the whole session
 * (reset_session) before anyone else gets it, or the connection is closed
 * when the driver cannot (or the server is broken). */
/* Whether one more session may pin: fewer than maxPinned are pinned or
 * waiting for a server to pin (pool_acquire_pin). */
bool pool_pin_allowed(const struct pool *p);
/* pool_acquire of a writer for a PIN (pool.c): while it waits it holds
 * one of maxPinned's places (given back when the wait ends, however it
 * ends), so the PINs beyond maxPinned are refused at once instead of
 * waiting for a server they could not pin. Call only when pool_pin_allowed. */
struct server *pool_acquire_pin(struct pool *p, struct pool_waiter *w, pool_grant_fn fn,
                                void *arg);
/* Pin sv (held by the caller, outside a transaction). False, nothing
 * changed, when maxPinned sessions are pinned already (a reload lowered
 * it while the PIN waited). */
bool pool_pin(struct pool *p, struct server *sv);
bool server_pinned(const struct server *sv);

/* ---- changes to a running pool (pool_admin.c) ---- */

/* A reload: cfg (the new running config's entry for this pool, same type)
 * replaces the pool's. Sizes, timeouts and limits apply at once: idle
 * servers above a lowered size close now, busy ones when released. With
 * recycle (connection settings changed) every server open now is closed
 * as it becomes idle and new ones use cfg. */
void pool_reconfigure(struct pool *p, const struct pool_config *cfg, bool recycle);
/* Hand out no server: running transactions go on; new requests wait in the
 * queue (acquireTimeout still bounds the wait) until pool_resume. */
void pool_pause(struct pool *p);
void pool_resume(struct pool *p);
bool pool_paused(const struct pool *p);
/* Recycle every server connection gracefully: idle ones close now, busy
 * ones when released; new ones open as needed. */
void pool_reconnect(struct pool *p);
/* The pool left the config: it serves the transactions its sessions have
 * open, then nothing (the sessions are told by session.c). */
void pool_mark_removed(struct pool *p);
bool pool_removed(const struct pool *p);
/* Removed, and no session or transaction uses it any more: pool_free it. */
bool pool_drained(const struct pool *p);
/* Whether the pool or one of its connections still points into cfg (a
 * retired config is freed only when no pool does). */
bool pool_uses_config(const struct pool *p, const struct config *cfg);

/* One server connection as the status socket shows it (GET /servers). */
struct server_view {
    uint64_t id;
    const char *state;               /* "connecting", "idle", "active", "checking", "resetting" */
    const char *role;                /* "writer", "reader" */
    uint64_t opened_us;              /* now_us() when it was opened */
    uint64_t state_since_us;         /* idle: since; active: bound since; else 0 */
    bool stale;                      /* of an older generation (reconnect, reload): closes when idle */
    const char *info;                /* the driver's description (backend pid, ...), or "" */
    uint64_t requests;               /* statements run on it */
    uint64_t op_started_us;          /* its running statement started; 0: none runs */
    bool pinned;                     /* held by a pinned session */
};
typedef void (*server_view_fn)(void *ctx, const struct server_view *v);
/* Call fn for every server connection of p, state by state. */
void pool_each_server(const struct pool *p, server_view_fn fn, void *ctx);

/* Operations on a server the caller holds (see backend.h for semantics). */
void server_exec(struct server *sv, const struct backend_query *q,
                 const struct backend_sink *sink, void *arg);
void server_cancel(struct server *sv);
void server_resume(struct server *sv);
char server_txstate(const struct server *sv);
enum backend_role server_role(const struct server *sv);
const char *server_info(const struct server *sv);
uint64_t server_id(const struct server *sv);


#endif
