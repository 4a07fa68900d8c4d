/*
 * result.c — libdbpool buffered results (dbpool_result: an arena of values).
 * The overview (frames, buffers, failures, timeouts) is at the top of
 * src/lib/connect.c; the shared structs are in internal.h.
 */
#include "lib/internal.h"

/* ------------------------------------------------------------ results */

static const dbpool_error no_error = { DBPOOL_OK, "", "", 0 };

/* A new, empty result (NULL without memory). */
dbpool_result *lib_result_new(dbpool_result_status status)
{
    dbpool_result *r = calloc(1, sizeof *r);

    if (r == NULL)
        return NULL;
    r->status = status;
    r->stmt_index = -1;
    r->tx = DBPOOL_TX_IDLE;
    return r;
}

/* n bytes of r's arena; a new block holds at least block bytes. */
static void *arena_alloc(dbpool_result *r, size_t n, size_t block)
{
    struct arena_block *b = r->arena;

    if (b == NULL || b->cap - b->used < n) {
        size_t cap = n > block ? n : block;
        b = malloc(sizeof *b + cap);
        if (b == NULL)
            return NULL;
        b->next = r->arena;
        b->used = 0;
        b->cap = cap;
        r->arena = b;
    }
    b->used += n;
    return b->data + b->used - n;
}

/* The bytes a row's TEXT/BLOB values take in the arena. */
static size_t row_text_bytes(const dbpool_value *row, size_t ncols)
{
    size_t n = 0;

    for (size_t i = 0; i < ncols; i++)
        if (row[i].type == DBPOOL_TEXT || row[i].type == DBPOOL_BLOB)
            n += row[i].u.s.len + 1;
    return n;
}

/* Appends a row, copying TEXT/BLOB bytes (NUL-terminated) into the arena.
 * A single-row result (DBPOOL_RESULT_ROW) gets exactly the room its row
 * needs; the others grow by ARENA_BLOCK and doubling value arrays. */
int lib_result_add_row(dbpool_result *r, const dbpool_value *row, size_t ncols)
{
    bool one = r->status == DBPOOL_RESULT_ROW;
    size_t block = one ? row_text_bytes(row, ncols) : ARENA_BLOCK;

    if (ncols > 0 && (r->nrows + 1) * ncols > r->valcap) {
        size_t cap = r->valcap ? r->valcap * 2 : (one ? 1 : 64) * ncols;
        dbpool_value *nv;
        if (cap < (r->nrows + 1) * ncols || cap > SIZE_MAX / sizeof *nv)
            return -1;
        nv = realloc(r->vals, cap * sizeof *nv);
        if (nv == NULL)
            return -1;
        r->vals = nv;
        r->valcap = cap;
    }
    for (size_t i = 0; i < ncols; i++) {
        dbpool_value v = row[i];
        if (v.type == DBPOOL_TEXT || v.type == DBPOOL_BLOB) {
            char *s = arena_alloc(r, v.u.s.len + 1, block);
            if (s == NULL)
                return -1;
            memcpy(s, v.u.s.ptr, v.u.s.len);
            s[v.u.s.len] = '\0';
            v.u.s.ptr = s;
        }
        r->vals[r->nrows * ncols + i] = v;
    }
    r->nrows++;
    return 0;
}

/* Completes r with the statement's columns and counters from c. */
int lib_result_finish(dbpool_result *r, const dbpool_conn *c)
{
    r->ncols = c->ncols;
    r->cols = lib_columns_clone(c->cols, c->ncols);
    r->affected = c->affected;
    r->last_id = c->last_id;
    r->tx = c->tx;
    return r->cols != NULL ? 0 : -1;
}

void dbpool_result_free(dbpool_result *r)
{
    if (r == NULL)
        return;
    while (r->arena != NULL) {
        struct arena_block *next = r->arena->next;
        free(r->arena);
        r->arena = next;
    }
    free(r->vals);
    free(r->cols);
    free(r->err);
    free(r);
}

size_t dbpool_result_nrows(const dbpool_result *r) { return r ? r->nrows : 0; }
size_t dbpool_result_ncols(const dbpool_result *r) { return r ? r->ncols : 0; }
const dbpool_column *dbpool_result_columns(const dbpool_result *r) { return r ? r->cols : NULL; }
int64_t dbpool_result_rows_affected(const dbpool_result *r) { return r ? r->affected : 0; }
int64_t dbpool_result_last_insert_id(const dbpool_result *r) { return r ? r->last_id : 0; }

const dbpool_value *dbpool_result_value(const dbpool_result *r, size_t row, size_t col)
{
    if (r == NULL || row >= r->nrows || col >= r->ncols)
        return NULL;
    return &r->vals[row * r->ncols + col];
}

dbpool_result_status dbpool_result_status_of(const dbpool_result *r)
{
    return r != NULL ? r->status : DBPOOL_RESULT_ERROR;
}

const dbpool_error *dbpool_result_error(const dbpool_result *r)
{
    if (r == NULL)
        return &lib_no_conn_error;
    return r->err != NULL ? r->err : &no_error;
}

dbpool_txstate dbpool_result_txstate(const dbpool_result *r)
{
    return r != NULL ? r->tx : DBPOOL_TX_IDLE;
}

int dbpool_result_stmt_index(const dbpool_result *r)
{
    return r != NULL ? (int)r->stmt_index : -1;
}
