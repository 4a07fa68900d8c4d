/*
 * session.h — the client sessions' core: the session state machine and the
 * per-state lists, queueing output, the deadlines, closing. client.c is the
 * protocol side (frames, handshake, running a request's steps) built on it;
 * request.c is the transaction plan.
 *
 * The session's state is the list it is on: struct sessions keeps one list
 * per state, and client_set_state() is the one place a state changes, so
 * counts are list lengths.
 *
 *   HANDSHAKE --HELLO--> IDLE <-------------------------+
 *                         |  request                     | answered outside
 *                         v                              | a transaction
 *                      WAITING --server--> ACTIVE -------+
 *                         ^                  |  answered inside a transaction
 *                         +---- IDLE_TX <----+  (IDLE_TX: next request)
 *   any state --error / timeout / TERMINATE / shutdown--> CLOSING --> freed
 *
 * A request answered without a server (PING, a deferred BEGIN, an error)
 * leaves the session idle; IDLE_TX also holds a deferred BEGIN.
 *
 * Ownership: struct sessions (embedded in the daemon) owns every session;
 * client_free() unlinks and frees one.
 */
#ifndef DBPOOLD_SESSION_H
#define DBPOOLD_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "common/proto.h"
#include "daemon/configuration.h"
#include "daemon/log_limit.h"
#include "daemon/peer_access.h"
#include "daemon/pool.h"
#include "daemon/request.h"
#include "daemon/sockbuf.h"
#include "daemon/uid_counts.h"

struct event;
struct event_base;
struct pool;
struct client;

enum client_state {
    CL_HANDSHAKE,    /* connected, waiting for HELLO */
    CL_IDLE,         /* ready for the next request, outside a transaction */
    CL_IDLE_TX,      /* ready for the next request, inside a transaction */
    CL_WAITING,      /* a request waits for a server connection */
    CL_ACTIVE,       /* a request runs on a server */
    CL_CLOSING,      /* flushing a final error, then freed */
    CL_NSTATES
};

TAILQ_HEAD(client_list, client);

/* What the sessions need from their owner (the daemon). */
struct session_hooks {
    /* The pool a HELLO names, or NULL. */
    struct pool *(*find_pool)(void *arg, const char *name, size_t len);
    /* A session ended (its descriptor is free). */
    void (*gone)(void *arg);
    void *arg;
};

/* Every client session of the daemon, one list per state. */
struct sessions {
    struct client_list lists[CL_NSTATES];   /* each session is on the list of its state */
    size_t counts[CL_NSTATES];              /* the lists' lengths */
    struct event_base *base;
    const struct daemon_config *cfg;        /* the running config's daemon section */
    struct session_hooks hooks;
    struct pbuf scratch;                    /* frame encoding scratch, loop thread only */
    struct io_budget budget;                /* clientBufferBudget: every session's buffered bytes */
    struct uid_counts per_uid;              /* sessions per peer uid (maxClientsPerUser) */
    struct log_limit refusal_log;           /* access refusals: one line per burst (peer_access.h) */
    uint64_t next_id;
    uint64_t total_accepted;                /* sessions accepted since start */
    uint64_t frame_timeouts;                /* sessions closed by frameTimeout */
    uint64_t write_stalls;                  /* sessions closed by writeStallTimeout */
    bool shutting_down;                     /* no new transaction starts */
};

/* Set up an empty set of sessions; -1 when out of memory. */
int sessions_init(struct sessions *s, struct event_base *base, const struct daemon_config *cfg,
                  const struct session_hooks *hooks);
/* Free every session, then the set's own resources. */
void sessions_deinit(struct sessions *s);
/* Sessions connected now (all states). */
size_t sessions_count(const struct sessions *s);

/* Daemon shutdown: sessions idle outside a transaction (or waiting for a
 * server outside one) are told and closed now; the others close when their
 * transaction ends. */
void sessions_shutdown(struct sessions *s);
/* shutdownTimeout expired: every session left is cut: what it runs is
 * cancelled and rolled back, ERROR SHUTDOWN is queued after its output and
 * it is freed once that is flushed (within CLIENT_CUT_FLUSH_MS; at once when
 * nothing can be sent). */
#define CLIENT_CUT_FLUSH_MS 2000u
void sessions_cut(struct sessions *s);
/* A reload removed pool p: its sessions outside a transaction are told
 * (ERROR UNKNOWN_POOL) and closed now, the others when their transaction
 * ends (client.c). */
void sessions_pool_removed(struct sessions *s, struct pool *p);

/* Close immediately (rolls back through the pool). */
void client_free(struct client *c);

/* One session as the status socket shows it. */
struct session_info {
    uint64_t id;
    enum client_state state;
    const char *pool;                       /* NULL before HELLO */
    const char *name;                       /* the HELLO's client name; NULL before it */
    char txstate;                           /* 'I', 'T' or 'E' as last told to the client */
    uint64_t server;                        /* the bound server's id, 0 when none */
    bool pinned;                            /* it keeps that server across transactions (PIN) */
    const struct peer_cred *peer;           /* SO_PEERCRED at accept */
    uint64_t waiting_since_us;              /* now_us() when it queued for a server; 0 */
    uint64_t connected_us;                  /* now_us() at accept */
    uint64_t request_since_us;              /* now_us() when the request in progress began; 0 */
    uint64_t requests;                      /* request frames received */
    uint64_t bytes_in, bytes_out;           /* on its socket */
};
typedef void (*session_info_fn)(void *ctx, const struct session_info *info);
/* Call fn for every session, state by state (the lists' order). */
void sessions_each(const struct sessions *s, session_info_fn fn, void *ctx);

