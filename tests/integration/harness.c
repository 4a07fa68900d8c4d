/*
 * harness.c — the integration-test harness (see harness.h): backend
 * profiles, per-test directories and config files, starting and stopping
 * the real dbpoold, libdbpool and raw-socket helpers, and a tiny HTTP/1.1
 * client for the status socket.
 *
 * One daemon per test process (criterion runs every test in its own
 * process). The daemon is started with PR_SET_PDEATHSIG so that it dies with
 * a test process that crashes or times out; h_fini stops it after failed
 * assertions.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <criterion/criterion.h>
#include <criterion/hooks.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/proto.h"

#define START_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS 10000
#define IO_TIMEOUT_MS 10000
#define LOG_TAIL_BYTES 12000

extern char **environ;

/* LeakSanitizer builds: criterion's runner process itself leaks a few bytes
 * (a calloc inside libcriterion) when long tests overlap under --jobs > 1;
 * that is not ours and would fail `make check`. Suppress it in the runner
 * only: test workers (argv[0] "boxfort-worker") run our code under
 * libcriterion frames, and their leaks must still be reported. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    char argv0[64] = "";
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);

    if (fd >= 0) {
        ssize_t n = read(fd, argv0, sizeof(argv0) - 1);
        argv0[n > 0 ? n : 0] = '\0';
        close(fd);
    }
    return strstr(argv0, "boxfort-worker") ? "" : "leak:libcriterion.so\n";
}

/* ================================================================ time */

uint64_t h_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void h_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ================================================================ profiles */

static bool sqlite_group(char *buf, size_t len, const char *dir, char *why, size_t whylen)
{
    (void)why;
    (void)whylen;
    snprintf(buf, len, "filePath = \"%s/app.db\";", dir);
    return true;
}

/* Where a server backend's settings come from: $<prefix>HOST, ...PORT,
 * ...DB, ...USER, ...PASSWORD_FILE, falling back to the client library's own
 * variables (std[i], e.g. PGHOST as printed by tests/pg/pg-harness.sh). */
struct server_env {
    const char *prefix;
    const char *std[5];
    const char *default_port;
};

enum { SV_HOST, SV_PORT, SV_DB, SV_USER, SV_PASSWORD_FILE, SV_COUNT };

static const char *const server_vars[SV_COUNT] = { "HOST", "PORT", "DB", "USER", "PASSWORD_FILE" };

static const struct server_env pg_env = {
    "DBPOOL_TEST_PG_", { "PGHOST", "PGPORT", "PGDATABASE", "PGUSER", NULL }, "5432",
};
/* MySQL: HOST is a host name or the path of the server's socket file (as
 * printed by tests/mysql/mysql-harness.sh; MYSQL_UNIX_PORT is what the
 * mariadb client calls it). */
static const struct server_env mysql_env = {
    "DBPOOL_TEST_MYSQL_", { "MYSQL_UNIX_PORT", "MYSQL_TCP_PORT", NULL, NULL, NULL }, "3306",
};

/* Setting i (SV_*) of a server backend; NULL when unset. var receives the
 * name of the primary variable. */
static const char *server_setting(const struct server_env *e, int i, char *var, size_t len)
{
    snprintf(var, len, "%s%s", e->prefix, server_vars[i]);
    const char *v = getenv(var);
    if ((!v || !*v) && e->std[i])
        v = getenv(e->std[i]);
    return v && *v ? v : NULL;
}

/* host/port/name/username/passwordFile for the pool's type group. */
static bool server_group(const struct server_env *e, char *buf, size_t len, char *why,
                         size_t whylen)
{
    static const char *const keys[SV_COUNT] = { "host", "port", "name", "username",
                                                "passwordFile" };
    size_t pos = 0;

    buf[0] = '\0';
    for (int i = 0; i < SV_COUNT; i++) {
        char var[64];
        const char *v = server_setting(e, i, var, sizeof(var));
        if (!v) {
            if (i == SV_PORT || i == SV_PASSWORD_FILE)
                continue;            /* optional */
            snprintf(why, whylen, "set %s%s%s (and the other %s* variables) to run the suite "
                     "against this backend", var, e->std[i] ? " or " : "",
                     e->std[i] ? e->std[i] : "", e->prefix);
            return false;
        }
        pos += (size_t)snprintf(buf + pos, pos < len ? len - pos : 0,
                                i == SV_PORT ? "%s = %s; " : "%s = \"%s\"; ", keys[i], v);
    }
    return pos < len;
}

static bool postgres_group(char *buf, size_t len, const char *dir, char *why, size_t whylen)
{
    (void)dir;
    return server_group(&pg_env, buf, len, why, whylen);
}

static bool mysql_group(char *buf, size_t len, const char *dir, char *why, size_t whylen)
{
    (void)dir;
    return server_group(&mysql_env, buf, len, why, whylen);
}

#define MYSQL_DIGITS "(SELECT 0 i UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 " \
    "UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 "         \
    "UNION ALL SELECT 8 UNION ALL SELECT 9)"

/* The MySQL test database is emptied by dropping and creating it again
 * before the daemon starts (a pooled connection whose database was dropped
 * under it would be left with none selected). Through the mariadb client:
 * tables, views, routines, triggers and events all go with the database. */
static void mysql_reset_argv(const char **argv, char *sql, size_t sqllen, const char *host,
                             const char *port, const char *db, const char *user)
{
    size_t n = 0;
    argv[n++] = "mariadb";
    argv[n++] = "--no-defaults";
    argv[n++] = "--batch";
    argv[n++] = "--connect-timeout=10";
    if (host[0] == '/') {
        argv[n++] = "--socket";
        argv[n++] = host;
    } else {
        argv[n++] = "--host";
        argv[n++] = host;
        argv[n++] = "--port";
        argv[n++] = port;
    }
    argv[n++] = "--user";
    argv[n++] = user;
    /* lock_wait_timeout: a session still holding a lock fails the reset
     * with a message instead of hanging the test. */
    snprintf(sql, sqllen, "SET SESSION lock_wait_timeout = 20; DROP DATABASE IF EXISTS `%s`; "
             "CREATE DATABASE `%s` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci", db, db);
    argv[n++] = "--execute";
    argv[n++] = sql;
    argv[n] = NULL;
}

