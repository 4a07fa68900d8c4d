/*
 * sd_service.h — dbpoold as a systemd service (sd_service.c): the
 * notifications to the service manager (READY, STATUS, RELOADING,
 * STOPPING, WATCHDOG), the listening sockets it passes (socket
 * activation), and whether stderr is the journal.
 *
 * With libsystemd (configure --with-libsystemd, the default when found)
 * the manager is reached through sd_notify, sd_watchdog_enabled and
 * sd_listen_fds_with_names; without it sd_service.c speaks the same
 * documented protocols itself, and either build behaves the same. Without
 * $NOTIFY_SOCKET, $LISTEN_FDS or $JOURNAL_STREAM every function here does
 * nothing and dbpoold behaves as it always did.
 */
#ifndef DBPOOLD_SD_SERVICE_H
#define DBPOOLD_SD_SERVICE_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct service;

/* ---- socket activation ---- */

/* A listening socket passed by the service manager (fd -1: none). */
struct service_socket {
    int fd;
    char path[110];                  /* its address, for the log ("@name": abstract) */
};

/* The sockets by name: FileDescriptorName=client and FileDescriptorName=status. */
struct service_sockets {
    struct service_socket client, status;
};

/* Take the sockets passed with LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES (when
 * LISTEN_PID is this process; one name for each socket, or none) and unset
 * those variables. Each must be a
 * listening AF_UNIX stream socket; it is made non-blocking and
 * close-on-exec. A single socket of another name is the client socket.
 * Returns 0 (out->*.fd -1 where nothing was passed), or -1 with a message
 * saying what to change. */
int service_take_sockets(struct service_sockets *out, char *errbuf, size_t errlen);
/* The path the daemon serves for one socket: the passed one if any (and a
 * log line when it differs from configured, key naming the setting), else
 * configured. */
const char *service_socket_path(const struct service_socket *passed, const char *configured,
                                const char *key);
/* Close what was passed and not handed on (fd >= 0), and mark it gone. */
void service_close_socket(struct service_socket *s);

/* ---- the journal ---- */

/* stderr is the journal's stream ($JOURNAL_STREAM names its device:inode). */
bool service_stderr_is_journal(void);

/* ---- notifications ---- */

/* What the STATUS= line says, read once a second by the service's timer. */
struct service_figures {
    size_t clients, pools, unhealthy;
    bool stopping;
};

/* The daemon's read-only view for the STATUS= line (copied by service_new). */
struct service_view {
    void (*figures)(const void *arg, struct service_figures *out);
    const void *arg;
};

/* Read $NOTIFY_SOCKET and $WATCHDOG_USEC/$WATCHDOG_PID. Without a notify
 * socket the object exists and every notification is a no-op. NULL (with a
 * message) only when out of memory. */
struct service *service_new(struct event_base *base, const struct service_view *view,
                            char *errbuf, size_t errlen);
/* READY=1 with the current STATUS=; starts the watchdog pings (every half
 * of WATCHDOG_USEC) and the STATUS= updates (when the figures change, at
 * most once a second). Also ends a reload begun by service_notify_reloading. */
void service_notify_ready(struct service *s);
/* RELOADING=1 with MONOTONIC_USEC= (what Type=notify-reload expects);
 * service_notify_ready() when the reload is done, applied or not. */
void service_notify_reloading(struct service *s);
/* STOPPING=1: the graceful shutdown (drain) has begun. No READY=1 or
 * RELOADING=1 is sent after it. */
void service_notify_stopping(struct service *s);
/* Stop the timers and close the notify socket. NULL is allowed. */
void service_free(struct service *s);

#endif
