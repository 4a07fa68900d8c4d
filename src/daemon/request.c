/*
 * request.c — the transaction plan of one client request (see request.h).
 *
 * A request becomes a short list of steps run one after another on the
 * server the session is bound to:
 *
 *   QUERY      the statement (routed to a reader when the driver says so)
 *   BATCH      its statements; atomic: BEGIN (or SAVEPOINT inside a
 *              transaction) first and COMMIT (or RELEASE) last, and on an
 *              error ROLLBACK (or ROLLBACK TO + RELEASE) before answering
 *   BEGIN      BEGIN, or SAVEPOINT dbpool_sp_N inside a transaction; on a
 *              driver with begin_with it is answered at once and opens with
 *              the next statement (a "deferred BEGIN": no server is held)
 *   COMMIT     COMMIT, or RELEASE SAVEPOINT; on a failed transaction a
 *              ROLLBACK, answered with 25P02
 *   ROLLBACK   ROLLBACK, or ROLLBACK TO SAVEPOINT + RELEASE SAVEPOINT
 *
 * After each step the backend's real transaction state is taken over, so
 * raw BEGIN/COMMIT SQL works like the protocol's messages. A lost server
 * connection means an aborted transaction, or an unknown outcome (08007)
 * when the step could have committed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/pool.h"
#include "daemon/request.h"

/* ------------------------------------------------------------- memory */

struct request *request_new(uint8_t type, size_t len)
{
    struct request *r = calloc(1, sizeof(*r) + len);

    if (!r)
        return NULL;
    r->type = type;
    r->frame = (uint8_t *)(r + 1);
    r->len = len;
    return r;
}

void request_free(struct request *r)
{
    if (!r)
        return;
    if (r->stmts == &r->one_stmt)
        free(r->one_stmt.params);
    else if (r->stmts)
        proto_stmts_free(r->stmts, r->nstmts);
    if (r->steps != r->inline_steps)
        free(r->steps);
    free(r->saved_err);
    free(r);   /* and the frame with it */
}

/* ------------------------------------------------------------- steps */

static struct step *add_step(struct request *r, const char *sql, size_t len, bool user)
{
    struct step *s = &r->steps[r->nsteps++];

    memset(s, 0, sizeof(*s));
    s->q.sql = sql;
    s->q.sql_len = len;
    s->user = user;
    s->index = -1;
    return s;
}

static struct step *add_sql(struct request *r, const char *sql)
{
    struct step *s = add_step(r, sql, strlen(sql), false);

    s->q.flags |= BQ_INTERNAL;
    return s;
}

static void add_user_stmt(struct request *r, const struct proto_stmt *st, int32_t index)
{
    struct step *s = add_step(r, st->sql.p, st->sql.len, true);

    s->q.params = st->params;
    s->q.nparams = st->nparams;
    s->index = index;
}

static bool alloc_steps(struct request *r, size_t n)
{
    if (n + REQUEST_MAX_EXTRA_STEPS <= sizeof(r->inline_steps) / sizeof(r->inline_steps[0])) {
        r->steps = r->inline_steps;
        return true;
    }
    r->steps = calloc(n + REQUEST_MAX_EXTRA_STEPS, sizeof(*r->steps));
    return r->steps != NULL;
}

/* The backend's savepoint statement (a prefix) completed with the name. */
static const char *savepoint_sql(struct request *r, int slot, const struct pool *pool,
                                 enum backend_tx_op op, int depth)
{
    snprintf(r->sql[slot], sizeof(r->sql[slot]), "%s dbpool_sp_%d", pool_tx_sql(pool, op), depth);
    return r->sql[slot];
}

/* Steps that open a transaction (or a savepoint inside one). */
static void add_begin(struct request *r, const struct tx_state *tx, const struct pool *pool,
                      bool read_only)
{
    if (tx->txstate != 'I') {
        add_sql(r, savepoint_sql(r, 0, pool, BTX_SAVEPOINT, tx->sp_depth + 1));
        r->sp_delta = 1;
        return;
    }
    r->role = read_only ? ROLE_READER : ROLE_WRITER;
    r->begin_read_only = read_only;
    /* The SQL depends on the role of the server we get (request_next_query). */
    add_sql(r, "")->kind = STEP_BEGIN;
}

static void add_commit(struct request *r, const struct pool *pool, int depth)
{
    if (depth > 0)
        add_sql(r, savepoint_sql(r, 1, pool, BTX_RELEASE, depth));
    else
        add_sql(r, pool_tx_sql(pool, BTX_COMMIT))->commits = true;
}

