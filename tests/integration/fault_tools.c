/*
 * fault_tools.c — raw client with deadlines, the fault server and the
 * observer (libpq for PostgreSQL, Connector/C for MariaDB) for the fault
 * tests (see fault_tools.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "fault_tools.h"

#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <mysql.h>

#include "harness.h"
#include "common/proto.h"

/* ================================================================ raw client */

static bool send_pbuf(int fd, struct pbuf *b)
{
    bool ok = !b->oom && h_raw_send(fd, b->data, b->len);
    pbuf_free(b);
    return ok;
}

int fc_open(const char *sock, int timeout_ms)
{
    struct pbuf b;
    struct h_frame f;
    int fd = h_raw_try_connect(sock);

    if (fd < 0)
        return -1;
    pbuf_init(&b);
    proto_put_hello(&b, PROTO_VERSION, H_POOL, "fault-test");
    if (!send_pbuf(fd, &b) || h_raw_read_frame(fd, timeout_ms, &f) != 1) {
        int e = errno ? errno : EPIPE;
        close(fd);
        errno = e;
        return -1;
    }
    bool ok = f.type == PT_HELLO_OK;
    h_frame_free(&f);
    if (!ok) {
        close(fd);
        errno = EPROTO;
        return -1;
    }
    return fd;
}

bool fc_send_query(int fd, const char *sql, const dbpool_value *params, size_t n)
{
    struct pbuf b;
    const char *s = h_sql(sql);
    pbuf_init(&b);
    proto_put_query(&b, s, strlen(s), params, n);
    return send_pbuf(fd, &b);
}

bool fc_send_begin(int fd)
{
    struct pbuf b;
    pbuf_init(&b);
    proto_put_begin(&b, 0);
    return send_pbuf(fd, &b);
}

bool fc_send_empty(int fd, uint8_t type)
{
    struct pbuf b;
    pbuf_init(&b);
    proto_put_empty(&b, type);
    return send_pbuf(fd, &b);
}

bool fc_send_pair(int fd, uint8_t t1, uint8_t t2)
{
    struct pbuf b;
    pbuf_init(&b);
    proto_put_empty(&b, t1);
    proto_put_empty(&b, t2);
    return send_pbuf(fd, &b);
}

/* The first value of a ROW frame, if it is an INT64. */
static void first_int(const struct h_frame *f, struct fc_res *r)
{
    struct preader rd;
    dbpool_value v;

    preader_init(&rd, f->payload, f->len);
    if (preader_u16(&rd) >= 1 && preader_value(&rd, &v) && v.type == DBPOOL_INT64) {
        r->have_int = true;
        r->first_int = v.u.i;
    }
}

static void terminal(const struct h_frame *f, struct fc_res *r)
{
    struct proto_error e;

    if (f->type == PT_READY) {
        r->kind = proto_get_ready(f->payload, f->len, &r->tx) ? FC_READY : FC_BAD;
        return;
    }
    if (!proto_get_error(f->payload, f->len, &e)) {
        r->kind = FC_BAD;
        return;
    }
    r->kind = FC_ERROR;
    r->code = e.code;
    r->tx = e.txstate;
    snprintf(r->sqlstate, sizeof(r->sqlstate), "%.*s", (int)e.sqlstate.len, e.sqlstate.p);
    snprintf(r->msg, sizeof(r->msg), "%.*s", (int)e.message.len, e.message.p);
}

void fc_read(int fd, int timeout_ms, struct fc_res *r)
{
    uint64_t t0 = h_now_ms(), deadline = t0 + (uint64_t)timeout_ms;

    memset(r, 0, sizeof(*r));
    for (;;) {
        struct h_frame f;
        uint64_t now = h_now_ms();
        int got = now < deadline ? h_raw_read_frame(fd, (int)(deadline - now), &f) : -1;
        if (got != 1) {
            r->kind = got == 0 ? FC_EOF : errno == ETIMEDOUT || now >= deadline ? FC_TIMEOUT
                                                                                : FC_EOF;
            break;
        }
        if (f.type == PT_ROW) {
            if (r->rows++ == 0)
                first_int(&f, r);
        } else if (f.type == PT_READY || f.type == PT_ERROR) {
            terminal(&f, r);
            h_frame_free(&f);
            break;
        }
        h_frame_free(&f);
    }
    r->ms = h_now_ms() - t0;
}

