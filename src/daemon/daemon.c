/*
 * daemon.c — builds the daemon from the running config (pools through the
 * factory, the client listener, the status socket, signal handlers), runs
 * the one event loop, and carries out the graceful shutdown:
 *
 *   SIGHUP -> daemon_reload (reload.c).
 *
 *   SIGTERM/SIGINT -> stop accepting; sessions idle outside a transaction
 *   are closed at once, the others when their transaction ends; after
 *   shutdownTimeout the rest are cut (their transactions rolled back); the
 *   loop stops when no session is left; sockets are unlinked; exit 0.
 *
 * Under systemd (sd_service.h) it takes the sockets passed by socket
 * activation instead of binding its own, tells the manager READY=1 once the
 * pools have started, STOPPING=1 when the drain begins, and keeps STATUS=
 * and the watchdog pings going from the loop.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "daemon/client.h"
#include "daemon/daemon.h"
#include "backend/factory.h"
#include "daemon/listener.h"
#include "daemon/log.h"
#include "daemon/pool.h"
#include "daemon/sd_service.h"
#include "daemon/status.h"

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct daemon *d = arg;

    if (sig == SIGHUP) {
        (void)daemon_reload(d);
        return;
    }
    daemon_shutdown(d, sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* Cut the remaining sessions: each gets ERROR SHUTDOWN after what it had
 * queued; the loop stops when the last is gone (daemon_client_gone), at the
 * latest after CLIENT_CUT_FLUSH_MS (daemon_free then frees the rest). */
static void on_shutdown_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct daemon *d = arg;
    struct timeval tv = { CLIENT_CUT_FLUSH_MS / 1000, (CLIENT_CUT_FLUSH_MS % 1000) * 1000 };

    log_warn("shutdown_timeout", "clients=%zu action=\"closing remaining sessions; open "
             "transactions are rolled back\"", daemon_nclients(d));
    sessions_cut(&d->sessions);
    event_base_loopexit(d->base, daemon_nclients(d) ? &tv : NULL);
}

static struct event *add_signal(struct daemon *d, int sig)
{
    struct event *ev = evsignal_new(d->base, sig, on_signal, d);

    if (ev && event_add(ev, NULL) != 0) {
        event_free(ev);
        return NULL;
    }
    return ev;
}

