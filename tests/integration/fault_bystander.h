/*
 * fault_bystander.h — the fault matrix's bystander (test_faults.c): a
 * session on a thread of its own that keeps being served while the victim
 * session suffers the fault, and records every answer the fault does not
 * explain. Raw protocol with a deadline on every read (fault_tools.h).
 */
#ifndef DBPOOLD_TEST_FAULT_BYSTANDER_H
#define DBPOOLD_TEST_FAULT_BYSTANDER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Another session on its own thread, one `SELECT 1` every 10 ms (in a
 * transaction it keeps open when in_tx: it then holds a server connection
 * of its own). It counts, and records what the fault does not explain. */
struct bystander {
    int fd;
    int answer_ms;              /* no answer within this: a hang */
    bool in_tx;
    unsigned allowed;           /* bit per error code the fault explains */
    pthread_t tid;
    bool started;
    atomic_bool stop, shutting;
    atomic_int ok, hangs, bad;
    bool tx_open0;              /* by_start opened its transaction (want_sid) */
    long sid;                   /* ... and its server session's id, or -1 */
    _Atomic uint64_t last_ok_ms;
    char first_bad[400];
};

/* The one bystander (the test's main thread reads its counters). */
extern struct bystander B;

/* Connect it and start its thread (nothing if already started); assert its
 * first request is answered. allowed: bit per error code the fault
 * explains (B.allowed may be changed later). want_sid: open its
 * transaction (in_tx) here and note its server session's id in B.sid
 * (MariaDB shows a session idle in a transaction as idle: the id tells it
 * apart). */
void by_start(int answer_ms, bool in_tx, unsigned allowed, bool want_sid);
/* Stop it (its session closes; an open transaction is rolled back). Also
 * for a suite's .fini, whatever state the test left. */
void by_stop(void);

#endif
