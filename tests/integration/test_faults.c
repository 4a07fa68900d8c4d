/*
 * test_faults.c — the fault matrix: every phase of a request x every fault,
 * against the real dbpoold, for the backend chosen by $DBPOOL_TEST_BACKEND
 * (SQLite by default; PostgreSQL under tests/pg/run-pg-tests.sh and MariaDB
 * under tests/mysql/run-mysql-tests.sh, each on a server of its own that
 * the tests stop, restart and freeze: fault_tools.h).
 *
 * Each cell is one criterion test named <phase>_x_<fault>. It starts a
 * daemon, brings a victim session (a raw socket: every read has a deadline)
 * into the phase, starts a bystander session on another thread, injects the
 * fault, and asserts what doc/protocol.md and doc/operations.md promise:
 *
 *   - bounded time: no request of the victim or the bystander goes
 *     unanswered for FC_ANSWER_MS (a hang fails the cell; it never blocks
 *     the run: criterion's .timeout is the backstop);
 *   - the documented outcome: CONN_LOST when the server connection is lost,
 *     UNAVAILABLE while the server cannot be reached, SHUTDOWN on SIGTERM
 *     (after the drain operations.md describes), CANCELED for a cancel;
 *   - nothing leaked: the pool's /pools counters go back to no busy, no
 *     connecting, no waiting server; on a server no session of the pool's
 *     user is left running a statement or inside a transaction and the
 *     server has as many sessions as the daemon thinks it has; a
 *     rolled-back write is absent;
 *   - everyone else is served: the bystander gets no error the fault does
 *     not explain and succeeds again right after the fault; the victim's
 *     session (when it survives) works again.
 *
 * The matrix is two tables: PHASES (how to bring the victim into a phase and
 * what a server fault must end its request with) and FAULTS (how to inject
 * one). A new phase or fault is one row in the table and one line in the
 * X-macro lists below; a cell that cannot exist (no server connection to
 * terminate while connecting; SQLite has no server) is skipped with the
 * reason.
 *
 * How phases are held still, with real components only: a statement that
 * runs (pg_sleep, SLEEP, an endless recursive CTE), a COMMIT kept busy (on
 * PostgreSQL by a deferred constraint trigger that sleeps, on MariaDB by
 * the observer's FLUSH TABLES WITH READ LOCK: the COMMIT waits for the
 * commit lock), and a server process frozen with SIGSTOP (PostgreSQL: the
 * postmaster, to hold a connect; a backend, to hold a reset or a cancel.
 * MariaDB is one process of threads: the whole server is frozen for all
 * three, so there the bystander is started before the freeze and its
 * requests wait, within FC_ANSWER_MS, until the fault thaws the server).
 * Frozen processes are always thawed in .fini.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fault_bystander.h"
#include "fault_tools.h"
#include "harness.h"
#include "common/proto.h"

#define FC_ANSWER_MS 8000          /* no answer within this: a hang */
#define SHUTDOWN_TIMEOUT_MS 3000   /* the daemon's shutdownTimeout in these tests */
#define DOWN_HOLD_MS 1500          /* server stopped this much longer than the timeouts */
#define RECOVER_MS 15000           /* back to normal after the fault, at most */

/* ================================================================ cell state */

enum fault { F_TERMINATE, F_RESTART_FAST, F_RESTART_IMMEDIATE, F_STOPPED, F_CLIENT_KILLED,
             F_SIGTERM };

static const char *const fault_names[] = {
    "server connection terminated (pg_terminate_backend, KILL)", "server fast restart",
    "server immediate restart", "server stopped longer than the timeouts", "client killed",
    "daemon SIGTERM",
};

struct phase;

/* The victim and what the phase left running. */
static struct {
    const struct phase *ph;
    enum fault f;
    bool srv;               /* a server backend (PostgreSQL or MariaDB), not SQLite */
    bool my;                /* ... MariaDB */
    bool locked;            /* the observer holds MariaDB's global read lock */
    int v;                  /* the victim's socket, -1 once gone */
    char marker[64];        /* in the victim's statement text */
    long pid;               /* the victim's server process / thread id, or -1 */
    bool inflight;          /* a request of the victim awaits its answer */
    bool held;              /* ... and it is certainly still running */
    bool in_tx;             /* the victim is inside a transaction */
    bool wrote;             /* it inserted a row into fm_t in that transaction */
    bool committed;         /* that row was committed (READY 'I' after COMMIT) */
    bool unknown;           /* a COMMIT was cut: either outcome is right */
    bool down;              /* the server is stopped */
    struct obs *obs;
} C = { .v = -1, .pid = -1 };

static bool is_server(void)
{
    return strcmp(h_profile()->name, "sqlite") != 0;
}

/* ================================================================ helpers */

static double pool_num(const char *a, const char *b)
{
    return H_STATUS_NUM("/pools", a, b);
}

static double pool_total(const char *k)
{
    return H_STATUS_NUM("/pools", "totals", k);
}

/* One request of the victim that must succeed with txstate tx. */
static struct fc_res victim_ok(const char *sql, char tx)
{
    struct fc_res r;
    char d[400];
    fc_query(C.v, sql, NULL, 0, FC_ANSWER_MS, &r);
    cr_assert(r.kind == FC_READY && r.tx == tx, "%s: %s (expected READY '%c')", sql,
              fc_describe(&r, d, sizeof(d)), tx);
    return r;
}

static void victim_begin(void)
{
    struct fc_res r;
    char d[400];
    cr_assert(fc_send_begin(C.v), "send BEGIN");
    fc_read(C.v, FC_ANSWER_MS, &r);
    cr_assert(r.kind == FC_READY && r.tx == 'T', "BEGIN: %s", fc_describe(&r, d, sizeof(d)));
    C.in_tx = true;
}