static void add_rollback(struct request *r, const struct pool *pool, int depth)
{
    if (depth > 0) {
        add_sql(r, savepoint_sql(r, 0, pool, BTX_ROLLBACK_TO, depth));
        add_sql(r, savepoint_sql(r, 1, pool, BTX_RELEASE, depth));
    } else {
        add_sql(r, pool_tx_sql(pool, BTX_ROLLBACK));
    }
}

/* ------------------------------------------------------------- building */

static bool build_query(struct request *r, const struct plan_env *env)
{
    r->stmts = &r->one_stmt;
    r->nstmts = 1;
    if (!proto_get_query(r->frame, r->len, env->max_params, &r->stmts[0]))
        return false;
    if (!alloc_steps(r, 1))
        return false;
    add_user_stmt(r, &r->stmts[0], -1);
    r->role = env->bound ? env->bound_role
                         : pool_route(env->pool, r->stmts[0].sql.p, r->stmts[0].sql.len);
    if (r->role == ROLE_READER)
        r->steps[0].q.flags |= BQ_REQUIRE_READONLY;
    return true;
}

static bool build_batch(struct request *r, const struct tx_state *tx, const struct plan_env *env)
{
    uint8_t flags = 0;

    if (!proto_get_batch(r->frame, r->len, env->max_params, env->max_batch_statements, &flags,
                         &r->stmts, &r->nstmts))
        return false;
    if (!alloc_steps(r, r->nstmts))
        return false;
    if (flags & ~PB_ATOMIC)
        return false;   /* reserved bits must be zero */
    r->atomic = (flags & PB_ATOMIC) != 0;
    r->role = ROLE_WRITER;
    if (r->atomic)
        add_begin(r, tx, env->pool, false);
    for (size_t i = 0; i < r->nstmts; i++)
        add_user_stmt(r, &r->stmts[i], (int32_t)i);
    r->batch_savepoint = r->sp_delta != 0;
    if (r->atomic)
        add_commit(r, env->pool, r->batch_savepoint ? tx->sp_depth + 1 : 0);
    r->sp_delta = 0;   /* the batch's savepoint is released within the batch */
    return true;
}

static bool build_tx_request(struct request *r, const struct tx_state *tx,
                             const struct pool *pool)
{
    uint8_t flags = 0;

    if (!alloc_steps(r, 0))
        return false;
    if (r->type == PT_BEGIN) {
        if (!proto_get_begin(r->frame, r->len, &flags) || (flags & ~PB_READ_ONLY))
            return false;
        add_begin(r, tx, pool, (flags & PB_READ_ONLY) != 0);
        return true;
    }
    if (r->len != 0)
        return false;
    if (r->type == PT_COMMIT && tx->sp_depth == 0 && tx->txstate == 'E') {
        r->commit_became_rollback = true;
        add_sql(r, pool_tx_sql(pool, BTX_ROLLBACK));
    } else if (r->type == PT_COMMIT) {
        add_commit(r, pool, tx->sp_depth);
    } else {
        add_rollback(r, pool, tx->sp_depth);
    }
    r->sp_delta = tx->sp_depth > 0 ? -1 : 0;
    return true;
}

static void set_error(struct backend_error *err, int code, const char *sqlstate, const char *msg)
{
    err->code = code;
    snprintf(err->sqlstate, sizeof(err->sqlstate), "%s", sqlstate);
    snprintf(err->message, sizeof(err->message), "%s", msg);
    err->vendor_code = 0;
}

/* SQL and TEXT parameters must be UTF-8 (doc/protocol.md). A request that
 * breaks the rule is refused before any of its statements runs, like a
 * statement the database rejects (SQLSTATE 22021, the offending statement's
 * index); the session and its transaction state are unchanged. */
static bool invalid_utf8(const struct request *r, struct backend_error *err, int32_t *index)
{
    struct proto_utf8_error where;
    char what[48];

    for (size_t i = 0; i < r->nstmts; i++) {
        if (proto_stmt_utf8_valid(&r->stmts[i], &where))
            continue;
        if (where.param < 0)
            snprintf(what, sizeof(what), "the SQL text");
        else
            snprintf(what, sizeof(what), "TEXT parameter %d", where.param + 1);
        err->code = DBPOOL_E_SQL;
        err->vendor_code = 0;
        memcpy(err->sqlstate, "22021", 6);
        snprintf(err->message, sizeof(err->message), "invalid byte sequence for encoding "
                 "\"UTF8\": 0x%02x at byte %zu of %s; send SQL and TEXT values as UTF-8 (binary "
                 "data as BLOB)", where.byte, where.offset, what);
        *index = r->type == PT_BATCH ? (int32_t)i : -1;
        return true;
    }
    return false;
}

