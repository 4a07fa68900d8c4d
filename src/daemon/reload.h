/*
 * reload.h — live reload of the configuration (SIGHUP, POST /reload):
 * daemon_reload() re-reads the file dbpoold started with (and the
 * environment overrides), validates it like startup does and, when it is
 * valid, applies it without dropping a client or a transaction (pools
 * added, removed pools drained, changed ones adjusted in place or their
 * server connections recycled; doc/operations.md). The outcome of the last
 * reload is kept for /health, /stats and /metrics.
 *
 * A removed pool and a replaced config are "retiring": the pool serves the
 * transactions its sessions have open and is freed once none uses it; the
 * old config is freed once no pool, server connection or driver thread
 * can still read it. struct reload_state (in struct daemon) owns both.
 */
#ifndef DBPOOLD_RELOAD_H
#define DBPOOLD_RELOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct event;
struct event_base;
struct pool;
struct sessions;

/* One reload's result. */
struct reload_outcome {
    uint64_t time_unix_ms;           /* wall clock when it ran; 0: no reload yet */
    bool ok;                         /* the new config is running */
    char **errors;                   /* why not: "file:line: ..." as at startup (owned) */
    size_t nerrors;
    int added, removed, changed, recycled;  /* pools (changed: sizes/limits/timeouts;
                                               recycled: connection settings) */
    char restart_keys[160];          /* socket keys that changed but need a restart, "" */
};

/* What a reload changes: the daemon's own fields (not owned), so that
 * reload.c needs nothing else of the daemon. */
struct reload_target {
    struct event_base *base;
    struct config **cfg;             /* the running config */
    struct pool ***pools;            /* its pools, in its order */
    size_t *npools;
    struct sessions *sessions;
};

struct reload_state {
    struct reload_target t;          /* set by the daemon before the first reload */
    struct reload_outcome last;
    uint64_t total_ok, total_failed;
    uint64_t last_success_unix_ms;   /* 0: none yet */
    struct pool **draining;          /* removed pools still in use (owned) */
    size_t ndraining;
    struct config **retired;         /* replaced configs not yet freed (owned) */
    size_t nretired;
    struct event *timer;             /* frees what has retired (owned; lazily made) */
};

/* Reload now. The outcome stays valid until the next reload. */
const struct reload_outcome *reload_run(struct reload_state *r);
/* The removed pool of that name still draining, or NULL. */
struct pool *reload_find_draining(const struct reload_state *r, const char *name, size_t len);

/* daemon_free: first the draining pools (before the drivers quiesce)... */
void reload_free_pools(struct reload_state *r);
/* ...then, after they have, the retired configs and the rest. */
void reload_free(struct reload_state *r);

#endif
