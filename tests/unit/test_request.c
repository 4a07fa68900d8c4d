/*
 * test_request.c — the transaction plan (src/daemon/request.c) without a
 * daemon, a socket or a database: frames are encoded with the library's
 * encoder, the driver is a plain struct with route(), begin_sql() and
 * tx_sql() behind a real pool that never connects (the plan asks the pool
 * for them), and each step's result is a struct backend_result written by
 * the test. Each
 * test checks which steps a request becomes and what the session is told to
 * do after each result.
 */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <event2/event.h>

#include "common/proto.h"
#include "daemon/pool.h"
#include "daemon/request.h"

/* ---------------------------------------------------------------- helpers */

static const char *t_begin_sql(bool read_only, enum backend_role role)
{
    (void)role;
    return read_only ? "BEGIN READ ONLY" : "BEGIN";
}

static enum backend_role t_route(const char *sql, size_t len)
{
    return len >= 6 && strncmp(sql, "SELECT", 6) == 0 ? ROLE_READER : ROLE_WRITER;
}

static void t_limits(const struct pool_config *cfg, int *writers, int *readers)
{
    (void)cfg;
    *writers = 1;
    *readers = 1;
}

/* A backend with its own spelling of every transaction statement. */
static const char *odd_begin_sql(bool read_only, enum backend_role role)
{
    (void)role;
    return read_only ? "START TRANSACTION READ ONLY" : "START TRANSACTION";
}

static const char *odd_tx_sql(enum backend_tx_op op)
{
    static const char *const sql[] = { "COMMIT WORK", "ROLLBACK WORK", "SAVEPOINT",
                                       "RELEASE SAVEPOINT", "ROLLBACK WORK TO SAVEPOINT" };
    return sql[op];
}

/* A driver that runs BEGIN as its own statement, one that opens the
 * transaction with the next statement (begin_with), one that spells it
 * all its own way. */
static const struct backend_driver plain_drv = {
    .name = "plain", .pool_limits = t_limits, .begin_sql = t_begin_sql,
    .tx_sql = backend_standard_tx_sql, .route = t_route,
};
static const struct backend_driver deferring_drv = {
    .name = "deferring", .pool_limits = t_limits, .begin_with = true, .begin_sql = t_begin_sql,
    .tx_sql = backend_standard_tx_sql, .route = t_route,
};
static const struct backend_driver odd_drv = {
    .name = "odd", .pool_limits = t_limits, .begin_sql = odd_begin_sql, .tx_sql = odd_tx_sql,
    .route = t_route,
};

/* The pool of drv: created, never started (it opens no connection). It
 * lives as long as the test's process. */
static const struct pool *pool_of(const struct backend_driver *drv)
{
    static struct event_base *base;
    static struct pool_config cfg = { .name = "plan", .max_open_conns = 2 };
    static struct { const struct backend_driver *drv; struct pool *pool; } pools[3];

    if (!base)
        base = event_base_new();
    cr_assert_not_null(base);
    for (size_t i = 0; i < sizeof(pools) / sizeof(pools[0]); i++) {
        if (!pools[i].drv) {
            pools[i].drv = drv;
            pools[i].pool = pool_new(&cfg, drv, base);
        }
        if (pools[i].drv == drv) {
            cr_assert_not_null(pools[i].pool);
            return pools[i].pool;
        }
    }
    cr_assert_fail("more drivers than pools");
    return NULL;
}

static struct plan_env env_for(const struct backend_driver *drv)
{
    struct plan_env env = {
        .pool = pool_of(drv), .max_params = 16, .max_batch_statements = 8,
        .max_frame_size = 4096, .statement_timeout_ms = 250,
    };
    return env;
}

/* A request holding the payload of the one frame in b. */
static struct request *req_from(struct pbuf *b)
{
    cr_assert(!b->oom && b->len >= PROTO_HEADER_SIZE);
    struct request *r = request_new(b->data[4], b->len - PROTO_HEADER_SIZE);
    cr_assert_not_null(r);
    memcpy(r->frame, b->data + PROTO_HEADER_SIZE, r->len);
    pbuf_free(b);
    return r;
}