/* A protocol BEGIN outside a transaction, on a driver that can open the
 * transaction together with its first statement: answered now, no server
 * is held until that statement comes (and the server saves a round trip). */
static enum plan_start defer_begin(struct request *r, struct tx_state *tx,
                                   struct backend_error *err)
{
    uint8_t flags = 0;

    if (!proto_get_begin(r->frame, r->len, &flags) || (flags & ~PB_READ_ONLY)) {
        set_error(err, DBPOOL_E_PROTOCOL, "", "malformed BEGIN frame");
        return START_MALFORMED;
    }
    tx->pending_begin = true;
    tx->pending_read_only = tx->read_only = (flags & PB_READ_ONLY) != 0;
    tx->txstate = 'T';
    return START_READY;
}

/* PIN and UNPIN (doc/protocol.md, "Pinned sessions"): outside a
 * transaction only, and a no-op when the session already is as asked. */
static enum plan_start pin_request(struct request *r, const struct tx_state *tx,
                                   const struct plan_env *env, struct backend_error *err)
{
    bool pin = r->type == PT_PIN;

    if (pin == env->pinned)
        return START_READY;
    if (tx->txstate != 'I') {
        set_error(err, DBPOOL_E_TX_STATE, "25000",
                  pin ? "PIN inside a transaction: pin the session before BEGIN (COMMIT or "
                        "ROLLBACK first)"
                      : "UNPIN inside a transaction: COMMIT or ROLLBACK first; the session stays "
                        "pinned");
        return START_ERROR;
    }
    if (pin && env->shutting_down)
        return START_SHUTDOWN;
    return pin ? START_PIN : START_UNPIN;
}

/* COMMIT or ROLLBACK outside a transaction the server knows of. */
static enum plan_start end_without_server(struct request *r, struct tx_state *tx,
                                          struct backend_error *err)
{
    bool commit = r->type == PT_COMMIT;

    if (tx->pending_begin) {   /* a deferred BEGIN and nothing ran: nothing to end */
        tx->pending_begin = tx->read_only = false;
        tx->txstate = 'I';
        return START_READY;
    }
    set_error(err, DBPOOL_E_TX_STATE, "25000",
              commit ? "COMMIT without a transaction: there is no transaction in progress"
                     : "ROLLBACK without a transaction: there is no transaction in progress");
    return START_ERROR;
}

static bool build(struct request *r, const struct tx_state *tx, const struct plan_env *env)
{
    switch (r->type) {
    case PT_QUERY: return build_query(r, env);
    case PT_BATCH: return build_batch(r, tx, env);
    default: return build_tx_request(r, tx, env->pool);
    }
}

enum plan_start request_start(struct request *r, struct tx_state *tx, const struct plan_env *env,
                              struct backend_error *err, int32_t *index)
{
    bool tx_end = r->type == PT_COMMIT || r->type == PT_ROLLBACK;

    *index = -1;
    bool no_payload = r->type == PT_PING || r->type == PT_PIN || r->type == PT_UNPIN || tx_end;

    if (no_payload && r->len != 0) {
        err->code = DBPOOL_E_PROTOCOL;
        err->sqlstate[0] = 0;
        err->vendor_code = 0;
        snprintf(err->message, sizeof(err->message), "malformed %s frame: it has no payload",
                 proto_type_name(r->type));
        return START_MALFORMED;
    }
    if (r->type == PT_PING)
        return START_READY;
    if (r->type == PT_PIN || r->type == PT_UNPIN)
        return pin_request(r, tx, env, err);
    if (tx_end && (tx->pending_begin || tx->txstate == 'I'))
        return end_without_server(r, tx, err);
    if (env->shutting_down && !env->bound && !tx->pending_begin)
        return START_SHUTDOWN;
    if (r->type == PT_BEGIN && tx->txstate == 'I' && pool_begin_with(env->pool))
        return defer_begin(r, tx, err);
    if (!build(r, tx, env)) {
        err->code = DBPOOL_E_PROTOCOL;
        err->sqlstate[0] = 0;
        err->vendor_code = 0;
        snprintf(err->message, sizeof(err->message), "malformed %s frame (or a limit was "
                 "exceeded: maxParams %u, maxBatchStatements %u)", proto_type_name(r->type),
                 env->max_params, env->max_batch_statements);
        return START_MALFORMED;
    }
    if (invalid_utf8(r, err, index))
        return START_ERROR;
    if (tx->pending_begin)   /* the deferred BEGIN decides the role */
        r->role = tx->pending_read_only ? ROLE_READER : ROLE_WRITER;
    return START_RUN;
}

