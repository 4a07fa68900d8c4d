/*
 * bench-mysql.c — dbpool-bench's direct MariaDB / MySQL drivers, on MariaDB
 * Connector/C: the reference dbpoold's mysql pools are measured against,
 * as libpq is for PostgreSQL. Also the table loader (--init): pgbench's
 * four tables, created and filled in MariaDB as `pgbench -i` does in
 * PostgreSQL.
 *
 *   blocking (DRIVER_MY)       mysql_real_connect, mysql_stmt_execute or
 *                              mysql_real_query: one thread per client,
 *                              connect-per-transaction, idle mode, --init
 *   non-blocking (ADRIVER_MY)  the same calls through Connector/C's
 *                              *_start / *_cont API on mysql_get_socket():
 *                              one thread drives many clients (sysbench has
 *                              a thread per client; pgbench's model is the
 *                              one compare.sh uses for every target)
 *
 * Statements: a connection prepares the workload's statements once
 * (mysql_stmt_prepare: the binary protocol, what sysbench's default
 * --db-ps-mode=auto does) and executes them with MYSQL_TYPE_LONGLONG
 * parameters. With no statements to prepare (my_set_prepared(NULL, 0): the
 * connect-per-transaction row) each statement is sent as text with its
 * integer parameters written in: one round trip, the cheapest way for a
 * connection that lives for one transaction. BEGIN / COMMIT / ROLLBACK are
 * text statements, as in pgbench's script. Results are read whole
 * (mysql_stmt_store_result / mysql_store_result) and every row fetched.
 *
 * Ownership: a connection (struct myc) belongs to the thread that opened it
 * and owns its MYSQL handle and prepared statements.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mysql.h>

#include "dbpool-bench.h"

#define MY_MAX_STMTS 8
#define MY_MAX_COLS 8

static const struct stmt_def *g_prep;   /* the statements to prepare */
static int g_nprep;

void my_set_prepared(const struct stmt_def *stmts, int n)
{
    g_prep = stmts;
    g_nprep = n > MY_MAX_STMTS ? MY_MAX_STMTS : n;
}

int my_library_init(void)
{
    if (mysql_library_init(0, NULL, NULL) != 0) {
        fprintf(stderr, "dbpool-bench: mysql_library_init failed\n");
        return -1;
    }
    return 0;
}

void my_library_end(void) { mysql_library_end(); }

/* ================================================================ target */

static int my_set_key(struct mysql_target *m, const char *key, size_t klen, const char *val)
{
    char **slot = NULL;
    if (klen == 4 && strncmp(key, "host", 4) == 0)
        slot = &m->host;
    else if (klen == 6 && strncmp(key, "socket", 6) == 0)
        slot = &m->socket;
    else if (klen == 4 && strncmp(key, "user", 4) == 0)
        slot = &m->user;
    else if (klen == 8 && strncmp(key, "password", 8) == 0)
        slot = &m->password;
    else if ((klen == 2 && strncmp(key, "db", 2) == 0) || (klen == 6 && strncmp(key, "dbname", 6) == 0))
        slot = &m->db;
    if (slot != NULL) {
        free(*slot);
        *slot = strdup(val);
        return *slot ? 0 : -1;
    }
    if (klen == 4 && strncmp(key, "port", 4) == 0) {
        char *end;
        long p = strtol(val, &end, 10);
        if (*val == '\0' || *end != '\0' || p < 1 || p > 65535) {
            fprintf(stderr, "dbpool-bench: mysql target: port: expected 1-65535, got \"%s\"\n", val);
            return -1;
        }
        m->port = (unsigned)p;
        return 0;
    }
    fprintf(stderr, "dbpool-bench: mysql target: unknown key \"%.*s\" "
            "(keys: socket, host, port, user, password, db)\n", (int)klen, key);
    return -1;
}

