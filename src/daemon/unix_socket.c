/*
 * unix_socket.c — binds a listening Unix stream socket at a path safely: a
 * stale socket file (nobody accepting) is replaced, a live one or any other
 * kind of file is left alone and reported. Used for the client socket
 * (listener.c) and the status socket (status.c).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/unix_socket.h"

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

int unix_socket_listen(const char *path, unsigned mode, int backlog, char *errbuf, size_t errlen)
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
    if (chmod(sa.sun_path, mode) != 0 || listen(fd, backlog) != 0) {
        snprintf(errbuf, errlen, "cannot listen on %s: %s", sa.sun_path, strerror(errno));
        close(fd);
        unlink(sa.sun_path);
        return -1;
    }
    return fd;
}