static void victim_insert(void)
{
    victim_ok("INSERT INTO fm_t VALUES (1)", 'T');
    C.wrote = true;
}

/* Inside a transaction on a server: the victim's server process (thread). */
static void victim_pid(void)
{
    struct fc_res r = victim_ok(fs_session_id_sql(), 'T');
    cr_assert(r.have_int, "%s returned no integer", fs_session_id_sql());
    C.pid = (long)r.first_int;
}

/* A statement that runs until something stops it (PostgreSQL: long enough
 * for any fault, except under SIGTERM, where it must end within the drain
 * so that the drain's documented path is taken). */
static void long_sql(char *buf, size_t len)
{
    if (!C.srv)
        snprintf(buf, len, "%s", h_profile()->endless_sql);
    else
        snprintf(buf, len, "SELECT %s(%s) /* %s */", C.my ? "SLEEP" : "pg_sleep",
                 C.f == F_SIGTERM ? "1.5" : "60", C.marker);
}

/* Await the victim's statement running: on a server its marker is active
 * (pg_stat_activity, PROCESSLIST; C.pid gets its process), else the pool
 * shows an active client. */
static void await_running(const char *what)
{
    if (C.srv) {
        cr_assert(H_AWAIT((C.pid = obs_active_pid(&C.obs, C.marker)) > 0, 10000),
                  "%s never showed up as running on the server", what);
    } else {
        cr_assert(H_AWAIT(pool_num("clients", "active") >= 1, 10000), "%s never started",
                  what);
    }
    C.inflight = C.held = true;
}

static void obs_must(const char *sql)
{
    cr_assert(obs_exec(&C.obs, sql), "observer: %s: %s", sql, obs_error(C.obs));
}

/* Let whatever holds the phase go: frozen processes, MariaDB's commit lock. */
static void release_holds(void)
{
    fs_thaw_all();
    if (C.locked && obs_exec(&C.obs, "UNLOCK TABLES"))
        C.locked = false;
}

/* ================================================================ phases */

/* Connecting: the postmaster is frozen (new connections hang in its accept
 * queue) and the pool's idle server connections are terminated, so the
 * victim's request waits for a connect that cannot finish. The bystander
 * holds a connection of its own (in a transaction) from before the freeze. */
static void hold_connect_for(uint8_t type)
{
    by_start(FC_ANSWER_MS, true, 0, C.my);
    cr_assert_eq(obs_int(&C.obs, "SELECT 1"), 1, "the observer must connect before the freeze");
    if (!C.my)
        fs_freeze(fs_postmaster());
    cr_assert_geq(obs_kill_idle(&C.obs, B.sid), 0, "observer: %s", obs_error(C.obs));
    cr_assert(H_AWAIT(pool_num("servers", "idle") == 0, 10000),
              "the daemon kept idle server connections that were terminated");
    if (C.my)   /* the whole server: the observer could not kill once frozen */
        fs_freeze(fs_postmaster());
    cr_assert(type == PT_PIN ? fc_send_empty(C.v, PT_PIN) : fc_send_query(C.v, "SELECT 1", NULL, 0));
    cr_assert(H_AWAIT(pool_num("clients", "waiting") >= 1 &&
                      pool_num("servers", "connecting") >= 1, 5000),
              "the victim's request is not waiting for a connect");
    C.inflight = C.held = true;
}

static void enter_connecting(void)
{
    hold_connect_for(PT_QUERY);
}

/* Idle in the pool: the victim's last statement is done and its server
 * connection went back to the pool. */
static void enter_idle(void)
{
    struct fc_res r = victim_ok(C.srv ? fs_session_id_sql() : "SELECT 1", 'I');
    C.pid = C.srv && r.have_int ? (long)r.first_int : -1;
    cr_assert(H_AWAIT(pool_num("servers", "busy") == 0, 5000));
}

/* The first statement of a protocol-BEGIN transaction (on PostgreSQL the
 * daemon sends the server's BEGIN together with it: deferred BEGIN). */
static void enter_first_stmt(void)
{
    char sql[256];
    victim_begin();
    long_sql(sql, sizeof(sql));
    cr_assert(fc_send_query(C.v, sql, NULL, 0));
    await_running("the transaction's first statement");
}

/* A later statement of a transaction that has written a row. */
static void enter_later_stmt(void)
{
    char sql[256];
    victim_begin();
    victim_insert();
    long_sql(sql, sizeof(sql));
    cr_assert(fc_send_query(C.v, sql, NULL, 0));
    await_running("the transaction's second statement");
}

/* Streaming a long result to a client that has stopped reading. */
static void enter_streaming(void)
{
    char sql[4096], pad[101];   /* MariaDB's series_sql is long */
    memset(pad, 'p', 100);
    pad[100] = '\0';
    cr_assert_lt((size_t)snprintf(sql, sizeof(sql), "%s /* %s */", h_profile()->series_sql,
                                  C.marker), sizeof(sql), "the streaming statement is cut");
    dbpool_value p[2] = { dbpool_int(2000000), dbpool_text(pad) };
    cr_assert(fc_send_query(C.v, sql, p, 2));
    struct h_frame f;
    cr_assert_eq(h_raw_read_frame(C.v, FC_ANSWER_MS, &f), 1, "the stream did not start");
    h_frame_free(&f);
    await_running("the streaming statement");   /* and the victim reads no more */
}

/* MariaDB: the whole server frozen, to hold what the phase sends next; the
 * bystander starts first (it could not connect to a frozen server). */
static void freeze_mysql(bool by_in_tx)
{
    by_start(FC_ANSWER_MS, by_in_tx, 0, false);
    fs_freeze(fs_postmaster());
}