void fc_query(int fd, const char *sql, const dbpool_value *params, size_t n, int timeout_ms,
              struct fc_res *r)
{
    if (!fc_send_query(fd, sql, params, n)) {
        memset(r, 0, sizeof(*r));
        r->kind = FC_EOF;
        return;
    }
    fc_read(fd, timeout_ms, r);
}

const char *fc_describe(const struct fc_res *r, char *buf, size_t len)
{
    switch (r->kind) {
    case FC_READY:
        snprintf(buf, len, "READY '%c' after %ld rows", r->tx, r->rows);
        break;
    case FC_ERROR:
        snprintf(buf, len, "ERROR %s [%s] '%c' after %ld rows: %s", dbpool_code_name(r->code),
                 r->sqlstate, r->tx, r->rows, r->msg);
        break;
    case FC_EOF:
        snprintf(buf, len, "EOF (no terminal frame) after %ld rows", r->rows);
        break;
    case FC_TIMEOUT:
        snprintf(buf, len, "NO ANSWER within %llu ms (hang) after %ld rows",
                 (unsigned long long)r->ms, r->rows);
        break;
    default:
        snprintf(buf, len, "a malformed terminal frame");
    }
    return buf;
}

bool fc_is(const struct fc_res *r, int code)
{
    return code == 0 ? r->kind == FC_READY : r->kind == FC_ERROR && r->code == code;
}

/* ================================================================ fault server */

static char fs_dir_[256];
static char fs_port_[16];
static bool fs_mysql_;
static pid_t frozen[16];
static int nfrozen;

bool fs_active(void)
{
    return fs_dir_[0] != '\0';
}

bool fs_mysql(void)
{
    return fs_mysql_;
}

const char *fs_dir(void)
{
    return fs_dir_;
}

static bool read_line(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    bool ok = f && fgets(buf, (int)len, f) != NULL;
    if (f)
        fclose(f);
    if (ok)
        buf[strcspn(buf, "\r\n")] = '\0';
    return ok;
}

/* Whether ALTER SYSTEM already turned synchronous_commit on (it persists
 * in postgresql.auto.conf across the restarts the cells cause). Criterion
 * runs cells in parallel processes: a cell's init must not need the server
 * while another cell (holding the harness lock) has it stopped. */
static bool sync_commit_configured(void)
{
    char path[400], line[256];
    bool on = false;
    FILE *f;

    snprintf(path, sizeof(path), "%s/data/postgresql.auto.conf", fs_dir_);
    if (!(f = fopen(path, "r")))
        return false;
    while (fgets(line, sizeof(line), f))
        on = on || strstr(line, "synchronous_commit = 'on'") != NULL;
    fclose(f);
    return on;
}

/* The MariaDB fault server: the mysql profile's socket and password file. */
static void fs_init_mysql(void)
{
    char v[400], real[PATH_MAX];
    const char *dir = getenv("DBPOOL_TEST_MYSQL_FAULT_DIR");

    cr_assert(dir && *dir, "DBPOOL_TEST_MYSQL_FAULT_DIR is not set: these tests stop, crash "
              "and freeze MariaDB, so they need a server of their own; run them under "
              "tests/mysql/run-mysql-tests.sh, or start one with `bash "
              "tests/mysql/mysql-harness.sh start DIR` and export "
              "DBPOOL_TEST_MYSQL_FAULT_DIR=DIR");
    /* Canonical: the harness's lock file is named after the socket path,
     * which must not change while the server (and its socket) is away. */
    snprintf(fs_dir_, sizeof(fs_dir_), "%.200s", realpath(dir, real) ? real : dir);
    fs_mysql_ = true;
    snprintf(v, sizeof(v), "%s/password", fs_dir_);
    cr_assert_eq(access(v, R_OK), 0, "%s: no mysql-harness.sh server there (%s missing)", dir,
                 v);
    setenv("DBPOOL_TEST_MYSQL_PASSWORD_FILE", v, 1);
    snprintf(v, sizeof(v), "%s/mysqld.sock", fs_dir_);
    setenv("DBPOOL_TEST_MYSQL_HOST", v, 1);
    setenv("DBPOOL_TEST_MYSQL_DB", "dbpool_test", 1);
    setenv("DBPOOL_TEST_MYSQL_USER", "dbpool", 1);
}

