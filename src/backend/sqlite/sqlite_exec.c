/*
 * sqlite_exec.c — running one statement on the worker thread: prepare,
 * bind, step, and copy each row into the current chunk, posting full
 * chunks to the loop (sqd_post_chunk waits for room, so a huge result
 * never sits in memory whole). The per-row functions are static here, with
 * their caller, so the compiler can inline the hot path.
 */
#include "backend/sqlite/sqlite_internal.h"

#include <limits.h>
#include <strings.h>

/* n bytes inside the chunk, stable until the chunk is freed. */
static char *chunk_bytes(struct chunk *ch, size_t n)
{
    struct block *b = ch->blocks;
    char *p;

    if (!b || b->cap - b->used < n) {
        size_t cap = b ? b->cap * 2 : BLOCK_FIRST;
        if (cap > BLOCK_MAX)
            cap = BLOCK_MAX;
        if (cap < n)
            cap = n;
        b = malloc(sizeof(*b) + cap);
        if (!b)
            return NULL;
        b->used = 0;
        b->cap = cap;
        b->next = ch->blocks;
        ch->blocks = b;
    }
    p = b->data + b->used;
    b->used += n;
    ch->bytes += n;
    return p;
}

static const char *chunk_strdup(struct chunk *ch, const char *s, bool lower)
{
    size_t n = strlen(s);
    char *p = chunk_bytes(ch, n + 1);

    if (!p)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        char ch_ = s[i];
        p[i] = (lower && ch_ >= 'A' && ch_ <= 'Z') ? (char)(ch_ - 'A' + 'a') : ch_;
    }
    p[n] = '\0';
    return p;
}

/* Column names and lower-cased declared types ("" when none). */
static bool chunk_set_columns(struct chunk *ch, sqlite3_stmt *stmt)
{
    ch->cols = calloc(ch->ncols, sizeof(*ch->cols));
    if (!ch->cols)
        return false;
    for (size_t i = 0; i < ch->ncols; i++) {
        const char *name = sqlite3_column_name(stmt, (int)i);
        const char *decl = sqlite3_column_decltype(stmt, (int)i);
        if (!name)
            return false;   /* sqlite3_column_name fails only when out of memory */
        ch->cols[i].name = chunk_strdup(ch, name, false);
        ch->cols[i].decl_type = chunk_strdup(ch, decl ? decl : "", true);
        if (!ch->cols[i].name || !ch->cols[i].decl_type)
            return false;
    }
    return true;
}

static bool copy_bytes_value(struct chunk *ch, dbpool_value *v, dbpool_type type,
                             const void *src, int n)
{
    char *dst;

    if (n < 0 || (n > 0 && !src))
        return false;   /* SQLite returns NULL for a non-empty value only when out of memory */
    dst = chunk_bytes(ch, (size_t)n + 1);
    if (!dst)
        return false;
    if (n > 0)
        memcpy(dst, src, (size_t)n);
    dst[n] = '\0';      /* TEXT is NUL-terminated as a courtesy */
    v->type = type;
    v->u.s.ptr = dst;
    v->u.s.len = (size_t)n;
    return true;
}

/* Typed per value by its storage class (sqlite3_column_type). */
static bool copy_value(struct chunk *ch, sqlite3_stmt *stmt, int i, dbpool_value *v)
{
    const void *p;

    switch (sqlite3_column_type(stmt, i)) {
    case SQLITE_INTEGER:
        v->type = DBPOOL_INT64;
        v->u.i = sqlite3_column_int64(stmt, i);
        return true;
    case SQLITE_FLOAT:
        v->type = DBPOOL_FLOAT64;
        v->u.f = sqlite3_column_double(stmt, i);
        return true;
    case SQLITE_TEXT:
        p = sqlite3_column_text(stmt, i);   /* text first, then bytes */
        return copy_bytes_value(ch, v, DBPOOL_TEXT, p, sqlite3_column_bytes(stmt, i));
    case SQLITE_BLOB:
        p = sqlite3_column_blob(stmt, i);
        return copy_bytes_value(ch, v, DBPOOL_BLOB, p, sqlite3_column_bytes(stmt, i));
    default:
        v->type = DBPOOL_NULL;
        v->u.i = 0;
        return true;
    }
}

static bool chunk_add_row(struct chunk *ch, sqlite3_stmt *stmt)
{
    dbpool_value *row;

    if (ch->nrows == ch->cap_rows) {
        size_t cap = ch->cap_rows ? ch->cap_rows * 2 : 16;
        dbpool_value *vals;
        if (cap > CHUNK_MAX_ROWS)
            cap = CHUNK_MAX_ROWS;
        vals = realloc(ch->vals, cap * ch->ncols * sizeof(*vals));
        if (!vals)
            return false;
        ch->vals = vals;
        ch->cap_rows = cap;
    }
    row = ch->vals + ch->nrows * ch->ncols;
    for (size_t i = 0; i < ch->ncols; i++)
        if (!copy_value(ch, stmt, (int)i, &row[i]))
            return false;
    ch->nrows++;
    ch->bytes += ch->ncols * sizeof(*row);
    return true;
}

