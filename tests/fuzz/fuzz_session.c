/*
 * fuzz_session.c — libFuzzer target: the client session state machine
 * (src/daemon/client.c, session.c and request.c with the pool, the SQLite
 * driver, sockbuf and proto.c underneath), fed arbitrary byte streams over a
 * socketpair against a real SQLite pool.
 *
 * Input layout:
 *   byte 0      control: bits 0-2 = k, the number of chunk-size bytes;
 *               bit 3 = close abruptly right after the last chunk (without
 *               waiting for the answers: the daemon must cancel, roll back
 *               and free a session that vanished mid-request);
 *               bit 4 = eager: send the next chunk as soon as the daemon
 *               has read the previous one, without waiting for its answers
 *               (frames arrive while a request runs: CANCEL, pipelining)
 *   bytes 1..k  chunk sizes (value + 1 bytes), used in turn
 *   the rest    the bytes the "client" writes, chunk by chunk
 *
 * Per input: socketpair; one end goes to client_accept() exactly as the
 * listener hands over an accepted socket; each chunk is written and the
 * event loop runs until the daemon has read it and (unless eager) answered
 * every request completed so far, or closed the session; after the last
 * chunk, until every request is answered; then the client end is closed
 * and the loop runs until the daemon has freed the session and its pool is
 * idle again (no client attached, active or waiting; no server busy).
 *
 * Checks (a failure aborts, which libFuzzer reports as a crash): every frame
 * the daemon sends decodes with libdbpool's decoders (ROW arity as COLUMNS
 * announced); the daemon never stalls (no answer, no byte read and no close
 * for STALL_MS); the session and its server are released afterwards; plus
 * everything ASan/UBSan/LeakSanitizer catch. With FUZZ_CHECK_FRAME_SIZE=1
 * every daemon frame must also fit the maxFrameSize announced in HELLO_OK.
 *
 * The daemon, the pool and the database persist across inputs (see
 * fuzz_daemon.h): a crash found after many inputs may need the inputs
 * before it; libFuzzer's -runs=1 reproduction usually suffices because
 * sessions are independent apart from database contents.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/sockios.h>

#include <event2/event.h>

#include "daemon/client.h"
#include "daemon/daemon.h"
#include "fuzz_daemon.h"
#include "daemon/pool.h"
#include "common/proto.h"

#define STALL_MS 5000          /* no progress for this long: the daemon hangs */
#define SLICE_MS 250           /* loop slice between progress checks */
#define RECYCLE_EVERY 4096     /* inputs between database size checks */

struct session {
    int fd;
    struct event *ev;
    uint32_t max_frame;        /* the daemon's, for parsing our own stream */
    /* what we wrote, and the requests in it */
    const uint8_t *data;
    size_t len, written, parsed;
    size_t upto;               /* end of the chunk being delivered */
    unsigned expected;         /* requests that must get a terminal answer */
    bool expect_close;         /* we sent something the daemon must close on */
    /* what the daemon sent */
    struct pbuf in;
    unsigned answers;          /* HELLO_OK, READY and ERROR frames */
    size_t ncols;              /* as announced by the last COLUMNS */
    uint32_t announced_max;    /* HELLO_OK's max_frame */
    uint64_t progress;         /* bumped on every byte read from the daemon */
    bool eof;
};

static bool check_frame_size;

/* ------------------------------------------------------- our requests */

static bool is_request(uint8_t t)
{
    return t == PT_HELLO || t == PT_QUERY || t == PT_BATCH || t == PT_BEGIN ||
           t == PT_COMMIT || t == PT_ROLLBACK || t == PT_PING || t == PT_PIN || t == PT_UNPIN;
}