static struct request *query_req(const char *sql)
{
    struct pbuf b;
    pbuf_init(&b);
    proto_put_query(&b, sql, strlen(sql), NULL, 0);
    return req_from(&b);
}

static struct request *batch_req(uint8_t flags, const char *const *sql, size_t n)
{
    dbpool_stmt st[8];
    struct pbuf b;
    for (size_t i = 0; i < n; i++)
        st[i] = (dbpool_stmt){ sql[i], NULL, 0 };
    pbuf_init(&b);
    proto_put_batch(&b, flags, st, n);
    return req_from(&b);
}

static struct request *begin_req(uint8_t flags)
{
    struct pbuf b;
    pbuf_init(&b);
    proto_put_begin(&b, flags);
    return req_from(&b);
}

static struct request *empty_req(uint8_t type)
{
    struct pbuf b;
    pbuf_init(&b);
    proto_put_empty(&b, type);
    return req_from(&b);
}

static struct backend_result ok_res(char txstate)
{
    struct backend_result res;
    backend_result_ok(&res, txstate);
    return res;
}

static struct backend_result err_res(int code, const char *sqlstate, char txstate)
{
    struct backend_result res;
    backend_result_error(&res, code, sqlstate, txstate, "the server said no");
    return res;
}

static struct backend_result broken_res(void)
{
    struct backend_result res = err_res(DBPOOL_E_CONN_LOST, "08006", 'I');
    res.broken = true;
    return res;
}

static enum plan_start start(struct request *r, struct tx_state *tx, const struct plan_env *env)
{
    struct backend_error err;
    int32_t index;
    return request_start(r, tx, env, &err, &index);
}

/* Run steps[cur] on a writer and report res. */
static void step(struct request *r, struct tx_state *tx, const struct plan_env *env,
                 struct backend_result res, struct plan_outcome *out)
{
    request_next_query(r, tx, env->pool, ROLE_WRITER);
    request_step_done(r, tx, &res, env, out);
}

static const char *step_sql(const struct request *r, size_t i)
{
    static char buf[128];
    snprintf(buf, sizeof(buf), "%.*s", (int)r->steps[i].q.sql_len, r->steps[i].q.sql);
    return buf;
}

/* ---------------------------------------------------------------- QUERY */

Test(plan_query, autocommit_statement_is_one_user_step)
{
    struct tx_state tx = { .txstate = 'I' };
    struct plan_env env = env_for(&plain_drv);
    struct request *r = query_req("INSERT INTO t VALUES (1)");
    struct plan_outcome out;

    cr_assert_eq(start(r, &tx, &env), START_RUN);
    cr_assert_eq(r->nsteps, 1);
    cr_assert(r->steps[0].user);
    cr_assert_eq(r->role, ROLE_WRITER);
    step(r, &tx, &env, ok_res('I'), &out);
    cr_assert(out.stmt_done, "STMT_DONE is sent for a user statement");
    cr_assert_eq(out.action, PLAN_FINISH);
    cr_assert(!out.failed);
    cr_assert(request_tx_releases_server(&tx));
    request_free(r);
}

Test(plan_query, read_goes_to_a_reader_and_a_write_is_rerouted)
{
    struct tx_state tx = { .txstate = 'I' };
    struct plan_env env = env_for(&plain_drv);
    struct request *r = query_req("SELECT write_something()");
    struct backend_result res = ok_res('I');
    struct plan_outcome out;

    cr_assert_eq(start(r, &tx, &env), START_RUN);
    cr_assert_eq(r->role, ROLE_READER);
    cr_assert(r->steps[0].q.flags & BQ_REQUIRE_READONLY);
    res.reroute_to_writer = true;
    step(r, &tx, &env, res, &out);
    cr_assert_eq(out.action, PLAN_REROUTE);
    cr_assert_eq(r->role, ROLE_WRITER);
    cr_assert_eq(r->cur, 0, "the same statement runs again");
    cr_assert_not(r->steps[0].q.flags & BQ_REQUIRE_READONLY);
    request_free(r);
}

