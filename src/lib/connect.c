/*
 * connect.c — libdbpool, the blocking C client for dbpoold (include/dbpool.h):
 * connecting (socket, HELLO handshake, options, closing), and the overview
 * of the whole library.
 *
 * A dbpool_conn owns one AF_UNIX stream socket to the daemon and speaks
 * protocol v1. All framing goes through src/common/proto.c (the one wire-format
 * implementation shared with the daemon); the library only sequences frames:
 *
 *   connect:    HELLO            -> HELLO_OK | ERROR (the daemon then closes)
 *   query:      QUERY            -> [COLUMNS ROW*] STMT_DONE READY | ERROR
 *   batch:      BATCH            -> ([COLUMNS ROW*] STMT_DONE)* READY | ERROR
 *   begin etc.: BEGIN/COMMIT/ROLLBACK/PING -> READY | ERROR
 *   close:      TERMINATE (best effort), then close(2)
 *
 * An ERROR may arrive at any point of a response and ends the request.
 * READY and ERROR both carry the session's transaction state.
 *
 * Receiving: one buffer per connection, read in 64 KiB chunks and grown up
 * to the daemon's max frame size (from HELLO_OK), so many small ROW frames
 * are parsed per read(2). A decoded frame points into that buffer and stays
 * valid until the next frame is read — which is what makes row values valid
 * "until the next call on the connection". TEXT values are copied into a
 * per-connection scratch area so they can be NUL-terminated.
 *
 * Streaming: dbpool_query_start sends QUERY and waits for the statement's
 * first answer (COLUMNS, completion or ERROR), so SQL errors are reported by
 * dbpool_query_start itself and dbpool_columns() is valid as soon as it
 * returns 0. A statement still streaming when another request is made is
 * drained first (its remaining rows are discarded).
 *
 * Failures: request errors (an ERROR frame) leave the session usable, except
 * PROTOCOL / VERSION / UNKNOWN_POOL / NOT_ALLOWED after which the daemon
 * closes the session (and so do we); after any other ERROR we peek for EOF
 * without blocking, and EOF on the next request closes the session with
 * DBPOOL_E_IO. Malformed or unexpected frames
 * (DBPOOL_E_PROTOCOL), socket errors, EOF and local out-of-memory while
 * receiving (DBPOOL_E_IO) close the connection locally.
 *
 * Timeouts: every wait for the daemon is a poll(2) bounded by the deadline
 * of the call in progress (arm_deadline): the connect timeout for
 * dbpool_connect (connect(2) through SO_SNDTIMEO, then HELLO/HELLO_OK), the
 * request timeout for each later call. Sends are non-blocking too, so a
 * daemon that stops reading cannot block a call either. When a request's
 * deadline passes the call sends CANCEL and keeps reading the response for a
 * grace (the timeout, at most GRACE_MAX_MS): the response then ends as usual
 * and an ERROR CANCELED is reported as DBPOOL_E_TIMEOUT, session usable. If
 * the grace passes too, the stream is out of sync for good: the session is
 * closed with DBPOOL_E_TIMEOUT. Connect timeouts always close.
 *
 * Non-blocking use (include/dbpool.h): async_connect.c, async_send.c and
 * async_receive.c drive the same handshake, frames and checks without ever
 * waiting — requests queue in c->out and are answered in order from the
 * ring c->reqs into results — and the blocking calls refuse to run while
 * such requests are outstanding (lib_async_in_use).
 *
 * No global mutable state: everything lives in struct dbpool_conn, so
 * different connections may be used from different threads.
 */
/* connecting: the socket, the HELLO handshake, options and
 * timeouts from the environment, closing, and the connection's accessors.
 * The overview (frames, buffers, failures, timeouts) is at the top of
 * src/lib/connect.c; the shared structs are in internal.h.
 */
#include "lib/internal.h"

/* ------------------------------------------------------------ connecting */

