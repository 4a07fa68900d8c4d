/*
 * harness.h — integration-test harness for dbpoold (tests/integration).
 *
 * Every test starts the REAL daemon binary ($DBPOOLD_BIN) in its own
 * temporary directory with a generated libconfig file, drives it through
 * libdbpool (and raw sockets for bad input), and stops it again:
 *
 *   TestSuite(tx, .init = NULL, .fini = h_fini, .timeout = 60);
 *   Test(tx, commit) {
 *       h_start(NULL);                     // default config: one pool "app"
 *       dbpool_conn *c = h_connect();
 *       h_exec(c, "CREATE TABLE t(a INTEGER)");
 *       ...
 *       dbpool_close(c);
 *       h_stop_ok();                       // SIGTERM, exit 0, clean log
 *   }
 *
 * The backend is chosen by $DBPOOL_TEST_BACKEND ("sqlite" by default;
 * "postgres" and "mysql" profiles exist for when their servers are
 * available). struct backend_profile holds the pool's config fragment and
 * the SQL dialect differences the tests need. Write test SQL with `?`
 * placeholders and pass it through h_sql() (the h_* query helpers do it).
 * The server profiles read DBPOOL_TEST_PG_{HOST,PORT,DB,USER,PASSWORD_FILE}
 * (falling back to PGHOST, PGPORT, PGDATABASE, PGUSER as printed by
 * tests/pg/pg-harness.sh) or DBPOOL_TEST_MYSQL_* (as printed by
 * tests/mysql/mysql-harness.sh; HOST is the socket file's path or a host
 * name). The tests of a server
 * backend share one database: h_start serializes them with a lock file
 * (whatever --jobs says) and empties the database (profile reset_sql, or
 * reset_server before the daemon starts).
 *
 * Directories: the test runner creates one root directory ($TMPDIR/
 * dbpoold-it.XXXXXX) and each test gets <root>/<suite>.<test>; a report hook
 * prints the daemon's log (dbpoold.log) of every failed test and removes the
 * directories (DBPOOL_TEST_KEEP=1 keeps them).
 *
 * Threads: the h_* functions that assert (cr_assert) must only be called
 * from the test's main thread; worker threads use the libdbpool API directly
 * and report their failures back.
 */
#ifndef DBPOOLD_TEST_HARNESS_H
#define DBPOOLD_TEST_HARNESS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "dbpool.h"

/* ------------------------------------------------------------ profiles */

/* What differs between backends, as far as the tests are concerned. */
struct backend_profile {
    const char *name;             /* pool type and HELLO_OK backend name */
    /* Body of the pool's type group (without braces) for test directory
     * dir, e.g. `filePath = "<dir>/app.db";`. Returns false (and fills why)
     * when the backend is not available (missing env settings). */
    bool (*pool_group)(char *buf, size_t len, const char *dir, char *why, size_t whylen);
    /* The database outlives the test (a server): tests are serialized with
     * a lock and reset_sql (NULL-terminated) empties the database first. */
    bool shared_server;
    const char *const *reset_sql;
    /* Or empties it before the daemon starts (false + why on failure). */
    bool (*reset_server)(char *why, size_t whylen);
    bool dollar_placeholders;     /* $1, $2, ... instead of ? */
    bool single_writer;           /* writes serialize on one connection (sqlite) */
    bool has_readers;             /* read-only reader connections (sqlite) */

    /* Column types for CREATE TABLE ... */
    const char *t_int, *t_float, *t_text, *t_blob, *t_bool;
    /* ... and the declared types the daemon reports for them. */
    const char *d_int, *d_float, *d_text, *d_blob;
    /* Declared type of an expression column (SELECT ? AS v); NULL: backend-specific, unchecked. */
    const char *d_expr;
    /* Primary key column definition with automatic ids. */
    const char *t_autoinc_pk;

    dbpool_type bool_result;      /* how a BOOL parameter comes back */
    bool float_keeps_neg_zero_in_table; /* a -0.0 stored in a float column reads back as -0.0 */
    bool float_keeps_neg_zero;    /* SELECT ? of a -0.0 parameter returns -0.0 (MariaDB: 0) */
    /* printf format of the concatenation of two string expressions (%s, %s). */
    const char *concat_fmt;