Test(plan_query, a_write_in_a_read_only_transaction_fails_with_25006)
{
    struct tx_state tx = { .txstate = 'T' };
    struct plan_env env = env_for(&plain_drv);
    struct request *r = query_req("UPDATE t SET a = 1");
    struct backend_result res = ok_res('T');
    struct plan_outcome out;

    env.bound = true;
    env.bound_role = ROLE_READER;
    cr_assert_eq(start(r, &tx, &env), START_RUN);
    cr_assert_eq(r->role, ROLE_READER, "a bound session stays on its server");
    res.reroute_to_writer = true;
    step(r, &tx, &env, res, &out);
    cr_assert_eq(out.action, PLAN_FINISH);
    cr_assert(out.failed);
    cr_assert_str_eq(out.err.sqlstate, "25006");
    request_free(r);
}

/* ---------------------------------------------------------------- BATCH */

Test(plan_batch, atomic_batch_outside_a_transaction_is_wrapped_and_rolled_back)
{
    static const char *const sql[] = { "INSERT INTO t VALUES (1)", "INSERT INTO nope VALUES (2)" };
    struct tx_state tx = { .txstate = 'I' };
    struct plan_env env = env_for(&plain_drv);
    struct request *r = batch_req(PB_ATOMIC, sql, 2);
    struct plan_outcome out;

    cr_assert_eq(start(r, &tx, &env), START_RUN);
    cr_assert_eq(r->nsteps, 4);
    cr_assert_eq(r->steps[0].kind, STEP_BEGIN);
    cr_assert(r->steps[3].commits);
    cr_assert_str_eq(step_sql(r, 3), "COMMIT");
    step(r, &tx, &env, ok_res('T'), &out);
    cr_assert_str_eq(step_sql(r, 0), "BEGIN", "BEGIN's SQL is chosen when it runs");
    cr_assert_eq(out.action, PLAN_RUN);
    cr_assert_not(out.stmt_done, "the daemon's BEGIN is not reported");
    step(r, &tx, &env, ok_res('T'), &out);
    cr_assert(out.stmt_done);
    step(r, &tx, &env, err_res(DBPOOL_E_SQL, "42P01", 'E'), &out);
    cr_assert_eq(out.action, PLAN_RUN, "the batch rolls back before answering");
    cr_assert_eq(r->nsteps, 1);
    cr_assert_str_eq(step_sql(r, 0), "ROLLBACK");
    step(r, &tx, &env, ok_res('I'), &out);
    cr_assert_eq(out.action, PLAN_FINISH);
    cr_assert(out.failed);
    cr_assert_str_eq(out.err.sqlstate, "42P01", "the statement's error is the answer");
    cr_assert_eq(out.index, 1);
    cr_assert_eq(tx.txstate, 'I');
    request_free(r);
}

Test(plan_batch, atomic_batch_inside_a_transaction_uses_a_savepoint)
{
    static const char *const sql[] = { "INSERT INTO t VALUES (1)" };
    struct tx_state tx = { .txstate = 'T', .sp_depth = 1 };
    struct plan_env env = env_for(&plain_drv);
    struct request *r = batch_req(PB_ATOMIC, sql, 1);
    struct plan_outcome out;

    env.bound = true;
    cr_assert_eq(start(r, &tx, &env), START_RUN);
    cr_assert_eq(r->nsteps, 3);
    cr_assert_str_eq(step_sql(r, 0), "SAVEPOINT dbpool_sp_2");
    cr_assert_str_eq(step_sql(r, 2), "RELEASE SAVEPOINT dbpool_sp_2");
    step(r, &tx, &env, ok_res('T'), &out);
    step(r, &tx, &env, err_res(DBPOOL_E_SQL, "23505", 'E'), &out);
    cr_assert_eq(out.action, PLAN_RUN);
    cr_assert_eq(r->nsteps, 2);
    cr_assert_str_eq(step_sql(r, 0), "ROLLBACK TO SAVEPOINT dbpool_sp_2");
    cr_assert_str_eq(step_sql(r, 1), "RELEASE SAVEPOINT dbpool_sp_2");
    step(r, &tx, &env, ok_res('T'), &out);
    step(r, &tx, &env, ok_res('T'), &out);
    cr_assert_eq(out.action, PLAN_FINISH);
    cr_assert_eq(out.index, 0);
    request_finish(r, &tx, !out.failed);
    cr_assert_eq(tx.sp_depth, 1, "the outer savepoint level is unchanged");
    cr_assert_not(request_tx_releases_server(&tx), "the transaction goes on");
    request_free(r);
}