const char *dbpool_default_socket(void)
{
#ifdef RUNSTATEDIR
    return RUNSTATEDIR "/dbpoold/dbpoold.sock";
#else
    return "/run/dbpoold/dbpoold.sock";
#endif
}

const char *lib_connect_hint(int errnum)
{
    switch (errnum) {
    case ENOENT:
    case ECONNREFUSED:
    case ENOTDIR:
        return " (is dbpoold running? set DBPOOL_SOCKET or pass -S)";
    case EACCES:
    case EPERM:
        return " (check the permissions of the socket and its directory)";
    case EAGAIN:
        return " (dbpoold's accept queue is full; retry later)";
    default:
        return "";
    }
}

/* connect(2) interrupted by a signal goes on asynchronously: wait for it
 * until the deadline (ETIMEDOUT after it). */
static int finish_interrupted_connect(int fd, uint64_t deadline)
{
    int soerr = 0, r = lib_await_fd(fd, POLLOUT, deadline);
    socklen_t len = sizeof soerr;

    if (r <= 0)
        return r == 0 ? ETIMEDOUT : errno;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        return errno;
    return soerr;
}

/* A blocking connect(2) on a Unix socket waits while the daemon's accept
 * queue is full; SO_SNDTIMEO bounds that wait (it then fails with EAGAIN).
 * Every later send is non-blocking, so the option has no other effect. */