/* MariaDB: the observer takes the global read lock, so a COMMIT of a
 * transaction that wrote waits ("Waiting for commit lock") until
 * release_holds, a KILL or the server's end. */
static void hold_commits_mysql(void)
{
    obs_must("FLUSH TABLES WITH READ LOCK");
    C.locked = true;
}

/* COMMIT in flight: on PostgreSQL a deferred constraint trigger sleeps at
 * commit time; on MariaDB the COMMIT waits for the commit lock; SQLite's
 * COMMIT cannot be held, the fault follows it. */
static void enter_commit(void)
{
    char sql[200];
    if (C.srv && !C.my) {
        struct fc_res r;
        int fd = fc_open(h_paths()->sock, FC_ANSWER_MS);
        cr_assert_geq(fd, 0);
        snprintf(sql, sizeof(sql), "pg_sleep(%s)", C.f == F_SIGTERM ? "1.5" : "60");
        char fn[512];
        snprintf(fn, sizeof(fn), "CREATE FUNCTION fm_slow() RETURNS trigger LANGUAGE plpgsql "
                 "AS $$ BEGIN PERFORM %s; RETURN NULL; END $$", sql);
        fc_query(fd, fn, NULL, 0, FC_ANSWER_MS, &r);
        cr_assert(fc_is(&r, 0), "%s", r.msg);
        fc_query(fd, "CREATE CONSTRAINT TRIGGER fm_slow AFTER INSERT ON fm_t DEFERRABLE "
                 "INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION fm_slow()", NULL, 0,
                 FC_ANSWER_MS, &r);
        cr_assert(fc_is(&r, 0), "%s", r.msg);
        close(fd);
    }
    victim_begin();
    victim_insert();
    if (C.srv)
        victim_pid();
    if (C.my)
        hold_commits_mysql();
    cr_assert(fc_send_empty(C.v, PT_COMMIT));
    C.inflight = C.unknown = true;
    if (C.srv) {
        if (C.my)
            snprintf(sql, sizeof(sql), "SELECT count(*) FROM information_schema.PROCESSLIST "
                     "WHERE ID = %ld AND COMMAND = 'Query' AND INFO LIKE 'COMMIT%%'", C.pid);
        else
            snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_stat_activity WHERE pid = %ld "
                     "AND state = 'active'", C.pid);
        cr_assert(H_AWAIT(obs_int(&C.obs, sql) == 1, 10000), "the COMMIT never ran");
        C.held = true;
    }
}

/* A transaction with a write, idle: the fault comes before its ROLLBACK. */
static void enter_rollback(void)
{
    victim_begin();
    victim_insert();
    if (C.srv)
        victim_pid();
}

/* Reset between clients: a client vanished inside a transaction and the
 * daemon is resetting its server connection before reuse. The backend (on
 * MariaDB the server) is frozen, so the reset (PostgreSQL's ROLLBACK,
 * MariaDB's COM_RESET_CONNECTION) stays in flight. */
static void enter_reset(void)
{
    victim_begin();
    victim_insert();
    victim_pid();
    if (C.my)
        freeze_mysql(false);
    else
        fs_freeze((pid_t)C.pid);
    close(C.v);
    C.v = -1;
    C.in_tx = false;
    cr_assert(H_AWAIT(pool_num("clients", "connected") == (B.started ? 1 : 0), 5000),
              "the vanished client's session was not closed");
    cr_assert_geq(pool_num("servers", "busy"), 1, "no server connection is being reset");
}

/* Cancel in flight: a CANCEL was sent for a running statement. On
 * PostgreSQL the statement's backend is frozen, so the cancel cannot
 * complete before the fault; on MariaDB the whole server is, so the
 * cancel's side connection (KILL QUERY) cannot. */
static void enter_cancel(void)
{
    char sql[256];
    long_sql(sql, sizeof(sql));
    if (C.srv)
        snprintf(sql, sizeof(sql), "SELECT %s(60) /* %s */", C.my ? "SLEEP" : "pg_sleep",
                 C.marker);
    cr_assert(fc_send_query(C.v, sql, NULL, 0));
    await_running("the statement to cancel");
    if (C.my)
        freeze_mysql(false);
    else if (C.srv)
        fs_freeze((pid_t)C.pid);
    cr_assert(fc_send_empty(C.v, PT_CANCEL));
    C.held = C.srv;   /* SQLite's interrupt cannot be held: it may be over already */
}

/* ---- pinned sessions (doc/protocol.md "Pinned sessions"): the victim
 * holds its server connection across transactions. A server fault ends
 * the pin (its next request: CONN_LOST, then it goes on unpinned); a
 * vanished client's connection is reset (DISCARD ALL, COM_RESET_CONNECTION;
 * SQLite: replaced) before reuse. */

static void victim_pin(void)
{
    struct fc_res r;
    char d[400];
    cr_assert(fc_send_empty(C.v, PT_PIN), "send PIN");
    fc_read(C.v, FC_ANSWER_MS, &r);
    cr_assert(r.kind == FC_READY && r.tx == 'I', "PIN: %s", fc_describe(&r, d, sizeof(d)));
    cr_assert_eq(pool_num("clients", "pinned"), 1, "/pools does not count the pin");
}

/* The victim gives its pin back (it is then at rest, like the others). */
static void victim_unpin(void)
{
    struct fc_res r;
    char d[400];
    cr_assert(fc_send_empty(C.v, PT_UNPIN), "send UNPIN");
    fc_read(C.v, FC_ANSWER_MS, &r);
    cr_assert(r.kind == FC_READY && r.tx == 'I', "UNPIN: %s", fc_describe(&r, d, sizeof(d)));
}

