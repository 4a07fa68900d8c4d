/*
 * runner.c — running the steps of a plan (plan.h) against the database:
 * `up`, `down`, `goto`, with golang-migrate's output ("1/u create_users
 * (12.3456ms)", "no change") and its dirty-flag protocol, plus what
 * golang-migrate lacks:
 *   - on PostgreSQL and SQLite each migration runs in one transaction with
 *     its schema_migrations and history rows, so a failure leaves the
 *     database at the previous version and not dirty. A first line
 *     "-- dbpool:no-transaction" (for CREATE INDEX CONCURRENTLY and the like),
 *     a file with its own BEGIN/COMMIT, and every MySQL migration (no
 *     transactional DDL) run golang-migrate's way instead: version marked
 *     dirty, statements, version marked clean;
 *   - statements are cut with the dbpool CLI's splitter (sqlsplit.h) and sent
 *     one by one, so multi-statement files work on every backend;
 *   - a history row per migration (history.c); --dry-run; a stop request
 *     (SIGINT/SIGTERM) honoured between migrations.
 */
#include "migrate/migrate.h"
#include "migrate/godur.h"
#include "migrate/plan.h"
#include "migrate/sha256.h"
#include "common/sqlsplit.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NO_TX_MARK "-- dbpool:no-transaction"

/* One migration about to run: the file's text and what was learnt from it. */
struct body {
    char *text;             /* NULL: no file for this direction (a nil migration) */
    size_t len;
    const char *name;       /* identifier, "<empty>" for a nil migration */
    char checksum[65];
    bool in_tx;             /* wrapped in a transaction by us */
    size_t nstmts;
};

static bool first_line_is(const char *text, const char *mark)
{
    size_t n = strlen(mark);
    const char *p = text;

    if (strncmp(p, "\xef\xbb\xbf", 3) == 0)         /* a UTF-8 byte order mark */
        p += 3;
    if (strncmp(p, mark, n) != 0)
        return false;
    for (p += n; *p == ' ' || *p == '\t' || *p == '\r'; p++)
        ;
    return *p == '\n' || *p == '\0';
}

/* A statement that opens or ends a transaction by itself. */
static bool is_tx_control(const char *s, size_t n)
{
    static const char *const words[] = { "BEGIN", "START TRANSACTION", "COMMIT", "END", "ROLLBACK" };

    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        size_t w = strlen(words[i]);
        if (n >= w && strncasecmp(s, words[i], w) == 0
            && (n == w || isspace((unsigned char)s[w]) || s[w] == ';')) {
            /* BEGIN ... END bodies are whole statements of their own (a
             * trigger's BEGIN never starts one): only short forms count. */
            const char *rest = s + w;
            size_t left = n - w;
            while (left > 0 && isspace((unsigned char)*rest))
                rest++, left--;
            if (left == 0 || strncasecmp(rest, "TRANSACTION", 11) == 0 || strncasecmp(rest, "WORK", 4) == 0
                || strncasecmp(rest, "ISOLATION", 9) == 0 || strncasecmp(rest, "READ", 4) == 0)
                return true;
        }
    }
    return false;
}

static void inspect(struct mig *m, struct body *b)
{
    struct sqlsplit it;
    struct sqlsplit_stmt st;
    bool own_tx = false;

    b->nstmts = 0;
    sqlsplit_init(&it, b->text, b->len, m->split_flags);
    while (sqlsplit_next(&it, &st)) {
        b->nstmts++;
        own_tx = own_tx || is_tx_control(st.text, st.len);
    }
    b->in_tx = m->backend != MB_MYSQL && !own_tx && !first_line_is(b->text, NO_TX_MARK);
}

static int load_body(struct mig *m, const struct plan_step *s, struct body *b)
{
    const struct mig_version *v = &m->src->v[source_find(m->src, s->version)];
    const char *file = s->up ? v->up_file : v->down_file;

    memset(b, 0, sizeof *b);
    b->name = "<empty>";
    b->in_tx = m->backend != MB_MYSQL;
    if (file == NULL)
        return 0;
    b->name = s->up ? v->up_name : v->down_name;
    if (source_read(m->src, file, &b->text, &b->len, m->err, sizeof m->err) != 0)
        return -1;
    sha256_hex(b->text, b->len, b->checksum);
    inspect(m, b);
    return 0;
}

/* golang-migrate's database.Error text, with the line in the file. */
static int stmt_failed(struct mig *m, const struct sqlsplit_stmt *st)
{
    const dbpool_error *e = dbpool_last_error(m->conn);
    int shown = st->len > 300 ? 300 : (int)st->len;

    mig_fail(m, "migration failed: %s in line %u: %.*s%s (details: SQLSTATE %s)%s", e->message,
             st->line, shown, st->text, (size_t)shown < st->len ? "..." : "",
             e->sqlstate[0] ? e->sqlstate : "none",
             strcmp(e->sqlstate, "25001") == 0
                 ? "; this statement cannot run in a transaction: make \"" NO_TX_MARK
                   "\" the migration's first line" : "");
    return -1;
}

static int run_statements(struct mig *m, const struct body *b)
{
    struct sqlsplit it;
    struct sqlsplit_stmt st;

    sqlsplit_init(&it, b->text, b->len, m->split_flags);
    while (sqlsplit_next(&it, &st)) {
        if (m->verbose)
            mig_vlog(m, "Executing line %u: %.*s", st.line, (int)st.len, st.text);
        char *sql = strndup(st.text, st.len);
        if (sql == NULL)
            return mig_fail(m, "out of memory");
        int rc = dbpool_query(m->conn, sql, NULL, 0, NULL);
        free(sql);
        if (rc != 0)
            return stmt_failed(m, &st);
    }
    return 0;
}

