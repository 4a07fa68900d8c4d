/*
 * stmt.c — the MySQL driver's exec-side state and its prepared statements
 * (stmt.h explains the rules): the generic cache (backend/stmtcache.h)
 * holding MYSQL_STMT handles, the queue of handles to close before the
 * next statement, and the exec side's hooks the connection side calls
 * (mysql_internal.h): resume, schema_changed, a dropped server session,
 * releasing and freeing with the connection. They live here, at the
 * bottom of the exec side, so that the connection side (conn.c, connect.c,
 * cancel.c) calls down into this file and never up into results.c.
 *
 * Nothing here talks to the server: exec.c closes what the queue holds,
 * inside the next operation, and continues a resumed stream.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <mysql.h>

#include "backend/mysql/mysql_internal.h"
#include "backend/mysql/stmt.h"
#include "backend/stmtcache.h"

/* The cache's drop callback: a handle the library has detached from the
 * connection (mysql_reset_connection, mysql_close), so closing it only
 * frees memory. */
static void drop_detached(uintptr_t handle, void *arg)
{
    (void)arg;
    (void)mysql_stmt_close((MYSQL_STMT *)handle);
}

static bool closeq_reserve(struct my_exec *ex, size_t want)
{
    size_t cap = ex->closeq_cap ? ex->closeq_cap : 8;
    MYSQL_STMT **q;

    if (want <= ex->closeq_cap)
        return true;
    while (cap < want)
        cap *= 2;
    q = realloc(ex->closeq, cap * sizeof(*q));
    if (!q)
        return false;
    ex->closeq = q;
    ex->closeq_cap = cap;
    return true;
}

struct my_exec *my_ex_get(struct mysql_conn *c, event_callback_fn on_step, unsigned cache_size)
{
    struct my_exec *ex;

    if (c->ex)
        return c->ex;
    ex = calloc(1, sizeof(*ex));
    if (!ex)
        return NULL;
    ex->ev_step = event_new(c->base, -1, 0, on_step, c);
    if (cache_size)
        ex->sc = stmt_cache_new(cache_size, drop_detached, NULL);
    if (!ex->ev_step || (cache_size && !ex->sc) || !closeq_reserve(ex, 8)) {
        if (ex->ev_step)
            event_free(ex->ev_step);
        if (ex->sc)
            stmt_cache_free(ex->sc);
        free(ex);
        return NULL;
    }
    c->ex = ex;
    return ex;
}

/* -------------------------------------------------- the statement's copy */

static bool qbuf_reserve(struct my_exec *ex, size_t need)
{
    char *p;

    if (need <= ex->qcap)
        return true;
    p = realloc(ex->qbuf, need);
    if (!p)
        return false;
    ex->qbuf = p;
    ex->qcap = need;
    return true;
}

bool my_ex_copy_query(struct my_exec *ex, const struct backend_query *q)
{
    size_t need = q->nparams * sizeof(dbpool_value) + q->sql_len + 1;
    dbpool_value *vals;
    char *p;

    for (size_t i = 0; i < q->nparams; i++)
        if (q->params[i].type == DBPOOL_TEXT || q->params[i].type == DBPOOL_BLOB)
            need += q->params[i].u.s.len;
    if (!qbuf_reserve(ex, need))
        return false;
    vals = (dbpool_value *)(void *)ex->qbuf;   /* realloc'd memory: aligned for any type */
    p = ex->qbuf + q->nparams * sizeof(dbpool_value);
    memcpy(p, q->sql, q->sql_len);
    p[q->sql_len] = '\0';
    ex->sql = p;
    ex->sql_len = q->sql_len;
    p += q->sql_len + 1;
    for (size_t i = 0; i < q->nparams; i++) {
        vals[i] = q->params[i];
        if ((vals[i].type == DBPOOL_TEXT || vals[i].type == DBPOOL_BLOB) && vals[i].u.s.len) {
            memcpy(p, vals[i].u.s.ptr, vals[i].u.s.len);
            vals[i].u.s.ptr = p;
            p += vals[i].u.s.len;
        }
    }
    ex->params = vals;
    ex->nparams = q->nparams;
    return true;
}

void my_ex_trim(struct my_exec *ex)
{
    ex->sql = NULL;
    ex->params = NULL;
    if (ex->big_cells) {
        for (size_t i = 0; i < ex->cap; i++) {
            if (ex->cells[i].var_cap > MY_QBUF_KEEP) {
                free(ex->cells[i].var);
                ex->cells[i].var = NULL;
                ex->cells[i].var_cap = 0;
            }
        }
        ex->big_cells = false;
    }
    if (ex->qcap > MY_QBUF_KEEP) {
        free(ex->qbuf);
        ex->qbuf = NULL;
        ex->qcap = 0;
    }
}