int my_parse_target(const char *spec, struct target *t)
{
    char *copy = strdup(spec), *save = NULL;
    int rc = 0;

    memset(t, 0, sizeof *t);
    t->kind = T_MYSQL;
    if (copy == NULL)
        return -1;
    for (char *tok = strtok_r(copy, " \t", &save); tok != NULL && rc == 0; tok = strtok_r(NULL, " \t", &save)) {
        char *eq = strchr(tok, '=');
        if (eq == NULL || eq == tok) {
            fprintf(stderr, "dbpool-bench: mysql target: expected KEY=VALUE, got \"%s\"\n", tok);
            rc = -1;
        } else {
            rc = my_set_key(&t->my, tok, (size_t)(eq - tok), eq + 1);
        }
    }
    free(copy);
    if (rc == 0 && t->my.db == NULL) {
        fprintf(stderr, "dbpool-bench: mysql target: db=NAME is required\n");
        rc = -1;
    }
    if (rc != 0)
        my_free_target(t);
    return rc;
}

void my_free_target(struct target *t)
{
    free(t->my.host);
    free(t->my.socket);
    free(t->my.user);
    free(t->my.password);
    free(t->my.db);
}

/* ================================================================ connection */

struct myc {
    MYSQL *m;
    MYSQL_STMT *ps[MY_MAX_STMTS];       /* prepared g_prep[i], or NULL */
    MYSQL_BIND pbind[MY_MAX_STMTS][5];
    int64_t pval[MY_MAX_STMTS][5];
    MYSQL_BIND rbind[MY_MAX_COLS];      /* result columns, read as int64 */
    int64_t rval[MY_MAX_COLS];
    char sql[512];                      /* a text statement with its values */
    /* non-blocking state */
    int phase;
    int wait;                           /* MYSQL_WAIT_* the library waits for */
    MYSQL_STMT *cur;                    /* the prepared statement running */
    const char *what;                   /* for messages */
    bool done;                          /* answer complete, result in done_rc */
    int done_rc;
};

/* Client errors (CR_*, 2000-2999) mean the connection is gone; server
 * errors leave it usable. */
static int my_rc(unsigned code) { return code >= 2000 && code < 3000 ? RC_BROKEN : RC_ERR; }

static int my_fail(MYSQL *m, const char *what, char *err)
{
    snprintf(err, ERRLEN, "%.300s: %u (%s): %.600s", what, mysql_errno(m), mysql_sqlstate(m), mysql_error(m));
    return my_rc(mysql_errno(m));
}

static int my_stmt_fail(MYSQL_STMT *st, const char *what, char *err)
{
    snprintf(err, ERRLEN, "%.300s: %u (%s): %.600s", what, mysql_stmt_errno(st), mysql_stmt_sqlstate(st),
             mysql_stmt_error(st));
    return my_rc(mysql_stmt_errno(st));
}

static void my_free(struct myc *c)
{
    for (int i = 0; i < MY_MAX_STMTS; i++)
        if (c->ps[i] != NULL)
            mysql_stmt_close(c->ps[i]);
    if (c->m != NULL)
        mysql_close(c->m);
    free(c);
}

/* Prepares g_prep[i] and binds its parameters to c->pval[i]. */
static int my_prepare(struct myc *c, int i, char *err)
{
    const struct stmt_def *s = &g_prep[i];
    MYSQL_STMT *st = mysql_stmt_init(c->m);
    if (st == NULL)
        return my_fail(c->m, "mysql_stmt_init", err);
    c->ps[i] = st;
    if (mysql_stmt_prepare(st, s->sql, strlen(s->sql)) != 0)
        return my_stmt_fail(st, s->sql, err);
    if (mysql_stmt_param_count(st) != (unsigned long)s->nparams) {
        snprintf(err, ERRLEN, "%s: the server counts %lu parameters, the workload %d", s->sql,
                 mysql_stmt_param_count(st), s->nparams);
        return RC_ERR;
    }
    for (int j = 0; j < s->nparams; j++) {
        MYSQL_BIND *b = &c->pbind[i][j];
        b->buffer_type = MYSQL_TYPE_LONGLONG;
        b->buffer = &c->pval[i][j];
    }
    if (s->nparams > 0 && mysql_stmt_bind_param(st, c->pbind[i]) != 0)
        return my_stmt_fail(st, s->sql, err);
    return RC_OK;
}

