/*
 * reload.c — reload_run() (contract: reload.h): load and validate the
 * config again, then apply it in two steps so that a failure changes
 * nothing: first everything that can fail (new pools made and started,
 * room for the retiring lists), then the commit, which cannot fail (pools
 * reconfigured, removed ones marked and their sessions told, the daemon
 * section's live keys applied, the old config retired).
 *
 * Retiring: a removed pool stays usable for the transactions open on it
 * and is freed by the retire tick once pool_drained(); a replaced config
 * is freed once no pool or server connection points into it and no driver
 * thread is still tearing a closed connection down (factory_teardown_
 * pending: a SQLite worker may read its config while it stops). The tick
 * runs only while something is retiring.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "backend/factory.h"
#include "daemon/config_diff.h"
#include "daemon/session.h"
#include "daemon/log.h"
#include "daemon/pool.h"
#include "daemon/reload.h"

#define RETIRE_TICK_MS 100

/* ------------------------------------------------------------- outcome */

static uint64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void outcome_clear(struct reload_outcome *o)
{
    for (size_t i = 0; i < o->nerrors; i++)
        free(o->errors[i]);
    free(o->errors);
    memset(o, 0, sizeof(*o));
}

/* Add an error (dropped when memory runs out: nerrors still counts it). */
static void outcome_error(struct reload_outcome *o, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    char **grown = realloc(o->errors, (o->nerrors + 1) * sizeof(*o->errors));

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (!grown)
        return;
    o->errors = grown;
    o->errors[o->nerrors] = strdup(buf);
    if (o->errors[o->nerrors])
        o->nerrors++;
}

/* ------------------------------------------------------------ retiring */

static bool config_in_use(const struct reload_state *r, const struct config *cfg)
{

    for (size_t i = 0; i < *r->t.npools; i++)
        if (pool_uses_config((*r->t.pools)[i], cfg))
            return true;
    for (size_t i = 0; i < r->ndraining; i++)
        if (pool_uses_config(r->draining[i], cfg))
            return true;
    return false;
}

static void free_drained_pools(struct reload_state *r)
{
    for (size_t i = 0; i < r->ndraining;) {
        struct pool *p = r->draining[i];
        if (!pool_drained(p)) {
            i++;
            continue;
        }
        log_info("pool_closed", "pool=%s reason=\"removed from the configuration\"",
                 pool_config(p)->name);
        pool_free(p);
        r->draining[i] = r->draining[--r->ndraining];
    }
}

static void free_unused_configs(struct reload_state *r)
{

    if (factory_teardown_pending())
        return;   /* a driver thread may still read one: next tick */
    for (size_t i = 0; i < r->nretired;) {
        if (config_in_use(r, r->retired[i])) {
            i++;
            continue;
        }
        config_free(r->retired[i]);
        r->retired[i] = r->retired[--r->nretired];
    }
}

static void on_retire_tick(evutil_socket_t fd, short what, void *arg)
{
    struct reload_state *r = arg;

    (void)fd;
    (void)what;
    free_drained_pools(r);
    free_unused_configs(r);
    if (r->ndraining == 0 && r->nretired == 0)
        event_del(r->timer);
}

/* Start the retire tick (at the latest the daemon's exit frees the rest). */
static void retire_arm(struct reload_state *r)
{
    struct timeval tv = { 0, RETIRE_TICK_MS * 1000 };

    if (!r->timer)
        r->timer = event_new(r->t.base, -1, EV_PERSIST, on_retire_tick, r);
    if (!r->timer || event_add(r->timer, &tv) != 0)
        log_error("reload_retire_timer_failed", "hint=\"removed pools and the previous "
                  "configuration are freed at exit instead (out of memory?)\"");
}

struct pool *reload_find_draining(const struct reload_state *r, const char *name, size_t len)
{
    for (size_t i = 0; i < r->ndraining; i++) {
        const char *pn = pool_config(r->draining[i])->name;
        if (strlen(pn) == len && memcmp(pn, name, len) == 0)
            return r->draining[i];
    }
    return NULL;
}

/* The running pool of that name (not a draining one), or NULL. */
static struct pool *find_running(const struct reload_state *r, const char *name)
{
    for (size_t i = 0; i < *r->t.npools; i++)
        if (strcmp(pool_config((*r->t.pools)[i])->name, name) == 0)
            return (*r->t.pools)[i];
    return NULL;
}

/* ----------------------------------------------------------- validating */

/* The new config, or NULL with its errors in o (each also logged). */
static struct config *load_new(const char *path, struct reload_outcome *o)
{
    struct config_diag diag = { 0 };
    struct config *cfg = config_load(path, &diag);
    char q[600];

