/*
 * fake_driver.c — the in-memory backend driver of the pool unit tests; see
 * fake_driver.h.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "fake_driver.h"

struct fake_db fake;

enum fake_op { OP_NONE, OP_CONNECT, OP_EXEC, OP_PING, OP_RESET };

struct backend_conn {
    struct event *done_ev;          /* completes the running operation */
    enum fake_op op;
    enum fake_outcome outcome;
    bool canceled;
    char tx;                        /* 'I', 'T' */
    char tx_after;                  /* the exec's transaction state when it succeeds */
    backend_done_fn done;           /* connect, ping, reset */
    const struct backend_sink *sink;   /* exec */
    void *arg;
    void (*lost)(void *arg);        /* watch_idle */
    void *lost_arg;
};

void fake_init(void)
{
    memset(&fake, 0, sizeof(fake));
}

static void fake_limits(const struct pool_config *cfg, int *writers, int *readers)
{
    *writers = fake.writers ? fake.writers : cfg->max_open_conns;
    *readers = fake.readers;
}

static void fill_result(const struct backend_conn *c, struct backend_result *r)
{
    memset(r, 0, sizeof(*r));
    if (c->canceled) {
        backend_result_error(r, DBPOOL_E_CANCELED, "57014", c->tx, "fake: canceled");
        return;
    }
    switch (c->outcome) {
    case FAKE_OK:
        backend_result_ok(r, c->op == OP_EXEC || c->op == OP_RESET ? c->tx_after : c->tx);
        return;
    case FAKE_FAIL:
        backend_result_error(r, c->op == OP_CONNECT ? DBPOOL_E_UNAVAILABLE : DBPOOL_E_SQL,
                             c->op == OP_CONNECT ? "08001" : "42000", c->tx,
                             "fake: the server refused the %s",
                             c->op == OP_CONNECT ? "connection" : "statement");
        return;
    default:
        backend_result_error(r, DBPOOL_E_CONN_LOST, "08006", 'I', "fake: connection lost");
        r->broken = true;
        return;
    }
}

/* The running operation ends: its callback is the last thing done here. */
static void on_done_ev(evutil_socket_t fd, short what, void *arg)
{
    struct backend_conn *c = arg;
    struct backend_result r;
    backend_done_fn done = c->op == OP_EXEC ? c->sink->done : c->done;
    void *cb_arg = c->arg;

    (void)fd;
    (void)what;
    fill_result(c, &r);
    if (c->op == OP_CONNECT && !r.ok)
        fake.connect_failures++;
    c->tx = r.txstate;
    c->op = OP_NONE;
    c->canceled = false;
    done(cb_arg, &r);
}

static void start_op(struct backend_conn *c, enum fake_op op, enum fake_outcome o)
{
    c->op = op;
    c->outcome = o;
    c->canceled = false;
    c->lost = NULL;   /* starting an operation ends an idle watch */
    if (o != FAKE_HANG)
        event_active(c->done_ev, EV_TIMEOUT, 1);
}

static struct backend_conn *fake_conn_new(const struct pool_config *cfg, struct event_base *base,
                                          enum backend_role role, char *errbuf, size_t errlen)
{
    struct backend_conn *c = calloc(1, sizeof(*c));

    (void)cfg;
    (void)role;
    (void)errbuf;
    (void)errlen;
    if (!c || !(c->done_ev = event_new(base, -1, 0, on_done_ev, c))) {
        free(c);
        return NULL;
    }
    c->tx = 'I';
    fake.last_new = c;
    if (++fake.alive > fake.alive_max)
        fake.alive_max = fake.alive;
    return c;
}

static void fake_connect(struct backend_conn *c, backend_done_fn done, void *arg)
{
    c->done = done;
    c->arg = arg;
    fake.connects++;
    start_op(c, OP_CONNECT, fake.connect);
}

static bool sql_is(const struct backend_query *q, const char *word)
{
    return q->sql_len == strlen(word) && memcmp(q->sql, word, q->sql_len) == 0;
}

static void fake_exec(struct backend_conn *c, const struct backend_query *q,
                      const struct backend_sink *sink, void *arg)
{
    enum fake_outcome o = fake.exec;

    c->sink = sink;
    c->arg = arg;
    c->tx_after = c->tx;
    if (sql_is(q, "BEGIN"))
        c->tx_after = 'T';
    else if (sql_is(q, "COMMIT") || sql_is(q, "ROLLBACK"))
        c->tx_after = 'I';
    fake.execs++;
    fake.last_exec = c;
    start_op(c, OP_EXEC, o);
}

/* The scripted reset ends the transaction, or leaves fake.reset_tx. */
static void fake_reset(struct backend_conn *c, backend_done_fn done, void *arg)
{
    c->done = done;
    c->arg = arg;
    c->tx_after = fake.reset_tx ? fake.reset_tx : 'I';
    fake.resets++;
    start_op(c, OP_RESET, fake.reset);
}

static const char *fake_tx_sql(enum backend_tx_op op)
{
    static const char *const sql[] = { "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT",
                                       "ROLLBACK TO SAVEPOINT" };
    return sql[op];
}

static void fake_ping(struct backend_conn *c, backend_done_fn done, void *arg)
{
    c->done = done;
    c->arg = arg;
    fake.pings++;
    start_op(c, OP_PING, fake.ping);
}

static void fake_cancel(struct backend_conn *c)
{
    fake.cancels++;
    if (c->op == OP_NONE)
        return;
    c->canceled = true;
    event_active(c->done_ev, EV_TIMEOUT, 1);
}

void fake_finish(struct backend_conn *c, enum fake_outcome o)
{
    c->outcome = o;
    event_active(c->done_ev, EV_TIMEOUT, 1);
}

bool fake_busy(const struct backend_conn *c)
{
    return c->op != OP_NONE;
}

static void fake_resume(struct backend_conn *c)
{
    (void)c;   /* the fake streams no rows */
}

static char fake_txstate(const struct backend_conn *c)
{
    return c->tx;
}

static void fake_close(struct backend_conn *c)
{
    if (fake.last_new == c)
        fake.last_new = NULL;
    if (fake.last_exec == c)
        fake.last_exec = NULL;
    fake.closes++;
    fake.alive--;
    event_free(c->done_ev);   /* a pending completion is dropped with it */
    free(c);
}

static const char *fake_server_info(const struct backend_conn *c)
{
    (void)c;
    return "fake 1";
}

static void fake_watch_idle(struct backend_conn *c, void (*lost)(void *arg), void *arg)
{
    c->lost = lost;
    c->lost_arg = arg;
}

static void fake_unwatch_idle(struct backend_conn *c)
{
    c->lost = NULL;
}

bool fake_lose_idle(struct backend_conn *c)
{
    void (*lost)(void *arg) = c->lost;

    if (!lost)
        return false;
    c->lost = NULL;
    lost(c->lost_arg);
    return true;
}

const struct backend_driver fake_driver = {
    .name = "fake",
    .pool_limits = fake_limits,
    .conn_new = fake_conn_new,
    .connect = fake_connect,
    .exec = fake_exec,
    .ping = fake_ping,
    .cancel = fake_cancel,
    .resume = fake_resume,
    .txstate = fake_txstate,
    .close = fake_close,
    .tx_sql = fake_tx_sql,
    .reset = fake_reset,
    .server_info = fake_server_info,
    .watch_idle = fake_watch_idle,
    .unwatch_idle = fake_unwatch_idle,
};