static void *my_connect(const struct target *t, char *err)
{
    const struct mysql_target *mt = &t->my;
    struct myc *c = calloc(1, sizeof *c);
    if (c == NULL || (c->m = mysql_init(NULL)) == NULL) {
        snprintf(err, ERRLEN, "mysql_init: out of memory");
        free(c);
        return NULL;
    }
    (void)mysql_options(c->m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    (void)mysql_options(c->m, MYSQL_OPT_NONBLOCK, 0);
    if (mysql_real_connect(c->m, mt->host, mt->user, mt->password, mt->db, mt->port, mt->socket, 0) == NULL) {
        (void)my_fail(c->m, "connect", err);
        my_free(c);
        return NULL;
    }
    for (int i = 0; i < g_nprep; i++) {
        if (my_prepare(c, i, err) != RC_OK) {
            my_free(c);
            return NULL;
        }
    }
    for (int j = 0; j < MY_MAX_COLS; j++) {
        c->rbind[j].buffer_type = MYSQL_TYPE_LONGLONG;
        c->rbind[j].buffer = &c->rval[j];
    }
    return c;
}

/* The prepared statement for s (by identity), or -1. */
static int my_find(const struct stmt_def *s)
{
    for (int i = 0; i < g_nprep; i++)
        if (&g_prep[i] == s || g_prep[i].sql == s->sql)
            return i;
    return -1;
}

/* s's text with each ? replaced by its integer value, into c->sql. */
static int my_text(struct myc *c, const struct stmt_def *s, const int64_t v[NVARS], char *err)
{
    size_t o = 0;
    int k = 0;
    for (const char *p = s->sql; *p; p++) {
        int n;
        if (*p == '?' && k < s->nparams)
            n = snprintf(c->sql + o, sizeof c->sql - o, "%" PRId64, v[s->vars[k++]]);
        else
            n = snprintf(c->sql + o, sizeof c->sql - o, "%c", *p);
        if (n < 0 || (size_t)n >= sizeof c->sql - o) {
            snprintf(err, ERRLEN, "%.300s: statement too long", s->sql);
            return RC_ERR;
        }
        o += (size_t)n;
    }
    return RC_OK;
}

/* Sets the parameters of prepared statement i; returns it. */
static MYSQL_STMT *my_bind(struct myc *c, int i, const struct stmt_def *s, const int64_t v[NVARS])
{
    for (int j = 0; j < s->nparams; j++)
        c->pval[i][j] = v[s->vars[j]];
    return c->ps[i];
}

/* Reads the stored rows of a prepared statement, then frees them. */
static int my_stmt_rows(struct myc *c, MYSQL_STMT *st, const char *what, char *err)
{
    unsigned n = mysql_stmt_field_count(st);
    if (n > MY_MAX_COLS) {
        snprintf(err, ERRLEN, "%s: more than %d columns", what, MY_MAX_COLS);
        return RC_ERR;
    }
    if (mysql_stmt_bind_result(st, c->rbind) != 0)
        return my_stmt_fail(st, what, err);
    int r;
    while ((r = mysql_stmt_fetch(st)) == 0 || r == MYSQL_DATA_TRUNCATED)
        ;
    int rc = r == MYSQL_NO_DATA ? RC_OK : my_stmt_fail(st, what, err);
    mysql_stmt_free_result(st);
    return rc;
}

/* Reads the rows of a stored text result, then frees it. */
static void my_res_rows(MYSQL_RES *res)
{
    while (mysql_fetch_row(res) != NULL)
        ;
    mysql_free_result(res);
}

/* ================================================================ blocking */

static int my_query(struct myc *c, const char *sql, char *err)
{
    if (mysql_real_query(c->m, sql, strlen(sql)) != 0)
        return my_fail(c->m, sql, err);
    if (mysql_field_count(c->m) == 0)
        return RC_OK;
    MYSQL_RES *res = mysql_store_result(c->m);
    if (res == NULL)
        return my_fail(c->m, sql, err);
    my_res_rows(res);
    return RC_OK;
}

static int my_exec(void *conn, const struct stmt_def *s, const int64_t v[NVARS], char *err)
{
    struct myc *c = conn;
    int i = my_find(s);
    if (i < 0) {
        int rc = my_text(c, s, v, err);
        return rc == RC_OK ? my_query(c, c->sql, err) : rc;
    }
    MYSQL_STMT *st = my_bind(c, i, s, v);
    if (mysql_stmt_execute(st) != 0)
        return my_stmt_fail(st, s->sql, err);
    if (mysql_stmt_field_count(st) == 0)
        return RC_OK;
    if (mysql_stmt_store_result(st) != 0)
        return my_stmt_fail(st, s->sql, err);
    return my_stmt_rows(c, st, s->sql, err);
}

static bool my_in_tx(void *conn) { return (((struct myc *)conn)->m->server_status & SERVER_STATUS_IN_TRANS) != 0; }

static int my_begin(void *conn, char *err) { return my_query(conn, "BEGIN", err); }
static int my_commit(void *conn, char *err) { return my_query(conn, "COMMIT", err); }

static void my_abort(void *conn)
{
    char err[ERRLEN];
    if (my_in_tx(conn))
        (void)my_query(conn, "ROLLBACK", err);
}

static int my_scalar(void *conn, const char *sql, int64_t *out, char *err)
{
    struct myc *c = conn;
    if (mysql_real_query(c->m, sql, strlen(sql)) != 0)
        return my_fail(c->m, sql, err);
    MYSQL_RES *res = mysql_store_result(c->m);
    if (res == NULL)
        return my_fail(c->m, sql, err);
    MYSQL_ROW row = mysql_fetch_row(res);
    int rc = RC_OK;
    if (row == NULL || mysql_num_rows(res) != 1 || mysql_num_fields(res) < 1 || row[0] == NULL) {
        snprintf(err, ERRLEN, "%s: expected one row", sql);
        rc = RC_ERR;
    } else {
        *out = strtoll(row[0], NULL, 10);
    }
    mysql_free_result(res);
    return rc;
}

static void my_close(void *conn) { my_free(conn); }

const struct driver DRIVER_MY = {
    "MariaDB Connector/C", my_connect, my_exec, my_begin, my_commit, my_abort, my_scalar, my_close,
};

/* ================================================================ non-blocking
 *
 * One request is a chain of phases, each one Connector/C call started with
 * *_start and resumed with *_cont when the socket is ready; am_run() goes
 * as far as it can without blocking. */

enum { P_QUERY, P_STORE, P_EXEC, P_SSTORE };

static int am_finish(struct myc *c, int rc)
{
    c->done = true;
    c->done_rc = rc;
    c->wait = 0;
    return rc;
}

/* Runs the current phase from its start (ready == 0) or resumed with the
 * socket events in ready; RC_PENDING while waiting, else the result. */
static int am_run(struct myc *c, int ready, char *err)
{
    for (;;) {
        int st, r = 0;
        switch (c->phase) {
        case P_QUERY:
            st = ready ? mysql_real_query_cont(&r, c->m, ready)
                       : mysql_real_query_start(&r, c->m, c->what, strlen(c->what));
            if (st != 0)
                break;
            if (r != 0)
                return am_finish(c, my_fail(c->m, c->what, err));
            if (mysql_field_count(c->m) == 0)
                return am_finish(c, RC_OK);
            c->phase = P_STORE;
            ready = 0;
            continue;
        case P_STORE: {
            MYSQL_RES *res = NULL;
            st = ready ? mysql_store_result_cont(&res, c->m, ready) : mysql_store_result_start(&res, c->m);
            if (st != 0)
                break;
            if (res == NULL)
                return am_finish(c, my_fail(c->m, c->what, err));
            my_res_rows(res);
            return am_finish(c, RC_OK);
        }
        case P_EXEC:
            st = ready ? mysql_stmt_execute_cont(&r, c->cur, ready) : mysql_stmt_execute_start(&r, c->cur);
            if (st != 0)
                break;
            if (r != 0)
                return am_finish(c, my_stmt_fail(c->cur, c->what, err));
            if (mysql_stmt_field_count(c->cur) == 0)
                return am_finish(c, RC_OK);
            c->phase = P_SSTORE;
            ready = 0;
            continue;
        default:    /* P_SSTORE */
            st = ready ? mysql_stmt_store_result_cont(&r, c->cur, ready) : mysql_stmt_store_result_start(&r, c->cur);
            if (st != 0)
                break;
            if (r != 0)
                return am_finish(c, my_stmt_fail(c->cur, c->what, err));
            return am_finish(c, my_stmt_rows(c, c->cur, c->what, err));
        }
        c->wait = st;
        return RC_PENDING;
    }
}

static int am_fd(void *conn) { return (int)mysql_get_socket(((struct myc *)conn)->m); }
static bool am_want_write(void *conn) { return (((struct myc *)conn)->wait & MYSQL_WAIT_WRITE) != 0; }
static bool am_complete(void *conn) { return ((struct myc *)conn)->done; }

static int am_send(void *conn, enum step_kind k, const struct stmt_def *s, const int64_t v[NVARS], char *err)
{
    struct myc *c = conn;
    int i = -1;

    c->done = false;
    c->phase = P_QUERY;
    switch (k) {
    case K_BEGIN: c->what = "BEGIN"; break;
    case K_COMMIT: c->what = "COMMIT"; break;
    case K_ROLLBACK: c->what = "ROLLBACK"; break;
    case K_STMT:
        c->what = s->sql;
        i = my_find(s);
        if (i >= 0) {
            c->cur = my_bind(c, i, s, v);
            c->phase = P_EXEC;
        } else if (my_text(c, s, v, err) != RC_OK) {
            return RC_BROKEN;
        } else {
            c->what = c->sql;
        }
        break;
    }
    int rc = am_run(c, 0, err);
    return rc == RC_BROKEN ? RC_BROKEN : RC_OK;   /* a finished request is collected by readable() */
}

static int am_resume(struct myc *c, int ready, char *err)
{
    if (c->done)
        return RC_OK;
    int rc = am_run(c, ready, err);
    return rc == RC_BROKEN ? RC_BROKEN : RC_OK;
}

static int am_flush(void *conn, char *err)
{
    struct myc *c = conn;
    return c->wait & MYSQL_WAIT_WRITE ? am_resume(c, MYSQL_WAIT_WRITE, err) : RC_OK;
}

static int am_readable(void *conn, char *err)
{
    struct myc *c = conn;
    if (!c->done && (c->wait & (MYSQL_WAIT_READ | MYSQL_WAIT_EXCEPT))) {
        if (am_resume(c, c->wait & (MYSQL_WAIT_READ | MYSQL_WAIT_EXCEPT), err) == RC_BROKEN)
            return RC_BROKEN;
    }
    if (!c->done)
        return RC_PENDING;
    c->done = false;
    return c->done_rc;
}

const struct adriver ADRIVER_MY = {
    "MariaDB Connector/C (non-blocking)", my_connect, am_fd, am_send, am_want_write, am_flush,
    am_readable, my_in_tx, my_close, am_complete,
};

/* ================================================================ --init */

#define INIT_BATCH 5000

static const char *const INIT_DDL[] = {
    "DROP TABLE IF EXISTS pgbench_history, pgbench_tellers, pgbench_accounts, pgbench_branches",
    "CREATE TABLE pgbench_history (tid INT, bid INT, aid INT, delta INT, mtime TIMESTAMP NULL, "
        "filler CHAR(22)) ENGINE=InnoDB",
    "CREATE TABLE pgbench_tellers (tid INT NOT NULL PRIMARY KEY, bid INT, tbalance INT, "
        "filler CHAR(84)) ENGINE=InnoDB",
    "CREATE TABLE pgbench_accounts (aid INT NOT NULL PRIMARY KEY, bid INT, abalance INT, "
        "filler CHAR(84)) ENGINE=InnoDB",
    "CREATE TABLE pgbench_branches (bid INT NOT NULL PRIMARY KEY, bbalance INT, "
        "filler CHAR(88)) ENGINE=InnoDB",
};

/* INSERT of rows [lo, hi] of one table: pgbench's values (balances 0, the
 * owning branch of a teller or account). */
static int init_rows(struct myc *c, const char *table, int64_t lo, int64_t hi, int64_t per_branch,
                     char *buf, size_t cap, char *err)
{
    size_t o = (size_t)snprintf(buf, cap, "INSERT INTO %s VALUES ", table);
    for (int64_t i = lo; i <= hi; i++) {
        int n = per_branch == 0
            ? snprintf(buf + o, cap - o, "%s(%" PRId64 ",0,''" ")", i > lo ? "," : "", i)
            : snprintf(buf + o, cap - o, "%s(%" PRId64 ",%" PRId64 ",0,'')", i > lo ? "," : "", i,
                       (i - 1) / per_branch + 1);
        if (n < 0 || (size_t)n >= cap - o) {
            snprintf(err, ERRLEN, "--init: batch buffer too small");
            return RC_ERR;
        }
        o += (size_t)n;
    }
    return my_query(c, buf, err);
}

static int init_table(struct myc *c, const char *table, int64_t rows, int64_t per_branch,
                      char *buf, size_t cap, char *err)
{
    for (int64_t lo = 1; lo <= rows; lo += INIT_BATCH) {
        int64_t hi = lo + INIT_BATCH - 1 < rows ? lo + INIT_BATCH - 1 : rows;
        int rc = init_rows(c, table, lo, hi, per_branch, buf, cap, err);
        if (rc != RC_OK)
            return rc;
    }
    return RC_OK;
}

int my_init_tables(const struct target *t, int64_t scale, bool quiet)
{
    char err[ERRLEN];
    size_t cap = (size_t)INIT_BATCH * 48 + 256;
    char *buf = malloc(cap);
    int saved = g_nprep;
    g_nprep = 0;                /* nothing to prepare for the loader */
    struct myc *c = buf ? my_connect(t, err) : NULL;
    g_nprep = saved;
    if (c == NULL) {
        fprintf(stderr, "dbpool-bench: --init: %s\n", buf ? err : "out of memory");
        free(buf);
        return 1;
    }
    int rc = RC_OK;
    for (size_t i = 0; i < sizeof INIT_DDL / sizeof INIT_DDL[0] && rc == RC_OK; i++)
        rc = my_query(c, INIT_DDL[i], err);
    if (rc == RC_OK)
        rc = my_query(c, "BEGIN", err);
    if (rc == RC_OK)
        rc = init_table(c, "pgbench_branches", scale, 0, buf, cap, err);
    if (rc == RC_OK)
        rc = init_table(c, "pgbench_tellers", 10 * scale, 10, buf, cap, err);
    if (rc == RC_OK)
        rc = init_table(c, "pgbench_accounts", 100000 * scale, 100000, buf, cap, err);
    if (rc == RC_OK)
        rc = my_query(c, "COMMIT", err);
    if (rc == RC_OK)
        rc = my_query(c, "ANALYZE TABLE pgbench_branches, pgbench_tellers, pgbench_accounts", err);
    my_close(c);
    free(buf);
    if (rc != RC_OK) {
        fprintf(stderr, "dbpool-bench: --init: %s\n", err);
        return 1;
    }
    if (!quiet)
        printf("created pgbench_branches (%" PRId64 " rows), pgbench_tellers (%" PRId64
               "), pgbench_accounts (%" PRId64 "), pgbench_history (empty)\n", scale, 10 * scale,
               100000 * scale);
    return 0;
}
