/*
 * test_lib_timeouts.c — libdbpool's own timeouts and its behaviour when the
 * daemon hangs or goes away (doc/libdbpool.md, "Timeouts").
 *
 * Two kinds of peer: the REAL daemon (tests/integration/harness.c), stopped
 * with SIGSTOP to play a hung dbpoold, or given a statement that runs for
 * minutes; and a plain Unix socket in this file (struct peer) that plays a
 * hung or vanishing daemon at a precise point of the protocol: it never
 * answers, never accepts, or stops in the middle of a frame. It speaks the
 * wire format through src/common/proto.c; it is a broken peer, not a database.
 *
 * Every timeout test checks the error code (DBPOOL_E_TIMEOUT), that the call
 * returned within bounds (not before the timeout, and at most the timeout +
 * the grace + slack), and what is left of the session.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"
#include "common/proto.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define SLACK_MS 1500   /* scheduling on a loaded machine, sanitizers */

/* ------------------------------------------------------------ helpers */

/* Criterion .fini: a daemon left stopped by a failed assertion is resumed
 * so that h_fini can stop it. */
static void lt_fini(void)
{
    if (h_running())
        kill(h_pid(), SIGCONT);
    h_fini();
}

/* State letter of the daemon process (/proc/PID/stat): 'T' when stopped. */
static char daemon_state(void)
{
    char path[64], buf[512];
    FILE *f;
    char st = '?';

    snprintf(path, sizeof path, "/proc/%d/stat", (int)h_pid());
    f = fopen(path, "r");
    if (f == NULL)
        return st;
    if (fgets(buf, sizeof buf, f) != NULL) {
        const char *p = strrchr(buf, ')');
        if (p != NULL && p[1] == ' ')
            st = p[2];
    }
    fclose(f);
    return st;
}

static void stop_daemon(void)
{
    h_signal(SIGSTOP);
    cr_assert(H_AWAIT(daemon_state() == 'T', 5000), "dbpoold did not stop on SIGSTOP");
}

static void resume_daemon(void)
{
    h_signal(SIGCONT);
    cr_assert(H_AWAIT(daemon_state() != 'T', 5000), "dbpoold did not resume on SIGCONT");
}

static dbpool_conn *connect_with(int64_t connect_ms, int64_t request_ms, dbpool_error *err)
{
    dbpool_options o;

    dbpool_options_init(&o);
    o.connect_timeout_ms = connect_ms;
    o.request_timeout_ms = request_ms;
    return dbpool_connect_opts(h_paths()->sock, H_POOL, "lt", &o, err);
}

/* Asserts that a call that started at t0 gave up after limit_ms: not
 * before it, and no later than limit_ms + extra_ms + SLACK_MS. */
static void expect_elapsed(uint64_t t0, uint64_t limit_ms, uint64_t extra_ms, const char *what)
{
    uint64_t took = h_now_ms() - t0;

    cr_assert_geq(took + 5, limit_ms, "%s: gave up after %llu ms, before its %llu ms timeout",
                  what, (unsigned long long)took, (unsigned long long)limit_ms);
    cr_assert_leq(took, limit_ms + extra_ms + SLACK_MS, "%s: took %llu ms for a %llu ms timeout",
                  what, (unsigned long long)took, (unsigned long long)limit_ms);
}

static void expect_code(const dbpool_error *e, int code, const char *what)
{
    cr_assert_eq(e->code, code, "%s: %s (%d): %s", what, dbpool_code_name(e->code), e->code,
                 e->message);
}

static void expect_in_message(const dbpool_error *e, const char *needle, const char *what)
{
    cr_assert_not_null(strstr(e->message, needle), "%s: the message does not say \"%s\": %s",
                       what, needle, e->message);
}

/* ------------------------------------------------------------ a broken peer */

enum peer_script {
    PEER_SILENT,            /* accept, read everything, never write */
    PEER_EOF_IN_HANDSHAKE,  /* read HELLO, close */
    PEER_EOF_IN_ROW,        /* handshake, then half a ROW and close */
    PEER_HANG_IN_ROW,       /* handshake, then half a ROW and read for ever */
};