/* PIN waiting for a server: the connect it needs is held (as connecting). */
static void enter_pin_waiting(void)
{
    hold_connect_for(PT_PIN);
}

/* Pinned, idle between transactions: the server connection stays bound. */
static void enter_pinned_idle(void)
{
    victim_pin();
    struct fc_res r = victim_ok(C.srv ? fs_session_id_sql() : "SELECT 1", 'I');
    C.pid = C.srv && r.have_int ? (long)r.first_int : -1;
    cr_assert_eq(pool_num("servers", "busy"), 1, "the pinned server went back to the pool");
}

/* Pinned, inside a transaction that wrote, idle before its ROLLBACK. */
static void enter_pinned_tx(void)
{
    victim_pin();
    victim_begin();
    victim_insert();
    if (C.srv)
        victim_pid();
}

/* Pinned, an autocommit statement running (after it the session keeps
 * its server: on SIGTERM the drain closes it once the statement is done). */
static void enter_pinned_stmt(void)
{
    char sql[256];
    victim_pin();
    long_sql(sql, sizeof(sql));
    cr_assert(fc_send_query(C.v, sql, NULL, 0));
    await_running("the pinned session's statement");
}

/* Pinned, streaming a long result to a client that has stopped reading
 * (back-pressure: the statement paused). */
static void enter_pinned_streaming(void)
{
    victim_pin();
    enter_streaming();
}

/* UNPIN answered, the session reset of its server held (its backend, on
 * MariaDB the server, frozen); the client is still connected, unpinned. */
static void enter_pinned_reset(void)
{
    struct fc_res r;
    char d[400];
    victim_pin();
    r = victim_ok(fs_session_id_sql(), 'I');
    cr_assert(r.have_int, "%s returned no integer", fs_session_id_sql());
    C.pid = (long)r.first_int;
    if (C.my)
        freeze_mysql(false);
    else
        fs_freeze((pid_t)C.pid);
    cr_assert(fc_send_empty(C.v, PT_UNPIN), "send UNPIN");
    fc_read(C.v, FC_ANSWER_MS, &r);
    cr_assert(r.kind == FC_READY && r.tx == 'I', "UNPIN with its reset held: %s",
              fc_describe(&r, d, sizeof(d)));
    cr_assert_eq(pool_num("clients", "pinned"), 0, "the pin outlived UNPIN");
    cr_assert_geq(pool_num("servers", "busy"), 1, "no server connection is being reset");
}

#define NA_SERVER (1u << F_TERMINATE | 1u << F_RESTART_FAST | 1u << F_RESTART_IMMEDIATE | \
                   1u << F_STOPPED)
#define CODE(c) (1u << (c))
#define READY_OK 1u    /* bit 0: READY (code 0) is acceptable */

struct phase {
    const char *name;
    void (*enter)(void);
    bool server_only;               /* needs a server: not on SQLite */
    unsigned na;                /* faults that cannot happen in this phase */
    const char *na_why;
    bool by_in_tx;              /* the bystander holds its own connection */
    /* On MariaDB the phase is held by freezing the whole server: to the
     * bystander that is an outage (it may be told UNAVAILABLE or
     * POOL_TIMEOUT while the server is frozen). */
    bool my_freezes;
    /* More outcomes of a server fault on MariaDB, because of that freeze:
     * connects queued while the server was frozen complete when it thaws,
     * just before a restart takes them (CONN_LOST). */
    unsigned my_fault_ok;
    /* What a server fault must end the in-flight request with (bit 0:
     * READY; else 1 << code), and the follow-up request sent after it when
     * nothing was in flight (NULL: none) with what it must end with while
     * the server is down / after it is back. */
    unsigned server_fault_ok;
    const char *followup;
    unsigned down_ok, after_ok;
};

static const struct phase PHASES[] = {
    { "connecting", enter_connecting, .server_only = true, .my_freezes = true,
      .my_fault_ok = CODE(DBPOOL_E_CONN_LOST),
      .na = 1u << F_TERMINATE,
      .na_why = "no server connection exists yet (the stopped and restarted server cover a "
                "failing connect)",
      .by_in_tx = true, .server_fault_ok = READY_OK | CODE(DBPOOL_E_UNAVAILABLE) },
    /* Right after a restart the pool may still be down (it failed to
     * connect while the server was away) until its next backoff attempt:
     * UNAVAILABLE then, and check_victim_recovers bounds the wait. */
    { "idle", enter_idle, .followup = "SELECT 1", .down_ok = CODE(DBPOOL_E_UNAVAILABLE),
      .after_ok = READY_OK | CODE(DBPOOL_E_UNAVAILABLE) },
    { "first_stmt", enter_first_stmt, .server_fault_ok = CODE(DBPOOL_E_CONN_LOST) },
    { "later_stmt", enter_later_stmt, .server_fault_ok = CODE(DBPOOL_E_CONN_LOST) },
    { "streaming", enter_streaming, .server_fault_ok = CODE(DBPOOL_E_CONN_LOST) },
    { "commit", enter_commit, .server_fault_ok = CODE(DBPOOL_E_CONN_LOST) },
    { "rollback", enter_rollback, .followup = "ROLLBACK",
      .down_ok = READY_OK | CODE(DBPOOL_E_CONN_LOST),
      .after_ok = READY_OK | CODE(DBPOOL_E_CONN_LOST) },
    { "reset", enter_reset, .server_only = true, .my_freezes = true, .na = 1u << F_CLIENT_KILLED,
      .na_why = "the reset runs because the client is already gone" },
    { "cancel", enter_cancel, .my_freezes = true,
      .server_fault_ok = CODE(DBPOOL_E_CANCELED) | CODE(DBPOOL_E_CONN_LOST) },
    { "pin_waiting", enter_pin_waiting, .server_only = true, .my_freezes = true,
      .my_fault_ok = CODE(DBPOOL_E_CONN_LOST), .na = 1u << F_TERMINATE,
      .na_why = "no server connection exists yet", .by_in_tx = true,
      .server_fault_ok = READY_OK | CODE(DBPOOL_E_UNAVAILABLE) },
    /* The pinned connection is not watched while bound: its next request
     * finds it dead (CONN_LOST, "no longer pinned"). */
    { "pinned_idle", enter_pinned_idle, .followup = "SELECT 1",
      .down_ok = CODE(DBPOOL_E_CONN_LOST), .after_ok = CODE(DBPOOL_E_CONN_LOST) },
    { "pinned_tx", enter_pinned_tx, .followup = "ROLLBACK",
      .down_ok = READY_OK | CODE(DBPOOL_E_CONN_LOST),
      .after_ok = READY_OK | CODE(DBPOOL_E_CONN_LOST) },
    { "pinned_stmt", enter_pinned_stmt, .server_fault_ok = CODE(DBPOOL_E_CONN_LOST) },
    { "pinned_streaming", enter_pinned_streaming, .server_fault_ok = CODE(DBPOOL_E_CONN_LOST) },
    { "pinned_reset", enter_pinned_reset, .server_only = true, .my_freezes = true,
      .followup = "SELECT 1",
      .down_ok = CODE(DBPOOL_E_UNAVAILABLE) | CODE(DBPOOL_E_POOL_TIMEOUT),
      .after_ok = READY_OK | CODE(DBPOOL_E_UNAVAILABLE) },
};