const char *client_state_name(enum client_state s);

/* An administrator ends session id (POST /clients/ID/kill): what it runs
 * is cancelled and its transaction rolled back, ERROR SHUTDOWN (57P01,
 * naming the admin action) is queued after its output, then it is closed.
 * 0 done, -1 no such session, 1 it is closing already. */
int sessions_kill(struct sessions *s, uint64_t id);


/* ---- for client.c: one session ---- */

/* Which deadline c->io_timer runs. */
enum io_watch {
    IO_NONE,
    IO_FRAME,                 /* a started frame must arrive (frameTimeout) */
    IO_STALL,                 /* output must drain (writeStallTimeout) */
};

struct client {
    TAILQ_ENTRY(client) link; /* on s->lists[state] */
    struct sessions *s;
    struct sockbuf io;
    uint64_t id;
    enum client_state state;  /* changed only by client_set_state() */
    struct peer_cred peer;    /* SO_PEERCRED, read at accept */
    uint64_t connected_us;    /* now_us() at accept */
    uint64_t request_since_us;    /* now_us() when c->req began */
    uint64_t requests;        /* request frames received */
    bool uid_counted;         /* counted in s->per_uid (client_register) */
    struct pool *pool;
    char *name;
    struct server *sv;        /* bound server, or NULL */
    struct pool_waiter waiter;
    struct tx_state tx;       /* the transaction as the client sees it (request.c) */
    /* Flags orthogonal to the state: */
    bool in_input;            /* process_input is running: it frees a session that closed
                                 meanwhile on its way out */
    bool rows_paused;         /* back-pressure: the driver stopped delivering rows until the
                                 output drains */
    bool input_paused;        /* back-pressure: pipelined frames wait until the output drains */
    const char *fatal;        /* why the session cannot go on (a frame could not be queued, a
                                 deadline not armed), or NULL: nothing more is queued and the
                                 session ends at the next safe point (lose_session) */
#ifdef DBPOOLD_FAULT_INJECTION
    long fi_seen;             /* frames of the injected type so far */
    long fi_timers;           /* timers of the injected kind armed so far */
#endif
    struct request *req;      /* the request in progress (owned), or NULL */
    struct event *stmt_timer; /* lazily created */
    struct event *timer;      /* on_timer; NULL while no deadline applies */
    struct event *io_timer;   /* on_io_timer (lazily created) */
    enum io_watch io_watch;   /* the deadline io_timer runs */
    struct budget_waiter bwait; /* queued for budget to read the frame at the head */
    size_t bwait_frame;       /* that frame's length with its header */
};


/* Register a session whose socket is set up (c->s, c->io, c->peer): it
 * starts in HANDSHAKE with its deadline, counted for its uid; freed at once
 * when that cannot be armed or counted. */
void client_register(struct client *c);
/* The one place a session's state changes: it moves to its state's list. */
void client_set_state(struct client *c, enum client_state st);
/* Between requests: CL_IDLE_TX inside a transaction, else CL_IDLE. */
enum client_state client_idle_state(const struct client *c);
/* A request is in progress (waiting for a server or running on one). */
bool client_busy(const struct client *c);
/* Frames are taken off the input (handshake or idle). */
bool client_reading_frames(const struct client *c);

/* Output: frames are encoded into client_scratch() and queued with
 * client_flush(), false when the session is doomed (c->fatal). */
struct pbuf *client_scratch(struct client *c);
bool client_flush(struct client *c);
size_t client_output_len(const struct client *c);
/* An error the daemon makes itself (no vendor code)... */
void client_send_error(struct client *c, int code, const char *sqlstate, const char *msg,
                       int32_t index);
/* ...and a request's error, the database's vendor code included. */
void client_send_request_error(struct client *c, const struct backend_error *err, int32_t index);
void client_send_ready(struct client *c);

/* Ending a session; callers return at once (c may be freed). */
void client_lose(struct client *c);            /* doomed: ERROR INTERNAL, close */
void client_close(struct client *c);           /* flush what is queued, then free */
void client_protocol_error(struct client *c, int code, const char *msg);
void client_shutdown_close(struct client *c);  /* ERROR SHUTDOWN, close */
void client_pool_removed_close(struct client *c);   /* ERROR UNKNOWN_POOL, close */
/* Closing, and nothing is left to flush (or nothing bounds the flush). */
bool client_close_due(const struct client *c);

/* Deadlines: false when one cannot be armed; the session is then doomed
 * (c->fatal) and the caller ends it (client_lose) at a safe point. */
bool client_arm_stmt_timer(struct client *c);
void client_disarm_stmt_timer(struct client *c);
bool client_arm_idle_timer(struct client *c);
bool client_watch_io(struct client *c);
/* The frame being read arrived whole: its frameTimeout stops. */
void client_frame_arrived(struct client *c);

/* The request is over: free it and give back its budget. */
void client_request_end(struct client *c);

#endif
