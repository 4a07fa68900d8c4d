/*
 * driver_loop.c — the loop driving and result collecting shared by the
 * backend-driver unit tests; see driver_loop.h.
 */
#include <criterion/criterion.h>
#include <event2/event.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "driver_loop.h"

static struct event_base *base;
static const struct backend_driver *drv;
static int guard_seconds = 30;

void driver_loop_init(struct event_base *b, const struct backend_driver *d, int guard_s)
{
    base = b;
    drv = d;
    guard_seconds = guard_s;
}

/* ------------------------------------------------------------- the loop */

static bool timed_out;

static void on_guard(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    timed_out = true;
    event_base_loopbreak(base);
}

void run_until(const bool *flag)
{
    struct event *guard = evtimer_new(base, on_guard, NULL);
    struct timeval tv = { guard_seconds, 0 };

    cr_assert_not_null(guard);
    timed_out = false;
    cr_assert_eq(evtimer_add(guard, &tv), 0);
    while (!*flag && !timed_out)
        cr_assert_geq(event_base_loop(base, EVLOOP_ONCE), 0);
    event_free(guard);
    cr_assert(!timed_out, "timed out waiting for a driver callback");
}

void run_for(int ms)
{
    struct event *t = evtimer_new(base, on_guard, NULL);
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

    cr_assert_not_null(t);
    timed_out = false;
    cr_assert_eq(evtimer_add(t, &tv), 0);
    while (!timed_out)
        cr_assert_geq(event_base_loop(base, EVLOOP_ONCE), 0);
    event_free(t);
    timed_out = false;
}

static void on_later(evutil_socket_t fd, short what, void *p)
{
    struct later *l = p;
    (void)fd, (void)what;
    l->fn(l->arg);
}

void schedule(struct later *l, int ms, void (*fn)(void *), void *arg)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

    l->fn = fn;
    l->arg = arg;
    l->ev = evtimer_new(base, on_later, l);
    cr_assert_not_null(l->ev);
    cr_assert_eq(evtimer_add(l->ev, &tv), 0);
}

void unschedule(struct later *l)
{
    if (l->ev)
        event_free(l->ev);
    l->ev = NULL;
}

double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void do_cancel(void *conn) { drv->cancel(conn); }
void do_close(void *conn) { drv->close(conn); }

/* -------------------------------------------------------- collecting */