Test(plan_batch, reserved_flags_and_invalid_utf8_are_refused)
{
    static const char *const sql[] = { "SELECT 1", "SELECT '\xff'" };
    struct tx_state tx = { .txstate = 'I' };
    struct plan_env env = env_for(&plain_drv);
    struct backend_error err;
    int32_t index;
    struct request *r = batch_req(0x80, sql, 1);

    cr_assert_eq(request_start(r, &tx, &env, &err, &index), START_MALFORMED);
    cr_assert_eq(err.code, DBPOOL_E_PROTOCOL);
    request_free(r);
    r = batch_req(0, sql, 2);
    cr_assert_eq(request_start(r, &tx, &env, &err, &index), START_ERROR);
    cr_assert_str_eq(err.sqlstate, "22021");
    cr_assert_eq(index, 1, "the offending statement's index");
    cr_assert_eq(tx.txstate, 'I');
    request_free(r);
}

/* ---------------------------------------------------------------- BEGIN / COMMIT / ROLLBACK */

Test(plan_tx, deferred_begin_opens_with_the_next_statement)
{
    struct tx_state tx = { .txstate = 'I' };
    struct plan_env env = env_for(&deferring_drv);
    struct request *r = begin_req(0);
    struct plan_outcome out;

    cr_assert_eq(start(r, &tx, &env), START_READY, "answered without a server");
    cr_assert(tx.pending_begin);
    cr_assert_eq(tx.txstate, 'T');
    request_free(r);
    r = query_req("INSERT INTO t VALUES (1)");
    cr_assert_eq(start(r, &tx, &env), START_RUN);
    struct step *s = request_next_query(r, &tx, env.pool, ROLE_WRITER);
    cr_assert_str_eq(s->q.begin_sql, "BEGIN", "the BEGIN goes with the statement");
    cr_assert_not(tx.pending_begin);
    struct backend_result res = ok_res('T');
    request_step_done(r, &tx, &res, &env, &out);
    cr_assert_eq(out.action, PLAN_FINISH);
    cr_assert_not(request_tx_releases_server(&tx), "the transaction holds its server");
    request_free(r);
}

Test(plan_tx, commit_of_a_deferred_begin_needs_no_server)
{
    struct tx_state tx = { .txstate = 'I' };
    struct plan_env env = env_for(&deferring_drv);
    struct request *r = begin_req(PB_READ_ONLY);

    cr_assert_eq(start(r, &tx, &env), START_READY);
    cr_assert(tx.read_only && tx.pending_read_only);
    request_free(r);
    r = empty_req(PT_COMMIT);
    cr_assert_eq(start(r, &tx, &env), START_READY);
    cr_assert_eq(tx.txstate, 'I');
    cr_assert_not(tx.pending_begin);
    cr_assert_not(tx.read_only);
    request_free(r);
}

Test(plan_tx, a_deferred_begin_refused_before_the_server_stays_pending)
{
    struct tx_state tx = { .txstate = 'T', .pending_begin = true };
    struct plan_env env = env_for(&deferring_drv);
    struct request *r = query_req("SELEC 1");
    struct plan_outcome out;

    cr_assert_eq(start(r, &tx, &env), START_RUN);
    request_next_query(r, &tx, env.pool, ROLE_WRITER);
    struct backend_result res = err_res(DBPOOL_E_SQL, "42601", 'I');
    request_step_done(r, &tx, &res, &env, &out);
    cr_assert_eq(out.action, PLAN_FINISH);
    cr_assert(out.failed);
    cr_assert(tx.pending_begin, "the next statement opens the transaction");
    cr_assert_eq(tx.txstate, 'T');
    cr_assert(request_tx_releases_server(&tx), "nothing is open on the server");
    request_free(r);
}