/* golang-migrate's way: dirty, run, clean. A failure leaves it dirty. */
static int run_plain(struct mig *m, const struct plan_step *s, const struct body *b, int64_t t0)
{
    if (version_set(m, s->target, true) != 0)
        return -1;
    if (b->text != NULL && run_statements(m, b) != 0) {
        size_t l = strlen(m->err);
        snprintf(m->err + l, sizeof m->err - l, "; the database is now dirty at version %lld: "
                 "repair it by hand, then run `force %lld` (or the version before)",
                 (long long)s->target, (long long)s->target);
        return -1;
    }
    if (version_set(m, s->target, false) != 0)
        return -1;
    return history_add(m, s->version, b->name, s->up ? "up" : "down", b->checksum,
                       (mig_now_ns() - t0) / 1000000);
}

/* Ours: everything in one transaction; a failure changes nothing. */
static int run_in_tx(struct mig *m, const struct plan_step *s, const struct body *b, int64_t t0)
{
    if (dbpool_begin(m->conn, 0) != 0)
        return mig_fail_db(m, "transaction start failed");
    if ((b->text == NULL || run_statements(m, b) == 0)
        && version_set(m, s->target, false) == 0
        && history_add(m, s->version, b->name, s->up ? "up" : "down", b->checksum,
                       (mig_now_ns() - t0) / 1000000) == 0) {
        if (dbpool_commit(m->conn) == 0)
            return 0;
        mig_fail_db(m, "transaction commit failed");
    }
    if (dbpool_is_open(m->conn) && dbpool_txstate_of(m->conn) != DBPOOL_TX_IDLE)
        dbpool_rollback(m->conn);
    size_t l = strlen(m->err);
    snprintf(m->err + l, sizeof m->err - l, "; rolled back: the database is unchanged and not dirty");
    return -1;
}

static void log_step(const struct mig *m, const struct plan_step *s, const struct body *b,
                     int64_t t0, int64_t t_read)
{
    char d1[32], d2[32];
    int64_t now = mig_now_ns();

    if (m->verbose)
        mig_log(m, "Finished %lld/%s %s (read %s, ran %s)", (long long)s->version, s->up ? "u" : "d",
                b->name, godur_format(t_read - t0, d1, sizeof d1), godur_format(now - t_read, d2, sizeof d2));
    else
        mig_log(m, "%lld/%s %s (%s)", (long long)s->version, s->up ? "u" : "d", b->name,
                godur_format(now - t0, d1, sizeof d1));
}

static int run_step(struct mig *m, const struct plan_step *s)
{
    struct body b;
    int64_t t0 = mig_now_ns();
    int rc;

    if (load_body(m, s, &b) != 0)
        return -1;
    if (m->dry_run) {
        mig_log(m, "%lld/%s %s (dry run: %zu statement%s, %s)", (long long)s->version,
                s->up ? "u" : "d", b.name, b.nstmts, b.nstmts == 1 ? "" : "s",
                b.in_tx ? "in a transaction" : "without a transaction");
        free(b.text);
        return 0;
    }
    mig_vlog(m, "Read and execute %lld/%s %s", (long long)s->version, s->up ? "u" : "d", b.name);
    int64_t t_read = mig_now_ns();
    rc = b.in_tx ? run_in_tx(m, s, &b, t0) : run_plain(m, s, &b, t0);
    if (rc == 0)
        log_step(m, s, &b, t0, t_read);
    free(b.text);
    return rc;
}

static int run_plan(struct mig *m, struct plan *p)
{
    int rc = 0;

    if (p->no_change && p->n == 0) {
        mig_log(m, "no change");
        return 1;
    }
    for (size_t i = 0; i < p->n && rc == 0; i++) {
        if (*m->stop) {
            rc = mig_fail(m, "stopped before %lld/%s: run the command again to continue",
                          (long long)p->steps[i].version, p->steps[i].up ? "u" : "d");
            break;
        }
        rc = run_step(m, &p->steps[i]);
    }
    if (rc == 0 && p->err[0] != '\0')
        rc = mig_fail(m, "%s", p->err);
    return rc;
}

/* The current version, refusing a dirty database as golang-migrate does. */
static int clean_version(struct mig *m, int64_t *cur)
{
    bool dirty;

    if (version_read(m, cur, &dirty) != 0)
        return -1;
    if (dirty)
        return mig_fail(m, "Dirty database version %lld. Fix and force version.", (long long)*cur);
    return 0;
}

enum cmd { CMD_UP, CMD_DOWN, CMD_GOTO };

static int run_cmd(struct mig *m, enum cmd c, int64_t arg)
{
    struct plan p;
    int64_t cur;
    int rc;

    if (c != CMD_GOTO && arg == 0) {        /* Steps(0): golang-migrate's no change */
        mig_log(m, "no change");
        return 1;
    }
    if (clean_version(m, &cur) != 0)
        return -1;
    rc = c == CMD_UP ? plan_up(m->src, cur, (long)arg, &p)
       : c == CMD_DOWN ? plan_down(m->src, cur, (long)arg, &p) : plan_goto(m->src, cur, arg, &p);
    if (rc != 0)
        return mig_fail(m, "out of memory");
    rc = run_plan(m, &p);
    plan_free(&p);
    return rc;
}

int run_up(struct mig *m, long limit) { return run_cmd(m, CMD_UP, limit); }
int run_down(struct mig *m, long limit) { return run_cmd(m, CMD_DOWN, limit); }
int run_goto(struct mig *m, int64_t target) { return run_cmd(m, CMD_GOTO, target); }
