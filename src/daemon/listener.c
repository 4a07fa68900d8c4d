/*
 * listener.c — accepts client connections on the client socket with an
 * evconnlistener on the daemon's loop (the socket file is bound by
 * unix_socket.c). Accepted sockets are handed to the owner's accept
 * callback (daemon.c makes each a client session); the listener knows
 * nothing of sessions, so no file depends back on it.
 *
 * When accept() fails for want of a resource (out of descriptors: EMFILE,
 * ENFILE; out of socket memory: ENOBUFS, ENOMEM) the pending connection
 * stays in the backlog and the socket stays readable, so retrying at once
 * would spin. Instead the listener pauses: it stops watching the socket
 * and resumes when a client session ends (listener_fd_freed) or after
 * ACCEPT_RETRY_MS, whichever comes first. The state is the `state` field:
 *
 *   ACCEPTING --accept fails--> PAUSED --fd freed / timer--> PROBATION
 *   PROBATION --accept fails--> PAUSED (same episode, nothing logged)
 *   PROBATION --a retry interval without failure--> ACCEPTING
 *
 * so an episode logs two lines (accept_paused, accept_resumed) however long
 * it lasts and however often clients come and go during it.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "daemon/clock.h"
#include "daemon/listener.h"
#include "daemon/log.h"
#include "daemon/unix_socket.h"

#define ACCEPT_RETRY_MS 1000

enum accept_state {
    ACCEPTING,      /* normal */
    PAUSED,         /* accept failed: the socket is not watched */
    PROBATION,      /* watched again; the episode ends after a quiet interval */
};

struct listener {
    struct listener_owner owner;
    struct evconnlistener *evl;
    struct event *retry;            /* PAUSED: resume; PROBATION: end the episode */
    enum accept_state state;
    int last_error;                 /* errno of the latest failed accept */
    uint64_t failures;              /* failed accepts in this episode */
    uint64_t paused_since_us;
    char *path;
    bool bound;                     /* bound here (not passed): unlink on free */
};

static void on_accept(struct evconnlistener *evl, evutil_socket_t fd,
                      struct sockaddr *addr, int len, void *arg)
{
    struct listener *l = arg;

    l->owner.accept(l->owner.arg, fd);
}

/* What the operator can do about a failed accept(). */
static const char *accept_hint(int err)
{
    switch (err) {
    case EMFILE:
        return "dbpoold is out of file descriptors: raise LimitNOFILE (systemd) or ulimit -n, "
               "or lower maxClients or the pools' maxOpenConns";
    case ENFILE:
        return "the system is out of file descriptors: raise fs.file-max or find the process "
               "holding them";
    case ENOBUFS:
    case ENOMEM:
        return "the kernel is out of memory for sockets: free memory";
    default:
        return "accept() failed; retrying every second";
    }
}

static void arm_retry(struct listener *l)
{
    struct timeval tv = { ACCEPT_RETRY_MS / 1000, (ACCEPT_RETRY_MS % 1000) * 1000 };
    char q[300];

    if (evtimer_add(l->retry, &tv) != 0)
        log_error("accept_timer_failed", "socket=%s hint=\"cannot schedule the accept retry; "
                  "accepting resumes when a client session ends\"",
                  log_quote(q, sizeof(q), l->path, strlen(l->path)));
}

static void pause_accepting(struct listener *l, int err)
{
    struct rlimit rl;
    char q[300];

    evconnlistener_disable(l->evl);
    l->failures++;
    l->last_error = err;
    if (l->state == ACCEPTING) {
        l->paused_since_us = now_us();
        if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
            rl.rlim_cur = 0;
        log_warn("accept_paused", "socket=%s error=\"%s\" clients=%zu nofile_limit=%llu "
                 "retry_ms=%d hint=\"%s\"", log_quote(q, sizeof(q), l->path, strlen(l->path)),
                 strerror(err), l->owner.sessions(l->owner.arg), (unsigned long long)rl.rlim_cur, ACCEPT_RETRY_MS,
                 accept_hint(err));
    }
    l->state = PAUSED;
    arm_retry(l);
}

static void resume_accepting(struct listener *l)
{
    char q[300];

    l->state = PROBATION;
    if (evconnlistener_enable(l->evl) != 0)
        log_error("accept_resume_failed", "socket=%s hint=\"cannot watch the socket again; "
                  "restart dbpoold\"", log_quote(q, sizeof(q), l->path, strlen(l->path)));
    arm_retry(l);
}

static void end_episode(struct listener *l)
{
    char q[300];

    log_info("accept_resumed", "socket=%s paused_ms=%llu failed_accepts=%llu last_error=\"%s\" "
             "clients=%zu", log_quote(q, sizeof(q), l->path, strlen(l->path)),
             (unsigned long long)((now_us() - l->paused_since_us) / 1000),
             (unsigned long long)l->failures, strerror(l->last_error), l->owner.sessions(l->owner.arg));
    l->state = ACCEPTING;
    l->failures = 0;
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    struct listener *l = arg;

    if (l->state == PAUSED)
        resume_accepting(l);
    else if (l->state == PROBATION)
        end_episode(l);
}

/* libevent calls this for errors other than EAGAIN/EINTR/ECONNABORTED; the
 * socket stays readable, so every such error pauses accepting. */
static void on_accept_error(struct evconnlistener *evl, void *arg)
{
    pause_accepting(arg, EVUTIL_SOCKET_ERROR());
}

void listener_fd_freed(struct listener *l)
{
    if (l && l->state == PAUSED)
        resume_accepting(l);
}

struct listener *listener_start(struct event_base *base, const char *path, unsigned mode,
                                int backlog, int passed_fd, const struct listener_owner *owner,
                                char *errbuf, size_t errlen)
{
    int fd = passed_fd >= 0 ? passed_fd : unix_socket_listen(path, mode, backlog, errbuf, errlen);
    if (fd < 0)
        return NULL;
    struct listener *l = calloc(1, sizeof(*l));
    if (!l || !(l->path = strdup(path))) {
        free(l);
        close(fd);
        if (passed_fd < 0)
            unlink(path);
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    l->owner = *owner;
    l->bound = passed_fd < 0;
    l->retry = evtimer_new(base, on_retry, l);
    /* Backlog 0: listen() was called above (libevent's -1 means 128). */
    l->evl = evconnlistener_new(base, on_accept, l, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
                                0, fd);
    if (!l->evl || !l->retry) {
        snprintf(errbuf, errlen, "cannot watch %s for connections", path);
        if (!l->evl)
            close(fd);
        listener_free(l);
        return NULL;
    }
    evconnlistener_set_error_cb(l->evl, on_accept_error);
    return l;
}

void listener_free(struct listener *l)
{
    if (!l)
        return;
    if (l->evl)
        evconnlistener_free(l->evl);
    if (l->retry)
        event_free(l->retry);
    if (l->bound)
        unlink(l->path);
    free(l->path);
    free(l);
}

const char *listener_path(const struct listener *l)
{
    return l->path;
}