Test(plan_tx, begin_read_only_runs_on_its_own_and_marks_the_transaction)
{
    struct tx_state tx = { .txstate = 'I' };
    struct plan_env env = env_for(&plain_drv);
    struct request *r = begin_req(PB_READ_ONLY);
    struct plan_outcome out;

    cr_assert_eq(start(r, &tx, &env), START_RUN);
    cr_assert_eq(r->role, ROLE_READER);
    struct step *s = request_next_query(r, &tx, env.pool, ROLE_READER);
    cr_assert_str_eq(step_sql(r, 0), "BEGIN READ ONLY");
    cr_assert_not(s->user);
    struct backend_result res = ok_res('T');
    request_step_done(r, &tx, &res, &env, &out);
    cr_assert_eq(out.action, PLAN_FINISH);
    cr_assert(tx.read_only);
    request_free(r);
    r = query_req("INSERT INTO t VALUES (1)");
    env.bound = true;
    env.bound_role = ROLE_READER;
    cr_assert_eq(start(r, &tx, &env), START_RUN);
    s = request_next_query(r, &tx, env.pool, ROLE_READER);
    cr_assert(s->q.flags & BQ_REQUIRE_READONLY, "statements of the transaction are checked");
    request_free(r);
}

Test(plan_tx, nested_begin_commit_and_rollback_use_savepoints)
{
    struct tx_state tx = { .txstate = 'T' };
    struct plan_env env = env_for(&plain_drv);
    struct plan_outcome out;
    struct request *r = begin_req(0);

    env.bound = true;
    cr_assert_eq(start(r, &tx, &env), START_RUN);
    cr_assert_str_eq(step_sql(r, 0), "SAVEPOINT dbpool_sp_1");
    step(r, &tx, &env, ok_res('T'), &out);
    request_finish(r, &tx, !out.failed);
    cr_assert_eq(tx.sp_depth, 1);
    request_free(r);

    r = empty_req(PT_ROLLBACK);
    cr_assert_eq(start(r, &tx, &env), START_RUN);
    cr_assert_eq(r->nsteps, 2);
    cr_assert_str_eq(step_sql(r, 0), "ROLLBACK TO SAVEPOINT dbpool_sp_1");
    cr_assert_str_eq(step_sql(r, 1), "RELEASE SAVEPOINT dbpool_sp_1");
    step(r, &tx, &env, ok_res('T'), &out);
    step(r, &tx, &env, ok_res('T'), &out);
    request_finish(r, &tx, !out.failed);
    cr_assert_eq(tx.sp_depth, 0);
    request_free(r);

    r = empty_req(PT_COMMIT);
    cr_assert_eq(start(r, &tx, &env), START_RUN);
    cr_assert_str_eq(step_sql(r, 0), "COMMIT");
    cr_assert(r->steps[0].commits);
    request_free(r);
}

/* Every transaction statement the daemon adds is the backend's, through
 * the pool: BEGIN, COMMIT, ROLLBACK, the savepoints, an atomic batch's. */
static void expect_steps(const struct request *r, const char *const *want, size_t n,
                         const char *what)
{
    cr_assert_eq(r->nsteps, n, "%s: %zu steps", what, r->nsteps);
    for (size_t i = 0; i < n; i++)
        if (want[i])
            cr_assert_str_eq(step_sql(r, i), want[i], "%s: step %zu", what, i);
}

static struct request *started(struct request *r, struct tx_state *tx, const struct plan_env *env)
{
    cr_assert_eq(start(r, tx, env), START_RUN);
    return r;
}