/* ---------------------------------------------------------------- cache */

MYSQL_STMT *my_stmt_lookup(struct my_exec *ex)
{
    memset(&ex->ref, 0, sizeof(ex->ref));
    ex->verdict = ex->sc ? stmt_cache_lookup(ex->sc, ex->sql, ex->sql_len, NULL, 0, &ex->ref)
                         : SC_UNNAMED;
    return ex->verdict == SC_PREPARED ? (MYSQL_STMT *)ex->ref.handle : NULL;
}

void my_stmt_prepared(struct my_exec *ex)
{
    if (ex->verdict != SC_PREPARE)
        return;   /* first sight (or no cache): closed after this execution */
    /* Kept; or, out of memory, on the cache's garbage list: the cache owns
     * it either way. */
    if (stmt_cache_add(ex->sc, &ex->ref, (uintptr_t)ex->st, ex->sql, ex->sql_len, NULL, 0))
        ex->stmt_flag = BR_PREPARED;
    ex->st_cached = true;
}

void my_stmt_forget(struct my_exec *ex)
{
    if (ex->st_cached && ex->sc)
        stmt_cache_forget(ex->sc, &ex->ref);   /* onto the garbage list */
}

void my_stmt_end(struct my_exec *ex)
{
    if (ex->st && !ex->st_cached && closeq_reserve(ex, ex->nclose + 1))
        ex->closeq[ex->nclose++] = ex->st;
    /* (out of memory: the handle's memory is lost, the server closes it
     * with the connection) */
    ex->st = NULL;
}

/* The cache's garbage joins the close queue. */
static void take_garbage(struct my_exec *ex)
{
    size_t n = 0;
    const struct stmt_garbage *g = ex->sc ? stmt_cache_garbage(ex->sc, &n) : NULL;

    if (!g || !closeq_reserve(ex, ex->nclose + n))
        return;
    for (size_t i = 0; i < n; i++)
        ex->closeq[ex->nclose++] = (MYSQL_STMT *)g[i].handle;
    stmt_cache_garbage_done(ex->sc);
}

MYSQL_STMT *my_stmt_next_close(struct my_exec *ex)
{
    take_garbage(ex);
    return ex->nclose ? ex->closeq[--ex->nclose] : NULL;
}

/* ------------------------------------------------------- driver hooks */

void my_resume(struct mysql_conn *c)
{
    if (c->closed || c->op != MOP_EXEC || !c->paused || !c->ex)
        return;
    c->paused = false;
    c->ex->step_begin = false;
    event_active(c->ex->ev_step, 0, 0);   /* exec.c's on_step continues the stream */
}

void my_exec_release(struct mysql_conn *c)
{
    struct my_exec *ex = c->ex;

    if (ex && ex->res) {
        mysql_free_result(ex->res);   /* the socket is shut down: its reads fail at once */
        ex->res = NULL;
    }
}

void my_schema_changed(struct mysql_conn *c)
{
    if (c->ex && c->ex->sc)
        stmt_cache_forget_all(c->ex->sc);
}

/* Every handle of the close queue, detached from the server: freed. */
static void drop_queue(struct my_exec *ex)
{
    while (ex->nclose > 0)
        drop_detached((uintptr_t)ex->closeq[--ex->nclose], NULL);
}

void my_stmt_dropped(struct mysql_conn *c)
{
    struct my_exec *ex = c->ex;

    if (!ex)
        return;
    if (ex->sc)
        stmt_cache_clear(ex->sc);
    drop_queue(ex);
}

static void free_buffers(struct my_exec *ex)
{
    for (size_t i = 0; i < ex->cap; i++)
        free(ex->cells[i].var);
    free(ex->cols);
    free(ex->dcols);
    free(ex->vals);
    free(ex->cells);
    free(ex->rbind);
    free(ex->pbind);
    free(ex->closeq);
    free(ex->qbuf);
}

/* After mysql_close(): the handles are detached from the connection, so
 * closing them only frees memory. */
void my_exec_free(struct mysql_conn *c)
{
    struct my_exec *ex = c->ex;

    if (!ex)
        return;
    c->ex = NULL;
    my_stmt_end(ex);
    if (ex->closing)
        drop_detached((uintptr_t)ex->closing, NULL);   /* its close never finished */
    drop_queue(ex);
    if (ex->sc)
        stmt_cache_free(ex->sc);
    free_buffers(ex);
    event_free(ex->ev_step);
    free(ex);
}
