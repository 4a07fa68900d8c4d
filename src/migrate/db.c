/*
 * db.c — dbpool-migrate's helpers around libdbpool (migrate.h): running a
 * statement, turning the daemon's error into a message, reading integers and
 * booleans as each backend sends them, quoting, and golang-migrate's log
 * format on stderr.
 */
#include "migrate/migrate.h"
#include "common/sqlsplit.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int mig_fail(struct mig *m, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(m->err, sizeof m->err, fmt, ap);
    va_end(ap);
    return -1;
}

int mig_fail_db(struct mig *m, const char *what)
{
    const dbpool_error *e = dbpool_last_error(m->conn);

    if (e->sqlstate[0] != '\0')
        return mig_fail(m, "%s: %s (SQLSTATE %s)", what, e->message, e->sqlstate);
    return mig_fail(m, "%s: %s", what, e->message);
}

int mig_query(struct mig *m, const char *sql, const dbpool_value *p, size_t np, dbpool_result **out)
{
    if (m->verbose)
        mig_vlog(m, "Executing %s", sql);
    if (dbpool_query(m->conn, sql, p, np, out) != 0)
        return mig_fail_db(m, sql);
    return 0;
}

const char *mig_ph(const struct mig *m, int i)
{
    static const char *const pg[] = { "$0", "$1", "$2", "$3", "$4", "$5", "$6", "$7", "$8", "$9" };
    return m->backend == MB_POSTGRES && i >= 0 && i <= 9 ? pg[i] : "?";
}

bool mig_value_int(const dbpool_value *v, int64_t *out)
{
    switch (v->type) {
    case DBPOOL_INT64: *out = v->u.i; return true;
    case DBPOOL_BOOL: *out = v->u.b; return true;
    case DBPOOL_FLOAT64: *out = (int64_t)v->u.f; return true;
    case DBPOOL_TEXT: {
        char buf[32];
        char *end;
        size_t n = v->u.s.len < sizeof buf - 1 ? v->u.s.len : sizeof buf - 1;
        memcpy(buf, v->u.s.ptr, n);
        buf[n] = '\0';
        long long x = strtoll(buf, &end, 10);
        if (end == buf || *end != '\0')
            return false;
        *out = x;
        return true;
    }
    default: return false;
    }
}

bool mig_value_bool(const dbpool_value *v, bool *out)
{
    int64_t i;

    if (v->type == DBPOOL_TEXT) {
        const char *s = v->u.s.ptr;
        size_t n = v->u.s.len;
        if ((n == 1 && (s[0] == 't' || s[0] == '1')) || (n == 4 && strncasecmp(s, "true", 4) == 0)) {
            *out = true;
            return true;
        }
        if ((n == 1 && (s[0] == 'f' || s[0] == '0')) || (n == 5 && strncasecmp(s, "false", 5) == 0)) {
            *out = false;
            return true;
        }
        return false;
    }
    if (!mig_value_int(v, &i))
        return false;
    *out = i != 0;
    return true;
}

int64_t mig_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* golang-migrate logs through Go's log package when verbose: a local
 * "2006/01/02 15:04:05 " prefix; plainly otherwise. */
static void vlog_line(const struct mig *m, const char *fmt, va_list ap)
{
    if (m == NULL || m->verbose) {
        char ts[32];
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        strftime(ts, sizeof ts, "%Y/%m/%d %H:%M:%S ", &tm);
        fputs(ts, stderr);
    }
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void mig_log(const struct mig *m, const char *fmt, ...)
{
    va_list ap;
    struct mig quiet = { .verbose = false };

    va_start(ap, fmt);
    vlog_line(m ? m : &quiet, fmt, ap);
    va_end(ap);
}

void mig_vlog(const struct mig *m, const char *fmt, ...)
{
    va_list ap;

    if (m == NULL || !m->verbose)
        return;
    va_start(ap, fmt);
    vlog_line(m, fmt, ap);
    va_end(ap);
}

void mig_quote_ident(const struct mig *m, const char *name, char *out, size_t cap)
{
    char q = m->backend == MB_MYSQL ? '`' : '"';
    size_t o = 0;

    if (cap < 3) {
        if (cap > 0)
            out[0] = '\0';
        return;
    }
    out[o++] = q;
    for (const char *p = name; *p && o + 3 < cap; p++) {
        if (*p == q)
            out[o++] = q;
        out[o++] = *p;
    }
    out[o++] = q;
    out[o] = '\0';
}

/* The first row's text column col of sql into out. */
static int query_text(struct mig *m, const char *sql, size_t col, char *out, size_t cap)
{
    dbpool_result *r = NULL;
    const dbpool_value *v;

    if (mig_query(m, sql, NULL, 0, &r) != 0)
        return -1;
    out[0] = '\0';
    v = dbpool_result_nrows(r) > 0 ? dbpool_result_value(r, 0, col) : NULL;
    if (v != NULL && v->type == DBPOOL_TEXT)
        snprintf(out, cap, "%.*s", (int)v->u.s.len, v->u.s.ptr);
    dbpool_result_free(r);
    return 0;
}

int mig_describe(struct mig *m)
{
    const char *b = dbpool_backend(m->conn);
    char qs[300], qt[300];

    m->backend = strcmp(b, "postgres") == 0 ? MB_POSTGRES : strcmp(b, "mysql") == 0 ? MB_MYSQL : MB_SQLITE;
    m->split_flags = sqlsplit_flags_for_backend(b);
    if (m->backend == MB_POSTGRES) {
        if (query_text(m, "SELECT current_database()", 0, m->dbname, sizeof m->dbname) != 0
            || query_text(m, "SELECT current_schema()", 0, m->schema, sizeof m->schema) != 0)
            return -1;
        if (m->schema[0] == '\0')
            return mig_fail(m, "no schema: the pool's search_path names no existing schema; "
                            "create one or set search_path for the pool's user");
        mig_quote_ident(m, m->schema, qs, sizeof qs);
        mig_quote_ident(m, MIG_TABLE, qt, sizeof qt);
        snprintf(m->table, sizeof m->table, "%s.%s", qs, qt);
        mig_quote_ident(m, MIG_HISTORY, qt, sizeof qt);
        snprintf(m->history, sizeof m->history, "%s.%s", qs, qt);
        return 0;
    }
    if (m->backend == MB_MYSQL) {
        if (query_text(m, "SELECT DATABASE()", 0, m->dbname, sizeof m->dbname) != 0)
            return -1;
        if (m->dbname[0] == '\0')
            return mig_fail(m, "no database name: the mysql pool has no current database; "
                            "set the pool's database name in dbpoold.conf");
        snprintf(m->table, sizeof m->table, "`%s`", MIG_TABLE);
        snprintf(m->history, sizeof m->history, "`%s`", MIG_HISTORY);
        return 0;
    }
    snprintf(m->table, sizeof m->table, "%s", MIG_TABLE);
    snprintf(m->history, sizeof m->history, "%s", MIG_HISTORY);
    return 0;
}