/* The password from the password file (first line), or "" without one. */
static void read_password(const char *path, char *buf, size_t len)
{
    buf[0] = '\0';
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f)
        return;
    if (!fgets(buf, (int)len, f))
        buf[0] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    fclose(f);
}

static bool mysql_reset(char *why, size_t whylen)
{
    char var[64], sql[512], pw[256];
    const char *host = server_setting(&mysql_env, SV_HOST, var, sizeof(var));
    const char *port = server_setting(&mysql_env, SV_PORT, var, sizeof(var));
    const char *db = server_setting(&mysql_env, SV_DB, var, sizeof(var));
    const char *user = server_setting(&mysql_env, SV_USER, var, sizeof(var));
    const char *argv[20];
    int st;

    if (!host || !db || !user) {
        snprintf(why, whylen, "set DBPOOL_TEST_MYSQL_HOST, _DB and _USER");
        return false;
    }
    read_password(server_setting(&mysql_env, SV_PASSWORD_FILE, var, sizeof(var)), pw, sizeof(pw));
    mysql_reset_argv(argv, sql, sizeof(sql), host, port ? port : "3306", db, user);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(why, whylen, "fork: %s", strerror(errno));
        return false;
    }
    if (pid == 0) {
        setenv("MYSQL_PWD", pw, 1);
        execvp("mariadb", (char *const *)argv);
        execvp("mysql", (char *const *)argv);
        dprintf(2, "harness: exec mariadb (or mysql): %s; install mariadb-client\n", strerror(errno));
        _exit(127);
    }
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return true;
    snprintf(why, whylen, "`%s` on %s as %s failed (exit status %d; see the output above)", sql,
             host, user, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return false;
}

static const char *const pg_reset[] = {
    "DROP SCHEMA IF EXISTS public CASCADE", "CREATE SCHEMA public", NULL,
};

static const struct backend_profile profiles[] = {
    {
        .name = "sqlite",
        .pool_group = sqlite_group,
        .dollar_placeholders = false,
        .single_writer = true,
        .has_readers = true,
        .t_int = "INTEGER", .t_float = "REAL", .t_text = "TEXT", .t_blob = "BLOB",
        .t_bool = "BOOLEAN",
        .d_int = "integer", .d_float = "real", .d_text = "text", .d_blob = "blob",
        .d_expr = "",
        .t_autoinc_pk = "INTEGER PRIMARY KEY",
        .bool_result = DBPOOL_INT64,
        .float_keeps_neg_zero_in_table = false,   /* SQLite stores whole REALs as integers */
        .float_keeps_neg_zero = true,
        .concat_fmt = "%s || %s",
        .series_sql = "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s "
                      "WHERE n < ?) SELECT n, ? AS pad FROM s",
        .blob_literal = "x'%s'",
        .endless_sql = "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s "
                       "WHERE n < 4000000000) SELECT count(*) FROM s",
        .sqlstate_read_only = "25006",
        .standard_sqlstates = true,
        .has_last_insert_id = true,
        .error_fails_transaction = false,
    },
    {
        .name = "postgres",
        .pool_group = postgres_group,
        .shared_server = true,
        .reset_sql = pg_reset,
        .dollar_placeholders = true,
        .t_int = "BIGINT", .t_float = "DOUBLE PRECISION", .t_text = "TEXT", .t_blob = "BYTEA",
        .t_bool = "BOOLEAN",
        .d_int = "int8", .d_float = "float8", .d_text = "text", .d_blob = "bytea",
        .d_expr = NULL,
        .t_autoinc_pk = "BIGSERIAL PRIMARY KEY",
        .bool_result = DBPOOL_BOOL,
        .float_keeps_neg_zero_in_table = true,
        .float_keeps_neg_zero = true,
        .concat_fmt = "%s || %s",
        .series_sql = "SELECT n, $2::text AS pad FROM generate_series(1, $1::bigint) AS g(n)",
        .blob_literal = "'\\x%s'::bytea",
        .endless_sql = "SELECT pg_sleep(600)",
        .backend_pid_sql = "SELECT CAST(pg_backend_pid() AS BIGINT)",
        .kill_backend_sql = "SELECT pg_terminate_backend(CAST(? AS INTEGER))",
        .sqlstate_read_only = "25006",
        .standard_sqlstates = true,
        .has_last_insert_id = false,
        .error_fails_transaction = true,
    },
    {
        .name = "mysql",
        .pool_group = mysql_group,
        .shared_server = true,
        .reset_sql = NULL,
        .reset_server = mysql_reset,
        .dollar_placeholders = false,
        /* LONGTEXT: TEXT holds at most 64 KiB, the tests store 1 MiB. */
        .t_int = "BIGINT", .t_float = "DOUBLE", .t_text = "LONGTEXT", .t_blob = "LONGBLOB",
        .t_bool = "BOOLEAN",
        .d_int = "BIGINT", .d_float = "DOUBLE", .d_text = "LONGTEXT", .d_blob = "LONGBLOB",
        .d_expr = NULL,
        .t_autoinc_pk = "BIGINT AUTO_INCREMENT PRIMARY KEY",
        .bool_result = DBPOOL_INT64,
        /* MariaDB turns a -0.0 into 0, stored or selected (binary protocol too). */
        .float_keeps_neg_zero_in_table = false,
        .float_keeps_neg_zero = false,
        .concat_fmt = "CONCAT(%s, %s)",
        .series_sql = "SELECT d.n, p.pad FROM (SELECT CAST(? AS SIGNED) AS cnt, ? AS pad) p "
                      "JOIN (SELECT 1 + a.i + 10*b.i + 100*c.i + 1000*e.i + 10000*f.i "
                      "+ 100000*g.i AS n FROM " MYSQL_DIGITS " a, " MYSQL_DIGITS " b, "
                      MYSQL_DIGITS " c, " MYSQL_DIGITS " e, " MYSQL_DIGITS " f, "
                      MYSQL_DIGITS " g) d ON d.n <= p.cnt ORDER BY d.n",
        .blob_literal = "X'%s'",
        .endless_sql = "SELECT SLEEP(600)",
        .backend_pid_sql = "SELECT CAST(CONNECTION_ID() AS SIGNED)",
        .kill_backend_sql = "KILL ?",
        .sqlstate_read_only = "25006",
        .standard_sqlstates = false,
        .has_last_insert_id = true,
        .error_fails_transaction = false,
    },
};