    for (size_t i = 0; i < diag.nwarnings; i++)
        log_warn("reload_warning", "warning=%s",
                 log_quote(q, sizeof(q), diag.warnings[i], strlen(diag.warnings[i])));
    for (size_t i = 0; i < diag.nerrors; i++)
        outcome_error(o, "%s", diag.errors[i]);
    config_diag_free(&diag);
    for (size_t i = 0; cfg && i < cfg->npools; i++) {
        char why[256];
        if (!factory_driver(cfg->pools[i].type, why, sizeof(why)))
            outcome_error(o, "%s:%d: pool \"%s\": %s", path, cfg->pools[i].line,
                          cfg->pools[i].name, why);
    }
    if (cfg && o->nerrors == 0)
        return cfg;
    if (o->nerrors == 0)
        outcome_error(o, "%s: out of memory while loading the configuration", path);
    config_free(cfg);
    return NULL;
}

/* ------------------------------------------------------------- applying */

/* What the new config asks for, prepared before anything changes. */
struct plan {
    struct config *cfg;
    struct pool **pools;        /* one per cfg->pools[i] (owned array) */
    unsigned *changes;          /* enum pool_change per kept pool */
    bool *fresh;                /* made for this reload */
    struct pool **removed;      /* running pools the config no longer has (owned array) */
    size_t nremoved;
};

static void plan_free(struct plan *pl, bool free_fresh)
{
    for (size_t i = 0; free_fresh && pl->pools && i < pl->cfg->npools; i++)
        if (pl->fresh[i])
            pool_free(pl->pools[i]);
    free(pl->pools);
    free(pl->changes);
    free(pl->fresh);
    free(pl->removed);
}

static struct pool *fresh_pool(struct reload_state *r, const struct pool_config *pc,
                               struct reload_outcome *o)
{
    char why[300];
    const struct backend_driver *drv = factory_driver(pc->type, why, sizeof(why));
    struct pool *p = drv ? pool_new(pc, drv, r->t.base) : NULL;

    if (!p) {
        outcome_error(o, "pool \"%s\": cannot create it: %s", pc->name, drv ? "out of memory" : why);
        return NULL;
    }
    if (pool_start(p, why, sizeof(why)) != 0) {
        outcome_error(o, "%s", why);
        pool_free(p);
        return NULL;
    }
    return p;
}

/* Match the new config's pools with the running ones; make and start the
 * new ones. -1 (errors in o) when one cannot be made. */
static int plan_pools(struct reload_state *r, struct plan *pl, struct reload_outcome *o)
{
    size_t n = pl->cfg->npools;

    pl->pools = calloc(n ? n : 1, sizeof(*pl->pools));
    pl->changes = calloc(n ? n : 1, sizeof(*pl->changes));
    pl->fresh = calloc(n ? n : 1, sizeof(*pl->fresh));
    pl->removed = calloc(*r->t.npools ? *r->t.npools : 1, sizeof(*pl->removed));
    if (!pl->pools || !pl->changes || !pl->fresh || !pl->removed) {
        outcome_error(o, "out of memory applying the configuration");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const struct pool_config *pc = &pl->cfg->pools[i];
        struct pool *old = find_running(r, pc->name);
        unsigned ch = old ? config_pool_changes(pool_config(old), pc) : POOL_RETYPED;
        if (!(ch & POOL_RETYPED)) {
            pl->pools[i] = old;
            pl->changes[i] = ch;
            continue;
        }
        pl->fresh[i] = true;
        if (!(pl->pools[i] = fresh_pool(r, pc, o)))
            return -1;
    }
    for (size_t i = 0; i < *r->t.npools; i++) {
        bool kept = false;
        for (size_t j = 0; j < n && !kept; j++)
            kept = pl->pools[j] == (*r->t.pools)[i];
        if (!kept)
            pl->removed[pl->nremoved++] = (*r->t.pools)[i];
    }
    return 0;
}

/* Room in the retiring lists for what this reload retires. */
static int reserve_retiring(struct reload_state *r, const struct plan *pl,
                            struct reload_outcome *o)
{
    struct pool **dp = realloc(r->draining, (r->ndraining + pl->nremoved + 1) * sizeof(*dp));
    struct config **rc;

    if (dp)
        r->draining = dp;
    rc = dp ? realloc(r->retired, (r->nretired + 1) * sizeof(*rc)) : NULL;
    if (rc)
        r->retired = rc;
    if (!dp || !rc) {
        outcome_error(o, "out of memory applying the configuration");
        return -1;
    }
    return 0;
}

/* The daemon keys only a restart applies keep their running values (so
 * the running config says what is in effect); the others apply now. */
