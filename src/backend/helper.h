/*
 * helper.h — helper threads for the drivers, and waking the event loop
 * when one finishes.
 *
 * A driver runs everything on the event-loop thread, except the few calls
 * that block and have no non-blocking form (PostgreSQL's PQcancel,
 * getaddrinfo for a host name). Those run on short detached helper threads
 * that own only what they were given: helper_start() starts one (with all
 * signals blocked: they belong to the loop thread), helper_exit() is its
 * last action, helper_quiesce() waits (bounded) at exit for those still
 * running. The running count is the only mutable global here.
 *
 * struct helper_wake is how a helper tells the loop it is done without
 * ever touching its owner: the owner (a connection) gives it one of its
 * own events; the helper's helper_wake_done() activates that event under
 * the wake's mutex, and only while the owner has not abandoned it.
 * helper_wake_abandon() clears the event under the same mutex and then
 * withdraws an activation already posted, so the owner may free the event
 * (or reuse it for the next helper) at once and the loop never waits for a
 * helper. event_active from another thread needs libevent's pthread
 * locking (evthread_use_pthreads before the base is created), which the
 * daemon enables. The wake is shared (refs) by the owner and the helper;
 * the last reference calls release().
 */
#ifndef DBPOOLD_BACKEND_HELPER_H
#define DBPOOLD_BACKEND_HELPER_H

#include <pthread.h>
#include <stdbool.h>

struct event;

/* Start a detached helper running fn(arg); fn's last action must be
 * helper_exit(). 0, or an error number (then fn never runs). */
int helper_start(void *(*fn)(void *), void *arg);
void helper_exit(void);
/* Wait until no helper runs, at most wait_ms: one stuck on an unreachable
 * server must not hold up the daemon's exit. */
void helper_quiesce(unsigned wait_ms);

/* Mutex and condition-variable calls fail only on programming errors:
 * abort with a message naming the call. */
void helper_must(int rc, const char *what);

struct helper_wake {
    pthread_mutex_t mu;
    struct event *ev;      /* the owner's event; NULL once abandoned */
    bool finished;
    int refs;
    void (*release)(struct helper_wake *w);   /* frees the struct holding w */
};

/* Two references: the owner's and the helper's. 0, or an error number. */
int helper_wake_init(struct helper_wake *w, struct event *ev,
                     void (*release)(struct helper_wake *w));
/* The helper is done: wake the owner unless it left; drop the helper's
 * reference. The helper must not touch w afterwards. */
void helper_wake_done(struct helper_wake *w);
/* On the loop: whether the helper has called helper_wake_done(). */
bool helper_wake_finished(struct helper_wake *w);
/* On the loop: the owner lets go (its reference too). From here on the
 * helper cannot reach the owner's event, and a wake-up it already posted is
 * withdrawn. */
void helper_wake_abandon(struct helper_wake *w);
/* Drop one reference without abandoning (before the helper ever started). */
void helper_wake_unref(struct helper_wake *w);

#endif