static int create_pools(struct daemon *d, char *errbuf, size_t errlen)
{
    d->pools = calloc(d->cfg->npools, sizeof(*d->pools));
    if (!d->pools) {
        snprintf(errbuf, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < d->cfg->npools; i++) {
        const struct pool_config *pc = &d->cfg->pools[i];
        char why[256];
        const struct backend_driver *drv = factory_driver(pc->type, why, sizeof(why));
        if (!drv) {
            snprintf(errbuf, errlen, "pool \"%s\": %s", pc->name, why);
            return -1;
        }
        d->pools[i] = pool_new(pc, drv, d->base);
        if (!d->pools[i]) {
            snprintf(errbuf, errlen, "pool \"%s\": out of memory", pc->name);
            return -1;
        }
        d->npools++;
    }
    return 0;
}

/* The listener's owner interface: accepted sockets become sessions. */
static void accept_session(void *arg, int fd)
{
    client_accept(&((struct daemon *)arg)->sessions, fd);
}

static size_t count_sessions(void *arg)
{
    return sessions_count(&((const struct daemon *)arg)->sessions);
}

/* ---- the read-only view the status socket gets ---- */

static size_t view_npools(const void *arg)
{
    return ((const struct daemon *)arg)->npools;
}

static const struct pool *view_pool(const void *arg, size_t i)
{
    return ((const struct daemon *)arg)->pools[i];
}

static void view_daemon_info(const void *arg, struct status_daemon_info *out)
{
    const struct daemon *d = arg;
    const struct sessions *s = &d->sessions;

    out->clients_connected = sessions_count(s);
    for (size_t i = 0; i < CL_NSTATES; i++)
        out->clients_in[i] = s->counts[i];
    out->clients_accepted = s->total_accepted;
    out->buffer_budget = s->budget.limit;
    out->buffer_used = s->budget.used;
    out->buffer_peak = s->budget.peak;
    out->buffer_waiting = s->budget.nwaiting;
    out->frame_timeouts = s->frame_timeouts;
    out->write_stalls = s->write_stalls;
    out->shutting_down = s->shutting_down;
    out->start_us = d->start_us;
}

static void view_each_client(const void *arg, session_info_fn fn, void *ctx)
{
    sessions_each(&((const struct daemon *)arg)->sessions, fn, ctx);
}

static const struct reload_state *view_reload_state(const void *arg)
{
    return &((const struct daemon *)arg)->reload;
}

static const struct reload_outcome *admin_reload(void *admin)
{
    return daemon_reload(admin);
}

static const struct config *view_config(const void *arg)
{
    return ((const struct daemon *)arg)->cfg;
}

static struct pool *admin_find_pool(void *admin, const char *name, size_t len)
{
    return daemon_find_pool(admin, name, len);
}

static int admin_kill(void *admin, uint64_t id)
{
    return sessions_kill(&((struct daemon *)admin)->sessions, id);
}

static void admin_shutdown(void *admin, const char *reason)
{
    daemon_shutdown(admin, reason);
}

/* What STATUS= reports to systemd. */
static void view_service_figures(const void *arg, struct service_figures *out)
{
    const struct daemon *d = arg;

    out->clients = sessions_count(&d->sessions);
    out->pools = d->npools;
    out->unhealthy = 0;
    for (size_t i = 0; i < d->npools; i++)
        out->unhealthy += !pool_healthy(d->pools[i]);
    out->stopping = d->sessions.shutting_down;
}

/* The client and status sockets: passed by systemd (socket activation),
 * else bound at the configured paths. */
static int start_sockets(struct daemon *d, char *errbuf, size_t errlen)
{
    const struct daemon_config *dc = &d->cfg->daemon;
    const struct listener_owner owner = { accept_session, count_sessions, d };
    struct service_sockets ss;

    if (service_take_sockets(&ss, errbuf, errlen) < 0)
        return -1;
    d->listener = listener_start(d->base, service_socket_path(&ss.client, dc->socket, "daemon.socket"),
                                 dc->socket_mode, (int)dc->listen_backlog, ss.client.fd, &owner,
                                 errbuf, errlen);
    if (!d->listener) {
        service_close_socket(&ss.status);
        return -1;
    }
    if (ss.status.fd >= 0 || (dc->status_socket && dc->status_socket[0])) {
        d->status_view = (struct status_view){
            .base = d->base, .listen_backlog = (int)dc->listen_backlog, .npools = view_npools,
            .pool = view_pool, .daemon_info = view_daemon_info, .each_client = view_each_client,
            .arg = d, .reload_state = view_reload_state, .reload = admin_reload,
            .config = view_config, .find_pool = admin_find_pool, .kill_client = admin_kill,
            .shutdown = admin_shutdown, .admin = d,
        };
        d->status = status_start(&d->status_view, service_socket_path(&ss.status, dc->status_socket,
                                 "daemon.statusSocket"), dc->status_socket_mode, ss.status.fd,
                                 errbuf, errlen);
        if (!d->status)
            return -1;
    }
    return 0;
}

/* ---- what the sessions need of the daemon ---- */

/* A removed pool is found too: the session refuses it with its own words. */
static struct pool *hook_find_pool(void *arg, const char *name, size_t len)
{
    const struct daemon *d = arg;
    struct pool *p = daemon_find_pool(d, name, len);

    return p ? p : reload_find_draining(&d->reload, name, len);
}

static void hook_client_gone(void *arg)
{
    daemon_client_gone(arg);
}

struct daemon *daemon_new(struct config *cfg, char *errbuf, size_t errlen)
{
    const struct session_hooks hooks = { hook_find_pool, hook_client_gone, NULL };
    struct daemon *d = calloc(1, sizeof(*d));

    if (!d) {
        config_free(cfg);
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    d->cfg = cfg;
    d->reload.t = (struct reload_target){ NULL, &d->cfg, &d->pools, &d->npools, &d->sessions };
    d->start_us = now_us();
    d->base = event_base_new();
    d->reload.t.base = d->base;
    struct session_hooks h = hooks;
    h.arg = d;
    if (!d->base || sessions_init(&d->sessions, d->base, &cfg->daemon, &h) != 0) {
        snprintf(errbuf, errlen, "cannot create the event loop");
        daemon_free(d);
        return NULL;
    }
    d->sigterm = add_signal(d, SIGTERM);
    d->sigint = add_signal(d, SIGINT);
    d->sighup = add_signal(d, SIGHUP);
    d->shutdown_timer = evtimer_new(d->base, on_shutdown_timeout, d);
    if (!d->sigterm || !d->sigint || !d->sighup || !d->shutdown_timer) {
        snprintf(errbuf, errlen, "cannot install signal handlers");
        daemon_free(d);
        return NULL;
    }
    const struct service_view sv = { view_service_figures, d };
    d->service = service_new(d->base, &sv, errbuf, errlen);
    if (!d->service || create_pools(d, errbuf, errlen) < 0 || start_sockets(d, errbuf, errlen) < 0) {
        daemon_free(d);
        return NULL;
    }
    return d;
}

int daemon_run(struct daemon *d)
{
    char err[300];

    for (size_t i = 0; i < d->npools; i++) {
        if (pool_start(d->pools[i], err, sizeof(err)) != 0) {
            log_error("start_failed", "error=\"%s\"", err);
            return 1;
        }
    }
    log_info("ready", "socket=%s status_socket=%s pools=%zu version=%s", listener_path(d->listener),
             d->status ? status_path(d->status) : "off", d->npools, PACKAGE_VERSION_STR);
    service_notify_ready(d->service);
    if (event_base_dispatch(d->base) < 0) {
        log_error("loop_failed", "hint=\"the event loop stopped unexpectedly\"");
        return 1;
    }
    log_info("stopped", "exit_code=%d", d->exit_code);
    return d->exit_code;
}

/* systemd sees RELOADING=1 ... READY=1 around it, applied or not. */
const struct reload_outcome *daemon_reload(struct daemon *d)
{
    const struct reload_outcome *o;

    service_notify_reloading(d->service);
    o = reload_run(&d->reload);
    service_notify_ready(d->service);
    return o;
}

void daemon_shutdown(struct daemon *d, const char *reason)
{
    uint64_t ms = d->cfg->daemon.shutdown_timeout_ms;
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };

    if (d->sessions.shutting_down) {
        log_warn("shutdown_forced", "reason=%s", reason);
        on_shutdown_timeout(-1, 0, d);
        return;
    }
    log_info("shutdown", "reason=%s clients=%zu timeout_ms=%llu", reason, daemon_nclients(d),
             (unsigned long long)ms);
    /* Close and unlink the client socket: new connections fail at once
     * instead of waiting in the backlog. (A socket passed by systemd stays
     * open there: new connections wait for the next start.) */
    listener_free(d->listener);
    d->listener = NULL;
    if (evtimer_add(d->shutdown_timer, &tv) != 0) {
        /* Without the timer nothing would bound the drain: cut on the next pass. */
        log_error("shutdown_timer_failed", "hint=\"cannot arm the shutdownTimeout timer (out of "
                  "memory?); closing every session now\"");
        event_active(d->shutdown_timer, EV_TIMEOUT, 1);
    }
    sessions_shutdown(&d->sessions);
    service_notify_stopping(d->service);
    daemon_client_gone(d);
}

void daemon_client_gone(struct daemon *d)
{
    /* Its socket is closed: a listener paused for want of descriptors may
     * accept again. */
    listener_fd_freed(d->listener);
    status_fd_freed(d->status);
    if (d->sessions.shutting_down && daemon_nclients(d) == 0)
        event_base_loopexit(d->base, NULL);
}

size_t daemon_nclients(const struct daemon *d)
{
    return sessions_count(&d->sessions);
}

struct pool *daemon_find_pool(const struct daemon *d, const char *name, size_t len)
{
    for (size_t i = 0; i < d->npools; i++) {
        const char *pn = pool_config(d->pools[i])->name;
        if (strlen(pn) == len && memcmp(pn, name, len) == 0)
            return d->pools[i];
    }
    return NULL;
}

void daemon_free(struct daemon *d)
{
    if (!d)
        return;
    if (d->sessions.base)
        sessions_deinit(&d->sessions);
    status_stop(d->status);
    listener_free(d->listener);
    service_free(d->service);
    for (size_t i = 0; i < d->npools; i++)
        pool_free(d->pools[i]);
    free(d->pools);
    reload_free_pools(&d->reload);
    struct event *evs[] = { d->sigterm, d->sigint, d->sighup, d->shutdown_timer };
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
        if (evs[i])
            event_free(evs[i]);
    factory_quiesce_all();
    reload_free(&d->reload);   /* old configs: no driver thread reads them now */
    if (d->base)
        event_base_free(d->base);
    config_free(d->cfg);
    free(d);
}