static bool chunk_full(const struct chunk *ch)
{
    return ch->nrows >= CHUNK_MAX_ROWS || ch->bytes >= CHUNK_MAX_BYTES;
}

/* ------------------------------------------------------- worker: exec */

/* Whitespace, comments and empty statements (';') only? */
static bool only_trivia(const char *p, const char *end)
{
    while (p < end) {
        if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f' || *p == '\v' ||
            *p == ';') {
            p++;
        } else if (*p == '-' && p + 1 < end && p[1] == '-') {
            while (p < end && *p != '\n')
                p++;
        } else if (*p == '/' && p + 1 < end && p[1] == '*') {
            p += 2;
            while (p + 1 < end && !(p[0] == '*' && p[1] == '/'))
                p++;
            p = (p + 1 < end) ? p + 2 : end;
        } else {
            return false;
        }
    }
    return true;
}

/* The transaction state as SQLite sees it now (worker thread). */
char sqd_txstate_now(const struct backend_conn *c)
{
    if (!c->db)
        return 'I';
    return sqlite3_get_autocommit(c->db) ? 'I' : 'T';
}

void sqd_not_connected(struct backend_result *r)
{
    backend_result_error(r, DBPOOL_E_UNAVAILABLE, "", 'I',
                         "SQLite connection is not open (connect failed or was not called)");
    r->broken = true;
}

/* Prepare exactly one statement. *out stays NULL (with r filled) when there
 * is nothing to run or on error. */
static void prepare_one(struct backend_conn *c, const struct qcopy *q, sqlite3_stmt **out,
                        struct backend_result *r)
{
    const char *p = q->sql, *end = q->sql + q->sql_len, *tail = p;

    *out = NULL;
    if (q->sql_len > INT_MAX) {
        backend_result_error(r, DBPOOL_E_SQL, "54000", 'I', "statement too long (%zu bytes)",
                             q->sql_len);
        return;
    }
    while (!*out && !only_trivia(p, end)) {
        int rc = sqlite3_prepare_v3(c->db, p, (int)(end - p), 0, out, &tail);
        if (rc != SQLITE_OK) {
            sqd_sql_error(c, r, sqlite3_extended_errcode(c->db), sqlite3_errmsg(c->db), true);
            *out = NULL;
            return;
        }
        if (tail <= p)
            break;
        p = tail;   /* skipped an empty statement */
    }
    if (!*out) {
        backend_result_ok(r, 'I');   /* empty query: nothing to run */
        return;
    }
    if (!only_trivia(tail, end)) {
        (void)sqlite3_finalize(*out);   /* never stepped: SQLITE_OK */
        *out = NULL;
        backend_result_error(r, DBPOOL_E_SQL, "42601", 'I',
                             "query contains more than one statement; "
                             "send them as a batch or one at a time");
    }
}

/* 0 or an SQLite code; -1 for an unknown parameter type. */
static int bind_one(sqlite3_stmt *st, int i, const dbpool_value *v)
{
    switch (v->type) {
    case DBPOOL_NULL:
        return sqlite3_bind_null(st, i);
    case DBPOOL_INT64:
        return sqlite3_bind_int64(st, i, v->u.i);
    case DBPOOL_FLOAT64:
        return sqlite3_bind_double(st, i, v->u.f);
    case DBPOOL_TEXT:   /* our copy outlives the statement: SQLITE_STATIC */
        return sqlite3_bind_text64(st, i, v->u.s.ptr, v->u.s.len, SQLITE_STATIC, SQLITE_UTF8);
    case DBPOOL_BLOB:
        return sqlite3_bind_blob64(st, i, v->u.s.ptr, v->u.s.len, SQLITE_STATIC);
    case DBPOOL_BOOL:
        return sqlite3_bind_int(st, i, v->u.b ? 1 : 0);
    default:
        return -1;
    }
}

static bool bind_params(struct backend_conn *c, sqlite3_stmt *st, const struct qcopy *q,
                        struct backend_result *r)
{
    int expected = sqlite3_bind_parameter_count(st);

    if (expected < 0 || (size_t)expected != q->nparams) {
        backend_result_error(r, DBPOOL_E_SQL, "07001", 'I',
                             "statement expects %d parameters, got %zu", expected, q->nparams);
        return false;
    }
    for (size_t i = 0; i < q->nparams; i++) {
        int rc = bind_one(st, (int)i + 1, &q->params[i]);
        if (rc == -1) {
            backend_result_error(r, DBPOOL_E_INTERNAL, "", 'I',
                                 "parameter %zu has unknown type %d", i + 1,
                                 (int)q->params[i].type);
            return false;
        }
        if (rc != SQLITE_OK) {
            sqd_sql_error(c, r, rc, sqlite3_errmsg(c->db), false);
            return false;
        }
    }
    return true;
}

