/*
 * http.c — the HTTP/1.1 client of dbpoolctl (contract: http.h): connect
 * to the status socket, write the request, read until the daemon closes
 * (Connection: close), then split status line, headers and body
 * (Content-Length when given). Every step is bounded by the deadline.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl/http.h"

#define MAX_REPLY (64u << 20)   /* a daemon with very many clients: /clients is large */

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int connect_to(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "status socket path too long: %s", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
        return fd;
    if (errno == ENOENT || errno == ECONNREFUSED)
        snprintf(err, errlen, "cannot connect to %s: %s (is dbpoold running? is this its "
                 "statusSocket? give the path with -s or DBPOOL_STATUS_SOCKET)", path,
                 strerror(errno));
    else if (errno == EACCES || errno == EPERM)
        snprintf(err, errlen, "cannot connect to %s: %s (the socket's mode, statusSocketMode, "
                 "does not admit you: run as a member of dbpoold's group, or as root)", path,
                 strerror(errno));
    else
        snprintf(err, errlen, "cannot connect to %s: %s", path, strerror(errno));
    close(fd);
    return -1;
}

/* Wait until fd is ready for events or the deadline passes. */
static int wait_fd(int fd, short events, long long deadline)
{
    struct pollfd p = { fd, events, 0 };
    long long left = deadline - now_ms();

    if (left <= 0)
        return 0;
    return poll(&p, 1, (int)left);
}

static int send_all(int fd, const char *buf, size_t n, long long deadline)
{
    while (n > 0) {
        ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        buf += w;
        n -= (size_t)w;
        (void)deadline;
    }
    return 0;
}

/* Read until EOF into a malloc'ed buffer; -1 on error or timeout. */
static int read_all(int fd, long long deadline, char **out, size_t *len)
{
    size_t cap = 8192, n = 0;
    char *buf = malloc(cap);

    while (buf) {
        if (n + 1 >= cap) {
            char *grown = cap >= MAX_REPLY ? NULL : realloc(buf, cap * 2);
            if (!grown)
                break;
            buf = grown;
            cap *= 2;
        }
        if (wait_fd(fd, POLLIN, deadline) <= 0)
            break;
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            break;
        if (r == 0) {
            buf[n] = '\0';
            *out = buf;
            *len = n;
            return 0;
        }
        n += (size_t)r;
    }
    free(buf);
    return -1;
}

/* The value of header name (lower case, with the colon) in the header
 * block hdrs, or NULL. */
static const char *find_header(const char *hdrs, const char *name)
{
    size_t n = strlen(name);

    for (const char *line = strstr(hdrs, "\r\n"); line; line = strstr(line + 2, "\r\n"))
        if (strncasecmp(line + 2, name, n) == 0)
            return line + 2 + n;
    return NULL;
}

/* Status line, headers, body of raw (len bytes); moves the body into out. */
static int parse_reply(char *raw, size_t len, struct http_reply *out)
{
    char *hdr_end = strstr(raw, "\r\n\r\n");
    const char *cl;
    int status;

    if (!hdr_end || sscanf(raw, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    *hdr_end = '\0';
    char *body = hdr_end + 4;
    size_t blen = len - (size_t)(body - raw);
    if ((cl = find_header(raw, "content-length:"))) {
        size_t want = strtoul(cl, NULL, 10);
        if (want < blen)
            blen = want;
    }
    memmove(raw, body, blen);
    raw[blen] = '\0';
    out->status = status;
    out->body = raw;
    out->len = blen;
    return 0;
}

int http_request(const char *socket_path, const char *method, const char *path, int timeout_ms,
                 struct http_reply *out, char *err, size_t errlen)
{
    long long deadline = now_ms() + timeout_ms;
    char req[1024], *raw = NULL;
    size_t len = 0;
    int fd = connect_to(socket_path, err, errlen);

    memset(out, 0, sizeof(*out));
    if (fd < 0)
        return -1;
    int n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: "
                     "dbpoolctl\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", method, path);
    if (n < 0 || (size_t)n >= sizeof(req) || send_all(fd, req, (size_t)n, deadline) != 0 ||
        read_all(fd, deadline, &raw, &len) != 0) {
        snprintf(err, errlen, "no answer from dbpoold on %s within %d ms (is the daemon stuck? "
                 "check its log)", socket_path, timeout_ms);
        close(fd);
        return -1;
    }
    close(fd);
    if (parse_reply(raw, len, out) != 0) {
        free(raw);
        snprintf(err, errlen, "%s does not answer like dbpoold's status socket (is it the client "
                 "socket? use the statusSocket path)", socket_path);
        return -1;
    }
    return 0;
}

void http_reply_free(struct http_reply *r)
{
    free(r->body);
    r->body = NULL;
}