    /* SELECT with 2 parameters (row count, pad text) returning rows
     * (n INT64 1..count, pad TEXT) in order, streaming. */
    const char *series_sql;
    /* printf format of a BLOB literal from hex digits (%s), e.g. x'%s'. */
    const char *blob_literal;
    /* A statement that runs for minutes unless interrupted. */
    const char *endless_sql;
    /* SQLSTATE of a write inside a read-only transaction. */
    const char *sqlstate_read_only;
    /* Constraint/syntax/missing-object errors carry the standard SQLSTATEs
     * (23505, 23502, 23503, 23514, 42601, 42P01, 42703). */
    bool standard_sqlstates;
    /* STMT_DONE carries the inserted row id (SQLite rowid, MySQL AUTO_INCREMENT). */
    bool has_last_insert_id;
    /* A statement error inside a transaction leaves it failed ('E'). */
    bool error_fails_transaction;
    /* Kill a server connection from another session (NULL: not possible):
     * backend_pid_sql returns the session's server process id as INT64,
     * kill_backend_sql takes it as its one parameter. */
    const char *backend_pid_sql;
    const char *kill_backend_sql;
};

/* The profile selected by $DBPOOL_TEST_BACKEND (asserts it is known). */
const struct backend_profile *h_profile(void);
/* A BLOB literal for the hex digits, in the profile's dialect. */
void h_blob_literal(char *buf, size_t len, const char *hex);
/* The expression concatenating string expressions a and b, in the profile's dialect. */
void h_concat(char *buf, size_t len, const char *a, const char *b);

/* Rewrites `?` placeholders outside quotes/comments to `$1`, `$2`, ...
 * Returns a malloc'ed string (caller frees). */
char *h_rewrite_placeholders(const char *sql);
/* sql in the current profile's placeholder style. The result is either sql
 * itself or an interned copy valid until the test ends (thread-safe). */
const char *h_sql(const char *sql);

/* ------------------------------------------------------------ the daemon */

struct h_opts {
    const char *daemon_settings;  /* spliced into `daemon = { ... }` */
    const char *pool_settings;    /* spliced into the pool's type group */
    int max_open_conns;           /* 0 -> 4 */
    int max_idle_conns;           /* 0 -> max_open_conns */
    const char *shutdown_timeout; /* NULL -> "5s" */
    const char *extra_pools;      /* spliced after the "app" pool entry, e.g. `, { name = ... }` */
    /* RLIMIT_NOFILE of the daemon: soft and hard limits set in the child
     * before exec (so the daemon cannot raise past them); 0 keeps ours. */
    unsigned long nofile_soft, nofile_hard;
};

#define H_POOL "app"

/* Paths of the running test's daemon. */
struct h_paths {
    char dir[256];
    char conf[300];
    char sock[300];
    char status_sock[300];
    char log[300];
    char db[300];     /* sqlite database file */
};
const struct h_paths *h_paths(void);

/* Write the config, start the daemon and wait (10 s) until it answers a
 * HELLO + PING on its socket and its status socket accepts connections.
 * opts may be NULL. Fails the test (with the daemon log) otherwise. */
void h_start(const struct h_opts *opts);
/* Write the running test's config file again from opts (the daemon reads
 * it at its next reload: SIGHUP or POST /reload). */
void h_rewrite_config(const struct h_opts *opts);
/* Start again on the same directory and config (after h_stop). */
void h_restart(void);
/* SIGTERM, then wait up to timeout_ms for the exit. Returns the wait status
 * (as from waitpid), or -1 when it did not exit in time (it is then killed). */
int h_stop_wait(int timeout_ms);
/* h_stop_wait(10 s) and assert exit status 0 and no sanitizer report in the log. */
void h_stop_ok(void);
/* Criterion .fini: kills a daemon still running, checks nothing. */
void h_fini(void);

pid_t h_pid(void);
bool h_running(void);
void h_signal(int sig);
/* Wait up to timeout_ms for the daemon to exit by itself; the wait status,
 * or -1 on timeout (the daemon keeps running). */
int h_wait_exit(int timeout_ms);
/* Resident set size of the daemon in KiB (VmRSS). */
long h_rss_kib(void);
/* Poll the daemon's RSS until it stops changing (5 samples 50 ms apart
 * within 256 KiB), for at most timeout_ms; returns the last sample. */
long h_await_stable_rss(uint64_t timeout_ms);
/* The daemon log so far (malloc'ed, caller frees; "" if none). */
char *h_read_log(void);
/* Fails the test if the log contains a sanitizer report. */
void h_assert_log_clean(void);

/* ------------------------------------------------------------ clients */

/* Connect to pool "app" (asserts success). */
dbpool_conn *h_connect(void);
/* Connect to any pool; NULL + *err on failure (no assert). */
dbpool_conn *h_try_connect(const char *pool, dbpool_error *err);

/* Assert-on-failure helpers; SQL goes through h_sql(). */
void h_exec(dbpool_conn *c, const char *sql);
void h_execp(dbpool_conn *c, const char *sql, const dbpool_value *params, size_t n);
dbpool_result *h_query(dbpool_conn *c, const char *sql, const dbpool_value *params, size_t n);
/* A statement returning exactly one INT64 value. */
int64_t h_scalar(dbpool_conn *c, const char *sql);
/* Assert rc == -1 and the connection's last error has `code`. */
void h_expect_error(dbpool_conn *c, int rc, int code, const char *what);
/* CREATE TABLE name (cols) after dropping an old one. */
void h_create_table(dbpool_conn *c, const char *name, const char *cols);

