/*
 * helper.c — helper threads and their wake-ups of the event loop; see
 * helper.h. Used by the drivers (the PostgreSQL cancel and host-name
 * helpers; the next driver's blocking calls).
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "backend/helper.h"

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int running;
} helpers = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };

void helper_must(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "dbpoold: %s failed: %s\n", what, strerror(rc));
        abort();
    }
}

static void running_add(int delta)
{
    helper_must(pthread_mutex_lock(&helpers.mu), "pthread_mutex_lock");
    helpers.running += delta;
    if (helpers.running == 0)
        helper_must(pthread_cond_broadcast(&helpers.cv), "pthread_cond_broadcast");
    helper_must(pthread_mutex_unlock(&helpers.mu), "pthread_mutex_unlock");
}

int helper_start(void *(*fn)(void *), void *arg)
{
    pthread_attr_t attr;
    pthread_t tid;
    sigset_t all, old;
    int rc;

    if (pthread_attr_init(&attr) != 0)
        return ENOMEM;
    running_add(1);
    rc = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (rc == 0 && sigfillset(&all) == 0) {
        helper_must(pthread_sigmask(SIG_SETMASK, &all, &old), "pthread_sigmask");
        rc = pthread_create(&tid, &attr, fn, arg);
        helper_must(pthread_sigmask(SIG_SETMASK, &old, NULL), "pthread_sigmask");
    } else if (rc == 0) {
        rc = EINVAL;
    }
    helper_must(pthread_attr_destroy(&attr), "pthread_attr_destroy");
    if (rc != 0)
        running_add(-1);
    return rc;
}

void helper_exit(void)
{
    running_add(-1);
}

void helper_quiesce(unsigned wait_ms)
{
    struct timespec deadline;
    int rc = 0;

    if (clock_gettime(CLOCK_REALTIME, &deadline) != 0)
        abort();   /* cannot fail for CLOCK_REALTIME */
    deadline.tv_sec += (time_t)(wait_ms / 1000u);
    deadline.tv_nsec += (long)(wait_ms % 1000u) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    helper_must(pthread_mutex_lock(&helpers.mu), "pthread_mutex_lock");
    while (helpers.running > 0 && rc != ETIMEDOUT) {
        rc = pthread_cond_timedwait(&helpers.cv, &helpers.mu, &deadline);
        if (rc != ETIMEDOUT)
            helper_must(rc, "pthread_cond_timedwait");
    }
    helper_must(pthread_mutex_unlock(&helpers.mu), "pthread_mutex_unlock");
}

/* ------------------------------------------------------------ wake-ups */

int helper_wake_init(struct helper_wake *w, struct event *ev,
                     void (*release)(struct helper_wake *w))
{
    int rc = pthread_mutex_init(&w->mu, NULL);

    if (rc != 0)
        return rc;
    w->ev = ev;
    w->finished = false;
    w->refs = 2;
    w->release = release;
    return 0;
}

void helper_wake_unref(struct helper_wake *w)
{
    bool last;

    helper_must(pthread_mutex_lock(&w->mu), "pthread_mutex_lock");
    last = --w->refs == 0;
    helper_must(pthread_mutex_unlock(&w->mu), "pthread_mutex_unlock");
    if (last) {
        helper_must(pthread_mutex_destroy(&w->mu), "pthread_mutex_destroy");
        w->release(w);
    }
}

void helper_wake_done(struct helper_wake *w)
{
    helper_must(pthread_mutex_lock(&w->mu), "pthread_mutex_lock");
    w->finished = true;
    if (w->ev)
        event_active(w->ev, 0, 0);
    helper_must(pthread_mutex_unlock(&w->mu), "pthread_mutex_unlock");
    helper_wake_unref(w);
}

bool helper_wake_finished(struct helper_wake *w)
{
    bool finished;

    helper_must(pthread_mutex_lock(&w->mu), "pthread_mutex_lock");
    finished = w->finished;
    helper_must(pthread_mutex_unlock(&w->mu), "pthread_mutex_unlock");
    return finished;
}

void helper_wake_abandon(struct helper_wake *w)
{
    struct event *ev;

    helper_must(pthread_mutex_lock(&w->mu), "pthread_mutex_lock");
    ev = w->ev;
    w->ev = NULL;
    helper_must(pthread_mutex_unlock(&w->mu), "pthread_mutex_unlock");
    if (ev)
        (void)event_del(ev);   /* withdraws a posted activation, too */
    helper_wake_unref(w);
}
