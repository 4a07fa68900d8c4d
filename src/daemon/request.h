/*
 * request.h — the transaction plan of one client request, apart from any
 * socket, timer or pool: which SQL steps a QUERY / BATCH / BEGIN / COMMIT /
 * ROLLBACK frame becomes (the user's statements plus the BEGIN, SAVEPOINT,
 * RELEASE, COMMIT and ROLLBACK steps the daemon adds), and what the session
 * must do after each step's result (run the next step, move to a writer,
 * roll back an atomic batch, answer, or report a lost connection).
 *
 * client.c (the session) reads frames, holds the server and runs the steps;
 * this file decides. Everything here works on plain structs; of the pool it
 * asks only the backend's SQL and routing (pool_tx_sql & co., never the
 * driver), so tests/unit/test_request.c drives it without a daemon.
 *
 * Ownership: a struct request is one allocation holding the frame payload
 * right after it; the decoded statements and a step array too large for the
 * inline one are owned by it (request_free). The statements and steps point
 * into the frame, which the driver reads while a step runs.
 */
#ifndef DBPOOLD_REQUEST_H
#define DBPOOLD_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "common/proto.h"

struct pool;

#define REQUEST_MAX_EXTRA_STEPS 3   /* begin + commit, or rollback-to + release */

/* The session's transaction as the client sees it; changed only by the
 * plan functions below (and by request_tx_reset). */
struct tx_state {
    char txstate;             /* 'I', 'T' or 'E', as last reported to the client */
    int sp_depth;             /* protocol-level nested transactions (savepoints) */
    bool read_only;           /* inside a protocol BEGIN READ ONLY transaction */
    bool pending_begin;       /* BEGIN answered here; the transaction opens with the next
                                 step (drivers with begin_with): no server is held until then */
    bool pending_read_only;   /* ... and it was BEGIN READ ONLY */
};

enum step_kind {
    STEP_SQL,                 /* fixed SQL */
    STEP_BEGIN,               /* BEGIN: its SQL depends on the server's role (chosen at run) */
};

struct step {
    struct backend_query q;
    enum step_kind kind;
    bool user;                /* forward results; counts as a statement */
    bool commits;             /* the daemon's COMMIT of a whole transaction */
    int32_t index;            /* statement index in a batch, -1 otherwise */
};

struct request {
    uint8_t type;             /* PT_QUERY, PT_BATCH, PT_BEGIN, PT_COMMIT, PT_ROLLBACK, PT_PING,
                                 PT_PIN, PT_UNPIN */
    uint8_t *frame;           /* payload copy, right after this struct */
    size_t len;               /* payload length */
    struct proto_stmt *stmts; /* decoded statements (owned) */
    size_t nstmts;
    struct step *steps;       /* inline_steps or owned */
    size_t nsteps, cur;
    enum backend_role role;   /* the server role the request needs */
    bool atomic;              /* batch: roll back on error */
    bool batch_savepoint;     /* the atomic batch runs inside a savepoint */
    bool rolling_back;        /* running the rollback steps of an atomic batch */
    bool commit_became_rollback;
    bool begin_read_only;
    int sp_delta;             /* savepoint depth change applied on success */
    struct backend_error *saved_err; /* an atomic batch's error, kept while it rolls back (owned) */
    int32_t saved_index;
    /* What happened to the running statement (reset by request_next_query). */
    bool stmt_timed_out;      /* statementTimeout cancelled it */
    uint64_t refused_len;     /* a result frame above maxFrameSize (its length): being cancelled */
    bool refused_columns;     /* ... and it was the COLUMNS frame, not a row */
    size_t charged;           /* frame bytes charged to the client buffer budget (client.c) */
    char sql[2][64];          /* generated SQL (savepoint names) */
    struct proto_stmt one_stmt;            /* a QUERY's statement (no allocation) */
    struct step inline_steps[1 + REQUEST_MAX_EXTRA_STEPS];
    /* the frame payload follows the struct in the same allocation */
};

/* What the plan needs to know of the pool, the server and the limits. */
struct plan_env {
    const struct pool *pool;            /* pool_route(), pool_begin_with(), pool_tx_sql() */
    bool bound;                         /* the session holds a server ... */
    enum backend_role bound_role;       /* ... of this role */
    bool pinned;                        /* ... and keeps it across transactions (PIN) */
    bool shutting_down;                 /* no new transaction may start */
    uint32_t max_params;
    uint32_t max_batch_statements;
    uint32_t max_frame_size;            /* for the refused-result message */
    uint64_t statement_timeout_ms;      /* for the statement-timeout message */
};

/* How a request starts (request_start). */
enum plan_start {
    START_RUN,                /* steps are built: run them */
    START_READY,              /* answered at once with READY (PING, deferred BEGIN, ...) */
    START_ERROR,              /* answered at once with *err; the session goes on */
    START_SHUTDOWN,           /* the daemon shuts down: the request is not run */
    START_PIN,                /* PIN: get a writer and keep it (the session does it) */
    START_UNPIN,              /* UNPIN: give the pinned server back (the session does it) */
    START_MALFORMED,          /* protocol error (*err): the session closes */
};

/* What the session does after a step's result (request_step_done). */
enum plan_action {
    PLAN_RUN,                 /* run steps[cur]: the next step, or an atomic batch's rollback */
    PLAN_REROUTE,             /* give the reader back, run the same step on a writer */
    PLAN_FINISH,              /* the request is over: answer (out->failed: with out->err) */
    PLAN_LOST,                /* the server connection died: give it up, answer out->err */
};

struct plan_outcome {
    enum plan_action action;
    bool stmt_done;           /* send STMT_DONE for the step first */
    bool failed;              /* PLAN_FINISH / PLAN_LOST: the answer is out->err */
    struct backend_error err;
    int32_t index;            /* statement index the error belongs to, -1 if none */
};

/* A new request for a frame of type/len; the payload is copied in by the
 * caller (r->frame, len bytes). NULL when out of memory. */
struct request *request_new(uint8_t type, size_t len);
void request_free(struct request *r);

/* Decide how the request starts and build its steps. On START_ERROR and
 * START_MALFORMED *err is the answer (err->code/sqlstate/message) and
 * *index its statement index. */
enum plan_start request_start(struct request *r, struct tx_state *tx, const struct plan_env *env,
                              struct backend_error *err, int32_t *index);

/* The step to run now on a server of role `role` (sets its BEGIN SQL, a
 * deferred BEGIN, the read-only flag) and clears the per-statement fields. */
struct step *request_next_query(struct request *r, struct tx_state *tx,
                                const struct pool *pool, enum backend_role role);

/* The running step completed with res: update tx and say what comes next. */
void request_step_done(struct request *r, struct tx_state *tx, const struct backend_result *res,
                       const struct plan_env *env, struct plan_outcome *out);

/* No step is left: the answer (out->failed, out->err) of the whole request. */
void request_all_done(const struct request *r, struct plan_outcome *out);

/* The request ends, answered with success (ok) or an error: apply what it
 * changed to tx (the savepoint depth). */
void request_finish(const struct request *r, struct tx_state *tx, bool ok);

/* After the answer: must the session give its server back? (No transaction
 * is open on it, or the deferred BEGIN never reached it.) */
bool request_tx_releases_server(const struct tx_state *tx);

/* The server was given back: no savepoints survive it. */
void request_tx_unbound(struct tx_state *tx);

/* The session's transaction ended outside of any plan (lost output,
 * shutdown): the client is told it is outside a transaction. */
void request_tx_reset(struct tx_state *tx);

#endif