static void apply_daemon(struct reload_state *r, struct config *cfg, struct reload_outcome *o)
{
    struct daemon_config *nd = &cfg->daemon, *od = &(*r->t.cfg)->daemon;

    config_restart_keys(od, nd, o->restart_keys, sizeof(o->restart_keys));
    if (o->restart_keys[0])
        log_warn("reload_needs_restart", "keys=\"%s\" hint=\"socket changes need a restart; "
                 "dbpoold keeps its current sockets and applies the rest of the configuration\"",
                 o->restart_keys);
    char *sock = nd->socket, *status = nd->status_socket;
    nd->socket = od->socket;
    nd->status_socket = od->status_socket;
    od->socket = sock;
    od->status_socket = status;
    nd->socket_mode = od->socket_mode;
    nd->status_socket_mode = od->status_socket_mode;
    nd->listen_backlog = od->listen_backlog;
    log_set_level(nd->log_level);
    r->t.sessions->cfg = nd;
    r->t.sessions->budget.limit = nd->client_buffer_budget;
    io_budget_release(&r->t.sessions->budget, 0);   /* a larger budget may admit waiters */
}

/* Put the plan into effect; nothing here can fail. */
static void commit(struct reload_state *r, struct plan *pl, struct reload_outcome *o)
{

    for (size_t i = 0; i < pl->cfg->npools; i++) {
        if (pl->fresh[i]) {
            o->added++;
            continue;
        }
        pool_reconfigure(pl->pools[i], &pl->cfg->pools[i], pl->changes[i] & POOL_RECONNECT);
        o->changed += pl->changes[i] == POOL_TUNED;
        o->recycled += (pl->changes[i] & POOL_RECONNECT) != 0;
    }
    apply_daemon(r, pl->cfg, o);
    r->retired[r->nretired++] = (*r->t.cfg);
    (*r->t.cfg) = pl->cfg;
    free((*r->t.pools));
    (*r->t.pools) = pl->pools;
    *r->t.npools = pl->cfg->npools;
    pl->pools = NULL;
    for (size_t i = 0; i < pl->nremoved; i++) {
        struct pool *p = pl->removed[i];
        r->draining[r->ndraining++] = p;
        pool_mark_removed(p);
        o->removed++;
        log_info("pool_draining", "pool=%s", pool_config(p)->name);
        sessions_pool_removed(r->t.sessions, p);
    }
    retire_arm(r);
}

/* A config that pools made for it may have handed to connections: freed
 * by the retire tick, like a replaced one. */
static void retire_config(struct reload_state *r, struct config *cfg)
{
    struct config **rc = realloc(r->retired, (r->nretired + 1) * sizeof(*rc));

    if (!rc) {
        log_error("reload_retire_failed", "hint=\"out of memory: the rejected configuration "
                  "stays allocated until exit\"");
        return;
    }
    r->retired = rc;
    r->retired[r->nretired++] = cfg;
    retire_arm(r);
}

static void apply(struct reload_state *r, struct config *cfg, struct reload_outcome *o)
{
    struct plan pl = { .cfg = cfg };

    if (plan_pools(r, &pl, o) != 0 || reserve_retiring(r, &pl, o) != 0) {
        plan_free(&pl, true);
        retire_config(r, cfg);
        return;
    }
    commit(r, &pl, o);
    plan_free(&pl, false);
    o->ok = true;
}

/* ------------------------------------------------------------- reload */

static void log_outcome(const struct reload_state *r, const struct reload_outcome *o)
{
    char q[600];

    if (o->ok) {
        log_info("reload_done", "pools=%zu added=%d removed=%d changed=%d recycled=%d "
                 "restart_needed=\"%s\"", *r->t.npools, o->added, o->removed, o->changed,
                 o->recycled, o->restart_keys);
        return;
    }
    for (size_t i = 0; i < o->nerrors; i++)
        log_error("reload_error", "error=%s",
                  log_quote(q, sizeof(q), o->errors[i], strlen(o->errors[i])));
    log_error("reload_failed", "errors=%zu hint=\"fix the configuration and reload again; "
              "dbpoold keeps running on the previous one\"", o->nerrors);
}

const struct reload_outcome *reload_run(struct reload_state *r)
{
    struct reload_outcome *o = &r->last;
    struct config *cfg;

    outcome_clear(o);
    o->time_unix_ms = wall_ms();
    log_info("reload", "file=%s", (*r->t.cfg)->path);
    if (r->t.sessions->shutting_down)
        outcome_error(o, "dbpoold is shutting down; a reload is not possible now");
    else if ((cfg = load_new((*r->t.cfg)->path, o)))
        apply(r, cfg, o);
    if (o->ok) {
        r->total_ok++;
        r->last_success_unix_ms = o->time_unix_ms;
    } else {
        r->total_failed++;
    }
    log_outcome(r, o);
    return o;
}

void reload_free_pools(struct reload_state *r)
{
    for (size_t i = 0; i < r->ndraining; i++)
        pool_free(r->draining[i]);
    r->ndraining = 0;
    if (r->timer)
        event_free(r->timer);
    r->timer = NULL;
}

void reload_free(struct reload_state *r)
{
    reload_free_pools(r);
    free(r->draining);
    for (size_t i = 0; i < r->nretired; i++)
        config_free(r->retired[i]);
    free(r->retired);
    outcome_clear(&r->last);
}