static const struct phase *phase_named(const char *name)
{
    for (size_t i = 0; i < sizeof(PHASES) / sizeof(PHASES[0]); i++)
        if (strcmp(PHASES[i].name, name) == 0)
            return &PHASES[i];
    cr_assert_fail("no phase %s", name);
    return NULL;
}

/* ================================================================ checks */

static void expect_res(const struct fc_res *r, unsigned ok, const char *what)
{
    char d[400];
    bool good = (r->kind == FC_READY && (ok & READY_OK)) ||
                (r->kind == FC_ERROR && r->code < 32 && (ok & CODE(r->code)));
    cr_assert(good, "[%s x %s] %s ended with %s", C.ph->name, fault_names[C.f], what,
              fc_describe(r, d, sizeof(d)));
    cr_assert_eq(r->tx, 'I', "[%s x %s] %s: txstate '%c' after a lost connection", C.ph->name,
                 fault_names[C.f], what, r->tx);
}

/* The victim's in-flight request (or the follow-up) after a server fault. */
static void check_victim_server_fault(void)
{
    struct fc_res r;
    if (C.v < 0)
        return;
    if (C.inflight) {
        fc_read(C.v, FC_ANSWER_MS, &r);
        expect_res(&r, C.ph->server_fault_ok | (C.my ? C.ph->my_fault_ok : 0),
                   "the request in flight");
        if (r.kind == FC_READY && C.ph->enter == enter_pin_waiting)
            victim_unpin();   /* the PIN got a server once the server was back */
    } else if (C.ph->followup) {
        fc_query(C.v, C.ph->followup, NULL, 0, FC_ANSWER_MS, &r);
        expect_res(&r, C.down ? C.ph->down_ok : C.ph->after_ok, C.ph->followup);
    }
    C.in_tx = false;
}

/* The victim's session works again (server faults: it must survive). */
static void check_victim_recovers(void)
{
    struct fc_res r;
    char d[400];
    if (C.v < 0)
        return;
    uint64_t deadline = h_now_ms() + RECOVER_MS;
    do {
        fc_query(C.v, "SELECT 1", NULL, 0, FC_ANSWER_MS, &r);
        cr_assert(r.kind == FC_READY || r.kind == FC_ERROR,
                  "[%s x %s] the victim's session is gone or hangs after the fault: %s",
                  C.ph->name, fault_names[C.f], fc_describe(&r, d, sizeof(d)));
        if (r.kind == FC_READY)
            break;
        h_sleep_ms(100);
    } while (h_now_ms() < deadline);
    cr_assert(r.kind == FC_READY && r.tx == 'I', "[%s x %s] the victim never recovered: %s",
              C.ph->name, fault_names[C.f], fc_describe(&r, d, sizeof(d)));
}

static void check_bystander(uint64_t fault_end)
{
    cr_assert_eq(atomic_load(&B.hangs), 0, "[%s x %s] the bystander hung: %s", C.ph->name,
                 fault_names[C.f], B.first_bad);
    if (C.f != F_SIGTERM) {
        cr_assert(H_AWAIT(atomic_load(&B.last_ok_ms) > fault_end, RECOVER_MS),
                  "[%s x %s] the bystander was not served again after the fault (%d ok, "
                  "first problem: %s)", C.ph->name, fault_names[C.f], atomic_load(&B.ok),
                  B.first_bad[0] ? B.first_bad : "none");
    }
    cr_assert_eq(atomic_load(&B.bad), 0, "[%s x %s] the bystander got what the fault does not "
                 "explain: %s", C.ph->name, fault_names[C.f], B.first_bad);
}

static bool pool_quiet(void)
{
    char *body = NULL;
    int st = h_http_get("/pools", &body);
    bool q = st == 200 && H_JSON_NUM(body, "servers", "busy") == 0 &&
             H_JSON_NUM(body, "servers", "connecting") == 0 &&
             H_JSON_NUM(body, "clients", "active") == 0 &&
             H_JSON_NUM(body, "clients", "waiting") == 0 &&
             H_JSON_NUM(body, "clients", "pinned") == 0;
    free(body);
    return q;
}