const struct backend_profile *h_profile(void)
{
    const char *want = getenv("DBPOOL_TEST_BACKEND");

    if (!want || !*want)
        want = "sqlite";
    for (size_t i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++)
        if (strcmp(profiles[i].name, want) == 0)
            return &profiles[i];
    cr_assert_fail("DBPOOL_TEST_BACKEND=%s is not a known backend (sqlite, postgres, mysql)", want);
    return NULL;
}

/* ================================================================ SQL dialect */

void h_blob_literal(char *buf, size_t len, const char *hex)
{
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(buf, len, h_profile()->blob_literal, hex);
#pragma GCC diagnostic pop
}

void h_concat(char *buf, size_t len, const char *a, const char *b)
{
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(buf, len, h_profile()->concat_fmt, a, b);
#pragma GCC diagnostic pop
}

/* Length of the quoted string or comment starting at s (0 if none starts there). */
static size_t skip_quoted(const char *s)
{
    const char *e = NULL;

    if (s[0] == '\'' || s[0] == '"' || s[0] == '`')
        e = strchr(s + 1, s[0]);
    else if (s[0] == '-' && s[1] == '-')
        e = strchr(s, '\n');
    else if (s[0] == '/' && s[1] == '*' && (e = strstr(s + 2, "*/")) != NULL)
        e++;                              /* the '/' of the closing marker */
    else if (s[0] == '/' && s[1] == '*')
        return strlen(s);                 /* unterminated comment */
    else
        return 0;
    return e ? (size_t)(e - s) + 1 : strlen(s);
}

char *h_rewrite_placeholders(const char *sql)
{
    size_t n = strlen(sql), out = 0, cap = n * 6 + 16;
    char *r = malloc(cap);
    int param = 0;

    if (!r)
        return NULL;
    for (size_t i = 0; i < n;) {
        size_t q = skip_quoted(sql + i);
        if (q) {
            memcpy(r + out, sql + i, q);
            out += q;
            i += q;
        } else if (sql[i] == '?') {
            out += (size_t)snprintf(r + out, cap - out, "$%d", ++param);
            i++;
        } else {
            r[out++] = sql[i++];
        }
    }
    r[out] = '\0';
    return r;
}

static pthread_mutex_t intern_lock = PTHREAD_MUTEX_INITIALIZER;
static char **interned;
static size_t ninterned;

const char *h_sql(const char *sql)
{
    if (!h_profile()->dollar_placeholders || !strchr(sql, '?'))
        return sql;
    char *r = h_rewrite_placeholders(sql);
    pthread_mutex_lock(&intern_lock);
    char **grown = realloc(interned, (ninterned + 1) * sizeof(*interned));
    if (grown && r) {
        interned = grown;
        interned[ninterned++] = r;
    }
    pthread_mutex_unlock(&intern_lock);
    return r ? r : sql;
}

static void free_interned(void)
{
    pthread_mutex_lock(&intern_lock);
    for (size_t i = 0; i < ninterned; i++)
        free(interned[i]);
    free(interned);
    interned = NULL;
    ninterned = 0;
    pthread_mutex_unlock(&intern_lock);
}

/* ================================================================ files */

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0;

    if (f) {
        for (;;) {
            if (cap - len < 4096) {
                char *g = realloc(buf, cap = cap * 2 + 8192);
                if (!g)
                    break;
                buf = g;
            }
            size_t got = fread(buf + len, 1, cap - len - 1, f);
            len += got;
            if (got == 0)
                break;
        }
        fclose(f);
    }
    if (!buf)
        buf = calloc(1, 1);
    else
        buf[len] = '\0';
    return buf;
}

