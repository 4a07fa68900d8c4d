/*
 * pool_internal.h — what the pool's two files share: the structs of a pool
 * and of its server connections, and the few operations pool_admin.c (the
 * changes an operator makes to a running pool: reload, pause, reconnect,
 * removal) calls in pool.c (the connections, the wait queue, maintenance).
 * Not for use outside those two files; the contract is daemon/pool.h.
 */
#ifndef DBPOOLD_POOL_INTERNAL_H
#define DBPOOLD_POOL_INTERNAL_H

#include "daemon/pool.h"
#include "daemon/pool_health.h"

TAILQ_HEAD(server_list, server);
TAILQ_HEAD(waiter_list, pool_waiter);

enum server_state { SV_CONNECTING, SV_IDLE, SV_ACTIVE, SV_CHECKING, SV_RESETTING };

struct server {
    TAILQ_ENTRY(server) link;        /* on the list of its state */
    struct pool *pool;
    struct backend_conn *conn;       /* owned */
    const struct pool_config *cfg;   /* what conn was made with (the driver keeps it) */
    uint32_t gen;                    /* the pool's generation when it was opened */
    enum server_state state;
    enum backend_role role;
    uint64_t id;
    uint64_t created_us;
    uint64_t idle_since_us;
    uint64_t busy_since_us;          /* when it last became active (bound to a client) */
    uint64_t requests;               /* statements run on it */
    uint64_t op_started_us;          /* when the running op (statement, reset) started */
    bool op_running;
    bool abandoned;                  /* its client vanished; reset when the op ends */
    bool broken;
    bool pinned;                     /* a pinned session holds it (pool_pin.c) */
    const struct backend_sink *csink;   /* client's sink for the running op */
    void *carg;
};

struct pool {
    const struct pool_config *cfg;   /* borrowed from the running config (a reload
                                        swaps it: pool_reconfigure) */
    const struct backend_driver *drv;
    struct event_base *base;
    struct server_list lists[5];     /* indexed by enum server_state */
    int counts[5];
    int nrole[2];                    /* open servers per role, any state */
    int max_role[2];
    struct waiter_list waiters;
    int nwaiting;
    int nwait_role[2];               /* waiters per wanted role */
    struct event *wait_timer;        /* acquire timeouts of the queue head */
    struct event *maint_timer;       /* idle time, lifetime, health, recovery */
    struct event *fail_timer;        /* fails queued waiters at once while down */
    uint64_t next_server_id;
    uint64_t last_health_us;
    struct pool_health health;       /* connect failures, retry timer, up/down */
    bool role_grows[2];              /* raising maxOpenConns adds connections of the role */
    uint32_t gen;                    /* servers of an older one are closed, never reused */
    bool paused;                     /* pool_pause: no server is handed out */
    bool removed;                    /* gone from the config: draining */
    int clients_connected;
    int pinned;                      /* servers held by pinned sessions (pool_pin.c) */
    int pin_waiting;                 /* PINs waiting for a server (waiters with pin set) */
    struct pool_stats totals;        /* only the total_* fields are used */
    struct latency lat_tx, lat_wait; /* transaction and wait times (latency.h) */
};

/* pool.c, for pool_admin.c */
void server_close(struct server *sv, const char *reason);
/* Why sv must not serve again (broken, lifetime, older generation, above
 * the role's size), or NULL. */
const char *server_retire_reason(const struct pool *p, const struct server *sv, uint64_t now);
void pool_dispatch(struct pool *p, struct server *sv);
void pool_maybe_connect(struct pool *p, enum backend_role role);
void arm_wait_timer(struct pool *p);
/* Sizes per role from the driver (p->cfg), and whether they can grow. */
void pool_set_limits(struct pool *p);
/* (Re)arm the maintenance tick at the period p->cfg asks for; -1 on failure. */
int pool_arm_maint(struct pool *p);

#endif