struct peer {
    char dir[128];
    char path[160];
    int lfd;
    enum peer_script script;
    pthread_t thread;
    bool started;
    int query_frames;       /* QUERY frames received (peer thread) */
    int cancel_frames;      /* CANCEL frames received (peer thread) */
};

static bool send_buf(int fd, struct pbuf *b)
{
    bool ok = !b->oom && h_raw_send(fd, b->data, b->len);
    pbuf_reset(b);
    return ok;
}

/* Reads frames until EOF, counting QUERY and CANCEL frames. */
static void peer_read_to_eof(struct peer *p, int fd)
{
    struct h_frame f;

    while (h_raw_read_frame(fd, 60000, &f) == 1) {
        if (f.type == PT_QUERY)
            p->query_frames++;
        else if (f.type == PT_CANCEL)
            p->cancel_frames++;
        h_frame_free(&f);
    }
}

/* HELLO -> HELLO_OK, QUERY -> COLUMNS + the first half of a ROW. */
static bool peer_half_row(struct peer *p, int fd)
{
    static const dbpool_column col = { "n", "integer" };
    dbpool_value v = dbpool_int(42);
    struct h_frame f;
    struct pbuf b;
    size_t keep;
    bool ok;

    if (h_raw_read_frame(fd, 10000, &f) != 1)
        return false;
    h_frame_free(&f);
    pbuf_init(&b);
    proto_put_hello_ok(&b, "sqlite", "peer", PROTO_DEFAULT_MAX_FRAME, PROTO_DEFAULT_MAX_PARAMS, 1000);
    ok = send_buf(fd, &b) && h_raw_read_frame(fd, 10000, &f) == 1;
    if (ok) {
        p->query_frames += f.type == PT_QUERY;
        h_frame_free(&f);
        proto_put_columns(&b, 1, &col);
        ok = send_buf(fd, &b);
    }
    proto_put_row(&b, 1, &v);
    keep = b.len / 2;
    ok = ok && !b.oom && h_raw_send(fd, b.data, keep);
    pbuf_free(&b);
    return ok;
}

static void *peer_main(void *arg)
{
    struct peer *p = arg;
    int fd = accept(p->lfd, NULL, NULL);
    struct h_frame f;

    if (fd < 0)
        return NULL;
    switch (p->script) {
    case PEER_SILENT:
        peer_read_to_eof(p, fd);
        break;
    case PEER_EOF_IN_HANDSHAKE:
        if (h_raw_read_frame(fd, 10000, &f) == 1)
            h_frame_free(&f);
        break;
    case PEER_EOF_IN_ROW:
        peer_half_row(p, fd);
        break;
    case PEER_HANG_IN_ROW:
        if (peer_half_row(p, fd))
            peer_read_to_eof(p, fd);
        break;
    }
    close(fd);
    return NULL;
}

/* A listening socket in a fresh directory. backlog 0 and no thread: nobody
 * ever accepts (the kernel queues one connection, then the queue is full). */