char *dupn(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    cr_assert_not_null(s);
    if (n)
        memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

static void col_columns(void *arg, size_t ncols, const dbpool_column *cols)
{
    struct collect *k = arg;

    cr_assert_leq(ncols, MAXC);
    k->columns_calls++;
    k->ncols = ncols;
    for (size_t i = 0; i < ncols; i++) {
        k->names[i] = dupn(cols[i].name, strlen(cols[i].name));
        k->decls[i] = dupn(cols[i].decl_type, strlen(cols[i].decl_type));
    }
}

static bool col_row(void *arg, size_t ncols, const dbpool_value *vals)
{
    struct collect *k = arg;

    if (k->columns_calls == 0)
        k->columns_after_row = true;
    cr_assert_eq(ncols, k->ncols);
    if (k->nrows < MAXR) {
        for (size_t i = 0; i < ncols; i++) {
            struct cell *c = &k->cells[k->nrows][i];
            c->type = vals[i].type;
            if (vals[i].type == DBPOOL_TEXT || vals[i].type == DBPOOL_BLOB) {
                c->s = dupn(vals[i].u.s.ptr, vals[i].u.s.len);
                c->len = vals[i].u.s.len;
            } else if (vals[i].type == DBPOOL_FLOAT64) {
                c->f = vals[i].u.f;
            } else if (vals[i].type == DBPOOL_BOOL) {
                c->i = vals[i].u.b;
            } else {
                c->i = vals[i].u.i;
            }
        }
    }
    k->nrows++;
    return true;
}

static void col_done(void *arg, const struct backend_result *res)
{
    struct collect *k = arg;
    cr_assert(!k->done, "done called twice");
    k->res = *res;
    k->done = true;
}

void collect_free(struct collect *k)
{
    for (size_t i = 0; i < k->ncols; i++) {
        free(k->names[i]);
        free(k->decls[i]);
    }
    for (size_t r = 0; r < k->nrows && r < MAXR; r++)
        for (size_t i = 0; i < k->ncols; i++)
            free(k->cells[r][i].s);
    memset(k, 0, sizeof(*k));
}

const struct backend_sink collect_sink = { col_columns, col_row, col_done };

void start_exec(struct backend_conn *c, const char *sql, const dbpool_value *params, size_t n,
                unsigned flags, const struct backend_sink *sink, void *arg)
{
    struct backend_query q = { sql, strlen(sql), params, n, flags, NULL };
    drv->exec(c, &q, sink, arg);
}

void run_q(struct backend_conn *c, const char *sql, const dbpool_value *params, size_t n,
           unsigned flags, struct collect *k)
{
    memset(k, 0, sizeof(*k));
    start_exec(c, sql, params, n, flags, &collect_sink, k);
    run_until(&k->done);
}

struct backend_result exec_ok(struct backend_conn *c, const char *sql)
{
    struct collect k;
    struct backend_result r;

    run_q(c, sql, NULL, 0, 0, &k);
    cr_assert(k.res.ok, "%s: %s", sql, k.res.err.message);
    r = k.res;
    collect_free(&k);
    return r;
}

int64_t query_int_p(struct backend_conn *c, const char *sql, const dbpool_value *p, size_t n)
{
    struct collect k;
    int64_t v;

    run_q(c, sql, p, n, 0, &k);
    cr_assert(k.res.ok, "%s: %s", sql, k.res.err.message);
    cr_assert_eq(k.nrows, 1, "%s", sql);
    cr_assert_eq(k.cells[0][0].type, DBPOOL_INT64, "%s", sql);
    v = k.cells[0][0].i;
    collect_free(&k);
    return v;
}

int64_t query_int(struct backend_conn *c, const char *sql)
{
    return query_int_p(c, sql, NULL, 0);
}

void on_done(void *arg, const struct backend_result *res)
{
    struct opdone *d = arg;
    cr_assert(!d->done, "done called twice");
    d->res = *res;
    d->done = true;
}

void never_done(void *arg, const struct backend_result *res)
{
    (void)res;
    *(bool *)arg = true;
}

bool never_row(void *arg, size_t ncols, const dbpool_value *v)
{
    (void)ncols, (void)v;
    *(bool *)arg = true;
    return true;
}

void close_in_done_cb(void *arg, const struct backend_result *res)
{
    struct close_in_done *x = arg;
    (void)res;
    drv->close(x->c);
    x->done = true;
}

/* ---------------------------------------------------------- streaming */

void stream_resume(void *arg)
{
    struct stream *s = arg;
    unschedule(&s->timer);
    s->paused = false;
    s->resumes++;
    drv->resume(s->c);
}

static void stream_columns(void *arg, size_t ncols, const dbpool_column *cols)
{
    struct stream *s = arg;
    s->columns_calls++;
    if (ncols != 2 || strcmp(cols[0].name, "x") != 0 ||
        (s->x_decltype && strcmp(cols[0].decl_type, s->x_decltype) != 0) || s->rows != 0)
        s->bad = true;
}

static bool stream_row(void *arg, size_t ncols, const dbpool_value *v)
{
    struct stream *s = arg;
    char expect[32];

    if (s->paused || s->columns_calls != 1 || ncols != 2 || v[0].type != DBPOOL_INT64 ||
        v[0].u.i != s->next || v[1].type != DBPOOL_TEXT)
        s->bad = true;
    snprintf(expect, sizeof(expect), "row %lld", (long long)s->next);
    if (v[1].u.s.len != strlen(expect) || memcmp(v[1].u.s.ptr, expect, v[1].u.s.len) != 0)
        s->bad = true;
    s->next++;
    s->rows++;
    if (s->on_row)
        s->on_row(s);
    if (s->pause_every && s->rows % s->pause_every == 0) {
        s->paused = true;
        if (s->auto_resume)
            schedule(&s->timer, 1, stream_resume, s);
        return false;
    }
    return true;
}

/* A successful done while paused would have skipped rows. */
static void stream_done(void *arg, const struct backend_result *res)
{
    struct stream *s = arg;
    s->res = *res;
    s->rows_at_done = s->rows;
    if (s->paused && res->ok)
        s->bad = true;
    s->done = true;
}

static const struct backend_sink stream_sink = { stream_columns, stream_row, stream_done };

void stream_start(struct stream *s, struct backend_conn *c, const char *sql,
                  const char *x_decltype)
{
    s->c = c;
    s->next = 1;
    s->x_decltype = x_decltype;
    start_exec(c, sql, NULL, 0, 0, &stream_sink, s);
}

void close_after_rows(struct stream *s)
{
    if (s->rows == 300) {
        drv->close(s->c);
        s->done = true;   /* stop the test loop; done() must never come */
        s->on_row = NULL;
    }
}
