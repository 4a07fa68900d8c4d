/*
 * status.h — the status socket: HTTP/1.1 over a Unix socket (libevent evhttp)
 * serving JSON pool statistics and health. doc/status.md lists the fields.
 */
#ifndef DBPOOLD_STATUS_H
#define DBPOOLD_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/session.h"

struct event_base;
struct pool;
struct status_server;
struct reload_state;
struct reload_outcome;
struct config;

/* The daemon-wide figures at one instant. */
struct status_daemon_info {
    size_t clients_connected;        /* sessions now (the sum of the state lists) */
    size_t clients_in[CL_NSTATES];   /* sessions now by state (each list's length) */
    uint64_t clients_accepted;       /* since start */
    size_t buffer_budget, buffer_used, buffer_peak, buffer_waiting;   /* clientBufferBudget */
    uint64_t frame_timeouts;         /* sessions closed by frameTimeout */
    uint64_t write_stalls;           /* sessions closed by writeStallTimeout */
    bool shutting_down;
    uint64_t start_us;               /* now_us() at start */
};

/* What the status socket reads, and nothing more: the daemon gives this
 * read-only view at status_start (it must outlive the status server). */
struct status_view {
    struct event_base *base;
    int listen_backlog;
    size_t (*npools)(const void *arg);
    const struct pool *(*pool)(const void *arg, size_t i);
    void (*daemon_info)(const void *arg, struct status_daemon_info *out);
    void (*each_client)(const void *arg, session_info_fn fn, void *ctx);
    const void *arg;
    /* Reloads (daemon/reload.h): the record shown, and POST /reload's
     * action, which changes the daemon (admin, not arg). */
    const struct reload_state *(*reload_state)(const void *arg);
    const struct reload_outcome *(*reload)(void *admin);
    /* The running config (GET /config; adminUsers / adminGroups). */
    const struct config *(*config)(const void *arg);
    /* Admin actions (status_admin.c), on the daemon (admin): the running
     * pool of that name or NULL; end session id (sessions_kill's
     * result); a graceful shutdown, as on SIGTERM. */
    struct pool *(*find_pool)(void *admin, const char *name, size_t len);
    int (*kill_client)(void *admin, uint64_t id);
    void (*shutdown)(void *admin, const char *reason);
    void *admin;
};

/* Bind path with permission bits mode (replacing a stale socket file), or
 * take over passed_fd when >= 0 (socket activation: already listening,
 * never unlinked), and serve on view->base. NULL + message on error
 * (passed_fd is closed then). */
struct status_server *status_start(const struct status_view *view, const char *path,
                                   unsigned mode, int passed_fd, char *errbuf, size_t errlen);
/* The socket's path (for the log). */
const char *status_path(const struct status_server *s);
/* A descriptor was freed: if accepting paused on an error, resume now.
 * NULL (status socket disabled) is allowed. */
void status_fd_freed(struct status_server *s);
/* Stop serving, close the socket, and unlink it if status_start bound it. */
void status_stop(struct status_server *s);

#endif