static void peer_listen(struct peer *p, enum peer_script script, bool accepting)
{
    const char *tmp = getenv("TMPDIR");
    struct sockaddr_un sa = { .sun_family = AF_UNIX };

    memset(p, 0, sizeof *p);
    p->script = script;
    snprintf(p->dir, sizeof p->dir, "%s/dbpool-lt.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    cr_assert_not_null(mkdtemp(p->dir), "mkdtemp: %s", strerror(errno));
    snprintf(p->path, sizeof p->path, "%s/peer.sock", p->dir);
    cr_assert_lt(strlen(p->path), sizeof sa.sun_path, "socket path too long: %s", p->path);
    memcpy(sa.sun_path, p->path, strlen(p->path) + 1);
    p->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(p->lfd, 0);
    cr_assert_eq(bind(p->lfd, (struct sockaddr *)&sa, sizeof sa), 0, "bind: %s", strerror(errno));
    cr_assert_eq(listen(p->lfd, accepting ? 8 : 0), 0);
    if (accepting) {
        cr_assert_eq(pthread_create(&p->thread, NULL, peer_main, p), 0);
        p->started = true;
    }
}

/* Closes the listener, joins the thread (the client must have closed its
 * end), removes the directory. */
static void peer_done(struct peer *p)
{
    if (p->started)
        pthread_join(p->thread, NULL);
    close(p->lfd);
    unlink(p->path);
    rmdir(p->dir);
}

static dbpool_conn *peer_connect(const struct peer *p, int64_t connect_ms, int64_t request_ms,
                                 dbpool_error *err)
{
    dbpool_options o;

    dbpool_options_init(&o);
    o.connect_timeout_ms = connect_ms;
    o.request_timeout_ms = request_ms;
    return dbpool_connect_opts(p->path, "app", "lt", &o, err);
}

/* ====================================================== connect timeout */

TestSuite(connect_timeout, .fini = lt_fini, .timeout = 60);

Test(connect_timeout, peer_accepts_but_never_answers)
{
    struct peer p;
    dbpool_error err;

    peer_listen(&p, PEER_SILENT, true);
    uint64_t t0 = h_now_ms();
    dbpool_conn *c = peer_connect(&p, 300, 0, &err);
    cr_assert_null(c, "connected to a peer that never answered HELLO");
    expect_code(&err, DBPOOL_E_TIMEOUT, "handshake with a silent peer");
    expect_elapsed(t0, 300, 0, "handshake with a silent peer");
    expect_in_message(&err, "connect timeout", "handshake with a silent peer");
    expect_in_message(&err, "300ms", "handshake with a silent peer");
    expect_in_message(&err, p.path, "handshake with a silent peer");
    peer_done(&p);
}

Test(connect_timeout, from_the_environment)
{
    struct peer p;
    dbpool_error err;

    peer_listen(&p, PEER_SILENT, true);
    setenv("DBPOOL_CONNECT_TIMEOUT", "250ms", 1);
    uint64_t t0 = h_now_ms();
    dbpool_conn *c = dbpool_connect(p.path, "app", NULL, &err);
    cr_assert_null(c);
    expect_code(&err, DBPOOL_E_TIMEOUT, "DBPOOL_CONNECT_TIMEOUT=250ms");
    expect_elapsed(t0, 250, 0, "DBPOOL_CONNECT_TIMEOUT=250ms");
    peer_done(&p);
}

Test(connect_timeout, explicit_option_wins_over_the_environment)
{
    struct peer p;
    dbpool_error err;

    peer_listen(&p, PEER_SILENT, true);
    setenv("DBPOOL_CONNECT_TIMEOUT", "not a duration", 1);
    uint64_t t0 = h_now_ms();
    cr_assert_null(peer_connect(&p, 200, DBPOOL_TIMEOUT_FROM_ENV, &err));
    expect_code(&err, DBPOOL_E_TIMEOUT, "option 200 ms, bad env var");
    expect_elapsed(t0, 200, 0, "option 200 ms, bad env var");
    peer_done(&p);
}

Test(connect_timeout, default_is_ten_seconds)
{
    struct peer p;
    dbpool_error err;

    unsetenv("DBPOOL_CONNECT_TIMEOUT");
    peer_listen(&p, PEER_SILENT, true);
    uint64_t t0 = h_now_ms();
    cr_assert_null(dbpool_connect(p.path, "app", NULL, &err));
    expect_code(&err, DBPOOL_E_TIMEOUT, "default connect timeout");
    expect_elapsed(t0, DBPOOL_DEFAULT_CONNECT_TIMEOUT_MS, 0, "default connect timeout");
    expect_in_message(&err, "10s", "default connect timeout");
    peer_done(&p);
}

Test(connect_timeout, accept_queue_full)
{
    struct peer p;
    dbpool_error err;

    peer_listen(&p, PEER_SILENT, false);
    int first = h_raw_try_connect(p.path);      /* fills the queue of 1 */
    cr_assert_geq(first, 0, "connect: %s", strerror(errno));
    uint64_t t0 = h_now_ms();
    cr_assert_null(peer_connect(&p, 300, 0, &err));
    expect_code(&err, DBPOOL_E_TIMEOUT, "connect to a full accept queue");
    expect_elapsed(t0, 300, 0, "connect to a full accept queue");
    expect_in_message(&err, "not accepting connections", "connect to a full accept queue");
    close(first);
    peer_done(&p);
}

Test(connect_timeout, stopped_daemon_then_resumed)
{
    dbpool_error err;

    h_start(NULL);
    stop_daemon();
    uint64_t t0 = h_now_ms();
    cr_assert_null(connect_with(300, 0, &err), "connected to a stopped daemon");
    expect_code(&err, DBPOOL_E_TIMEOUT, "connect to a stopped daemon");
    expect_elapsed(t0, 300, 0, "connect to a stopped daemon");
    resume_daemon();
    dbpool_conn *c = h_connect();
    cr_assert_eq(h_scalar(c, "SELECT 3"), 3, "a new connection after SIGCONT");
    dbpool_close(c);
    h_stop_ok();
}

Test(connect_timeout, invalid_environment_is_a_usage_error)
{
    dbpool_error err;

    setenv("DBPOOL_CONNECT_TIMEOUT", "10", 1);      /* no unit: ambiguous */
    cr_assert_null(dbpool_connect("/nonexistent/dbpool.sock", "app", NULL, &err));
    expect_code(&err, DBPOOL_E_USAGE, "DBPOOL_CONNECT_TIMEOUT=10");
    expect_in_message(&err, "DBPOOL_CONNECT_TIMEOUT", "DBPOOL_CONNECT_TIMEOUT=10");
    unsetenv("DBPOOL_CONNECT_TIMEOUT");
    setenv("DBPOOL_TIMEOUT", "5 s", 1);
    cr_assert_null(dbpool_connect("/nonexistent/dbpool.sock", "app", NULL, &err));
    expect_code(&err, DBPOOL_E_USAGE, "DBPOOL_TIMEOUT=\"5 s\"");
    expect_in_message(&err, "DBPOOL_TIMEOUT", "DBPOOL_TIMEOUT=\"5 s\"");
}

Test(connect_timeout, invalid_options_are_usage_errors)
{
    dbpool_options o;
    dbpool_error err;

    memset(&o, 0, sizeof o);                        /* not initialised */
    cr_assert_null(dbpool_connect_opts("/nonexistent/x.sock", "app", NULL, &o, &err));
    expect_code(&err, DBPOOL_E_USAGE, "options with size 0");
    expect_in_message(&err, "dbpool_options_init", "options with size 0");
    dbpool_options_init(&o);
    o.request_timeout_ms = -7;
    cr_assert_null(dbpool_connect_opts("/nonexistent/x.sock", "app", NULL, &o, &err));
    expect_code(&err, DBPOOL_E_USAGE, "a negative request timeout");
}

/* ====================================================== request timeout */

TestSuite(request_timeout, .fini = lt_fini, .timeout = 60);

/* A hung daemon: the CANCEL cannot be answered either, so after the
 * timeout and its grace the session is closed. */
Test(request_timeout, stopped_daemon_closes_the_session)
{
    dbpool_error err;

    h_start(NULL);
    dbpool_conn *c = connect_with(0, 300, &err);
    cr_assert_not_null(c, "%s", err.message);
    cr_assert_eq(dbpool_timeout(c), 300);
    cr_assert_eq(h_scalar(c, "SELECT 1"), 1);
    stop_daemon();

    uint64_t t0 = h_now_ms();
    int rc = dbpool_exec(c, "SELECT 2");
    h_expect_error(c, rc, DBPOOL_E_TIMEOUT, "a query to a stopped daemon");
    expect_elapsed(t0, 300, 300, "a query to a stopped daemon");
    expect_in_message(dbpool_last_error(c), "request timeout", "a query to a stopped daemon");
    expect_in_message(dbpool_last_error(c), "closed", "a query to a stopped daemon");
    cr_assert_not(dbpool_is_open(c), "the out-of-sync session was left open");

    t0 = h_now_ms();
    h_expect_error(c, dbpool_ping(c), DBPOOL_E_IO, "a call after the timeout");
    expect_in_message(dbpool_last_error(c), "reconnect", "a call after the timeout");
    cr_assert_lt(h_now_ms() - t0, 100, "a call on the closed session waited");
    dbpool_close(c);

    resume_daemon();
    c = h_connect();
    cr_assert_eq(h_scalar(c, "SELECT 4"), 4, "a new connection after SIGCONT");
    dbpool_close(c);
    h_stop_ok();
}

Test(request_timeout, from_the_environment)
{
    h_start(NULL);
    setenv("DBPOOL_TIMEOUT", "300ms", 1);
    dbpool_conn *c = h_connect();
    cr_assert_eq(dbpool_timeout(c), 300, "DBPOOL_TIMEOUT=300ms not applied");
    stop_daemon();
    uint64_t t0 = h_now_ms();
    h_expect_error(c, dbpool_begin(c, 0), DBPOOL_E_TIMEOUT, "BEGIN to a stopped daemon");
    expect_elapsed(t0, 300, 300, "BEGIN to a stopped daemon");
    expect_in_message(dbpool_last_error(c), "BEGIN", "BEGIN to a stopped daemon");
    cr_assert_not(dbpool_is_open(c));
    dbpool_close(c);
    resume_daemon();
    h_stop_ok();
}

Test(request_timeout, commit_outcome_is_reported_unknown)
{
    h_start(NULL);
    dbpool_conn *c = h_connect();
    h_create_table(c, "t", "a INTEGER");
    cr_assert_eq(dbpool_begin(c, 0), 0);
    h_exec(c, "INSERT INTO t VALUES (1)");
    cr_assert_eq(dbpool_set_timeout(c, 200), 0);
    stop_daemon();
    uint64_t t0 = h_now_ms();
    h_expect_error(c, dbpool_commit(c), DBPOOL_E_TIMEOUT, "COMMIT to a stopped daemon");
    expect_elapsed(t0, 200, 200, "COMMIT to a stopped daemon");
    expect_in_message(dbpool_last_error(c), "committed is unknown", "COMMIT to a stopped daemon");
    dbpool_close(c);
    resume_daemon();
    h_stop_ok();
}

/* A slow statement on a healthy daemon: the CANCEL is answered, the
 * session stays in sync and usable. */
Test(request_timeout, slow_statement_is_cancelled_session_usable)
{
    h_start(NULL);
    dbpool_conn *c = h_connect();
    cr_assert_eq(dbpool_set_timeout(c, 300), 0);
    uint64_t t0 = h_now_ms();
    int rc = dbpool_exec(c, h_profile()->endless_sql);
    h_expect_error(c, rc, DBPOOL_E_TIMEOUT, "an endless statement");
    expect_elapsed(t0, 300, 300, "an endless statement");
    expect_in_message(dbpool_last_error(c), "cancelled", "an endless statement");
    expect_in_message(dbpool_last_error(c), "still usable", "an endless statement");
    cr_assert(dbpool_is_open(c), "the session was closed though the cancel was answered");
    cr_assert_eq(dbpool_txstate_of(c), DBPOOL_TX_IDLE);
    cr_assert_eq(h_scalar(c, "SELECT 5"), 5, "the session is unusable after the timeout");
    dbpool_close(c);
    h_stop_ok();
}

/* A request larger than the socket buffers to a daemon that stopped
 * reading: the send itself times out, half a frame is out, so the session
 * must be closed (no grace: a CANCEL cannot follow half a frame). */
Test(request_timeout, send_to_a_stopped_daemon)
{
    size_t n = 4u << 20;
    char *blob = malloc(n);
    cr_assert_not_null(blob);
    memset(blob, 'x', n);
    dbpool_value v = dbpool_blob(blob, n);

    h_start(NULL);
    dbpool_conn *c = h_connect();
    cr_assert_eq(dbpool_set_timeout(c, 300), 0);
    stop_daemon();
    uint64_t t0 = h_now_ms();
    h_expect_error(c, dbpool_query(c, h_sql("SELECT length(?)"), &v, 1, NULL), DBPOOL_E_TIMEOUT,
                   "a 4 MiB request to a stopped daemon");
    expect_elapsed(t0, 300, 0, "a 4 MiB request to a stopped daemon");
    expect_in_message(dbpool_last_error(c), "only part of it was sent", "a 4 MiB request");
    cr_assert_not(dbpool_is_open(c));
    dbpool_close(c);
    free(blob);
    resume_daemon();
    h_stop_ok();
}

struct bg_exec {
    dbpool_conn *c;
    const char *sql;
    int rc;
    dbpool_error err;
};

static void *bg_exec_main(void *arg)
{
    struct bg_exec *q = arg;
    q->rc = dbpool_exec(q->c, q->sql);
    q->err = *dbpool_last_error(q->c);
    return NULL;
}

/* With a (long) request timeout set, dbpool_cancel from another thread
 * still cancels, and is reported as CANCELED, not as a timeout. */
Test(request_timeout, cancel_from_another_thread_still_works)
{
    h_start(NULL);
    struct bg_exec q = { .c = h_connect(), .sql = h_profile()->endless_sql };
    cr_assert_eq(dbpool_set_timeout(q.c, 30000), 0);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, bg_exec_main, &q), 0);
    cr_assert(H_AWAIT(H_STATUS_NUM("/pools", "clients", "active") == 1, 5000),
              "the statement never started");
    cr_assert_eq(dbpool_cancel(q.c), 0);
    pthread_join(th, NULL);
    cr_assert_eq(q.rc, -1);
    expect_code(&q.err, DBPOOL_E_CANCELED, "dbpool_cancel with a request timeout set");
    cr_assert_eq(h_scalar(q.c, "SELECT 6"), 6);
    dbpool_close(q.c);
    h_stop_ok();
}

