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
struct daemon;
struct event;
struct pool;

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

struct reload_state {
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
const struct reload_outcome *daemon_reload(struct daemon *d);
/* The removed pool of that name still draining, or NULL. */
struct pool *reload_find_draining(const struct reload_state *r, const char *name, size_t len);

/* daemon_free: first the draining pools (before the drivers quiesce)... */
void reload_free_pools(struct reload_state *r);
/* ...then, after they have, the retired configs and the rest. */
void reload_free(struct reload_state *r);

#endif
