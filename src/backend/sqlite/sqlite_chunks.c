/*
 * sqlite_chunks.c — the data handed between a connection's worker and the
 * loop: chunks of rows (allocated by the worker, queued for the loop by
 * sqd_post_chunk, which waits for room; freed by whichever side holds the
 * last use) and exec's private copy of a query, one allocation that
 * outlives the caller's struct backend_query.
 */
#include "backend/sqlite/sqlite_internal.h"

#include <limits.h>

/* ----------------------------------------------------------------- chunks */

void sqd_chunk_free(struct chunk *ch)
{
    if (!ch)
        return;
    while (ch->blocks) {
        struct block *b = ch->blocks;
        ch->blocks = b->next;
        free(b);
    }
    free(ch->cols);
    free(ch->vals);
    free(ch);
}

struct chunk *sqd_chunk_new(size_t ncols)
{
    struct chunk *ch = calloc(1, sizeof(*ch));

    if (ch)
        ch->ncols = ncols;
    return ch;
}

/* ------------------------------------------------------------ query copy */

/* NULL when out of memory or the sizes overflow. */
struct qcopy *sqd_qcopy_new(const struct backend_query *q)
{
    size_t total = sizeof(struct qcopy), bytes = q->sql_len + 1;
    struct qcopy *qc;
    char *p;

    if (q->nparams > (SIZE_MAX / 2) / sizeof(dbpool_value) || q->sql_len > SIZE_MAX / 4)
        return NULL;
    total += q->nparams * sizeof(dbpool_value);
    for (size_t i = 0; i < q->nparams; i++) {
        const dbpool_value *v = &q->params[i];
        if (v->type == DBPOOL_TEXT || v->type == DBPOOL_BLOB) {
            if (v->u.s.len > SIZE_MAX / 4 - bytes)
                return NULL;
            bytes += v->u.s.len;
        }
    }
    if (bytes > SIZE_MAX - total)
        return NULL;
    qc = malloc(total + bytes);
    if (!qc)
        return NULL;
    qc->params = (dbpool_value *)(qc + 1);
    qc->nparams = q->nparams;
    qc->flags = q->flags;
    p = (char *)(qc->params + q->nparams);
    if (q->sql_len > 0)
        memcpy(p, q->sql, q->sql_len);
    p[q->sql_len] = '\0';
    qc->sql = p;
    qc->sql_len = q->sql_len;
    p += q->sql_len + 1;
    for (size_t i = 0; i < q->nparams; i++) {
        dbpool_value *v = &qc->params[i];
        *v = q->params[i];
        if (v->type == DBPOOL_TEXT || v->type == DBPOOL_BLOB) {
            if (v->u.s.len > 0)
                memcpy(p, q->params[i].u.s.ptr, v->u.s.len);
            v->u.s.ptr = p;   /* never NULL: an empty TEXT/BLOB must not bind as NULL */
            p += v->u.s.len;
        }
    }
    return qc;
}

/* Queue a full (or final) chunk for the loop, waiting for room. Returns false
 * (and frees the chunk) when the connection was closed, or cancelled and
 * abort_on_cancel. */
bool sqd_post_chunk(struct backend_conn *c, struct chunk *ch, bool abort_on_cancel)
{
    bool ok;

    lock(&c->mu);
    while (!c->closed && !(abort_on_cancel && atomic_load(&c->cancel_req)) &&
           c->nqueued >= CHUNKS_IN_FLIGHT)
        cwait(c);
    ok = !c->closed && !(abort_on_cancel && atomic_load(&c->cancel_req));
    if (ok) {
        if (c->q_tail)
            c->q_tail->next = ch;
        else
            c->q_head = ch;
        c->q_tail = ch;
        c->nqueued++;
        event_active(c->ev, 0, 0);
    }
    unlock(&c->mu);
    if (!ok)
        sqd_chunk_free(ch);
    return ok;
}
