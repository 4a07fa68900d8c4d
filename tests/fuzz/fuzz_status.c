/*
 * fuzz_status.c — libFuzzer target: the status socket's HTTP handling
 * (src/daemon/status.c: request routing, method checks, the endpoints' JSON and
 * Prometheus rendering, error replies that echo the request path) behind
 * libevent's evhttp, exactly as served by the daemon.
 *
 * The input is the raw bytes a client sends. Per input: connect to the
 * daemon's status socket (see fuzz_daemon.h), write the input, shut down
 * the write side, and run the loop until evhttp closes the connection
 * (failing if nothing happens for STALL_MS). Checks: every response starts
 * with an HTTP status line, and every complete body sent as
 * application/json is valid JSON (strict UTF-8: a request path with
 * arbitrary bytes is echoed in the 404 message); plus ASan/UBSan/LSan.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "daemon/daemon.h"
#include "fuzz_daemon.h"
#include "json_check.h"
#include "common/proto.h"

#define STALL_MS 5000
#define SLICE_MS 250

struct conn {
    int fd;
    struct event *ev;
    struct pbuf in;
    uint64_t progress;
    bool eof;
};

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    char buf[16384];

    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            c->eof = true;
            event_del(c->ev);
            return;
        }
        c->progress += (uint64_t)n;
        pbuf_put_bytes(&c->in, buf, (size_t)n);
        if (c->in.oom)
            fuzz_fail("out of memory buffering the status reply");
    }
}

static bool closed(void *arg)
{
    return ((struct conn *)arg)->eof;
}

static int connect_status(void)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", fuzz_daemon_status_path());
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        fuzz_fail("cannot connect to the status socket: %s", strerror(errno));
    return fd;
}

/* Writes everything (the socket buffer is far larger than any input, but
 * run the loop if it ever fills). */
static void send_all(struct conn *c, const uint8_t *p, size_t n)
{
    size_t off = 0;

    while (off < n) {
        ssize_t w = write(c->fd, p + off, n - off);
        if (w > 0) {
            off += (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            fuzz_loop_until(closed, c, 10);
        } else {
            return;   /* evhttp closed already (e.g. headers too large) */
        }
        if (c->eof)
            return;
    }
}

/* ------------------------------------------------------------ replies */

/* Value of header name in the header block h[0..n), or NULL. */
static const char *header(const char *h, size_t n, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    const char *p = h, *end = h + n;

    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = eol ? eol : end;
        if ((size_t)(le - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (v < le && *v == ' ')
                v++;
            *vlen = (size_t)(le - v) - (le > v && le[-1] == '\r');
            return v;
        }
        p = le + 1;
    }
    return NULL;
}

/* evhttp echoes the request's version as it parsed it with "%d.%d"
 * ("HTTP/1.-1", "HTTP/0.1"): only the "HTTP/" prefix is ours to check. */
static bool status_line(const char *p, size_t n)
{
    return n >= 5 && memcmp(p, "HTTP/", 5) == 0 && memchr(p, '\n', n);
}

/* Checks one reply at p; returns its length, or 0 when the rest cannot be
 * told apart (an incomplete reply, or HEAD replies without their body). */
static size_t check_reply(const char *p, size_t n)
{
    size_t vlen;

    if (!status_line(p, n))
        fuzz_fail("the status socket sent something that is not an HTTP reply: %.40s", p);
    const char *eoh = memmem(p, n, "\r\n\r\n", 4);
    if (!eoh)
        return 0;
    size_t hlen = (size_t)(eoh - p) + 4;
    const char *cl = header(p, hlen, "Content-Length", &vlen);
    if (!cl)
        return 0;
    size_t blen = (size_t)strtoul(cl, NULL, 10);
    const char *body = p + hlen;
    if (n - hlen < blen || (blen > 0 && n - hlen >= 7 && memcmp(body, "HTTP/1.", 7) == 0))
        return 0;   /* incomplete, or a HEAD reply (no body follows) */
    const char *ct = header(p, hlen, "Content-Type", &vlen);
    if (ct && vlen >= 16 && strncmp(ct, "application/json", 16) == 0 && !json_check(body, blen))
        fuzz_fail("the status socket sent invalid JSON: %.*s", (int)(blen > 300 ? 300 : blen), body);
    return hlen + blen;
}

static void check_replies(const struct pbuf *in)
{
    size_t off = 0, len;

    while (off < in->len && (len = check_reply((const char *)in->data + off, in->len - off)))
        off += len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct daemon *d = fuzz_daemon_get();
    struct conn c = { .fd = connect_status() };
    unsigned stalled_ms = 0;

    pbuf_init(&c.in);
    c.ev = event_new(d->base, c.fd, EV_READ | EV_PERSIST, on_readable, &c);
    if (!c.ev || event_add(c.ev, NULL) != 0)
        fuzz_fail("cannot watch the status connection");
    send_all(&c, data, size);
    shutdown(c.fd, SHUT_WR);
    while (!fuzz_loop_until(closed, &c, SLICE_MS)) {
        stalled_ms = c.progress ? 0 : stalled_ms + SLICE_MS;
        c.progress = 0;
        if (stalled_ms >= STALL_MS)
            fuzz_fail("the status socket neither answered nor closed for %d ms", STALL_MS);
    }
    check_replies(&c.in);
    event_free(c.ev);
    close(c.fd);
    pbuf_free(&c.in);
    return 0;
}