void fs_init(void)
{
    const char *be = getenv("DBPOOL_TEST_BACKEND");
    char path[400];

    if (be && strcmp(be, "mysql") == 0) {
        fs_init_mysql();
        return;
    }
    if (!be || strcmp(be, "postgres") != 0)
        return;
    const char *dir = getenv("DBPOOL_TEST_PG_FAULT_DIR");
    cr_assert(dir && *dir, "DBPOOL_TEST_PG_FAULT_DIR is not set: these tests stop and restart "
              "PostgreSQL, so they need a server of their own; run them under "
              "tests/pg/run-pg-tests.sh, or start one with `bash tests/pg/pg-harness.sh start "
              "DIR` and export DBPOOL_TEST_PG_FAULT_DIR=DIR");
    snprintf(fs_dir_, sizeof(fs_dir_), "%s", dir);
    snprintf(path, sizeof(path), "%s/port", dir);
    cr_assert(read_line(path, fs_port_, sizeof(fs_port_)), "%s: no pg-harness.sh server there "
              "(%s missing)", dir, path);
    setenv("DBPOOL_TEST_PG_HOST", fs_dir_, 1);
    setenv("DBPOOL_TEST_PG_PORT", fs_port_, 1);
    setenv("DBPOOL_TEST_PG_DB", "dbpool_test", 1);
    setenv("DBPOOL_TEST_PG_USER", "dbpool", 1);
    /* pg-harness.sh turns synchronous_commit off for speed: an immediate
     * shutdown then loses commits already reported to the client, which
     * would make "every commit the client saw is present" false for the
     * server's reasons, not the daemon's. fsync may stay off (no OS crash). */
    if (sync_commit_configured())
        return;   /* by an earlier test: no connection, as another cell may be restarting it */
    struct obs *c = NULL;
    cr_assert(obs_exec(&c, "ALTER SYSTEM SET synchronous_commit = on") &&
              obs_exec(&c, "SELECT pg_reload_conf()"),
              "cannot configure the fault server in %s: %s", dir, obs_error(c));
    cr_assert(H_AWAIT(obs_int(&c, "SELECT (current_setting('synchronous_commit') = 'on')::int")
                      == 1, 5000), "synchronous_commit did not turn on");
    obs_close(&c);
}

pid_t fs_postmaster(void)
{
    char path[400], line[64];
    snprintf(path, sizeof(path), fs_mysql_ ? "%s/mysqld.pid" : "%s/data/postmaster.pid", fs_dir_);
    return read_line(path, line, sizeof(line)) ? (pid_t)atoi(line) : -1;
}

/* From /proc/PID/stat: the command name, the state letter and the parent;
 * false if the process is gone. */
static bool proc_stat(pid_t pid, char *comm, size_t len, char *state, pid_t *ppid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (!read_line(path, buf, sizeof(buf)))
        return false;
    const char *open_paren = strchr(buf, '('), *close_paren = strrchr(buf, ')');
    int ppid_i = 0;
    if (!open_paren || !close_paren || sscanf(close_paren + 1, " %c %d", state, &ppid_i) != 2)
        return false;
    snprintf(comm, len, "%.*s", (int)(close_paren - open_paren - 1), open_paren + 1);
    *ppid = (pid_t)ppid_i;
    return true;
}

/* As root mysql-harness.sh runs mariadbd under `runuser`, which stops
 * itself when its child stops (util-linux su-common) and stays stopped
 * after the child is continued: a leaked stopped process per freeze. Await
 * it stopping, and remember it to be continued with the server. */
static void freeze_runuser_parent(pid_t pid)
{
    char comm[64], st = 0;
    pid_t ppid = 0, pp;
    if (!proc_stat(pid, comm, sizeof(comm), &st, &ppid) || ppid <= 1 ||
        !proc_stat(ppid, comm, sizeof(comm), &st, &pp) || strcmp(comm, "runuser") != 0)
        return;
    H_AWAIT(proc_stat(ppid, comm, sizeof(comm), &st, &pp) && st == 'T', 2000);
    if (nfrozen < (int)(sizeof(frozen) / sizeof(frozen[0])))
        frozen[nfrozen++] = ppid;
}

/* Whether every thread of pid has stopped (SIGSTOP is delivered
 * asynchronously: a thread of MariaDB may still answer a request sent
 * right after kill() returned). */
static bool all_threads_stopped(pid_t pid)
{
    char path[64], comm[64], st;
    pid_t ppid;
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    struct dirent *e;
    bool stopped = d != NULL;
    while (stopped && (e = readdir(d)))
        if (e->d_name[0] != '.')
            stopped = proc_stat((pid_t)atoi(e->d_name), comm, sizeof(comm), &st, &ppid) &&
                      (st == 'T' || st == 't');
    if (d)
        closedir(d);
    return stopped;
}