static int64_t total_changes(sqlite3 *db)
{
#if SQLITE_VERSION_NUMBER >= 3037000
    return sqlite3_total_changes64(db);
#else
    return sqlite3_total_changes(db);
#endif
}

static int64_t last_changes(sqlite3 *db)
{
#if SQLITE_VERSION_NUMBER >= 3037000
    return sqlite3_changes64(db);
#else
    return sqlite3_changes(db);
#endif
}

/* Step through the rows, posting full chunks. Returns SQLITE_DONE, an
 * SQLite error code, STEP_NOMEM or STEP_ABANDONED. *chp holds the chunk
 * being filled (NULL for statements without columns). */
static int step_rows(struct backend_conn *c, sqlite3_stmt *st, struct chunk **chp, int64_t *nrows)
{
    int rc;

    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct chunk *full;
        if (!*chp || !chunk_add_row(*chp, st))
            return STEP_NOMEM;
        (*nrows)++;
        if (!chunk_full(*chp))
            continue;
        full = *chp;
        *chp = sqd_chunk_new(full->ncols);
        if (!sqd_post_chunk(c, full, true))
            return STEP_ABANDONED;
    }
    return rc;
}

/* The counts reported for a statement that ran to completion. */
static void fill_counts(struct backend_conn *c, sqlite3_stmt *st, bool readonly, int ncols,
                        int64_t nrows, int64_t changes_before, sqlite3_int64 rowid_before,
                        struct backend_result *r)
{
    static const char *const insert_kw[] = { "INSERT", "REPLACE", NULL };
    int64_t changed = total_changes(c->db) - changes_before;
    sqlite3_int64 rowid = sqlite3_last_insert_rowid(c->db);
    const char *sql = sqlite3_sql(st);

    /* sqlite3_changes keeps the count of the last INSERT/UPDATE/DELETE, so
     * only trust it when this statement changed something. */
    if (!readonly && ncols == 0)
        r->rows_affected = changed > 0 ? last_changes(c->db) : 0;
    else
        r->rows_affected = nrows;
    if (!readonly && (rowid != rowid_before ||
                      (changed > 0 && sql && sql_starts_with_keyword(sql, strlen(sql), insert_kw))))
        r->last_insert_id = rowid;
}

static void run_stmt(struct backend_conn *c, sqlite3_stmt *st, struct backend_result *r,
                     bool *wrote)
{
    bool readonly = sqlite3_stmt_readonly(st) != 0;
    int ncols = sqlite3_column_count(st);
    int64_t changes_before = total_changes(c->db), nrows = 0;
    sqlite3_int64 rowid_before = sqlite3_last_insert_rowid(c->db);
    struct chunk *ch = NULL;
    int rc = SQLITE_DONE;

    if (ncols > 0) {
        ch = sqd_chunk_new((size_t)ncols);
        rc = (ch && chunk_set_columns(ch, st)) ? SQLITE_DONE : STEP_NOMEM;
    }
    if (rc == SQLITE_DONE)
        rc = step_rows(c, st, &ch, &nrows);
    if (rc == SQLITE_DONE) {
        backend_result_ok(r, 'I');
        fill_counts(c, st, readonly, ncols, nrows, changes_before, rowid_before, r);
        *wrote = !readonly;
    } else if (rc == STEP_ABANDONED) {
        sqd_canceled_result(r);
    } else if (rc == STEP_NOMEM) {
        sqd_oom_result(r, "copying a row");
    } else {
        sqd_sql_error(c, r, sqlite3_extended_errcode(c->db), sqlite3_errmsg(c->db), false);
    }
    (void)sqlite3_finalize(st);   /* repeats the step error, if any, already reported */
    if (rc == SQLITE_DONE && ch && (ch->nrows > 0 || ch->cols)) {
        /* The last rows (or the columns of an empty result). Not abandoned
         * on cancel: the statement is complete; the loop decides. */
        (void)sqd_post_chunk(c, ch, false);   /* false only when closed: nobody listens */
    } else {
        sqd_chunk_free(ch);   /* rows of a failed statement are not delivered */
    }
}

void sqd_worker_exec(struct backend_conn *c, const struct qcopy *q, struct backend_result *r,
                     bool *wrote)
{
    sqlite3_stmt *st = NULL;

    if (!q) {
        sqd_oom_result(r, "copying the statement");
        return;
    }
    if (!c->db) {
        sqd_not_connected(r);
        return;
    }
    prepare_one(c, q, &st, r);
    if (st && (q->flags & BQ_REQUIRE_READONLY) && !sqlite3_stmt_readonly(st)) {
        (void)sqlite3_finalize(st);   /* never stepped: SQLITE_OK */
        memset(r, 0, sizeof(*r));
        r->reroute_to_writer = true;  /* nothing ran; ok = false, no error code */
        st = NULL;
    }
    if (st && !bind_params(c, st, q, r)) {
        (void)sqlite3_finalize(st);   /* never stepped */
        st = NULL;
    }
    if (st)
        run_stmt(c, st, r, wrote);
    r->txstate = sqd_txstate_now(c);
}
