/*
 * fault_tools.h — what the fault tests (test_faults.c: the phase x fault
 * matrix; test_bank.c: the bank-transfer invariant under faults) need on
 * top of harness.h:
 *
 *   fc_*   a raw protocol client in which EVERY read has a deadline and
 *          nothing asserts, so it can run on worker threads and a daemon
 *          that hangs makes a request fail (FC_TIMEOUT) instead of blocking
 *          the test (libdbpool has no timeouts of its own);
 *   fs_*   the "fault server": a throwaway PostgreSQL or MariaDB of its
 *          own ($DBPOOL_TEST_PG_FAULT_DIR, started by tests/pg/run-pg-tests.sh
 *          through pg-harness.sh; $DBPOOL_TEST_MYSQL_FAULT_DIR, started by
 *          tests/mysql/run-mysql-tests.sh through mysql-harness.sh) that
 *          these tests may stop, restart and freeze (SIGSTOP) without
 *          disturbing the shared test server; the harness's postgres or
 *          mysql profile is pointed at it;
 *   obs_*  an observer that talks to that server directly (libpq as the
 *          `postgres` superuser; Connector/C as MariaDB's `root`), not
 *          through the daemon, so what the server really holds
 *          (pg_stat_activity / information_schema.PROCESSLIST, the tables)
 *          is checked independently of the daemon under test, even when it
 *          hangs. The per-backend SQL lives here: the tests ask for "the
 *          sessions of the pool's user", "kill that session".
 */
#ifndef DBPOOLD_TEST_FAULT_TOOLS_H
#define DBPOOLD_TEST_FAULT_TOOLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "dbpool.h"

/* ------------------------------------------------------------ raw client */

enum fc_kind { FC_READY, FC_ERROR, FC_EOF, FC_TIMEOUT, FC_BAD };

/* The end of one request: its terminal frame, or how the wait ended. */
struct fc_res {
    enum fc_kind kind;
    char tx;                /* txstate of READY / ERROR */
    int code;               /* ERROR code */
    char sqlstate[6];
    char msg[256];
    long rows;              /* ROW frames before the terminal frame */
    bool have_int;          /* the first value of the first row was an INT64 */
    int64_t first_int;
    uint64_t ms;            /* how long the wait took */
};

/* Connect to the daemon's socket and handshake within timeout_ms: the fd, or
 * -1 (errno set; EPROTO when the answer was not HELLO_OK). */
int fc_open(const char *sock, int timeout_ms);
bool fc_send_query(int fd, const char *sql, const dbpool_value *params, size_t n);
bool fc_send_begin(int fd);
/* COMMIT, ROLLBACK, PING, CANCEL, TERMINATE. */
bool fc_send_empty(int fd, uint8_t type);
/* Two empty frames in one write (e.g. COMMIT + PING: truly pipelined). */
bool fc_send_pair(int fd, uint8_t t1, uint8_t t2);
/* Read frames until the terminal one, EOF, or timeout_ms in total. */
void fc_read(int fd, int timeout_ms, struct fc_res *r);
/* Send a query and read its end. */
void fc_query(int fd, const char *sql, const dbpool_value *params, size_t n, int timeout_ms,
              struct fc_res *r);
/* "READY 'T'", "ERROR CONN_LOST 'I': message", "EOF", "no answer within 8000 ms". */
const char *fc_describe(const struct fc_res *r, char *buf, size_t len);
/* READY, or ERROR with that code (code 0 = READY). */
bool fc_is(const struct fc_res *r, int code);

/* ------------------------------------------------------------ fault server */

/* Point the postgres (mysql) profile at $DBPOOL_TEST_PG_FAULT_DIR
 * ($DBPOOL_TEST_MYSQL_FAULT_DIR); asserts it is set. Call from a suite's
 * .init. Does nothing for SQLite. */
void fs_init(void);
/* Whether this run uses the fault server (the postgres or mysql profile). */
bool fs_active(void);
/* ... and it is the MariaDB one. */
bool fs_mysql(void);
const char *fs_dir(void);
/* The server's main process (PostgreSQL's postmaster; mariadbd, the whole
 * server: one process of threads), or -1. */
pid_t fs_postmaster(void);
/* Freeze / thaw a server process (the postmaster or one backend; on MariaDB
 * only the whole server). Frozen processes are remembered and thawed by
 * fs_cleanup whatever happens. */
void fs_freeze(pid_t pid);
void fs_thaw_all(void);
/* Shut the server down: 'f' fast (PostgreSQL SIGINT; mariadbd SIGTERM),
 * 'i' immediate (SIGQUIT; mariadbd SIGKILL: a crash); frozen processes are
 * thawed so they can die; waits (asserts) for the main process to exit. */
void fs_shutdown(char mode);
/* Start it again (pg-harness.sh / mysql-harness.sh resume; asserts). */
void fs_resume(void);
/* Thread-safe, non-asserting variants for load tests: 0 on success. */
int fs_shutdown_nothrow(char mode);
int fs_resume_nothrow(void);
/* MariaDB: make commits survive a server crash (fs_resume does it after
 * every start; call it once the server runs). 0 on success. */
int fs_durable_nothrow(void);
/* For a suite's .fini: thaw everything and make sure the server runs
 * (never asserts; the next test needs it). */
void fs_cleanup(void);

/* ------------------------------------------------------------ observer */

/* A direct connection to the fault server as its superuser, opened on
 * first use, cached in *c and re-opened when broken (every read has a
 * deadline: a frozen server makes a call fail, not hang). */
struct obs;

/* The first column of the first row of sql as a number, or -1 on any
 * failure (server down). */
long obs_int(struct obs **c, const char *sql);
/* Run sql; true on success. */
bool obs_exec(struct obs **c, const char *sql);
/* Call fn for the first column of every row of sql (as a number); false on
 * failure. */
bool obs_each(struct obs **c, const char *sql, void (*fn)(void *arg, long long v), void *arg);
/* The last error, for messages ("no connection" without one). */
const char *obs_error(struct obs *c);
void obs_close(struct obs **c);

/* Sessions of the daemon's user (dbpool) that hold a transaction or run a
 * statement (PostgreSQL: state 'active' or 'idle in transaction%';
 * MariaDB: a command other than Sleep, or an InnoDB transaction). -1 if
 * unknown. */
long obs_busy_backends(struct obs **c);
/* All client sessions of user dbpool. */
long obs_backends(struct obs **c);
/* The id (pid / thread id) of the session of user dbpool whose statement
 * text contains marker and that runs it now, or -1. */
long obs_active_pid(struct obs **c, const char *marker);
/* Whether the session with that id is gone from the server. */
bool obs_gone(struct obs **c, long id);
/* Terminate that session (pg_terminate_backend / KILL); true if sent. */
bool obs_kill(struct obs **c, long id);
/* Terminate the idle sessions of user dbpool: how many, or -1. PostgreSQL
 * tells idle from idle in transaction; MariaDB does not (both are 'Sleep'):
 * there the session except (an id, or -1) is spared. */
long obs_kill_idle(struct obs **c, long except);
/* Terminate one random session of user dbpool: how many (0 or 1), or -1. */
long obs_kill_random(struct obs **c);
/* SQL that returns the running session's id as INT64 (through the daemon). */
const char *fs_session_id_sql(void);

#endif