static long fm_rows(void)
{
    if (C.srv)
        return obs_int(&C.obs, C.my ? "SELECT count(*) FROM fm_t" : "SELECT count(*) FROM public.fm_t");
    int fd = fc_open(h_paths()->sock, FC_ANSWER_MS);
    cr_assert_geq(fd, 0);
    struct fc_res r;
    fc_query(fd, "SELECT count(*) FROM fm_t", NULL, 0, FC_ANSWER_MS, &r);
    close(fd);
    return r.kind == FC_READY && r.have_int ? (long)r.first_int : -1;
}

/* Nothing leaked once the victim's work is over. */
static void check_no_leak(void)
{
    char body[64];
    cr_assert(H_AWAIT(pool_quiet(), 10000),
              "[%s x %s] the pool did not go back to rest (a server busy, connecting or a "
              "client active/waiting/pinned): /pools servers.busy=%g connecting=%g "
              "clients.active=%g waiting=%g pinned=%g", C.ph->name, fault_names[C.f],
              pool_num("servers", "busy"), pool_num("servers", "connecting"),
              pool_num("clients", "active"), pool_num("clients", "waiting"),
              pool_num("clients", "pinned"));
    if (C.srv) {
        cr_assert(H_AWAIT(obs_busy_backends(&C.obs) == 0, 10000),
                  "[%s x %s] a session of the pool's user is left active or idle in "
                  "transaction on the server (%ld)", C.ph->name, fault_names[C.f],
                  obs_busy_backends(&C.obs));
        cr_assert(H_AWAIT(obs_backends(&C.obs) == (long)pool_num("servers", "open"), 10000),
                  "[%s x %s] the server has %ld sessions of the pool's user, the daemon "
                  "counts %g open", C.ph->name, fault_names[C.f], obs_backends(&C.obs),
                  pool_num("servers", "open"));
    }
    if (C.wrote && !C.unknown) {
        long n = fm_rows();
        snprintf(body, sizeof(body), "%ld", n);
        cr_assert_eq(n, C.committed ? 1 : 0, "[%s x %s] fm_t has %s rows: the victim's %s",
                     C.ph->name, fault_names[C.f], body,
                     C.committed ? "committed row is missing" : "rolled-back row is there");
    }
}

/* ================================================================ faults */

static void terminate_victims_server(void)
{
    if (C.pid > 0) {
        /* A frozen MariaDB cannot take the KILL: thaw it first (whatever the
         * freeze held, a reset or a cancel, then races the KILL: both
         * outcomes are documented). A COMMIT waiting for the commit lock
         * stays held until the KILL. */
        if (C.my)
            fs_thaw_all();
        cr_assert(obs_kill(&C.obs, C.pid), "observer: kill %ld: %s", C.pid, obs_error(C.obs));
        release_holds();
        cr_assert(H_AWAIT(obs_gone(&C.obs, C.pid), 10000), "backend %ld survived", C.pid);
    }
}

static void inject_server_fault(void)
{
    switch (C.f) {
    case F_TERMINATE: {
        double closes = pool_total("server_closes");
        terminate_victims_server();
        if (C.ph->enter == enter_idle)   /* the daemon notices idle connections dying */
            cr_assert(H_AWAIT(pool_total("server_closes") > closes, 5000),
                      "the daemon did not notice its idle server connection terminated");
        break;
    }
    case F_RESTART_FAST:
    case F_RESTART_IMMEDIATE:
        fs_shutdown(C.f == F_RESTART_FAST ? 'f' : 'i');
        fs_resume();
        break;
    case F_STOPPED:
        fs_shutdown('f');
        C.down = true;
        break;
    default:
        break;
    }
}

static void server_fault_cell(void)
{
    inject_server_fault();
    check_victim_server_fault();
    if (C.down) {
        /* Stay down longer than acquireTimeout + connect timeout: every
         * request (the bystander's) must still be answered. */
        h_sleep_ms(DOWN_HOLD_MS);  /* the duration under test */
        fs_resume();
        C.down = false;
    }
    uint64_t end = h_now_ms();
    check_victim_recovers();
    check_bystander(end);
}

static void client_killed_cell(void)
{
    close(C.v);          /* abruptly: no TERMINATE, unread results dropped */
    C.v = -1;
    release_holds();
    if (C.srv && C.marker[0])
        cr_assert(H_AWAIT(obs_active_pid(&C.obs, C.marker) < 0, 10000),
                  "[%s x client killed] the server still runs the vanished client's statement",
                  C.ph->name);
    uint64_t end = h_now_ms();
    check_bystander(end);
}

/* /health says shutting_down, or the daemon has already closed its status
 * socket (it exits at once when nothing is left to drain). Never asserts. */
static bool shutting_down(void)
{
    static const char req[] = "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    char resp[4096];
    size_t len = 0;
    int fd = h_raw_try_connect(h_paths()->status_sock);

    if (fd < 0)
        return true;
    if (h_raw_send(fd, req, sizeof(req) - 1)) {
        uint64_t deadline = h_now_ms() + 2000;
        while (len < sizeof(resp) - 1 && h_now_ms() < deadline) {
            struct pollfd p = { fd, POLLIN, 0 };
            if (poll(&p, 1, 100) <= 0)
                continue;
            ssize_t r = recv(fd, resp + len, sizeof(resp) - 1 - len, 0);
            if (r <= 0)
                break;
            len += (size_t)r;
        }
    }
    close(fd);
    resp[len] = '\0';
    return len == 0 || strstr(resp, "shutting_down") != NULL;
}

