/*
 * deadline.c — libdbpool timeouts and cancelling: the deadline of the call in progress,
 * bounded waits with poll(2), what a connect or request timeout does, and
 * dbpool_cancel (the CANCEL frame a timeout sends too).
 * The overview (frames, buffers, failures, timeouts) is at the top of
 * src/lib/connect.c; the shared structs are in internal.h.
 */
#include "lib/internal.h"

/* ------------------------------------------------------------ timeouts */

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A duration for messages: "250ms", "10s", "1.500s". */
static const char *fmt_ms(uint64_t ms, char *buf, size_t cap)
{
    if (ms < 1000)
        snprintf(buf, cap, "%llums", (unsigned long long)ms);
    else if (ms % 1000 == 0)
        snprintf(buf, cap, "%llus", (unsigned long long)(ms / 1000));
    else
        snprintf(buf, cap, "%llu.%03llus", (unsigned long long)(ms / 1000),
                 (unsigned long long)(ms % 1000));
    return buf;
}

/* Starts the clock of a call: the daemon has limit ms (0: no limit, and
 * no clock read). */
void lib_arm_deadline(dbpool_conn *c, uint64_t limit)
{
    uint64_t now;

    c->limit = limit;
    c->deadline = 0;
    if (limit == 0)
        return;
    now = now_ms();
    c->deadline = limit > UINT64_MAX - now ? UINT64_MAX : now + limit;
}

/* Milliseconds to the deadline for poll(2): -1 without one, 0 once passed. */
int lib_poll_ms(uint64_t deadline)
{
    uint64_t now;

    if (deadline == 0)
        return -1;
    now = now_ms();
    if (now >= deadline)
        return 0;
    return deadline - now > INT_MAX ? INT_MAX : (int)(deadline - now);
}

/* Waits until fd is ready for events (or has an error or hang-up, which the
 * following recv/send reports) before the deadline. poll(2) rather than a
 * blocking recv(2) also because a thread blocked in recv on a Unix socket is
 * woken, for nothing, each time the daemon reads what this side sent (the
 * kernel's write-space wakeup does not say which event it is for), while
 * poll only wakes for the events asked. Returns 1 ready, 0 the deadline
 * passed, -1 an error (errno set). */