/* The last `max` bytes of the file at path, starting at a line boundary. */
static char *read_tail(const char *path, size_t max)
{
    char *all = read_file(path);
    size_t len = strlen(all);
    if (len <= max)
        return all;
    const char *start = all + len - max;
    const char *nl = strchr(start, '\n');
    if (nl)
        start = nl + 1;
    char *tail = NULL;
    if (asprintf(&tail, "[... log truncated ...]\n%s", start) < 0)
        tail = NULL;
    free(all);
    return tail ? tail : calloc(1, 1);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void rm_rf(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static bool keep_dirs(void)
{
    const char *k = getenv("DBPOOL_TEST_KEEP");
    return k && *k && strcmp(k, "0") != 0;
}

/* <root>/<suite>.<test>, short enough for sun_path with the socket names. */
static void test_dir_name(char *buf, size_t len, const char *root, const char *suite,
                          const char *test)
{
    snprintf(buf, len, "%s/%.20s.%.40s", root, suite, test);
}

/* ---- runner-side hooks: one root for the run; logs of failed tests ---- */

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
    (void)set;
    const char *tmp = getenv("TMPDIR");
    char tmpl[256];

    snprintf(tmpl, sizeof(tmpl), "%s/dbpoold-it.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(tmpl))
        setenv("DBPOOL_TEST_ROOT", tmpl, 1);
}

static void report_test_dir(struct criterion_test_stats *stats)
{
    const char *root = getenv("DBPOOL_TEST_ROOT");
    char dir[300], path[400];

    if (!root || !stats || !stats->test)
        return;
    test_dir_name(dir, sizeof(dir), root, stats->test->category, stats->test->name);
    snprintf(path, sizeof(path), "%s/dbpoold.log", dir);
    if (stats->test_status == CR_STATUS_FAILED || stats->signal || stats->timed_out) {
        if (access(path, R_OK) == 0) {
            char *tail = read_tail(path, LOG_TAIL_BYTES);
            fprintf(stderr, "==== dbpoold log of %s::%s (%s) ====\n%s==== end of log ====\n",
                    stats->test->category, stats->test->name, path, tail);
            free(tail);
        }
    }
    if (!keep_dirs())
        rm_rf(dir);
}

ReportHook(POST_FINI)(struct criterion_test_stats *stats)
{
    report_test_dir(stats);
}

ReportHook(TEST_CRASH)(struct criterion_test_stats *stats)
{
    report_test_dir(stats);
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
    (void)stats;
    const char *root = getenv("DBPOOL_TEST_ROOT");
    if (root && !keep_dirs())
        rm_rf(root);
}

/* ================================================================ the daemon */

static struct {
    bool have_dir;
    bool own_dir;               /* not under the runner's root: h_fini removes it */
    struct h_paths p;
    pid_t pid;
    unsigned long nofile_soft, nofile_hard;  /* h_opts: kept for h_restart */
} H;

const struct h_paths *h_paths(void)
{
    return &H.p;
}

pid_t h_pid(void)
{
    return H.pid;
}

bool h_running(void)
{
    return H.pid > 0;
}

char *h_read_log(void)
{
    return H.have_dir ? read_file(H.p.log) : calloc(1, 1);
}

static char *log_tail(void)
{
    return H.have_dir ? read_tail(H.p.log, LOG_TAIL_BYTES) : calloc(1, 1);
}

static void make_dir(void)
{
    const char *root = getenv("DBPOOL_TEST_ROOT");
    struct h_paths *p = &H.p;

    if (root && criterion_current_test) {
        test_dir_name(p->dir, sizeof(p->dir), root, criterion_current_test->category,
                      criterion_current_test->name);
        rm_rf(p->dir);
        cr_assert_eq(mkdir(p->dir, 0700), 0, "mkdir %s: %s", p->dir, strerror(errno));
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(p->dir, sizeof(p->dir), "%s/dbpoold-it.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        cr_assert_not_null(mkdtemp(p->dir), "mkdtemp: %s", strerror(errno));
        H.own_dir = true;
    }
    H.have_dir = true;
    snprintf(p->conf, sizeof(p->conf), "%s/dbpoold.conf", p->dir);
    snprintf(p->sock, sizeof(p->sock), "%s/d.sock", p->dir);
    snprintf(p->status_sock, sizeof(p->status_sock), "%s/s.sock", p->dir);
    snprintf(p->log, sizeof(p->log), "%s/dbpoold.log", p->dir);
    snprintf(p->db, sizeof(p->db), "%s/app.db", p->dir);
    cr_assert_lt(strlen(p->status_sock), sizeof(((struct sockaddr_un *)0)->sun_path),
                 "socket path too long: %s (use a shorter TMPDIR)", p->status_sock);
}

static void write_config(const struct h_opts *o)
{
    const struct backend_profile *prof = h_profile();
    char group[1024], why[512];
    int max_open = o && o->max_open_conns > 0 ? o->max_open_conns : 4;
    int max_idle = o && o->max_idle_conns > 0 ? o->max_idle_conns : max_open;

    cr_assert(prof->pool_group(group, sizeof(group), H.p.dir, why, sizeof(why)),
              "backend %s unavailable: %s", prof->name, why);
    FILE *f = fopen(H.p.conf, "w");
    cr_assert_not_null(f, "cannot write %s: %s", H.p.conf, strerror(errno));
    fprintf(f,
            "daemon = {\n"
            "    socket = \"%s\";\n"
            "    statusSocket = \"%s\";\n"
            "    logLevel = \"debug\";\n"
            "    shutdownTimeout = \"%s\";\n"
            "    %s\n"
            "};\n"
            "pools = (\n"
            "    {\n"
            "        name = \"" H_POOL "\";\n"
            "        type = \"%s\";\n"
            "        %s = {\n"
            "            %s\n"
            "            maxOpenConns = %d;\n"
            "            maxIdleConns = %d;\n"
            "            %s\n"
            "        };\n"
            "    }\n"
            "    %s\n"
            ");\n",
            H.p.sock, H.p.status_sock,
            o && o->shutdown_timeout ? o->shutdown_timeout : "5s",
            o && o->daemon_settings ? o->daemon_settings : "",
            prof->name, prof->name, group, max_open, max_idle,
            o && o->pool_settings ? o->pool_settings : "",
            o && o->extra_pools ? o->extra_pools : "");
    cr_assert_eq(fclose(f), 0);
}

void h_rewrite_config(const struct h_opts *opts)
{
    write_config(opts);
}

/* The daemon's environment: ours, with a small ASan quarantine so that RSS
 * measurements mean something in sanitizer builds (user settings win). */
static char **daemon_env(char *asan_buf, size_t len)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 2, sizeof(*env));
    cr_assert_not_null(env);
    const char *user = getenv("ASAN_OPTIONS");
    snprintf(asan_buf, len, "ASAN_OPTIONS=quarantine_size_mb=4:%s", user ? user : "");
    size_t j = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "ASAN_OPTIONS=", 13) != 0)
            env[j++] = environ[i];
    env[j++] = asan_buf;
    env[j] = NULL;
    return env;
}

/* In the child: apply the h_opts descriptor limits (0 = unchanged). */
static bool limit_nofile(void)
{
    struct rlimit rl;

    if (!H.nofile_soft && !H.nofile_hard)
        return true;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return false;
    if (H.nofile_hard)
        rl.rlim_max = H.nofile_hard;
    if (H.nofile_soft)
        rl.rlim_cur = H.nofile_soft;
    if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
        return true;
    dprintf(2, "harness: setrlimit(RLIMIT_NOFILE, %lu, %lu): %s\n", (unsigned long)rl.rlim_cur,
            (unsigned long)rl.rlim_max, strerror(errno));
    return false;
}

