/*
 * errors.c — libdbpool errors: setting the connection's last error and closing the
 * connection on fatal ones (the daemon's ERROR frames are taken in wire.c).
 * The overview (frames, buffers, failures, timeouts) is at the top of
 * src/lib/connect.c; the shared structs are in internal.h.
 */
#include "lib/internal.h"

const dbpool_error lib_no_conn_error = { DBPOOL_E_USAGE, "", "no connection (NULL dbpool_conn)",
                                         0 };

/* ------------------------------------------------------------ errors */

static void verror(dbpool_error *e, int code, const char *fmt, va_list ap) PRINTF_LIKE(3, 0);
static void verror(dbpool_error *e, int code, const char *fmt, va_list ap)
{
    e->code = code;
    e->sqlstate[0] = '\0';
    e->vendor_code = 0;
    vsnprintf(e->message, sizeof e->message, fmt, ap);
}

void lib_set_error(dbpool_error *e, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(e, code, fmt, ap);
    va_end(ap);
}

/* Records a failure that leaves the session usable. Returns -1. */
int lib_fail(dbpool_conn *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(&c->err, code, fmt, ap);
    va_end(ap);
    c->err_index = -1;
    return -1;
}

void lib_drop_connection(dbpool_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    if (c->stream == STREAM_ACTIVE)
        c->stream = STREAM_FAILED;
}

/* Records a failure that ends the session and closes the socket. Returns -1. */
int lib_fail_closed(dbpool_conn *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(&c->err, code, fmt, ap);
    va_end(ap);
    c->err_index = -1;
    lib_drop_connection(c);
    return -1;
}

int lib_fail_oom(dbpool_conn *c)
{
    return lib_fail_closed(c, DBPOOL_E_IO, "out of memory in libdbpool; the session was closed");
}

int lib_unexpected_frame(dbpool_conn *c, uint8_t type)
{
    return lib_fail_closed(c, DBPOOL_E_PROTOCOL,
                       "protocol error: unexpected %s frame (0x%02x) from dbpoold; session closed",
                       proto_type_name(type), type);
}

int lib_malformed_frame(dbpool_conn *c, uint8_t type)
{
    return lib_fail_closed(c, DBPOOL_E_PROTOCOL,
                       "protocol error: malformed %s frame from dbpoold; session closed",
                       proto_type_name(type));
}

int lib_eof_error(dbpool_conn *c)
{
    if (c->shutdown_seen)
        return lib_fail_closed(c, DBPOOL_E_IO, "dbpoold closed the session: it is shutting down");
    return lib_fail_closed(c, DBPOOL_E_IO,
                       "dbpoold closed the session (was it stopped or restarted? reconnect)");
}