/* ------------------------------------------------------------ raw sockets */

/* Connect to the client socket (asserts success); a blocking fd. */
int h_raw_connect(void);
/* Connect without asserting: fd, or -1 with errno set. */
int h_raw_try_connect(const char *path);
/* Send all bytes (MSG_NOSIGNAL); false on error (EPIPE, ...). */
bool h_raw_send(int fd, const void *p, size_t n);
/* Send a HELLO for pool `pool` with `version`. */
void h_raw_send_hello(int fd, uint16_t version, const char *pool);
/* HELLO + expect HELLO_OK (asserts). */
void h_raw_handshake(int fd);

struct h_frame {
    uint8_t type;
    uint8_t *payload;   /* malloc'ed, freed by h_frame_free */
    uint32_t len;
};
/* Read one frame: 1 got it, 0 clean EOF, -1 timeout or error (errno). */
int h_raw_read_frame(int fd, int timeout_ms, struct h_frame *f);
void h_frame_free(struct h_frame *f);
/* Read frames until a terminal one (READY/ERROR); returns its type. Asserts. */
uint8_t h_raw_read_until_terminal(int fd, int timeout_ms, struct h_frame *terminal);
/* Expect one ERROR frame with `code`, then EOF (asserts); closes fd. */
void h_raw_expect_error_then_eof(int fd, int code, const char *what);
/* Expect EOF (maybe after an ERROR frame of any code) within timeout; closes fd. */
void h_raw_expect_eof(int fd, int timeout_ms, const char *what);

/* ------------------------------------------------------------ status socket */

/* HTTP/1.1 request on the status socket; returns the status code and the
 * body (malloc'ed, NUL-terminated) in *body. Asserts on transport errors. */
int h_http(const char *method, const char *path, char **body);
int h_http_get(const char *path, char **body);
/* Find a number in JSON: keys are searched in order, each after the
 * previous one (enough for the daemon's flat-ish documents). NaN if absent. */
double h_json_num(const char *json, const char *const *keys);
#define H_JSON_NUM(json, ...) h_json_num((json), (const char *const[]){ __VA_ARGS__, NULL })
/* Copy the string at keys into out (escapes reduced to the escaped byte);
 * false when absent or not a string. */
bool h_json_str(const char *json, const char *const *keys, char *out, size_t len);
#define H_JSON_STR(json, out, ...) \
    h_json_str((json), (const char *const[]){ __VA_ARGS__, NULL }, (out), sizeof(out))
/* A number from GET path (asserts 200). */
double h_status_num(const char *path, const char *const *keys);
#define H_STATUS_NUM(path, ...) h_status_num((path), (const char *const[]){ __VA_ARGS__, NULL })
/* The same, NAN instead of failing when the answer is not 200 or has no
 * number there yet (for H_AWAIT: "last_reload" is null until a reload). */
double h_status_num_opt(const char *path, const char *const *keys);
#define H_STATUS_NUM_OPT(path, ...) h_status_num_opt((path), (const char *const[]){ __VA_ARGS__, NULL })

/* GET /health's status code. */
int h_health_status(void);
/* The JSON object of pool `name` in GET /pools (malloc'ed; asserts it is there). */
char *h_pool_json(const char *name);
/* One number of h_pool_json(name): k1, or k1.k2 (asserts it is there). */
double h_pool_stat(const char *name, const char *k1, const char *k2);

/* ------------------------------------------------------------ background statements */

/* dbpool_exec(c, sql) on a thread of its own (h_bg_start): rc, err and the
 * time it ended are set before done turns true; join tid afterwards. The
 * thread only uses libdbpool, never asserts. */
struct h_bg_query {
    dbpool_conn *c;
    const char *sql;
    pthread_t tid;
    int rc;
    dbpool_error err;
    uint64_t ended_ms;
    atomic_bool done;
};
void h_bg_start(struct h_bg_query *q);

/* ------------------------------------------------------------ time */

uint64_t h_now_ms(void);
void h_sleep_ms(int ms);
/* Poll cond every 5 ms until true or timeout_ms passed; evaluates to the
 * final value of cond. Use for awaiting conditions, never as a delay. */
#define H_AWAIT(cond, timeout_ms) ({                                    \
        uint64_t h_deadline_ = h_now_ms() + (uint64_t)(timeout_ms);     \
        bool h_ok_;                                                     \
        while (!(h_ok_ = (cond)) && h_now_ms() < h_deadline_)           \
            h_sleep_ms(5);                                              \
        h_ok_; })

#endif