/* ------------------------------------------------------------- running */

struct step *request_next_query(struct request *r, struct tx_state *tx,
                                const struct pool *pool, enum backend_role role)
{
    struct step *s = &r->steps[r->cur];

    if (s->kind == STEP_BEGIN) {   /* its SQL depends on the server's role */
        s->q.sql = pool_begin_sql(pool, r->begin_read_only, role);
        s->q.sql_len = strlen(s->q.sql);
    }
    if (s->user && tx->read_only)
        s->q.flags |= BQ_REQUIRE_READONLY;   /* enforced by drivers that route (SQLite) */
    if (tx->pending_begin) {   /* the deferred BEGIN goes with this step */
        s->q.begin_sql = pool_begin_sql(pool, tx->pending_read_only, role);
        tx->pending_begin = false;
    }
    r->stmt_timed_out = false;
    r->refused_len = 0;
    r->refused_columns = false;
    return s;
}

/* Whether the step, had the server completed it, ended a transaction by
 * committing: the daemon's COMMIT, the user's COMMIT / END, or any user
 * statement outside a transaction (autocommit). */
static bool step_may_commit(const struct tx_state *tx, const struct step *s)
{
    static const char *const commit_words[] = { "COMMIT", "END", NULL };

    if (s->commits)
        return true;
    if (!s->user)
        return false;
    return sql_starts_with_keyword(s->q.sql, s->q.sql_len, commit_words) ||
           (tx->txstate == 'I' && !s->q.begin_sql);
}

/* The server connection died during the step. Inside a transaction the
 * server aborted it; while a commit was in flight nobody can say whether
 * it happened (SQLSTATE 08007, transaction resolution unknown). */
static void lost_error(const struct tx_state *tx, const struct step *s,
                       const struct backend_result *res, struct backend_error *err)
{
    *err = res->err;
    err->code = DBPOOL_E_CONN_LOST;
    if (s->commits || (step_may_commit(tx, s) && tx->txstate != 'I')) {
        snprintf(err->sqlstate, sizeof(err->sqlstate), "08007");
        snprintf(err->message, sizeof(err->message),
                 "server connection lost during COMMIT: %.300s; the transaction may or may not "
                 "have been committed (outcome unknown): check before retrying it", res->err.message);
    } else if (step_may_commit(tx, s)) {
        snprintf(err->sqlstate, sizeof(err->sqlstate), "08007");
        snprintf(err->message, sizeof(err->message),
                 "server connection lost while the statement ran: %.300s; it may or may not have "
                 "taken effect (outcome unknown): check before retrying it", res->err.message);
    } else {
        snprintf(err->message, sizeof(err->message),
                 "server connection lost, transaction aborted: %.400s; retry the transaction on "
                 "this session", res->err.message);
    }
}

/* A result frame above maxFrameSize was refused and the statement
 * cancelled: the statement fails with LIMIT (a request error). */
static void refused_result_error(const struct request *r, const struct backend_result *res,
                                 const struct plan_env *env, struct backend_error *err)
{
    err->code = DBPOOL_E_LIMIT;
    err->vendor_code = 0;   /* the daemon's refusal (the statement's own error is in the text) */
    memcpy(err->sqlstate, "54000", 6);
    snprintf(err->message, sizeof(err->message),
             "a result %s is %llu bytes, above maxFrameSize (%u bytes), so it was not sent; %s%.200s%s "
             "Select less per row (e.g. substr() of the large value, or fewer columns) or raise "
             "maxFrameSize",
             r->refused_columns ? "COLUMNS frame (column names and types)" : "row",
             (unsigned long long)r->refused_len, env->max_frame_size,
             res->ok ? "the statement had already completed (any changes it made stand)."
                     : "the statement was stopped (", res->ok ? "" : res->err.message,
             res->ok ? "" : ").");
}

static void step_error(const struct request *r, const struct backend_result *res,
                       const struct plan_env *env, struct backend_error *err)
{
    *err = res->err;
    if (r->refused_len)
        refused_result_error(r, res, env, err);
    else if (err->code == DBPOOL_E_CANCELED && r->stmt_timed_out)
        snprintf(err->message, sizeof(err->message),
                 "canceling statement due to statement timeout (statementTimeout = %llu ms)",
                 (unsigned long long)env->statement_timeout_ms);
}