/* Read one terminal frame of the victim during the drain. */
static void drain_read(struct fc_res *r, const char *what)
{
    char d[400];
    fc_read(C.v, SHUTDOWN_TIMEOUT_MS + FC_ANSWER_MS, r);
    cr_assert(r->kind != FC_TIMEOUT, "[%s x SIGTERM] %s: %s", C.ph->name, what,
              fc_describe(r, d, sizeof(d)));
    cr_assert(r->kind != FC_EOF, "[%s x SIGTERM] %s: bare EOF instead of ERROR SHUTDOWN "
              "(protocol.md: every request gets one terminal frame, SHUTDOWN when the session "
              "is closed for the shutdown; operations.md: requests during the drain get ERROR "
              "SHUTDOWN)", C.ph->name, what);
}

static void expect_shutdown_then_eof(const char *what)
{
    struct fc_res r;
    char d[400];
    drain_read(&r, what);
    cr_assert(fc_is(&r, DBPOOL_E_SHUTDOWN), "[%s x SIGTERM] %s: %s, expected ERROR SHUTDOWN",
              C.ph->name, what, fc_describe(&r, d, sizeof(d)));
    fc_read(C.v, FC_ANSWER_MS, &r);
    cr_assert_eq(r.kind, FC_EOF, "[%s x SIGTERM] the session stayed open after ERROR "
                 "SHUTDOWN: %s", C.ph->name, fc_describe(&r, d, sizeof(d)));
}

/* The victim during the drain (operations.md): a session inside a
 * transaction may finish it; a request from a session outside one gets
 * ERROR SHUTDOWN and the session is closed; a request still running when
 * shutdownTimeout expires is cut (ERROR SHUTDOWN). */
static void sigterm_victim(void)
{
    struct fc_res r, p;
    char d[400];

    if (C.v < 0)
        return;
    if (!C.inflight && !C.in_tx) {       /* idle: closed promptly */
        fc_read(C.v, 5000, &r);
        cr_assert(r.kind == FC_EOF || fc_is(&r, DBPOOL_E_SHUTDOWN),
                  "[%s x SIGTERM] an idle session was not closed: %s", C.ph->name,
                  fc_describe(&r, d, sizeof(d)));
        return;
    }
    if (C.inflight) {
        fc_send_empty(C.v, PT_PING);   /* pipelined behind it, during the drain */
        drain_read(&r, "the request in flight");
    } else {
        fc_send_pair(C.v, PT_ROLLBACK, PT_PING);   /* a failed send shows as EOF */
        drain_read(&r, "ROLLBACK during the drain");
        C.in_tx = false;
        C.held = true;                   /* the PING arrived with it, during the drain */
    }
    if (fc_is(&r, DBPOOL_E_SHUTDOWN)) {
        fc_read(C.v, FC_ANSWER_MS, &r);
        cr_assert_eq(r.kind, FC_EOF, "the session stayed open after ERROR SHUTDOWN: %s",
                     fc_describe(&r, d, sizeof(d)));
        return;
    }
    cr_assert(r.kind == FC_READY || fc_is(&r, DBPOOL_E_CANCELED),
              "[%s x SIGTERM] the request in flight ended with %s", C.ph->name,
              fc_describe(&r, d, sizeof(d)));
    if (C.ph->enter == enter_commit && r.kind == FC_READY) {
        C.committed = true;
        C.unknown = false;
    }
    if (r.tx == 'T') {                   /* the transaction may go on and commit */
        drain_read(&p, "a PING inside the transaction during the drain");
        cr_assert(p.kind == FC_READY && p.tx == 'T', "PING in a draining transaction: %s",
                  fc_describe(&p, d, sizeof(d)));
        fc_send_pair(C.v, PT_COMMIT, PT_PING);
        drain_read(&p, "COMMIT during the drain");
        cr_assert(p.kind == FC_READY && p.tx == 'I', "COMMIT during the drain: %s",
                  fc_describe(&p, d, sizeof(d)));
        C.committed = C.wrote;
    }
    if (!C.held) {
        /* The request may have ended before the signal: the session was
         * then idle and may be closed before the PING is read. */
        fc_read(C.v, FC_ANSWER_MS, &p);
        cr_assert(p.kind == FC_EOF || fc_is(&p, DBPOOL_E_SHUTDOWN) || p.kind == FC_READY,
                  "%s", fc_describe(&p, d, sizeof(d)));
        return;
    }
    expect_shutdown_then_eof("a request after the transaction ended, during the drain");
}

static void sigterm_cell(void)
{
    atomic_store(&B.shutting, true);
    uint64_t t0 = h_now_ms();
    h_signal(SIGTERM);
    if (C.v >= 0 && (C.inflight || C.in_tx))
        cr_assert(H_AWAIT(shutting_down(), 5000), "/health never said shutting_down");
    if (C.ph->enter == enter_cancel || (C.my && C.ph->enter == enter_commit))
        release_holds();                 /* let the cancel / COMMIT complete during the drain */
    sigterm_victim();
    int st = h_wait_exit(SHUTDOWN_TIMEOUT_MS + 5000);
    cr_assert_neq(st, -1, "[%s x SIGTERM] dbpoold did not exit within shutdownTimeout + 5 s "
                  "(%llu ms after SIGTERM)", C.ph->name,
                  (unsigned long long)(h_now_ms() - t0));
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "[%s x SIGTERM] exit status %d",
              C.ph->name, st);
    fs_thaw_all();
    check_bystander(0);
    by_stop();
    if (C.srv) {
        cr_assert(H_AWAIT(obs_busy_backends(&C.obs) == 0, 5000),
                  "[%s x SIGTERM] the daemon exited leaving a session active or idle in "
                  "transaction on the server", C.ph->name);
        cr_assert(H_AWAIT(obs_backends(&C.obs) == 0, 5000),
                  "[%s x SIGTERM] server sessions outlive the daemon", C.ph->name);
        if (C.wrote && !C.unknown)
            cr_assert_eq(fm_rows(),
                         C.committed ? 1 : 0, "[%s x SIGTERM] fm_t is wrong", C.ph->name);
    }
    h_assert_log_clean();
}

