/*
 * fault_tools.h — what the fault tests (test_faults.c: the phase x fault
 * matrix; test_bank.c: the bank-transfer invariant under faults) need on
 * top of harness.h:
 *
 *   fc_*   a raw protocol client in which EVERY read has a deadline and
 *          nothing asserts, so it can run on worker threads and a daemon
 *          that hangs makes a request fail (FC_TIMEOUT) instead of blocking
 *          the test (libdbpool has no timeouts of its own);
 *   fs_*   the "fault server": a throwaway PostgreSQL of its own
 *          ($DBPOOL_TEST_PG_FAULT_DIR, started by tests/pg/run-pg-tests.sh
 *          through pg-harness.sh) that these tests may stop, restart and
 *          freeze (SIGSTOP) without disturbing the shared test server; the
 *          harness's postgres profile is pointed at it;
 *   obs_*  an observer that talks to that server directly with libpq (as
 *          the `postgres` superuser, not through the daemon), so what the
 *          server really holds (pg_stat_activity, the tables) is checked
 *          independently of the daemon under test, even when it hangs.
 */
#ifndef DBPOOLD_TEST_FAULT_TOOLS_H
#define DBPOOLD_TEST_FAULT_TOOLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <libpq-fe.h>

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

/* Point the postgres profile at $DBPOOL_TEST_PG_FAULT_DIR (asserts it is a
 * running pg-harness.sh server). Call from a suite's .init. */
void fs_init(void);
/* Whether this run uses the fault server (the postgres profile). */
bool fs_active(void);
const char *fs_dir(void);
/* The postmaster's pid (from postmaster.pid), or -1. */
pid_t fs_postmaster(void);
/* Freeze / thaw a server process (the postmaster or one backend). Frozen
 * processes are remembered and thawed by fs_cleanup whatever happens. */
void fs_freeze(pid_t pid);
void fs_thaw_all(void);
/* Shut the server down: 'f' fast (SIGINT), 'i' immediate (SIGQUIT); frozen
 * processes are thawed so they can die; waits (asserts) for the postmaster
 * to exit. */
void fs_shutdown(char mode);
/* Start it again (pg-harness.sh resume; asserts). */
void fs_resume(void);
/* Thread-safe, non-asserting variants for load tests: 0 on success. */
int fs_shutdown_nothrow(char mode);
int fs_resume_nothrow(void);
/* For a suite's .fini: thaw everything and make sure the server runs
 * (never asserts; the next test needs it). */
void fs_cleanup(void);

/* ------------------------------------------------------------ observer */

/* A direct libpq connection to the fault server as `postgres`, cached in
 * *c and re-opened when broken. The first column of the first row of sql
 * as a number, or -1 on any failure (server down). */
long obs_int(PGconn **c, const char *sql);
/* Run sql; true on success. */
bool obs_exec(PGconn **c, const char *sql);
/* The result of sql (NULL on failure); PQclear it. */
PGresult *obs_query(PGconn **c, const char *sql);
void obs_close(PGconn **c);

/* Sessions of the daemon's user (dbpool) that hold a transaction or run a
 * statement: state 'active' or 'idle in transaction%'. -1 if unknown. */
long obs_busy_backends(PGconn **c);
/* All client sessions of user dbpool. */
long obs_backends(PGconn **c);
/* The pid of the session of user dbpool whose statement text contains
 * marker and that runs it now, or -1. */
long obs_active_pid(PGconn **c, const char *marker);

#endif