static void bound_connect_wait(int fd, uint64_t limit)
{
    struct timeval tv = { .tv_sec = (time_t)(limit / 1000), .tv_usec = (suseconds_t)(limit % 1000) * 1000 };

    if (limit > 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* Fills *sa with the socket's address (USAGE when the path is too long). */
int lib_unix_address(dbpool_conn *c, const char *path, struct sockaddr_un *sa)
{
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa->sun_path)
        return lib_fail(c, DBPOOL_E_USAGE, "socket path too long (%zu bytes, at most %zu): %s",
                    strlen(path), sizeof sa->sun_path - 1, path);
    memcpy(sa->sun_path, path, strlen(path) + 1);
    return 0;
}

static int open_socket(dbpool_conn *c, const char *path)
{
    struct sockaddr_un sa;
    int fd, e = 0;

    if (lib_unix_address(c, path, &sa) < 0)
        return -1;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return lib_fail(c, DBPOOL_E_IO, "cannot create a socket: %s", strerror(errno));
    bound_connect_wait(fd, c->limit);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        e = errno == EINTR ? finish_interrupted_connect(fd, c->deadline) : errno;
    if (e != 0) {
        close(fd);
        if ((e == EAGAIN || e == ETIMEDOUT) && c->deadline != 0 && lib_poll_ms(c->deadline) == 0)
            return lib_connect_timed_out(c, false);
        return lib_fail(c, DBPOOL_E_IO, "cannot connect to %s: %s%s", path, strerror(e),
                    lib_connect_hint(e));
    }
    c->fd = fd;
    return 0;
}

int lib_decode_hello_ok(dbpool_conn *c, const uint8_t *p, size_t n)
{
    struct proto_hello_ok h;

    if (!proto_get_hello_ok(p, n, &h))
        return lib_malformed_frame(c, PT_HELLO_OK);
    if (h.version != PROTO_VERSION)
        return lib_fail_closed(c, DBPOOL_E_VERSION,
                           "dbpoold speaks protocol version %u but this libdbpool speaks %u; "
                           "use matching versions", (unsigned)h.version, (unsigned)PROTO_VERSION);
    c->backend = malloc(h.backend.len + 1);
    if (c->backend == NULL)
        return lib_fail_oom(c);
    if (h.backend.len)
        memcpy(c->backend, h.backend.p, h.backend.len);
    c->backend[h.backend.len] = '\0';
    if (h.max_frame >= PROTO_HEADER_SIZE)
        c->max_frame = h.max_frame;
    c->max_params = h.max_params;
    c->max_batch = h.max_batch_statements;
    return 0;
}

int lib_handshake(dbpool_conn *c, const char *pool, const char *client_name)
{
    uint8_t type;
    const uint8_t *p;
    size_t n;

    proto_put_hello(&c->out, PROTO_VERSION, pool, client_name != NULL ? client_name : "");
    if (lib_send_request(c) < 0 || lib_read_frame(c, &type, &p, &n) < 0)
        return -1;
    if (type == PT_HELLO_OK)
        return lib_decode_hello_ok(c, p, n);
    if (type == PT_ERROR) {
        lib_take_error(c, p, n);
        lib_drop_connection(c);             /* the daemon closes after a handshake error */
        return -1;
    }
    return lib_unexpected_frame(c, type);
}

static dbpool_conn *conn_new(void)
{
    dbpool_conn *c = calloc(1, sizeof *c);

    if (c == NULL)
        return NULL;
    c->rbuf = malloc(READ_CHUNK);
    if (c->rbuf == NULL) {
        free(c);
        return NULL;
    }
    c->rcap = READ_CHUNK;
    c->fd = -1;
    c->err_index = -1;
    c->tx = DBPOOL_TX_IDLE;
    c->max_frame = PROTO_DEFAULT_MAX_FRAME;
    c->max_params = PROTO_DEFAULT_MAX_PARAMS;
    c->stream = STREAM_NONE;
    pbuf_init(&c->out);
    return c;
}

void lib_conn_free(dbpool_conn *c)
{
    lib_drop_connection(c);
    lib_async_free(c);
    pbuf_free(&c->out);
    free(c->rbuf);
    free(c->backend);
    free(c->cols);
    free(c->row);
    free(c->scratch);
    free(c);
}

/* One timeout: the value given, else the environment variable, else dflt. */
static int resolve_timeout(int64_t given, const char *field, const char *var, uint64_t dflt,
                           uint64_t *out, dbpool_error *err)
{
    const char *v;

    if (given >= 0) {
        *out = (uint64_t)given;
        return 0;
    }
    if (given != DBPOOL_TIMEOUT_FROM_ENV) {
        lib_set_error(err, DBPOOL_E_USAGE, "dbpool_options.%s is %lld: give milliseconds "
                  "(0: no limit) or DBPOOL_TIMEOUT_FROM_ENV", field, (long long)given);
        return -1;
    }
    v = getenv(var);
    if (v == NULL || v[0] == '\0') {
        *out = dflt;
        return 0;
    }
    if (!parse_duration_ms(v, out)) {
        lib_set_error(err, DBPOOL_E_USAGE, "%s=\"%.100s\" is not a duration: write it like "
                  "\"10s\", \"250ms\" or \"1m30s\" (\"0\": no limit), or unset it", var, v);
        return -1;
    }
    return 0;
}

/* Does the caller's options struct (of o->size bytes) have field? */
#define OPTS_HAVE(o, field) \
    ((o)->size >= offsetof(dbpool_options, field) + sizeof((o)->field))

/* Fills the connection's timeouts from opts (may be NULL), the environment
 * and the defaults. */
static int resolve_options(dbpool_conn *c, const dbpool_options *opts, dbpool_error *err)
{
    int64_t ct = DBPOOL_TIMEOUT_FROM_ENV, rt = DBPOOL_TIMEOUT_FROM_ENV;

    if (opts != NULL && opts->size == 0) {
        lib_set_error(err, DBPOOL_E_USAGE,
                  "dbpool_options.size is 0: initialise the options with dbpool_options_init()");
        return -1;
    }
    if (opts != NULL && OPTS_HAVE(opts, connect_timeout_ms))
        ct = opts->connect_timeout_ms;
    if (opts != NULL && OPTS_HAVE(opts, request_timeout_ms))
        rt = opts->request_timeout_ms;
    if (resolve_timeout(ct, "connect_timeout_ms", ENV_CONNECT_TIMEOUT,
                        DBPOOL_DEFAULT_CONNECT_TIMEOUT_MS, &c->connect_timeout, err) < 0)
        return -1;
    return resolve_timeout(rt, "request_timeout_ms", ENV_REQUEST_TIMEOUT,
                           DBPOOL_DEFAULT_REQUEST_TIMEOUT_MS, &c->request_timeout, err);
}

/* Socket connect and handshake, all within the connect timeout. */
static int establish(dbpool_conn *c, const char *path, const char *pool, const char *client_name)
{
    int rc;

    c->connect_path = path;
    c->req_type = PT_HELLO;
    lib_arm_deadline(c, c->connect_timeout);
    rc = open_socket(c, path) < 0 || lib_handshake(c, pool, client_name) < 0 ? -1 : 0;
    c->connect_path = NULL;
    c->deadline = 0;
    return rc;
}

/* What every connect does first: the socket path (socket_path, else
 * $DBPOOL_SOCKET, else the default) in *path, a new connection with its
 * options. NULL with *err filled on failure; *err cleared otherwise. */
dbpool_conn *lib_conn_prepare(const char **path, const char *pool, const dbpool_options *opts,
                              dbpool_error *err)
{
    dbpool_conn *c;
    const char *env = getenv("DBPOOL_SOCKET");

    memset(err, 0, sizeof *err);
    if (*path == NULL)
        *path = env != NULL && env[0] != '\0' ? env : dbpool_default_socket();
    if (pool == NULL || pool[0] == '\0') {
        lib_set_error(err, DBPOOL_E_USAGE, "no pool name given");
        return NULL;
    }
    c = conn_new();
    if (c == NULL) {
        lib_set_error(err, DBPOOL_E_IO, "out of memory in libdbpool");
        return NULL;
    }
    if (resolve_options(c, opts, err) < 0) {
        lib_conn_free(c);
        return NULL;
    }
    return c;
}

/* Ownership: the returned connection belongs to the caller (dbpool_close). */
dbpool_conn *dbpool_connect_opts(const char *socket_path, const char *pool,
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
    if (establish(c, socket_path, pool, client_name) < 0) {
        *err = c->err;
        lib_conn_free(c);
        return NULL;
    }
    pbuf_reset(&c->out);
    return c;
}

dbpool_conn *dbpool_connect(const char *socket_path, const char *pool,
                            const char *client_name, dbpool_error *err)
{
    return dbpool_connect_opts(socket_path, pool, client_name, NULL, err);
}

int dbpool_set_timeout(dbpool_conn *c, int64_t timeout_ms)
{
    if (c == NULL)
        return -1;
    if (timeout_ms < 0)
        return lib_fail(c, DBPOOL_E_USAGE, "dbpool_set_timeout: %lld ms is negative; give "
                    "milliseconds, 0 for no limit", (long long)timeout_ms);
    c->request_timeout = (uint64_t)timeout_ms;
    return 0;
}

int64_t dbpool_timeout(const dbpool_conn *c)
{
    if (c == NULL)
        return 0;
    return c->request_timeout > INT64_MAX ? INT64_MAX : (int64_t)c->request_timeout;
}

void dbpool_close(dbpool_conn *c)
{
    if (c == NULL)
        return;
    /* polite goodbye; never blocks, never after half a frame (async) */
    if (c->fd >= 0 && (c->out_sent == 0 || c->out_sent >= c->out.len) &&
        c->phase != PHASE_CONNECTING) {
        pbuf_reset(&c->out);
        proto_put_empty(&c->out, PT_TERMINATE);
        if (!c->out.oom)
            (void)send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    lib_conn_free(c);
}

int dbpool_is_open(const dbpool_conn *c)
{
    return c != NULL && c->fd >= 0;
}

const dbpool_error *dbpool_last_error(const dbpool_conn *c)
{
    return c != NULL ? &c->err : &lib_no_conn_error;
}

dbpool_txstate dbpool_txstate_of(const dbpool_conn *c)
{
    return c != NULL ? c->tx : DBPOOL_TX_IDLE;
}

const char *dbpool_backend(const dbpool_conn *c)
{
    return c != NULL && c->backend != NULL ? c->backend : "";
}