/* Count the requests completed in what we wrote so far. */
static void parse_written(struct session *s)
{
    while (!s->expect_close) {
        uint8_t type;
        uint32_t plen;
        int h = proto_peek_header(s->data + s->parsed, s->written - s->parsed, s->max_frame,
                                  &type, &plen);
        if (h < 0 || (h > 0 && !is_request(type) && type != PT_CANCEL && type != PT_TERMINATE)) {
            s->expect_close = true;   /* bad length or unknown type: rejected on the header */
            return;
        }
        if (h == 0 || s->written - s->parsed < PROTO_HEADER_SIZE + (size_t)plen)
            return;
        s->parsed += PROTO_HEADER_SIZE + (size_t)plen;
        if (type == PT_TERMINATE)
            s->expect_close = true;
        else if (is_request(type))
            s->expected++;
    }
}

static void write_some(struct session *s, size_t upto)
{
    while (s->written < upto && !s->eof) {
        ssize_t n = write(s->fd, s->data + s->written, upto - s->written);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;   /* full (the loop retries) or the daemon closed (EPIPE) */
        s->written += (size_t)n;
    }
    parse_written(s);
}

/* ------------------------------------------------------- daemon output */

static void check_frame(struct session *s, uint8_t type, const uint8_t *p, size_t n)
{
    struct proto_hello_ok ho;
    struct proto_column *cols;
    struct proto_error er;
    dbpool_value *vals;
    int64_t a, b;
    char tx;
    bool ok;

    if (check_frame_size && s->announced_max && n + 1 > s->announced_max)
        fuzz_fail("daemon sent a %c frame of %zu bytes, above the announced maxFrameSize %u",
                  type, n + 1, s->announced_max);
    switch (type) {
    case PT_HELLO_OK:
        ok = proto_get_hello_ok(p, n, &ho);
        s->announced_max = ok ? ho.max_frame : 0;
        s->answers++;
        break;
    case PT_COLUMNS:
        ok = proto_get_columns(p, n, &cols, &s->ncols);
        free(cols);
        break;
    case PT_ROW:
        vals = calloc(s->ncols + 1, sizeof(*vals));
        ok = vals && proto_get_row(p, n, s->ncols, vals);
        free(vals);
        break;
    case PT_STMT_DONE: ok = proto_get_stmt_done(p, n, &a, &b); break;
    case PT_READY: ok = proto_get_ready(p, n, &tx); s->answers++; break;
    case PT_ERROR: ok = proto_get_error(p, n, &er); s->answers++; break;
    default: ok = false; break;
    }
    if (!ok)
        fuzz_fail("daemon sent a malformed %s frame (type 0x%02x, %zu payload bytes)",
                  proto_type_name(type), type, n);
}

static void parse_output(struct session *s)
{
    size_t off = 0;

    for (;;) {
        uint8_t type;
        uint32_t plen;
        int h = proto_peek_header(s->in.data + off, s->in.len - off, UINT32_MAX, &type, &plen);
        if (h < 0)
            fuzz_fail("daemon sent a frame with length 0");
        if (h == 0 || s->in.len - off < PROTO_HEADER_SIZE + (size_t)plen)
            break;
        check_frame(s, type, s->in.data + off + PROTO_HEADER_SIZE, plen);
        off += PROTO_HEADER_SIZE + (size_t)plen;
    }
    memmove(s->in.data, s->in.data + off, s->in.len - off);
    s->in.len -= off;
}

static void on_output(evutil_socket_t fd, short what, void *arg)
{
    struct session *s = arg;
    uint8_t buf[16384];

    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            s->eof = true;
            event_del(s->ev);
            break;
        }
        s->progress += (uint64_t)n;
        pbuf_put_bytes(&s->in, buf, (size_t)n);
        if (s->in.oom)
            fuzz_fail("out of memory buffering the daemon's output");
    }
    parse_output(s);
}

/* ------------------------------------------------------- waiting */

static int unread_by_daemon(const struct session *s)
{
    int q = 0;

    if (s->eof || ioctl(s->fd, SIOCOUTQ, &q) != 0)
        return 0;
    return q;
}

