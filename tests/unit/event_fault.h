/*
 * event_fault.h — forced into the pool.c and pool_health.c that test_pool
 * links (tests/unit/libpool_faults.la, `-include`), never into the daemon:
 * every event_add()/evtimer_add() of theirs goes through fault_event_add()
 * (test_pool.c), which fails the next ones on request, as libevent does
 * when it runs out of memory.
 */
#ifndef DBPOOLD_TEST_EVENT_FAULT_H
#define DBPOOLD_TEST_EVENT_FAULT_H

#include <event2/event.h>

int fault_event_add(struct event *ev, const struct timeval *tv);
#define event_add(ev, tv) fault_event_add((ev), (tv))

#endif