/* An atomic batch failed: keep the error, roll back, report afterwards. */
static void start_batch_rollback(struct request *r, const struct tx_state *tx,
                                 const struct plan_env *env, const struct backend_error *err,
                                 int32_t index)
{
    r->saved_err = malloc(sizeof(*r->saved_err));
    if (r->saved_err)
        *r->saved_err = *err;   /* else request_all_done reports running out of memory */
    r->saved_index = index;
    r->rolling_back = true;
    r->nsteps = 0;
    r->cur = 0;
    add_rollback(r, env->pool, r->batch_savepoint ? tx->sp_depth + 1 : 0);
}

static void finish_with(struct plan_outcome *out, enum plan_action action,
                        const struct backend_error *err, int32_t index)
{
    out->action = action;
    out->failed = true;
    out->err = *err;
    out->index = index < 0 ? -1 : index;
}

/* Take over the backend's transaction state after a step that reached it. */
static void track_tx(const struct request *r, struct tx_state *tx, struct step *s,
                     const struct backend_result *res)
{
    tx->txstate = res->txstate;
    if (s->q.begin_sql && tx->txstate == 'I') {
        /* Refused before it reached the server: the client's transaction
         * is still to be opened, by its next statement. */
        s->q.begin_sql = NULL;
        tx->pending_begin = true;
        tx->txstate = 'T';
    }
    if (tx->txstate == 'I') {
        tx->sp_depth = 0;
        tx->read_only = false;
    } else if (res->ok && r->begin_read_only && s->kind == STEP_BEGIN) {
        tx->read_only = true;
    }
}

void request_step_done(struct request *r, struct tx_state *tx, const struct backend_result *res,
                       const struct plan_env *env, struct plan_outcome *out)
{
    static const struct backend_error ro = {
        DBPOOL_E_SQL, "25006", "cannot execute a writing statement in a read-only transaction", 0
    };
    struct step *s = &r->steps[r->cur];
    struct backend_error err;

    out->stmt_done = false;   /* out->err is written only when failed (no copy per step) */
    out->failed = false;
    out->index = -1;
    if (res->reroute_to_writer && tx->txstate != 'I') {
        finish_with(out, PLAN_FINISH, &ro, s->index);
        return;
    }
    if (res->reroute_to_writer) {
        s->q.flags &= ~(unsigned)BQ_REQUIRE_READONLY;
        r->role = ROLE_WRITER;
        out->action = PLAN_REROUTE;
        return;
    }
    if (res->broken) {
        lost_error(tx, s, res, &err);
        tx->txstate = 'I';
        finish_with(out, PLAN_LOST, &err, s->index);
        return;
    }
    track_tx(r, tx, s, res);
    if (!res->ok || r->refused_len) {
        step_error(r, res, env, &err);
        if (r->atomic && !r->rolling_back && tx->txstate != 'I') {
            start_batch_rollback(r, tx, env, &err, s->index);
            out->action = PLAN_RUN;
            return;
        }
        finish_with(out, PLAN_FINISH, &err, s->index);
        return;
    }
    out->stmt_done = s->user;
    r->cur++;
    if (r->cur >= r->nsteps)
        request_all_done(r, out);
    else
        out->action = PLAN_RUN;
}

void request_all_done(const struct request *r, struct plan_outcome *out)
{
    static const struct backend_error oom = {
        DBPOOL_E_INTERNAL, "", "a statement of the atomic batch failed and the batch was rolled "
        "back (its error was lost: out of memory)", 0
    };
    static const struct backend_error aborted = {
        DBPOOL_E_TX_STATE, "25P02",
        "the transaction had failed, so COMMIT rolled it back instead; nothing was committed", 0
    };

    out->action = PLAN_FINISH;
    out->failed = false;
    out->index = -1;
    if (r->rolling_back)
        finish_with(out, PLAN_FINISH, r->saved_err ? r->saved_err : &oom, r->saved_index);
    else if (r->commit_became_rollback)
        finish_with(out, PLAN_FINISH, &aborted, -1);
}

void request_finish(const struct request *r, struct tx_state *tx, bool ok)
{
    if (ok)
        tx->sp_depth += r->sp_delta;
}

bool request_tx_releases_server(const struct tx_state *tx)
{
    return tx->txstate == 'I' || tx->pending_begin;
}

void request_tx_unbound(struct tx_state *tx)
{
    tx->sp_depth = 0;
}

void request_tx_reset(struct tx_state *tx)
{
    tx->txstate = 'I';
}