static void spawn(void)
{
    const char *bin = getenv("DBPOOLD_BIN");
    char asan[1024];

    cr_assert(bin && *bin, "DBPOOLD_BIN is not set (make check sets it; or export "
              "DBPOOLD_BIN=$PWD/build/dbpoold)");
    cr_assert_eq(access(bin, X_OK), 0, "DBPOOLD_BIN=%s: %s", bin, strerror(errno));
    char **env = daemon_env(asan, sizeof(asan));
    char *argv[] = { (char *)bin, "-c", H.p.conf, NULL };
    int logfd = open(H.p.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    cr_assert_geq(logfd, 0, "open %s: %s", H.p.log, strerror(errno));
    pid_t parent = getpid();
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        dup2(logfd, 1);
        dup2(logfd, 2);
        if (close_range(3, ~0U, 0) != 0)
            for (int fd = 3; fd < 4096; fd++)
                close(fd);
        signal(SIGPIPE, SIG_DFL);
        if (!limit_nofile())
            _exit(127);
        execve(bin, argv, env);
        dprintf(2, "harness: exec %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    close(logfd);
    free(env);
    H.pid = pid;
}

/* Reap the daemon if it exited; returns its wait status or -1 if running. */
static int reap(void)
{
    int st;
    if (H.pid <= 0)
        return 0;
    pid_t r = waitpid(H.pid, &st, WNOHANG);
    if (r == H.pid) {
        H.pid = 0;
        return st;
    }
    return -1;
}

static void fail_start(const char *why)
{
    char *tail = log_tail();
    int st = reap();
    if (H.pid > 0) {
        kill(H.pid, SIGKILL);
        waitpid(H.pid, NULL, 0);
        H.pid = 0;
    }
    cr_assert_fail("dbpoold did not start: %s (wait status %d)\n---- %s ----\n%s", why, st,
                   H.p.log, tail);
}

/* One HELLO + PING round trip on a fresh connection. */
static bool ping_round_trip(int fd)
{
    struct pbuf b;
    struct h_frame f;
    bool ok;

    pbuf_init(&b);
    proto_put_hello(&b, PROTO_VERSION, H_POOL, "harness");
    proto_put_empty(&b, PT_PING);
    ok = !b.oom && h_raw_send(fd, b.data, b.len);
    pbuf_free(&b);
    ok = ok && h_raw_read_frame(fd, 3000, &f) == 1 && f.type == PT_HELLO_OK;
    if (ok)
        h_frame_free(&f);
    ok = ok && h_raw_read_frame(fd, 3000, &f) == 1 && f.type == PT_READY;
    if (ok)
        h_frame_free(&f);
    return ok;
}

static void await_ready(void)
{
    uint64_t deadline = h_now_ms() + START_TIMEOUT_MS;
    bool served = false, status = false;

    while (h_now_ms() < deadline) {
        if (reap() != -1)
            fail_start("it exited during start-up");
        if (!served) {
            int fd = h_raw_try_connect(H.p.sock);
            if (fd >= 0) {
                served = ping_round_trip(fd);
                close(fd);
                if (!served)
                    fail_start("it accepted a connection but did not answer HELLO + PING");
            }
        }
        if (served && !status) {
            int fd = h_raw_try_connect(H.p.status_sock);
            if (fd >= 0) {
                status = true;
                close(fd);
            }
        }
        if (served && status)
            return;
        h_sleep_ms(5);
    }
    fail_start(served ? "the status socket never accepted a connection"
                      : "the client socket never answered within 10 s");
}

/* A test stuck on a lost response must not hang the run: after
 * $DBPOOL_TEST_WATCHDOG seconds (default 300) the test process dies with a
 * message (the daemon follows through PR_SET_PDEATHSIG). */
static void on_watchdog(int sig)
{
    static const char msg[] = "\nharness: watchdog: the test ran too long (a request was "
                              "never answered?); aborting it\n";
    ssize_t w = write(2, msg, sizeof(msg) - 1);
    (void)w;
    signal(sig, SIG_DFL);
    raise(sig);
}

static void arm_watchdog(void)
{
    const char *s = getenv("DBPOOL_TEST_WATCHDOG");
    int secs = s && atoi(s) > 0 ? atoi(s) : 300;
    signal(SIGALRM, on_watchdog);
    alarm((unsigned)secs);
}

/* The settings of a server profile (NULL for sqlite). */
static const struct server_env *server_env_of(const struct backend_profile *prof)
{
    if (prof->pool_group == postgres_group)
        return &pg_env;
    if (prof->pool_group == mysql_group)
        return &mysql_env;
    return NULL;
}

/* FNV-1a, 64 bits: names the lock file of a server. */
static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* Server backends: one test at a time holds the database, across test
 * processes and test runs (two `make check`s, or test_daemon and
 * test_postgres started at once, against the same server). The lock file is
 * /tmp/dbpool-test-<backend>-<hash of host and port>.lock, the same for
 * every process whatever its TMPDIR; the lock is released when the test
 * process exits. */
static void lock_shared_server(void)
{
    const struct backend_profile *prof = h_profile();
    const struct server_env *e = server_env_of(prof);
    char var[64], real[PATH_MAX], path[300];
    const char *host = e ? server_setting(e, SV_HOST, var, sizeof(var)) : NULL;
    const char *port = e ? server_setting(e, SV_PORT, var, sizeof(var)) : NULL;
    uint64_t h = 0xcbf29ce484222325ULL;

    host = host ? host : "";
    if (host[0] == '/' && realpath(host, real))
        host = real;   /* a socket directory, however it is spelled */
    if (!port && e)
        port = e->default_port;
    h = fnv1a(h, prof->name);
    h = fnv1a(h, "\n");
    h = fnv1a(h, host);
    h = fnv1a(h, "\n");
    h = fnv1a(h, port ? port : "");
    snprintf(path, sizeof(path), "/tmp/dbpool-test-%s-%016llx.lock", prof->name,
             (unsigned long long)h);
    /* Another user's file (their tests use the same server) may refuse
     * O_RDWR or O_CREAT; read-only is enough for flock. */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
    while (flock(fd, LOCK_EX) != 0)
        cr_assert_eq(errno, EINTR, "flock %s: %s", path, strerror(errno));
}

static void reset_database(void)
{
    const char *const *sql = h_profile()->reset_sql;
    if (!sql)
        return;
    dbpool_conn *c = h_connect();
    for (; *sql; sql++)
        h_exec(c, *sql);
    dbpool_close(c);
}

void h_start(const struct h_opts *opts)
{
    signal(SIGPIPE, SIG_IGN);
    cr_assert_eq(H.pid, 0, "h_start: a daemon is already running");
    if (h_profile()->shared_server)
        lock_shared_server();
    arm_watchdog();
    make_dir();
    H.nofile_soft = opts ? opts->nofile_soft : 0;
    H.nofile_hard = opts ? opts->nofile_hard : 0;
    write_config(opts);
    if (h_profile()->reset_server) {
        char why[700];
        cr_assert(h_profile()->reset_server(why, sizeof(why)),
                  "could not empty the %s test database: %s", h_profile()->name, why);
    }
    spawn();
    await_ready();
    if (h_profile()->shared_server)
        reset_database();
}

void h_restart(void)
{
    cr_assert(H.have_dir, "h_restart before h_start");
    cr_assert_eq(H.pid, 0, "h_restart: the daemon is still running");
    spawn();
    await_ready();
}

void h_signal(int sig)
{
    cr_assert_gt(H.pid, 0, "no daemon running");
    cr_assert_eq(kill(H.pid, sig), 0, "kill: %s", strerror(errno));
}

int h_wait_exit(int timeout_ms)
{
    uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        int st = reap();
        if (st != -1)
            return st;
        if (h_now_ms() >= deadline)
            return -1;
        h_sleep_ms(5);
    }
}

int h_stop_wait(int timeout_ms)
{
    if (H.pid <= 0)
        return 0;
    kill(H.pid, SIGTERM);
    int st = h_wait_exit(timeout_ms);
    if (st == -1) {
        kill(H.pid, SIGKILL);
        waitpid(H.pid, NULL, 0);
        H.pid = 0;
    }
    return st;
}

void h_assert_log_clean(void)
{
    static const char *const markers[] = {
        "ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
        "WARNING: ThreadSanitizer", "Assertion `",
    };
    char *log = h_read_log();
    for (size_t i = 0; i < sizeof(markers) / sizeof(markers[0]); i++) {
        const char *hit = strstr(log, markers[i]);
        if (hit) {
            const char *start = hit - log > 2000 ? hit - 2000 : log;
            cr_assert_fail("the daemon log has a report (\"%s\"):\n%.*s", markers[i], 10000, start);
        }
    }
    free(log);
}

void h_stop_ok(void)
{
    int st = h_stop_wait(STOP_TIMEOUT_MS);
    char *tail = log_tail();

    cr_assert_neq(st, -1, "dbpoold did not exit within %d ms of SIGTERM (killed)\n%s",
                  STOP_TIMEOUT_MS, tail);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "dbpoold did not exit 0 after SIGTERM: %s %d\n%s",
              WIFEXITED(st) ? "exit status" : "signal",
              WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), tail);
    free(tail);
    h_assert_log_clean();
}