Test(plan_tx, the_backends_own_transaction_sql_is_used)
{
    static const char *const one[] = { "INSERT INTO t VALUES (1)" };
    struct tx_state idle = { .txstate = 'I' }, in_tx = { .txstate = 'T', .sp_depth = 1 };
    struct tx_state failed = { .txstate = 'E' };
    struct plan_env env = env_for(&odd_drv);
    struct request *r;

    r = started(begin_req(PB_READ_ONLY), &idle, &env);
    request_next_query(r, &idle, env.pool, ROLE_WRITER);
    expect_steps(r, (const char *const[]){ "START TRANSACTION READ ONLY" }, 1, "BEGIN");
    request_free(r);
    r = started(batch_req(PB_ATOMIC, one, 1), &idle, &env);
    request_next_query(r, &idle, env.pool, ROLE_WRITER);
    expect_steps(r, (const char *const[]){ "START TRANSACTION", NULL, "COMMIT WORK" }, 3,
                 "atomic batch");
    request_free(r);
    env.bound = true;
    r = started(batch_req(PB_ATOMIC, one, 1), &in_tx, &env);
    expect_steps(r, (const char *const[]){ "SAVEPOINT dbpool_sp_2", NULL,
                                           "RELEASE SAVEPOINT dbpool_sp_2" }, 3,
                 "atomic batch in a transaction");
    request_free(r);
    r = started(empty_req(PT_ROLLBACK), &in_tx, &env);
    expect_steps(r, (const char *const[]){ "ROLLBACK WORK TO SAVEPOINT dbpool_sp_1",
                                           "RELEASE SAVEPOINT dbpool_sp_1" }, 2,
                 "nested ROLLBACK");
    request_free(r);
    in_tx.sp_depth = 0;
    r = started(empty_req(PT_COMMIT), &in_tx, &env);
    expect_steps(r, (const char *const[]){ "COMMIT WORK" }, 1, "COMMIT");
    request_free(r);
    r = started(empty_req(PT_ROLLBACK), &in_tx, &env);
    expect_steps(r, (const char *const[]){ "ROLLBACK WORK" }, 1, "ROLLBACK");
    request_free(r);
    r = started(empty_req(PT_COMMIT), &failed, &env);
    expect_steps(r, (const char *const[]){ "ROLLBACK WORK" }, 1, "COMMIT of a failed transaction");
    request_free(r);
}

Test(plan_tx, commit_of_a_failed_transaction_rolls_back_and_says_25P02)
{
    struct tx_state tx = { .txstate = 'E' };
    struct plan_env env = env_for(&plain_drv);
    struct request *r = empty_req(PT_COMMIT);
    struct plan_outcome out;

    env.bound = true;
    cr_assert_eq(start(r, &tx, &env), START_RUN);
    cr_assert_str_eq(step_sql(r, 0), "ROLLBACK");
    step(r, &tx, &env, ok_res('I'), &out);
    cr_assert_eq(out.action, PLAN_FINISH);
    cr_assert(out.failed);
    cr_assert_str_eq(out.err.sqlstate, "25P02");
    request_free(r);
}

Test(plan_tx, commit_without_a_transaction_is_an_error_and_ping_is_answered)
{
    struct tx_state tx = { .txstate = 'I' };
    struct plan_env env = env_for(&plain_drv);
    struct backend_error err;
    int32_t index;
    struct request *r = empty_req(PT_COMMIT);

    cr_assert_eq(request_start(r, &tx, &env, &err, &index), START_ERROR);
    cr_assert_str_eq(err.sqlstate, "25000");
    request_free(r);
    r = empty_req(PT_PING);
    cr_assert_eq(start(r, &tx, &env), START_READY);
    request_free(r);
}

Test(plan_tx, shutdown_refuses_new_transactions_only)
{
    struct tx_state tx = { .txstate = 'I' };
    struct plan_env env = env_for(&plain_drv);
    struct request *r = query_req("SELECT 1");

    env.shutting_down = true;
    cr_assert_eq(start(r, &tx, &env), START_SHUTDOWN);
    request_free(r);
    r = query_req("SELECT 1");
    tx.txstate = 'T';
    env.bound = true;
    cr_assert_eq(start(r, &tx, &env), START_RUN, "a transaction in progress may finish");
    request_free(r);
}

/* ---------------------------------------------------------------- results */