void fs_freeze(pid_t pid)
{
    cr_assert_gt(pid, 0, "no process to freeze");
    cr_assert_lt(nfrozen, (int)(sizeof(frozen) / sizeof(frozen[0])) - 1);
    cr_assert_eq(kill(pid, SIGSTOP), 0, "SIGSTOP %d: %s", (int)pid, strerror(errno));
    frozen[nfrozen++] = pid;
    cr_assert(H_AWAIT(all_threads_stopped(pid), 2000), "process %d did not stop", (int)pid);
    freeze_runuser_parent(pid);
}

void fs_thaw_all(void)
{
    for (int i = 0; i < nfrozen; i++)
        kill(frozen[i], SIGCONT);
    nfrozen = 0;
}

/* Gone or a zombie (its parent may not be ours to reap). */
static bool process_gone(pid_t pid)
{
    char path[64], buf[256];
    if (kill(pid, 0) != 0)
        return true;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (!read_line(path, buf, sizeof(buf)))
        return true;
    const char *close_paren = strrchr(buf, ')');
    return close_paren && close_paren[1] == ' ' && close_paren[2] == 'Z';
}

int fs_shutdown_nothrow(char mode)
{
    pid_t pm = fs_postmaster();
    if (pm <= 0)
        return -1;
    int sig = fs_mysql_ ? (mode == 'i' ? SIGKILL : SIGTERM) : (mode == 'i' ? SIGQUIT : SIGINT);
    if (kill(pm, sig) != 0)
        return -1;
    kill(pm, SIGCONT);
    uint64_t deadline = h_now_ms() + 60000;
    while (!process_gone(pm)) {
        if (h_now_ms() > deadline)
            return -1;
        h_sleep_ms(10);
    }
    return 0;
}

void fs_shutdown(char mode)
{
    pid_t pm = fs_postmaster();
    cr_assert_gt(pm, 0, "the fault server is not running (no postmaster.pid in %s)", fs_dir_);
    char comm[64], st;
    pid_t parent = -1;
    proc_stat(pm, comm, sizeof(comm), &st, &parent);
    /* Not the server's stopped runuser: continued, it would continue the
     * server before the signal (a crash is of the frozen server). */
    for (int i = 0; i < nfrozen; i++)
        if (frozen[i] != pm && frozen[i] != parent)
            kill(frozen[i], SIGCONT);
    cr_assert_eq(fs_shutdown_nothrow(mode), 0, "%s (pid %d) did not shut down (%c)",
                 fs_mysql_ ? "MariaDB" : "PostgreSQL", (int)pm, mode);
    fs_thaw_all();
}

static const char *harness_script(void)
{
    static char path[1024];
    const char *s = getenv(fs_mysql_ ? "DBPOOL_TEST_MYSQL_HARNESS" : "DBPOOL_TEST_PG_HARNESS");
    const char *top = getenv("TOP_SRCDIR");

    if (s && *s)
        return s;
    snprintf(path, sizeof(path), "%s/tests/%s", top && *top ? top : ".",
             fs_mysql_ ? "mysql/mysql-harness.sh" : "pg/pg-harness.sh");
    return path;
}

int fs_resume_nothrow(void)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "bash '%s' resume '%s' >/dev/null 2>>'%s.log'", harness_script(),
             fs_dir_, fs_dir_);
    int st = system(cmd);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return -1;
    return fs_mysql_ ? fs_durable_nothrow() : 0;
}

/* mysql-harness.sh starts MariaDB with innodb_flush_log_at_trx_commit = 0
 * for speed: a crash (SIGKILL) then loses up to a second of commits already
 * reported to the client. 2 writes the log at every commit (a server crash
 * loses nothing; an OS crash may, and the tests cause none). Not persistent:
 * again after every start. */
int fs_durable_nothrow(void)
{
    struct obs *c = NULL;
    if (!fs_mysql_)
        return 0;
    bool ok = obs_exec(&c, "SET GLOBAL innodb_flush_log_at_trx_commit = 2");
    obs_close(&c);
    return ok ? 0 : -1;
}

void fs_resume(void)
{
    cr_assert_eq(fs_resume_nothrow(), 0, "could not start the fault server again (see %s.log)",
                 fs_dir_);
}

void fs_cleanup(void)
{
    if (!fs_active())
        return;
    fs_thaw_all();
    pid_t pm = fs_postmaster();
    if (pm <= 0 || process_gone(pm))
        fs_resume_nothrow();
}