Test(request_timeout, set_timeout_validates)
{
    h_start(NULL);
    dbpool_conn *c = h_connect();
    cr_assert_eq(dbpool_timeout(c), 0, "the default request timeout is not 'none'");
    h_expect_error(c, dbpool_set_timeout(c, -1), DBPOOL_E_USAGE, "a negative timeout");
    cr_assert_eq(dbpool_timeout(c), 0);
    cr_assert_eq(dbpool_set_timeout(c, 0), 0);
    cr_assert_eq(dbpool_set_timeout(NULL, 5), -1);
    cr_assert_eq(h_scalar(c, "SELECT 7"), 7);
    dbpool_close(c);
    h_stop_ok();
}

/* ====================================================== a peer that goes away */

TestSuite(peer_gone, .fini = lt_fini, .timeout = 60);

Test(peer_gone, eof_during_the_handshake)
{
    struct peer p;
    dbpool_error err;

    peer_listen(&p, PEER_EOF_IN_HANDSHAKE, true);
    cr_assert_null(peer_connect(&p, 0, 0, &err), "connected though the peer closed");
    expect_code(&err, DBPOOL_E_IO, "EOF instead of HELLO_OK");
    expect_in_message(&err, "closed the session", "EOF instead of HELLO_OK");
    peer_done(&p);
}