Test(plan_result, connection_lost_during_commit_is_outcome_unknown)
{
    struct tx_state tx = { .txstate = 'T' };
    struct plan_env env = env_for(&plain_drv);
    struct request *r = empty_req(PT_COMMIT);
    struct plan_outcome out;

    env.bound = true;
    cr_assert_eq(start(r, &tx, &env), START_RUN);
    step(r, &tx, &env, broken_res(), &out);
    cr_assert_eq(out.action, PLAN_LOST);
    cr_assert_eq(out.err.code, DBPOOL_E_CONN_LOST);
    cr_assert_str_eq(out.err.sqlstate, "08007");
    cr_assert_eq(tx.txstate, 'I');
    request_free(r);
}

Test(plan_result, connection_lost_inside_a_transaction_aborts_it)
{
    struct tx_state tx = { .txstate = 'T' };
    struct plan_env env = env_for(&plain_drv);
    struct request *r = query_req("UPDATE t SET a = 2");
    struct plan_outcome out;

    env.bound = true;
    cr_assert_eq(start(r, &tx, &env), START_RUN);
    step(r, &tx, &env, broken_res(), &out);
    cr_assert_eq(out.action, PLAN_LOST);
    cr_assert_str_neq(out.err.sqlstate, "08007");
    cr_assert(strstr(out.err.message, "transaction aborted"), "%s", out.err.message);
    request_free(r);
}

Test(plan_result, connection_lost_during_an_autocommit_statement_is_outcome_unknown)
{
    struct tx_state tx = { .txstate = 'I' };
    struct plan_env env = env_for(&plain_drv);
    struct request *r = query_req("DELETE FROM t");
    struct plan_outcome out;

    cr_assert_eq(start(r, &tx, &env), START_RUN);
    step(r, &tx, &env, broken_res(), &out);
    cr_assert_str_eq(out.err.sqlstate, "08007");
    cr_assert(strstr(out.err.message, "may or may not have taken effect"), "%s", out.err.message);
    request_free(r);
}

Test(plan_result, connection_lost_in_the_begin_of_a_batch_has_no_statement_index)
{
    static const char *const sql[] = { "INSERT INTO t VALUES (1)" };
    struct tx_state tx = { .txstate = 'I' };
    struct plan_env env = env_for(&plain_drv);
    struct request *r = batch_req(PB_ATOMIC, sql, 1);
    struct plan_outcome out;

    cr_assert_eq(start(r, &tx, &env), START_RUN);
    step(r, &tx, &env, broken_res(), &out);
    cr_assert_eq(out.action, PLAN_LOST);
    cr_assert_eq(out.index, -1, "the daemon's BEGIN is no statement of the batch");
    request_free(r);
}

Test(plan_result, statement_timeout_and_refused_rows_explain_themselves)
{
    struct tx_state tx = { .txstate = 'I' };
    struct plan_env env = env_for(&plain_drv);
    struct request *r = query_req("SELECT pg_sleep(10)");
    struct backend_result res = err_res(DBPOOL_E_CANCELED, "57014", 'I');
    struct plan_outcome out;

    cr_assert_eq(start(r, &tx, &env), START_RUN);
    request_next_query(r, &tx, env.pool, ROLE_READER);
    r->stmt_timed_out = true;
    request_step_done(r, &tx, &res, &env, &out);
    cr_assert(strstr(out.err.message, "statementTimeout = 250 ms"), "%s", out.err.message);
    request_free(r);

    r = query_req("SELECT repeat('x', 100000)");
    cr_assert_eq(start(r, &tx, &env), START_RUN);
    request_next_query(r, &tx, env.pool, ROLE_READER);
    r->refused_len = 100005;
    res = ok_res('I');
    request_step_done(r, &tx, &res, &env, &out);
    cr_assert_eq(out.action, PLAN_FINISH);
    cr_assert_eq(out.err.code, DBPOOL_E_LIMIT);
    cr_assert_str_eq(out.err.sqlstate, "54000");
    cr_assert(strstr(out.err.message, "already completed"), "%s", out.err.message);
    cr_assert_not(out.stmt_done, "a refused result is not reported done");
    request_free(r);
}