/* ================================================================ observer */

struct obs {
    PGconn *pg;
    MYSQL *my;
    char err[256];
};

static void obs_set_err(struct obs *o, const char *what)
{
    snprintf(o->err, sizeof(o->err), "%s", what ? what : "unknown error");
    o->err[strcspn(o->err, "\n")] = '\0';
}

const char *obs_error(struct obs *c)
{
    return c ? c->err : "no connection";
}

static void obs_disconnect(struct obs *o)
{
    if (o->pg)
        PQfinish(o->pg);
    if (o->my)
        mysql_close(o->my);
    o->pg = NULL;
    o->my = NULL;
}

void obs_close(struct obs **c)
{
    if (!*c)
        return;
    obs_disconnect(*c);
    free(*c);
    *c = NULL;
}

/* As MariaDB's root over the fault server's socket; reads and writes time
 * out, so a frozen server fails the call instead of hanging it. */
static bool obs_connect_mysql(struct obs *o)
{
    char sock[400];
    unsigned int t3 = 3, t10 = 10;

    if (o->my)
        return true;
    if (!(o->my = mysql_init(NULL))) {
        obs_set_err(o, "mysql_init: out of memory");
        return false;
    }
    mysql_options(o->my, MYSQL_OPT_CONNECT_TIMEOUT, &t3);
    mysql_options(o->my, MYSQL_OPT_READ_TIMEOUT, &t10);
    mysql_options(o->my, MYSQL_OPT_WRITE_TIMEOUT, &t10);
    snprintf(sock, sizeof(sock), "%s/mysqld.sock", fs_dir_);
    if (!mysql_real_connect(o->my, NULL, "root", NULL, "dbpool_test", 0, sock, 0)) {
        obs_set_err(o, mysql_error(o->my));
        mysql_close(o->my);
        o->my = NULL;
        return false;
    }
    return true;
}

static bool obs_connect(struct obs **c)
{
    char info[512];

    if (!*c && !(*c = calloc(1, sizeof(**c))))
        return false;
    struct obs *o = *c;
    if (fs_mysql_)
        return obs_connect_mysql(o);
    if (o->pg && PQstatus(o->pg) == CONNECTION_OK)
        return true;
    obs_disconnect(o);
    snprintf(info, sizeof(info), "host=%s port=%s dbname=dbpool_test user=postgres "
             "connect_timeout=3 application_name=fault-observer", fs_dir_, fs_port_);
    o->pg = PQconnectdb(info);
    if (PQstatus(o->pg) == CONNECTION_OK)
        return true;
    obs_set_err(o, PQerrorMessage(o->pg));
    return false;
}

/* One statement on the MariaDB observer: 1 done (its rows, if any, through
 * fn), 0 the statement failed, -1 the session is broken. */
static int obs_run_mysql(struct obs *o, const char *sql, void (*fn)(void *, long long), void *arg)
{
    if (mysql_query(o->my, sql) != 0) {
        unsigned e = mysql_errno(o->my);
        obs_set_err(o, mysql_error(o->my));
        return e >= 2000 && e < 3000 ? -1 : 0;   /* CR_*: the client lost the server */
    }
    MYSQL_RES *res = mysql_store_result(o->my);
    if (!res)
        return mysql_field_count(o->my) == 0 ? 1 : -1;
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(res)))
        if (fn && row[0])
            fn(arg, atoll(row[0]));
    mysql_free_result(res);
    return 1;
}

static int obs_run_pg(struct obs *o, const char *sql, void (*fn)(void *, long long), void *arg)
{
    PGresult *r = PQexec(o->pg, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        for (int i = 0; fn && i < PQntuples(r); i++)
            if (!PQgetisnull(r, i, 0))
                fn(arg, atoll(PQgetvalue(r, i, 0)));
        PQclear(r);
        return 1;
    }
    obs_set_err(o, PQerrorMessage(o->pg));
    PQclear(r);
    return PQstatus(o->pg) == CONNECTION_OK ? 0 : -1;
}

/* A session killed by a server restart is only noticed when used: then
 * connect again and retry once. */
bool obs_each(struct obs **c, const char *sql, void (*fn)(void *arg, long long v), void *arg)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!obs_connect(c))
            return false;
        int rc = fs_mysql_ ? obs_run_mysql(*c, sql, fn, arg) : obs_run_pg(*c, sql, fn, arg);
        if (rc >= 0)
            return rc == 1;
        obs_disconnect(*c);
    }
    return false;
}