/* The daemon read the whole chunk, or closed the session. */
static bool chunk_read(void *arg)
{
    struct session *s = arg;

    return s->eof || (s->written >= s->upto && unread_by_daemon(s) == 0);
}

/* ... and answered every complete request so far. */
static bool settled(void *arg)
{
    struct session *s = arg;

    return s->eof || (chunk_read(s) && !s->expect_close && s->answers >= s->expected);
}

static bool daemon_idle(void *arg)
{
    struct daemon *d = arg;
    struct pool_stats st;

    if (daemon_nclients(d) != 0)
        return false;
    pool_get_stats(d->pools[0], &st);
    return st.clients_connected == 0 && st.clients_active == 0 && st.clients_waiting == 0 &&
           st.clients_pinned == 0 && st.servers_busy == 0;
}

/* Runs the loop until done(arg), failing when nothing moves for STALL_MS,
 * and keeps writing the current chunk meanwhile. */
static void await(struct session *s, bool (*done)(void *), void *arg, const char *what)
{
    unsigned stalled_ms = 0;

    while (stalled_ms < STALL_MS) {
        uint64_t before = s->progress + s->written;
        int unread = unread_by_daemon(s);

        write_some(s, s->upto);
        if (fuzz_loop_until(done, arg, SLICE_MS))
            return;
        bool moved = s->progress + s->written != before || unread_by_daemon(s) != unread;
        stalled_ms = moved ? 0 : stalled_ms + SLICE_MS;
    }
    fuzz_fail("the daemon stalled for %d ms %s (wrote %zu of %zu bytes, %u of %u answers, "
              "%s, eof=%d)", STALL_MS, what, s->written, s->len, s->answers, s->expected,
              s->expect_close ? "close expected" : "no close expected", s->eof);
}

/* ------------------------------------------------------- one input */

static void run_session(struct daemon *d, struct session *s, const uint8_t *sizes, size_t k,
                        uint8_t control)
{
    bool abrupt = (control & 8u) != 0, eager = (control & 16u) != 0;
    size_t i = 0;

    while (s->written < s->len && !s->eof) {
        size_t chunk = k ? (size_t)sizes[i++ % k] + 1 : s->len;
        s->upto = s->written + chunk < s->len ? s->written + chunk : s->len;
        write_some(s, s->upto);
        if (s->upto == s->len && abrupt)
            break;
        await(s, eager ? chunk_read : settled, s, "answering a chunk");
    }
    if (!abrupt)
        await(s, settled, s, "answering the last request");
    event_del(s->ev);
    close(s->fd);
    s->eof = true;
    await(s, daemon_idle, d, "freeing a closed session");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct daemon *d = fuzz_daemon_get();
    struct session s;
    int sv[2];

    if (size < 1)
        return 0;
    size_t k = data[0] & 7u;
    if (size < 1 + k)
        return 0;
    if (!d->sessions.total_accepted) {
        const char *e = getenv("FUZZ_CHECK_FRAME_SIZE");
        check_frame_size = e && atoi(e) != 0;
    }
    memset(&s, 0, sizeof(s));
    pbuf_init(&s.in);
    s.data = data + 1 + k;
    s.len = size - 1 - k;
    s.max_frame = d->cfg->daemon.max_frame_size;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
        fuzz_fail("socketpair: %s", strerror(errno));
    s.fd = sv[1];
    s.ev = event_new(d->base, s.fd, EV_READ | EV_PERSIST, on_output, &s);
    if (!s.ev || event_add(s.ev, NULL) != 0)
        fuzz_fail("cannot watch the client socket");
    client_accept(&d->sessions, sv[0]);
    if (daemon_nclients(d) != 1)
        fuzz_fail("client_accept did not start a session");
    run_session(d, &s, data + 1, k, data[0]);
    event_free(s.ev);
    pbuf_free(&s.in);
    fuzz_daemon_recycle(RECYCLE_EVERY);
    return 0;
}