int lib_await_fd(int fd, short events, uint64_t deadline)
{
    struct pollfd pfd = { .fd = fd, .events = events };

    for (;;) {
        int ms = lib_poll_ms(deadline), r = poll(&pfd, 1, ms);
        if (r > 0)
            return 1;
        if (r == 0 && ms == 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

/* Wait after a timeout's CANCEL for the request to end: the timeout itself,
 * at most GRACE_MAX_MS (a hung daemon costs at most twice the timeout). */
static uint64_t grace_ms(uint64_t limit)
{
    return limit < GRACE_MAX_MS ? limit : GRACE_MAX_MS;
}

/* What a closed session means for the request that timed out. */
static const char *lost_work_hint(const dbpool_conn *c)
{
    if (c->req_type == PT_COMMIT)
        return "; whether the transaction committed is unknown: check before retrying it";
    if (c->tx != DBPOOL_TX_IDLE)
        return "; the open transaction is lost (dbpoold rolls it back)";
    return "";
}

int lib_connect_timed_out(dbpool_conn *c, bool handshake)
{
    char lim[32];
    const char *path = c->connect_path != NULL ? c->connect_path : "its socket";

    fmt_ms(c->limit, lim, sizeof lim);
    if (!handshake)
        return lib_fail_closed(c, DBPOOL_E_TIMEOUT,
                           "cannot connect to %s within %s (connect timeout): dbpoold is not "
                           "accepting connections (hung or overloaded?); check it, or raise the "
                           "limit with $" ENV_CONNECT_TIMEOUT " / dbpool --connect-timeout",
                           path, lim);
    return lib_fail_closed(c, DBPOOL_E_TIMEOUT,
                       "dbpoold at %s accepted the connection but did not answer the handshake "
                       "within %s (connect timeout); is it hung or overloaded? Check it, or raise "
                       "the limit with $" ENV_CONNECT_TIMEOUT " / dbpool --connect-timeout",
                       path, lim);
}

/* The request's deadline passed and its grace too (or no CANCEL could be
 * sent): the response stream is out of sync for good. */
static int request_timed_out(dbpool_conn *c)
{
    char lim[32];

    fmt_ms(c->limit, lim, sizeof lim);
    return lib_fail_closed(c, DBPOOL_E_TIMEOUT,
                       "dbpoold did not answer the %s within %s (request timeout) nor end it "
                       "after a cancel; the session was closed%s. Is dbpoold hung or overloaded? "
                       "Reconnect; if the statement needs longer, raise the timeout "
                       "(dbpool_set_timeout, $" ENV_REQUEST_TIMEOUT ", dbpool --timeout)",
                       proto_type_name(c->req_type), lim, lost_work_hint(c));
}

/* An ERROR CANCELED ended a request this call cancelled for its timeout:
 * report the timeout (keeping SQLSTATE 57014); the session is in sync. */
void lib_report_cancelled_timeout(dbpool_conn *c)
{
    char lim[32];
    const char *tx = c->tx == DBPOOL_TX_FAILED ? "; the transaction failed: roll it back"
                     : c->tx == DBPOOL_TX_ACTIVE ? "; still inside the transaction" : "";

    c->err.code = DBPOOL_E_TIMEOUT;
    snprintf(c->err.message, sizeof c->err.message,
             "the %s did not complete within %s (request timeout) and was cancelled; the "
             "session is still usable%s. If it needs longer, raise the timeout "
             "(dbpool_set_timeout, $" ENV_REQUEST_TIMEOUT ", dbpool --timeout)",
             proto_type_name(c->req_type), fmt_ms(c->limit, lim, sizeof lim), tx);
}

/* The call's deadline passed while waiting for the daemon. While
 * connecting, or when this request was already cancelled: fail and close.
 * Else send CANCEL and give the response a grace to end. Returns 0 to go on
 * reading, -1 when the session was closed. */
int lib_on_deadline(dbpool_conn *c)
{
    if (c->connect_path != NULL)
        return lib_connect_timed_out(c, true);
    if (c->timeout_cancel || dbpool_cancel(c) < 0)
        return request_timed_out(c);
    c->timeout_cancel = true;
    c->deadline = now_ms() + grace_ms(c->limit);
    return 0;
}

/* The deadline passed while sending: unsendable is the daemon not reading.
 * Nothing of the request sent: the session stays in sync and usable. */
int lib_send_timed_out(dbpool_conn *c, bool partly_sent)
{
    char lim[32];

    if (c->connect_path != NULL)
        return lib_connect_timed_out(c, true);
    fmt_ms(c->limit, lim, sizeof lim);
    if (!partly_sent)
        return lib_fail(c, DBPOOL_E_TIMEOUT,
                    "cannot send the %s: dbpoold has not read from this session for %s (request "
                    "timeout); is it hung or overloaded? Nothing was sent; the session is "
                    "still usable", proto_type_name(c->req_type), lim);
    return lib_fail_closed(c, DBPOOL_E_TIMEOUT,
                       "dbpoold stopped reading the %s for %s (request timeout), so only part of "
                       "it was sent; the session was closed%s. Is dbpoold hung or overloaded? "
                       "Reconnect", proto_type_name(c->req_type), lim, lost_work_hint(c));
}

int dbpool_cancel(const dbpool_conn *c)
{
    /* Built on the stack and sent with one send(): safe while another thread
     * is blocked reading this connection (a 5-byte write is never split).
     * Non-blocking: when the daemon is not reading there is no one to
     * cancel anything, and the caller must not hang on it. */
    uint8_t frame[PROTO_HEADER_SIZE];
    struct pbuf b = { frame, 0, sizeof(frame), false };

    if (c == NULL || c->fd < 0)
        return -1;
    /* Non-blocking use: requests still in the output buffer would come
     * after the CANCEL (or it inside one of them): flush first. pending
     * stays 0 in blocking use, so another thread's call reads no more. */
    if (c->pending > 0 && c->out_sent < c->out.len)
        return -1;
    proto_put_empty(&b, PT_CANCEL);
    if (b.oom || b.data != frame)
        return -1;
    return send(c->fd, frame, b.len, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)b.len ? 0 : -1;
}
