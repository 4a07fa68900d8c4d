/*
 * listener.c — binds the Unix socket files (client and status sockets) and
 * accepts client sessions with an evconnlistener on the daemon's loop.
 * Accepted sockets are handed to client_new(); above maxClients the new
 * session gets an error frame and is closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "client.h"
#include "daemon.h"
#include "listener.h"
#include "log.h"

struct listener {
    struct daemon *d;
    struct evconnlistener *evl;
    char *path;
};

static int fill_addr(struct sockaddr_un *sa, const char *path, char *errbuf, size_t errlen)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa->sun_path)) {
        snprintf(errbuf, errlen, "socket path %s is too long (max %zu bytes); choose a shorter path",
                 path, sizeof(sa->sun_path) - 1);
        return -1;
    }
    memcpy(sa->sun_path, path, strlen(path) + 1);
    return 0;
}

/* Is someone already accepting on path? */
static int socket_is_live(const struct sockaddr_un *sa)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    int live = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0;
    close(fd);
    return live;
}

/* Remove a stale socket file at path; refuse to touch anything else. */
static int clear_stale(const struct sockaddr_un *sa, const char *path, char *errbuf, size_t errlen)
{
    struct stat st;

    if (lstat(path, &st) != 0)
        return 0;
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(errbuf, errlen, "%s exists and is not a socket; remove it or choose another path", path);
        return -1;
    }
    if (socket_is_live(sa)) {
        snprintf(errbuf, errlen, "%s is in use by another process (is dbpoold already running?)", path);
        return -1;
    }
    if (unlink(path) != 0) {
        snprintf(errbuf, errlen, "cannot remove stale socket %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int unix_socket_listen(const char *path, unsigned mode, char *errbuf, size_t errlen)
{
    struct sockaddr_un sa;

    if (fill_addr(&sa, path, errbuf, errlen) < 0 || clear_stale(&sa, path, errbuf, errlen) < 0)
        return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(errbuf, errlen, "socket(): %s", strerror(errno));
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        snprintf(errbuf, errlen, "cannot bind %s: %s (does the directory exist and is it writable?)",
                 path, strerror(errno));
        close(fd);
        return -1;
    }
    if (chmod(sa.sun_path, mode) != 0 || listen(fd, 1024) != 0) {
        snprintf(errbuf, errlen, "cannot listen on %s: %s", sa.sun_path, strerror(errno));
        close(fd);
        unlink(sa.sun_path);
        return -1;
    }
    return fd;
}

static void on_accept(struct evconnlistener *evl, evutil_socket_t fd,
                      struct sockaddr *addr, int len, void *arg)
{
    struct listener *l = arg;

    client_accept(l->d, fd);
}

static void on_accept_error(struct evconnlistener *evl, void *arg)
{
    int err = EVUTIL_SOCKET_ERROR();

    /* EMFILE/ENFILE: out of descriptors; libevent retries on the next event. */
    log_error("accept_failed", "error=\"%s\" hint=\"raise LimitNOFILE or lower maxClients\"",
              strerror(err));
}

struct listener *listener_start(struct daemon *d, const char *path, unsigned mode,
                                char *errbuf, size_t errlen)
{
    int fd = unix_socket_listen(path, mode, errbuf, errlen);
    if (fd < 0)
        return NULL;
    struct listener *l = calloc(1, sizeof(*l));
    if (!l || !(l->path = strdup(path))) {
        free(l);
        close(fd);
        unlink(path);
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    l->d = d;
    l->evl = evconnlistener_new(d->base, on_accept, l, LEV_OPT_CLOSE_ON_FREE, -1, fd);
    if (!l->evl) {
        snprintf(errbuf, errlen, "cannot watch %s for connections", path);
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
    unlink(l->path);
    free(l->path);
    free(l);
}