void h_fini(void)
{
    if (H.pid > 0 && h_stop_wait(3000) == -1)
        fprintf(stderr, "harness: dbpoold had to be killed in fini\n");
    if (H.own_dir && !keep_dirs())
        rm_rf(H.p.dir);
    free_interned();
}

long h_rss_kib(void)
{
    char path[64], line[256];
    long kib = -1;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)H.pid);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    cr_assert_gt(kib, 0, "no VmRSS in %s", path);
    return kib;
}

long h_await_stable_rss(uint64_t timeout_ms)
{
    long prev = h_rss_kib();
    int stable = 0;
    uint64_t deadline = h_now_ms() + timeout_ms;

    while (stable < 5 && h_now_ms() < deadline) {
        h_sleep_ms(50);
        long cur = h_rss_kib();
        stable = labs(cur - prev) < 256 ? stable + 1 : 0;
        prev = cur;
    }
    return prev;
}

/* ================================================================ clients */

dbpool_conn *h_try_connect(const char *pool, dbpool_error *err)
{
    return dbpool_connect(H.p.sock, pool, "dbpoold-it", err);
}

dbpool_conn *h_connect(void)
{
    dbpool_error err;
    memset(&err, 0, sizeof(err));
    dbpool_conn *c = h_try_connect(H_POOL, &err);
    cr_assert_not_null(c, "dbpool_connect(%s, \"" H_POOL "\") failed: %s: %s", H.p.sock,
                       dbpool_code_name(err.code), err.message);
    return c;
}

static const char *err_text(dbpool_conn *c, char *buf, size_t len)
{
    const dbpool_error *e = dbpool_last_error(c);
    snprintf(buf, len, "%s [%s]: %s", dbpool_code_name(e->code), e->sqlstate, e->message);
    return buf;
}

dbpool_result *h_query(dbpool_conn *c, const char *sql, const dbpool_value *params, size_t n)
{
    dbpool_result *r = NULL;
    char eb[700];
    int rc = dbpool_query(c, h_sql(sql), params, n, &r);
    cr_assert_eq(rc, 0, "query failed: %s\n  sql: %s", err_text(c, eb, sizeof(eb)), sql);
    cr_assert_not_null(r, "query returned no result object: %s", sql);
    return r;
}

void h_execp(dbpool_conn *c, const char *sql, const dbpool_value *params, size_t n)
{
    char eb[700];
    int rc = dbpool_query(c, h_sql(sql), params, n, NULL);
    cr_assert_eq(rc, 0, "statement failed: %s\n  sql: %s", err_text(c, eb, sizeof(eb)), sql);
}

void h_exec(dbpool_conn *c, const char *sql)
{
    char eb[700];
    int rc = dbpool_exec(c, h_sql(sql));
    cr_assert_eq(rc, 0, "statement failed: %s\n  sql: %s", err_text(c, eb, sizeof(eb)), sql);
}

int64_t h_scalar(dbpool_conn *c, const char *sql)
{
    dbpool_result *r = h_query(c, sql, NULL, 0);
    cr_assert_eq(dbpool_result_nrows(r), 1, "%s: %zu rows", sql, dbpool_result_nrows(r));
    cr_assert_eq(dbpool_result_ncols(r), 1, "%s: %zu columns", sql, dbpool_result_ncols(r));
    const dbpool_value *v = dbpool_result_value(r, 0, 0);
    cr_assert_eq(v->type, DBPOOL_INT64, "%s: value of type %s", sql, dbpool_type_name(v->type));
    int64_t i = v->u.i;
    dbpool_result_free(r);
    return i;
}

