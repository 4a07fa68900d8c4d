/*
 * fake_driver.h — an in-memory backend driver for unit-testing the pool
 * (tests/unit/test_pool.c) without a database.
 *
 * It implements struct backend_driver (src/backend/backend.h) on the real
 * libevent loop: every operation completes on a later loop pass (an event
 * made active), never inside the call that started it, exactly once, and
 * never after close(). What an operation does is scripted per kind in the
 * global `fake` (the driver interface has no context pointer): succeed,
 * fail, hang until cancelled or finished by the test, or break the
 * connection. It keeps the transaction state a real server would ("BEGIN"
 * opens one, "COMMIT"/"ROLLBACK" end it, reset() ends it unless scripted
 * otherwise) and counts what the pool did.
 */
#ifndef DBPOOLD_TEST_FAKE_DRIVER_H
#define DBPOOLD_TEST_FAKE_DRIVER_H

#include <stdbool.h>

#include "backend/backend.h"

enum fake_outcome {
    FAKE_OK,       /* completes successfully */
    FAKE_FAIL,     /* completes with an error; the connection stays usable */
    FAKE_HANG,     /* does not complete until cancel() or fake_finish() */
    FAKE_BREAK,    /* completes with CONN_LOST and result.broken */
};

struct fake_db {
    /* the script: what the next operation of each kind does */
    enum fake_outcome connect, exec, ping, reset;   /* reset: driver->reset() */
    char reset_tx;            /* the txstate a successful reset leaves (0: 'I') */
    int writers;              /* pool_limits: writers (0: maxOpenConns) */
    int readers;              /* pool_limits: readers */
    /* what happened */
    int alive;                /* connection objects not closed */
    int alive_max;            /* the most alive at once */
    int connects, connect_failures, execs, resets, pings, closes, cancels;
    struct backend_conn *last_new;    /* the latest connection created */
    struct backend_conn *last_exec;   /* the connection of the latest exec */
};

extern struct fake_db fake;
extern const struct backend_driver fake_driver;

/* Reset the script (everything FAKE_OK, writers = maxOpenConns, no
 * readers) and the counters. */
void fake_init(void);
/* Complete the hanging operation on c with outcome o (not FAKE_HANG). */
void fake_finish(struct backend_conn *c, enum fake_outcome o);
/* The server closed idle connection c: the pool's watch fires. False when
 * c is not being watched (not idle). */
bool fake_lose_idle(struct backend_conn *c);
/* Is an operation running on c? */
bool fake_busy(const struct backend_conn *c);

#endif
