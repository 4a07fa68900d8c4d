/*
 * async_connect.c — libdbpool's non-blocking connect (include/dbpool.h,
 * "Non-blocking use"): dbpool_connect_start opens a non-blocking socket and
 * queues HELLO; dbpool_connect_poll advances the handshake as far as the
 * socket allows and says what to wait for, like libpq's PQconnectPoll.
 *
 *   PHASE_CONNECTING  connect(2) done by connect_start; its failure (a
 *                     missing socket, a refused connection) is reported
 *                     by the first connect_poll, so every failure reaches
 *                     the event loop the same way
 *   PHASE_HELLO       HELLO written (WRITING while the socket is full),
 *                     HELLO_OK read (READING until it is whole)
 *   PHASE_READY       connected: requests may be sent
 *   PHASE_FAILED      c->err says why; the socket is closed
 *
 * The connect timeout is a deadline set by connect_start and checked by
 * every connect_poll; dbpool_poll_timeout tells the loop how long it may
 * wait. A Unix socket's connect(2) completes at once or fails: EAGAIN (the
 * daemon's accept queue is full) fails the connect, since a non-blocking
 * socket cannot wait for room in that queue.
 * The overview of the library is at the top of src/lib/connect.c.
 */
#include "lib/internal.h"

#include <fcntl.h>

/* Creates the non-blocking socket and connects it. A failure is recorded
 * in c->err for the first connect_poll (the phase is then FAILED). */
static void start_socket(dbpool_conn *c, const char *path)
{
    struct sockaddr_un sa;
    int fd;

    c->phase = PHASE_FAILED;
    if (lib_unix_address(c, path, &sa) < 0)
        return;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        lib_fail(c, DBPOOL_E_IO, "cannot create a socket: %s", strerror(errno));
        return;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS &&
        errno != EINTR) {
        int e = errno;
        close(fd);
        lib_fail(c, DBPOOL_E_IO, "cannot connect to %s: %s%s", path, strerror(e),
                 lib_connect_hint(e));
        return;
    }
    c->fd = fd;
    c->phase = PHASE_CONNECTING;
}

/* Ownership: the returned connection belongs to the caller (dbpool_close). */
dbpool_conn *dbpool_connect_start_opts(const char *socket_path, const char *pool,
                                       const char *client_name, const dbpool_options *opts,
                                       dbpool_error *err)
{
    dbpool_error local;
    dbpool_conn *c;

    if (err == NULL)
        err = &local;
    c = lib_conn_prepare(&socket_path, pool, opts, err);
    if (c == NULL)
        return NULL;
    lib_arm_deadline(c, c->connect_timeout);
    start_socket(c, socket_path);
    proto_put_hello(&c->out, PROTO_VERSION, pool, client_name != NULL ? client_name : "");
    if (c->out.oom) {
        lib_set_error(err, DBPOOL_E_USAGE, "cannot encode HELLO: out of memory or a name too long");
        lib_conn_free(c);
        return NULL;
    }
    c->out_sent = 0;
    c->req_type = PT_HELLO;
    return c;
}

dbpool_conn *dbpool_connect_start(const char *socket_path, const char *pool,
                                  const char *client_name, dbpool_error *err)
{
    return dbpool_connect_start_opts(socket_path, pool, client_name, NULL, err);
}

static dbpool_poll_status connect_failed(dbpool_conn *c)
{
    lib_drop_connection(c);
    c->phase = PHASE_FAILED;
    c->deadline = 0;
    pbuf_reset(&c->out);
    c->out_sent = 0;
    return DBPOOL_POLL_FAILED;
}

/* The answer to HELLO, when it is whole: OK, FAILED, or READING. */
static dbpool_poll_status take_hello_answer(dbpool_conn *c)
{
    uint8_t type;
    const uint8_t *p;
    size_t n;
    int t = lib_take_frame(c, &type, &p, &n);

    if (t < 0)
        return connect_failed(c);
    if (t == 0)
        return lib_make_room(c, PROTO_HEADER_SIZE + n) < 0 ? connect_failed(c) : DBPOOL_POLL_READING;
    if (type == PT_ERROR) {
        lib_take_error(c, p, n);        /* the daemon closes after a handshake error */
        return connect_failed(c);
    }
    if (type != PT_HELLO_OK) {
        lib_unexpected_frame(c, type);
        return connect_failed(c);
    }
    if (lib_decode_hello_ok(c, p, n) < 0)
        return connect_failed(c);
    c->phase = PHASE_READY;
    c->deadline = 0;
    c->connect_path = NULL;
    return DBPOOL_POLL_OK;
}

/* Reads what the socket has of the answer to HELLO. */
static dbpool_poll_status read_hello_answer(dbpool_conn *c)
{
    for (;;) {
        dbpool_poll_status st = take_hello_answer(c);
        if (st != DBPOOL_POLL_READING)
            return st;
        ssize_t r = recv(c->fd, c->rbuf + c->rend, c->rcap - c->rend, MSG_DONTWAIT);
        if (r > 0) {
            c->rend += (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return DBPOOL_POLL_READING;
        if (r == 0)
            lib_fail(c, DBPOOL_E_IO, "dbpoold closed the connection during the handshake (was it "
                     "stopped or restarted? reconnect)");
        else
            lib_fail(c, DBPOOL_E_IO, "cannot read from dbpoold during the handshake: %s",
                     strerror(errno));
        return connect_failed(c);
    }
}

dbpool_poll_status dbpool_connect_poll(dbpool_conn *c)
{
    if (c == NULL)
        return DBPOOL_POLL_FAILED;
    if (c->phase == PHASE_READY)
        return c->fd >= 0 ? DBPOOL_POLL_OK : DBPOOL_POLL_FAILED;
    if (c->phase == PHASE_FAILED)
        return DBPOOL_POLL_FAILED;
    if (c->deadline != 0 && lib_poll_ms(c->deadline) == 0) {
        lib_connect_timed_out(c, c->phase == PHASE_HELLO);
        return connect_failed(c);
    }
    c->phase = PHASE_HELLO;
    int w = lib_async_write(c);
    if (w > 0)
        return DBPOOL_POLL_WRITING;
    if (w < 0 && errno != EPIPE && errno != ECONNRESET) {
        lib_fail(c, DBPOOL_E_IO, "cannot send HELLO to dbpoold: %s", strerror(errno));
        return connect_failed(c);
    }
    return read_hello_answer(c);        /* after EPIPE: the daemon's ERROR, or EOF */
}

int dbpool_socket(const dbpool_conn *c)
{
    return c != NULL ? c->fd : -1;
}

int dbpool_poll_timeout(const dbpool_conn *c)
{
    if (c == NULL || (c->phase != PHASE_CONNECTING && c->phase != PHASE_HELLO))
        return -1;
    return lib_poll_ms(c->deadline);
}