void h_expect_error(dbpool_conn *c, int rc, int code, const char *what)
{
    char eb[700];
    cr_assert_eq(rc, -1, "%s: expected error %s, but it succeeded", what, dbpool_code_name(code));
    cr_assert_eq(dbpool_last_error(c)->code, code, "%s: expected error %s, got %s", what,
                 dbpool_code_name(code), err_text(c, eb, sizeof(eb)));
}

void h_create_table(dbpool_conn *c, const char *name, const char *cols)
{
    char sql[1024];
    snprintf(sql, sizeof(sql), "DROP TABLE IF EXISTS %s", name);
    h_exec(c, sql);
    snprintf(sql, sizeof(sql), "CREATE TABLE %s (%s)", name, cols);
    h_exec(c, sql);
}

/* ================================================================ status: pools */

int h_health_status(void)
{
    char *body = NULL;
    int st = h_http_get("/health", &body);
    free(body);
    return st;
}

/* The JSON object of pool `name` in GET /pools (malloc'ed). */
char *h_pool_json(const char *name)
{
    char *body = NULL, pat[128];
    int st = h_http_get("/pools", &body);

    cr_assert_eq(st, 200, "GET /pools: %d %s", st, body);
    snprintf(pat, sizeof(pat), "{\"name\": \"%s\"", name);
    char *p = strstr(body, pat);
    cr_assert_not_null(p, "pool %s not in /pools: %s", name, body);
    char *end = strstr(p + 1, "{\"name\": ");
    if (end)
        *end = '\0';
    char *out = strdup(p);
    cr_assert_not_null(out);
    free(body);
    return out;
}

double h_pool_stat(const char *name, const char *k1, const char *k2)
{
    char *j = h_pool_json(name);
    double v = k2 ? H_JSON_NUM(j, k1, k2) : H_JSON_NUM(j, k1);
    cr_assert(!isnan(v), "pool %s: no %s%s%s in %s", name, k1, k2 ? "." : "", k2 ? k2 : "", j);
    free(j);
    return v;
}

/* ================================================================ background statements */

static void *bg_query_main(void *p)
{
    struct h_bg_query *q = p;
    q->rc = dbpool_exec(q->c, q->sql);
    q->err = *dbpool_last_error(q->c);
    q->ended_ms = h_now_ms();
    atomic_store(&q->done, true);
    return NULL;
}

void h_bg_start(struct h_bg_query *q)
{
    atomic_init(&q->done, false);
    cr_assert_eq(pthread_create(&q->tid, NULL, bg_query_main, q), 0);
}

/* ================================================================ raw sockets */