bool obs_exec(struct obs **c, const char *sql)
{
    return obs_each(c, sql, NULL, NULL);
}

struct first {
    bool have;
    long v;
};

static void take_first(void *arg, long long v)
{
    struct first *f = arg;
    if (!f->have)
        f->v = (long)v;
    f->have = true;
}

long obs_int(struct obs **c, const char *sql)
{
    struct first f = { false, -1 };
    return obs_each(c, sql, take_first, &f) && f.have ? f.v : -1;
}

#define DBPOOL_SESSIONS "FROM pg_stat_activity WHERE usename = 'dbpool' " \
    "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
/* The observer is root: every session of user dbpool is the daemon's. */
#define MY_SESSIONS "FROM information_schema.PROCESSLIST WHERE USER = 'dbpool'"

long obs_busy_backends(struct obs **c)
{
    if (fs_mysql_)
        return obs_int(c, "SELECT count(*) " MY_SESSIONS " AND (COMMAND <> 'Sleep' OR ID IN "
                       "(SELECT trx_mysql_thread_id FROM information_schema.INNODB_TRX))");
    return obs_int(c, "SELECT count(*) " DBPOOL_SESSIONS
                   " AND (state = 'active' OR state LIKE 'idle in transaction%')");
}

long obs_backends(struct obs **c)
{
    return obs_int(c, fs_mysql_ ? "SELECT count(*) " MY_SESSIONS
                                : "SELECT count(*) " DBPOOL_SESSIONS);
}

long obs_active_pid(struct obs **c, const char *marker)
{
    char sql[512];
    if (fs_mysql_)
        snprintf(sql, sizeof(sql), "SELECT ID " MY_SESSIONS " AND COMMAND IN ('Query', "
                 "'Execute') AND INFO LIKE '%%%s%%' ORDER BY ID LIMIT 1", marker);
    else
        snprintf(sql, sizeof(sql), "SELECT pid " DBPOOL_SESSIONS " AND state = 'active' AND "
                 "query LIKE '%%%s%%' ORDER BY pid LIMIT 1", marker);
    return obs_int(c, sql);
}

bool obs_gone(struct obs **c, long id)
{
    char sql[200];
    snprintf(sql, sizeof(sql), fs_mysql_ ? "SELECT count(*) " MY_SESSIONS " AND ID = %ld"
                                         : "SELECT count(*) FROM pg_stat_activity WHERE pid = %ld",
             id);
    return obs_int(c, sql) == 0;
}

bool obs_kill(struct obs **c, long id)
{
    char sql[100];
    snprintf(sql, sizeof(sql), fs_mysql_ ? "KILL %ld" : "SELECT pg_terminate_backend(%ld)", id);
    return obs_exec(c, sql);
}

struct ids {
    long v[64];
    int n;
};

static void take_id(void *arg, long long v)
{
    struct ids *l = arg;
    if (l->n < (int)(sizeof(l->v) / sizeof(l->v[0])))
        l->v[l->n++] = (long)v;
}

/* KILL each session the query lists (MariaDB has no kill-by-query);
 * a session already gone is no failure. */
static long kill_listed(struct obs **c, const char *sql)
{
    struct ids l = { .n = 0 };
    if (!obs_each(c, sql, take_id, &l))
        return -1;
    for (int i = 0; i < l.n; i++)
        obs_kill(c, l.v[i]);
    return l.n;
}

long obs_kill_idle(struct obs **c, long except)
{
    char sql[200];
    if (fs_mysql_) {
        snprintf(sql, sizeof(sql), "SELECT ID " MY_SESSIONS " AND COMMAND = 'Sleep' AND ID <> %ld",
                 except);
        return kill_listed(c, sql);
    }
    return obs_int(c, "SELECT count(pg_terminate_backend(pid)) " DBPOOL_SESSIONS
                   " AND state = 'idle'");
}

long obs_kill_random(struct obs **c)
{
    if (fs_mysql_)
        return kill_listed(c, "SELECT ID " MY_SESSIONS " ORDER BY RAND() LIMIT 1");
    return obs_int(c, "SELECT count(pg_terminate_backend(pid)) FROM (SELECT pid "
                   DBPOOL_SESSIONS " ORDER BY random() LIMIT 1) s");
}

const char *fs_session_id_sql(void)
{
    return fs_mysql_ ? "SELECT CAST(CONNECTION_ID() AS SIGNED)" : "SELECT pg_backend_pid()::int8";
}