/* ================================================================ the cell */

static void setup_daemon(void)
{
    struct h_opts o = {
        .max_open_conns = 3,
        .shutdown_timeout = "3s",
        .pool_settings = C.srv ? "acquireTimeout = \"1s500ms\"; timeout = \"1s\"; "
                                "retryDelay = \"100ms\"; retryMaxDelay = \"1s\"; maxRetries = 2; "
                                "healthCheckInterval = \"200ms\";"
                              : "acquireTimeout = \"1s500ms\";",
    };
    h_start(&o);
    int fd = fc_open(h_paths()->sock, FC_ANSWER_MS);
    cr_assert_geq(fd, 0, "setup session: %s", strerror(errno));
    struct fc_res r;
    fc_query(fd, "CREATE TABLE fm_t (id INTEGER)", NULL, 0, FC_ANSWER_MS, &r);
    cr_assert(fc_is(&r, 0), "CREATE TABLE fm_t: %s", r.msg);
    close(fd);
    C.v = fc_open(h_paths()->sock, FC_ANSWER_MS);
    cr_assert_geq(C.v, 0, "the victim could not connect: %s", strerror(errno));
}

static unsigned by_allowed_fault(void);

static unsigned by_allowed(void)
{
    /* The thaw before the KILL lets the held reset / cancel finish: the
     * connection may be back in the pool and the bystander's when the KILL
     * lands (as in the idle phase). */
    unsigned frozen = C.my && C.ph->my_freezes
                          ? CODE(DBPOOL_E_UNAVAILABLE) | CODE(DBPOOL_E_POOL_TIMEOUT) |
                                (C.f == F_TERMINATE ? CODE(DBPOOL_E_CONN_LOST) : 0)
                          : 0;
    return frozen | by_allowed_fault();
}

static unsigned by_allowed_fault(void)
{
    switch (C.f) {
    case F_RESTART_FAST:
    case F_RESTART_IMMEDIATE:
    case F_STOPPED:
        return CODE(DBPOOL_E_UNAVAILABLE) | CODE(DBPOOL_E_CONN_LOST) |
               CODE(DBPOOL_E_POOL_TIMEOUT);
    case F_TERMINATE:   /* idle: the bystander may have taken the victim's connection */
        return C.ph->enter == enter_idle ? CODE(DBPOOL_E_CONN_LOST) : 0;
    case F_SIGTERM:
        return CODE(DBPOOL_E_SHUTDOWN);
    default:
        return 0;
    }
}

static void run_cell(const char *phase, enum fault f)
{
    C.ph = phase_named(phase);
    C.f = f;
    C.srv = is_server();
    C.my = C.srv && fs_mysql();
    if (!C.srv && (C.ph->server_only || (NA_SERVER & (1u << f))))
        cr_skip_test("%s x %s: not applicable to %s (no server process)", phase,
                     fault_names[f], h_profile()->name);
    if (C.ph->na & (1u << f))
        cr_skip_test("%s x %s: not applicable: %s", phase, fault_names[f], C.ph->na_why);
    snprintf(C.marker, sizeof(C.marker), "fm_marker_%d", (int)getpid());
    setup_daemon();
    C.ph->enter();
    by_start(FC_ANSWER_MS, C.ph->by_in_tx, by_allowed(), C.my);
    B.allowed = by_allowed();
    if (f == F_SIGTERM) {
        sigterm_cell();
        return;
    }
    if (f == F_CLIENT_KILLED)
        client_killed_cell();
    else
        server_fault_cell();
    by_stop();
    check_no_leak();
    cr_assert(h_wait_exit(0) == -1, "the daemon died");
    if (C.v >= 0)
        close(C.v);
    C.v = -1;
    h_stop_ok();
}

static void faults_init(void)
{
    fs_init();
}

static void faults_fini(void)
{
    fs_thaw_all();
    by_stop();
    h_fini();
    fs_cleanup();
    obs_close(&C.obs);
}

TestSuite(faults, .init = faults_init, .fini = faults_fini, .timeout = 90);

/* ================================================================ the matrix */

#define FAULTS(X, phase)                                                      \
    X(phase, terminate, F_TERMINATE)                                          \
    X(phase, restart_fast, F_RESTART_FAST)                                    \
    X(phase, restart_immediate, F_RESTART_IMMEDIATE)                          \
    X(phase, stopped, F_STOPPED)                                              \
    X(phase, client_killed, F_CLIENT_KILLED)                                  \
    X(phase, sigterm, F_SIGTERM)

#define CELL(phase, fname, fault) \
    Test(faults, phase##_x_##fname) { run_cell(#phase, fault); }

FAULTS(CELL, connecting)
FAULTS(CELL, idle)
FAULTS(CELL, first_stmt)
FAULTS(CELL, later_stmt)
FAULTS(CELL, streaming)
FAULTS(CELL, commit)
FAULTS(CELL, rollback)
FAULTS(CELL, reset)
FAULTS(CELL, cancel)
FAULTS(CELL, pin_waiting)
FAULTS(CELL, pinned_idle)
FAULTS(CELL, pinned_tx)
FAULTS(CELL, pinned_stmt)
FAULTS(CELL, pinned_streaming)
FAULTS(CELL, pinned_reset)
