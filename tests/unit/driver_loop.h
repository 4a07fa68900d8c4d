/*
 * driver_loop.h — what the backend-driver unit tests (test_backend_pg.c,
 * test_backend_sqlite.c) share: driving a real libevent loop until a driver
 * callback arrives, timers, and sinks that collect results.
 *
 * Every wait runs the loop until a callback sets a flag, with a timer guard:
 * a hang fails the test (criterion assertion) instead of hanging it. Call
 * driver_loop_init() from the suite's setup, after creating the base.
 */
#ifndef DBPOOLD_TEST_DRIVER_LOOP_H
#define DBPOOLD_TEST_DRIVER_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"

struct event;
struct event_base;

/* The loop and driver the helpers use; guard_s bounds every run_until(). */
void driver_loop_init(struct event_base *base, const struct backend_driver *drv, int guard_s);

/* ------------------------------------------------------------- the loop */

/* Run the loop until *flag is true; fail after the guard time. */
void run_until(const bool *flag);
/* Run the loop for ms milliseconds. */
void run_for(int ms);

/* A one-shot timer calling fn(arg) after ms milliseconds. */
struct later {
    struct event *ev;
    void (*fn)(void *);
    void *arg;
};

void schedule(struct later *l, int ms, void (*fn)(void *), void *arg);
void unschedule(struct later *l);   /* harmless when not scheduled */
double now_s(void);                 /* CLOCK_MONOTONIC, seconds */

/* Timer callbacks for schedule(): arg is the struct backend_conn. */
void do_cancel(void *conn);
void do_close(void *conn);

/* -------------------------------------------------------- collecting */

#define MAXR 64   /* rows kept (more are counted) */
#define MAXC 32   /* columns */

struct cell {
    dbpool_type type;
    int64_t i;    /* INT64; BOOL as 0/1 */
    double f;
    char *s;      /* TEXT/BLOB copy, NUL-terminated */
    size_t len;
};

struct collect {
    bool done;
    struct backend_result res;
    int columns_calls;
    bool columns_after_row;
    size_t ncols;
    char *names[MAXC];
    char *decls[MAXC];
    size_t nrows;
    struct cell cells[MAXR][MAXC];
};

/* A sink that copies everything into a struct collect (its arg). */
extern const struct backend_sink collect_sink;
void collect_free(struct collect *k);
char *dupn(const char *p, size_t n);   /* malloc'd copy plus NUL */

void start_exec(struct backend_conn *c, const char *sql, const dbpool_value *params, size_t n,
                unsigned flags, const struct backend_sink *sink, void *arg);
/* Run one statement to completion; the caller frees k with collect_free. */
void run_q(struct backend_conn *c, const char *sql, const dbpool_value *params, size_t n,
           unsigned flags, struct collect *k);
/* Run a statement that must succeed; returns its result. */
struct backend_result exec_ok(struct backend_conn *c, const char *sql);
/* First column of the one row as an integer. */
int64_t query_int_p(struct backend_conn *c, const char *sql, const dbpool_value *p, size_t n);
int64_t query_int(struct backend_conn *c, const char *sql);

/* The completion of connect/ping (on_done's arg). */
struct opdone {
    bool done;
    struct backend_result res;
};

void on_done(void *arg, const struct backend_result *res);

/* Sink callbacks that must never run: they set *(bool *)arg. */
void never_done(void *arg, const struct backend_result *res);
bool never_row(void *arg, size_t ncols, const dbpool_value *v);

/* close() from inside a done callback (arg: struct close_in_done). */
struct close_in_done {
    struct backend_conn *c;
    bool done;
};

void close_in_done_cb(void *arg, const struct backend_result *res);

/* ---------------------------------------------------------- streaming */

/*
 * A sink for "SELECT x, 'row ' || x AS label" over x = 1, 2, ...: checks
 * every row (in order, values, no row while paused), and pauses after every
 * pause_every rows (row() returns false); with auto_resume a 1 ms timer
 * resumes.
 */
struct stream {
    struct backend_conn *c;
    bool done;
    struct backend_result res;
    int columns_calls;
    int64_t rows, rows_at_done;
    int64_t next;            /* expected x */
    bool bad;                /* out of order, wrong value, or a row while paused */
    bool paused;
    int pause_every;         /* 0: never pause */
    bool auto_resume;        /* resume from a 1 ms timer */
    int resumes;
    struct later timer;
    const char *x_decltype;  /* expected declared type of x; NULL: not checked */
    void (*on_row)(struct stream *s);   /* optional hook after each row */
};

/* Start sql on c, streaming into s; x_decltype as in struct stream. */
void stream_start(struct stream *s, struct backend_conn *c, const char *sql,
                  const char *x_decltype);
/* Timer callback (arg: the stream): resume a paused stream. */
void stream_resume(void *arg);
/* on_row hook: close the connection at row 300 and end the wait. */
void close_after_rows(struct stream *s);

#endif
