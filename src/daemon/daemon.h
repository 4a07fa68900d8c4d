/*
 * daemon.h — the daemon object: the one event loop, the running config, the
 * pools, the client sessions, the listeners, and the shutdown sequence.
 *
 * main.c parses the command line and config, then daemon_new / daemon_run /
 * daemon_free. Every other object reaches shared state through the struct
 * daemon pointer it was given (no globals).
 */
#ifndef DBPOOLD_DAEMON_H
#define DBPOOLD_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "daemon/configuration.h"
#include "daemon/reload.h"
#include "daemon/session.h"
#include "daemon/status.h"

struct event_base;
struct event;
struct pool;
struct listener;
struct status_server;
struct service;

struct daemon {
    struct event_base *base;
    struct config *cfg;              /* the running config (owned) */
    struct pool **pools;             /* one per cfg->pools[i], same order (owned) */
    size_t npools;
    struct sessions sessions;        /* every client session, by state (owned) */
    uint64_t start_us;
    struct listener *listener;       /* client socket */
    struct status_view status_view;  /* what the status socket reads */
    struct status_server *status;    /* status socket (NULL when disabled) */
    struct service *service;         /* notifications to systemd (sd_service.h) */
    struct event *sigterm, *sigint, *sighup, *shutdown_timer;
    struct reload_state reload;      /* last reload, removed pools, old configs (reload.c) */
    int exit_code;
};

/* Build everything from cfg (takes ownership of cfg). NULL + message on error. */
struct daemon *daemon_new(struct config *cfg, char *errbuf, size_t errlen);
/* Run the loop until shutdown completes; returns the exit code. */
int daemon_run(struct daemon *d);
void daemon_free(struct daemon *d);

/* Begin a graceful shutdown (stop accepting, drain, exit). */
void daemon_shutdown(struct daemon *d, const char *reason);
/* A client ended (its descriptor is free): paused listeners retry; when
 * shutting down and none are left, stop the loop. */
void daemon_client_gone(struct daemon *d);

/* Reload the configuration now (reload.h); the outcome stays valid until
 * the next reload. */
const struct reload_outcome *daemon_reload(struct daemon *d);
/* The running pool of that name (not a removed one), or NULL. */
struct pool *daemon_find_pool(const struct daemon *d, const char *name, size_t len);
/* Client sessions connected now. */
size_t daemon_nclients(const struct daemon *d);

#endif
