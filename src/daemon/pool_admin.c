/*
 * pool_admin.c — the changes an operator makes to a running pool (contract:
 * pool.h): a reload's new settings (pool_reconfigure), pause and resume,
 * reconnect (a new generation of server connections), and removal from the
 * config (draining). None of them drops a client or a transaction: servers
 * that must go are closed when idle, the others as they are released
 * (server_retire_reason in pool.c). Also what an operator sees of the
 * connections (pool_each_server, for GET /servers).
 */
#include <stdio.h>

#include <event2/event.h>

#include "daemon/log.h"
#include "daemon/pool_internal.h"

/* Close the idle servers that must not serve again (older generation,
 * above the role's size) and those above maxIdleConns. */
static void close_surplus_idle(struct pool *p)
{
    uint64_t now = now_us();
    struct server *sv, *prev;
    const char *why;

    for (sv = TAILQ_LAST(&p->lists[SV_IDLE], server_list); sv; sv = prev) {
        prev = TAILQ_PREV(sv, server_list, link);
        if ((why = server_retire_reason(p, sv, now)))
            server_close(sv, why);
        else if (p->counts[SV_IDLE] > p->cfg->max_idle_conns)
            server_close(sv, "max_idle");
    }
}

/* Servers may be missing for the waiters (a larger size, closed stale
 * ones): open what they need. */
static void serve_waiters(struct pool *p)
{
    struct server *sv, *next;

    for (sv = TAILQ_FIRST(&p->lists[SV_IDLE]); sv && p->nwaiting && !p->paused; sv = next) {
        next = TAILQ_NEXT(sv, link);
        if (p->nwait_role[sv->role] > 0)
            pool_dispatch(p, sv);
    }
    pool_maybe_connect(p, ROLE_WRITER);
    pool_maybe_connect(p, ROLE_READER);
}

void pool_reconfigure(struct pool *p, const struct pool_config *cfg, bool recycle)
{
    p->cfg = cfg;
    p->health.cfg = cfg;
    pool_set_limits(p);
    if (recycle)
        p->gen++;
    close_surplus_idle(p);
    if (pool_arm_maint(p) != 0)
        log_error("pool_maint_timer_failed", "pool=%s hint=\"cannot re-arm the maintenance "
                  "timer after the reload (out of memory?); it keeps its old period\"", cfg->name);
    arm_wait_timer(p);   /* acquireTimeout may have changed */
    serve_waiters(p);
}

void pool_pause(struct pool *p)
{
    if (p->paused)
        return;
    p->paused = true;
    log_info("pool_paused", "pool=%s busy=%d waiting=%d", p->cfg->name, p->counts[SV_ACTIVE],
             p->nwaiting);
}

void pool_resume(struct pool *p)
{
    if (!p->paused)
        return;
    p->paused = false;
    log_info("pool_resumed", "pool=%s waiting=%d", p->cfg->name, p->nwaiting);
    serve_waiters(p);
}

bool pool_paused(const struct pool *p)
{
    return p->paused;
}

void pool_reconnect(struct pool *p)
{
    p->gen++;
    log_info("pool_reconnect", "pool=%s generation=%u servers_open=%d", p->cfg->name,
             (unsigned)p->gen, p->nrole[ROLE_WRITER] + p->nrole[ROLE_READER]);
    close_surplus_idle(p);
    serve_waiters(p);
}

void pool_mark_removed(struct pool *p)
{
    p->removed = true;
}

bool pool_removed(const struct pool *p)
{
    return p->removed;
}

bool pool_drained(const struct pool *p)
{
    return p->removed && p->clients_connected == 0 && p->nwaiting == 0 &&
           p->counts[SV_ACTIVE] == 0 && p->counts[SV_RESETTING] == 0;
}

static bool config_holds(const struct config *cfg, const struct pool_config *pc)
{
    for (size_t i = 0; i < cfg->npools; i++)
        if (&cfg->pools[i] == pc)
            return true;
    return false;
}

bool pool_uses_config(const struct pool *p, const struct config *cfg)
{
    const struct server *sv;

    if (config_holds(cfg, p->cfg))
        return true;
    for (size_t i = 0; i < sizeof(p->lists) / sizeof(p->lists[0]); i++)
        TAILQ_FOREACH(sv, &p->lists[i], link)
            if (config_holds(cfg, sv->cfg))
                return true;
    return false;
}

static const char *const server_state_names[] = {
    "connecting", "idle", "active", "checking", "resetting",
};

static uint64_t state_since(const struct server *sv)
{
    if (sv->state == SV_IDLE)
        return sv->idle_since_us;
    return sv->state == SV_ACTIVE ? sv->busy_since_us : 0;
}

void pool_each_server(const struct pool *p, server_view_fn fn, void *ctx)
{
    const struct server *sv;

    for (size_t i = 0; i < sizeof(p->lists) / sizeof(p->lists[0]); i++) {
        TAILQ_FOREACH(sv, &p->lists[i], link) {
            struct server_view v = {
                .id = sv->id, .state = server_state_names[sv->state],
                .role = sv->role == ROLE_READER ? "reader" : "writer",
                .opened_us = sv->created_us, .state_since_us = state_since(sv),
                .stale = sv->gen != p->gen,
                .info = sv->state == SV_CONNECTING ? "" : server_info(sv),
                .requests = sv->requests,
                .op_started_us = sv->op_running ? sv->op_started_us : 0,
                .pinned = sv->pinned,
            };
            fn(ctx, &v);
        }
    }
}