int h_raw_try_connect(const char *path)
{
    struct sockaddr_un sa;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int h_raw_connect(void)
{
    int fd = h_raw_try_connect(H.p.sock);
    cr_assert_geq(fd, 0, "connect %s: %s", H.p.sock, strerror(errno));
    return fd;
}

bool h_raw_send(int fd, const void *p, size_t n)
{
    const char *q = p;
    while (n > 0) {
        ssize_t w = send(fd, q, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        q += w;
        n -= (size_t)w;
    }
    return true;
}

void h_raw_send_hello(int fd, uint16_t version, const char *pool)
{
    struct pbuf b;
    pbuf_init(&b);
    proto_put_hello(&b, version, pool, "raw");
    cr_assert(!b.oom);
    cr_assert(h_raw_send(fd, b.data, b.len), "send HELLO: %s", strerror(errno));
    pbuf_free(&b);
}

void h_raw_handshake(int fd)
{
    struct h_frame f;
    h_raw_send_hello(fd, PROTO_VERSION, H_POOL);
    cr_assert_eq(h_raw_read_frame(fd, IO_TIMEOUT_MS, &f), 1, "no answer to HELLO");
    cr_assert_eq(f.type, PT_HELLO_OK, "HELLO answered with frame type '%c'", f.type);
    h_frame_free(&f);
}

/* Read exactly n bytes before the deadline. n: ok; 0: EOF before any byte;
 * -1: timeout, error, or EOF in the middle. ECONNRESET counts as EOF (Linux
 * reports it when the peer closed with our bytes still unread). */
static ssize_t read_exact(int fd, void *buf, size_t n, uint64_t deadline)
{
    size_t got = 0;
    while (got < n) {
        int64_t left = (int64_t)(deadline - h_now_ms());
        struct pollfd pfd = { fd, POLLIN, 0 };
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        int pr = poll(&pfd, 1, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0) {
            errno = pr == 0 ? ETIMEDOUT : errno;
            return -1;
        }
        ssize_t r = recv(fd, (char *)buf + got, n - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0 || (r < 0 && errno == ECONNRESET)) {
            if (got == 0)
                return 0;
            errno = EPIPE;
            return -1;
        }
        if (r < 0)
            return -1;
        got += (size_t)r;
    }
    return (ssize_t)n;
}

int h_raw_read_frame(int fd, int timeout_ms, struct h_frame *f)
{
    uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;
    uint8_t hdr[PROTO_HEADER_SIZE];

    memset(f, 0, sizeof(*f));
    ssize_t r = read_exact(fd, hdr, sizeof(hdr), deadline);
    if (r <= 0)
        return (int)r;
    if (proto_peek_header(hdr, sizeof(hdr), UINT32_MAX, &f->type, &f->len) != 1) {
        errno = EPROTO;
        return -1;
    }
    f->payload = malloc(f->len ? f->len : 1);
    cr_assert_not_null(f->payload);
    if (f->len && read_exact(fd, f->payload, f->len, deadline) != (ssize_t)f->len) {
        h_frame_free(f);
        return -1;
    }
    return 1;
}

void h_frame_free(struct h_frame *f)
{
    free(f->payload);
    f->payload = NULL;
}

uint8_t h_raw_read_until_terminal(int fd, int timeout_ms, struct h_frame *terminal)
{
    for (;;) {
        struct h_frame f;
        int r = h_raw_read_frame(fd, timeout_ms, &f);
        cr_assert_eq(r, 1, "expected a frame, got %s", r == 0 ? "EOF" : strerror(errno));
        if (f.type == PT_READY || f.type == PT_ERROR) {
            *terminal = f;
            return f.type;
        }
        h_frame_free(&f);
    }
}

void h_raw_expect_error_then_eof(int fd, int code, const char *what)
{
    struct h_frame f;
    struct proto_error e;

    int r = h_raw_read_frame(fd, IO_TIMEOUT_MS, &f);
    cr_assert_eq(r, 1, "%s: expected an ERROR frame, got %s", what,
                 r == 0 ? "EOF" : strerror(errno));
    cr_assert_eq(f.type, PT_ERROR, "%s: expected an ERROR frame, got type '%c'", what, f.type);
    cr_assert(proto_get_error(f.payload, f.len, &e), "%s: malformed ERROR frame", what);
    cr_assert_eq(e.code, code, "%s: expected error %s, got %s: %.*s", what,
                 dbpool_code_name(code), dbpool_code_name(e.code), (int)e.message.len,
                 e.message.p);
    cr_assert_eq(e.stmt_index, -1, "%s: stmt_index %d", what, e.stmt_index);
    h_frame_free(&f);
    r = h_raw_read_frame(fd, IO_TIMEOUT_MS, &f);
    cr_assert_eq(r, 0, "%s: expected EOF after the ERROR frame, got %s", what,
                 r == 1 ? "another frame" : strerror(errno));
    close(fd);
}

void h_raw_expect_eof(int fd, int timeout_ms, const char *what)
{
    struct h_frame f;
    int r;
    while ((r = h_raw_read_frame(fd, timeout_ms, &f)) == 1) {
        cr_assert_eq(f.type, PT_ERROR, "%s: expected EOF, got frame type '%c'", what, f.type);
        h_frame_free(&f);
    }
    cr_assert_eq(r, 0, "%s: expected EOF, got %s", what, strerror(errno));
    close(fd);
}

/* ================================================================ status socket */

/* Decode a chunked body in place. */
static void dechunk(char *body)
{
    char *in = body, *out = body;
    for (;;) {
        char *end;
        unsigned long n = strtoul(in, &end, 16);
        char *crlf = strstr(end, "\r\n");
        if (!crlf || n == 0)
            break;
        in = crlf + 2;
        if (strlen(in) < n)
            n = strlen(in);
        memmove(out, in, n);
        out += n;
        in += n;
        if (strncmp(in, "\r\n", 2) == 0)
            in += 2;
    }
    *out = '\0';
}

int h_http(const char *method, const char *path, char **body)
{
    char req[512], *resp = NULL;
    size_t len = 0, cap = 0;
    uint64_t deadline = h_now_ms() + IO_TIMEOUT_MS;

    int fd = h_raw_try_connect(H.p.status_sock);
    cr_assert_geq(fd, 0, "connect %s: %s", H.p.status_sock, strerror(errno));
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                     method, path);
    cr_assert(h_raw_send(fd, req, (size_t)n), "send HTTP request: %s", strerror(errno));
    for (;;) {
        if (cap - len < 4096) {
            resp = realloc(resp, cap = cap * 2 + 16384);
            cr_assert_not_null(resp);
        }
        struct pollfd pfd = { fd, POLLIN, 0 };
        int64_t left = (int64_t)(deadline - h_now_ms());
        cr_assert_gt(left, 0, "HTTP %s %s: no EOF within %d ms", method, path, IO_TIMEOUT_MS);
        if (poll(&pfd, 1, (int)left) <= 0)
            continue;
        ssize_t r = recv(fd, resp + len, cap - len - 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        cr_assert_geq(r, 0, "HTTP %s %s: recv: %s", method, path, strerror(errno));
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    resp[len] = '\0';
    int status = 0;
    cr_assert_eq(sscanf(resp, "HTTP/1.%*d %d", &status), 1, "HTTP %s %s: bad response: %.200s",
                 method, path, resp);
    char *sep = strstr(resp, "\r\n\r\n");
    cr_assert_not_null(sep, "HTTP %s %s: no end of headers", method, path);
    *sep = '\0';
    bool chunked = strcasestr(resp, "\r\nTransfer-Encoding: chunked") != NULL;
    char *b = strdup(sep + 4);
    cr_assert_not_null(b);
    if (chunked)
        dechunk(b);
    free(resp);
    *body = b;
    return status;
}

int h_http_get(const char *path, char **body)
{
    return h_http("GET", path, body);
}

/* The start of the value at keys (each searched after the previous), or NULL. */
static const char *json_find(const char *json, const char *const *keys)
{
    const char *p = json;
    char pat[128];

    for (size_t i = 0; keys[i]; i++) {
        snprintf(pat, sizeof(pat), "\"%s\"", keys[i]);
        for (;;) {
            p = strstr(p, pat);
            if (!p)
                return NULL;
            p += strlen(pat);
            p += strspn(p, " \t\r\n");
            if (*p == ':')
                break;        /* a key, not a string value */
        }
        p++;
    }
    return p + strspn(p, " \t\r\n");
}

double h_json_num(const char *json, const char *const *keys)
{
    const char *p = json_find(json, keys);
    char *end;

    if (!p)
        return NAN;
    if (strncmp(p, "true", 4) == 0)
        return 1;
    if (strncmp(p, "false", 5) == 0)
        return 0;
    double v = strtod(p, &end);
    return end == p ? NAN : v;
}

bool h_json_str(const char *json, const char *const *keys, char *out, size_t len)
{
    const char *p = json_find(json, keys);
    size_t n = 0;

    if (!p || *p != '"' || len == 0)
        return false;
    for (p++; *p && *p != '"' && n + 1 < len; p++) {
        if (*p == '\\' && p[1])
            p++;
        out[n++] = *p;
    }
    out[n] = '\0';
    return *p == '"';
}

double h_status_num_opt(const char *path, const char *const *keys)
{
    char *body = NULL;
    double v = NAN;

    if (h_http_get(path, &body) == 200)
        v = h_json_num(body, keys);
    free(body);
    return v;
}

double h_status_num(const char *path, const char *const *keys)
{
    char *body = NULL;
    int st = h_http_get(path, &body);
    cr_assert_eq(st, 200, "GET %s: status %d: %s", path, st, body);
    double v = h_json_num(body, keys);
    cr_assert(!isnan(v), "GET %s: no number at \"%s\"...: %s", path, keys[0], body);
    free(body);
    return v;
}