Test(peer_gone, eof_in_the_middle_of_a_row)
{
    struct peer p;
    dbpool_error err;
    dbpool_result *r = NULL;

    peer_listen(&p, PEER_EOF_IN_ROW, true);
    dbpool_conn *c = peer_connect(&p, 0, 0, &err);
    cr_assert_not_null(c, "%s", err.message);
    int rc = dbpool_query(c, "SELECT 42", NULL, 0, &r);
    h_expect_error(c, rc, DBPOOL_E_IO, "EOF in the middle of a ROW");
    cr_assert_null(r);
    cr_assert_not(dbpool_is_open(c));
    h_expect_error(c, dbpool_ping(c), DBPOOL_E_IO, "a call after EOF");
    dbpool_close(c);
    peer_done(&p);
}

/* Half a frame and then silence: the CANCEL is sent in vain, the session
 * must be closed at the end of the grace (a frame cannot be resumed). */
Test(peer_gone, hang_in_the_middle_of_a_row)
{
    struct peer p;
    dbpool_error err;

    peer_listen(&p, PEER_HANG_IN_ROW, true);
    dbpool_conn *c = peer_connect(&p, 0, 250, &err);
    cr_assert_not_null(c, "%s", err.message);
    uint64_t t0 = h_now_ms();
    cr_assert_eq(dbpool_query_start(c, "SELECT 42", NULL, 0), 0, "COLUMNS was sent");
    const dbpool_value *row;
    int rc = dbpool_next_row(c, &row);
    h_expect_error(c, rc, DBPOOL_E_TIMEOUT, "half a ROW then silence");
    expect_elapsed(t0, 250, 250, "half a ROW then silence");
    cr_assert_not(dbpool_is_open(c), "the session was left open in the middle of a frame");
    dbpool_close(c);
    peer_done(&p);
    cr_assert_eq(p.query_frames, 1);
    cr_assert_eq(p.cancel_frames, 1, "no CANCEL was sent before giving up");
}
