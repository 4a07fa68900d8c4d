/*
 * config_diff.h — what a reload changes: two configurations compared key
 * by key (the loader's key tables say which fields there are), so that the
 * daemon knows which pools it can adjust in place, which must recycle
 * their server connections, and which settings need a restart.
 * Implemented in config/diff.c.
 */
#ifndef DBPOOLD_CONFIG_DIFF_H
#define DBPOOLD_CONFIG_DIFF_H

#include <stddef.h>

#include "daemon/configuration.h"

enum pool_change {
    POOL_SAME = 0,
    POOL_TUNED = 1u << 0,       /* sizes, timeouts, limits, retry settings: applied in place */
    POOL_RECONNECT = 1u << 1,   /* connection settings (host, port, user, password, database,
                                   connect/busy timeout, the driver's keys): new connections */
    POOL_RETYPED = 1u << 2,     /* another type: the pool is removed and added again */
};

/* The changes from a to b (the same pool name); a set of enum pool_change. */
unsigned config_pool_changes(const struct pool_config *a, const struct pool_config *b);

/* Daemon keys that differ between a and b but take effect only at a
 * restart (the sockets), as "socket, socketMode"; "" when none. */
void config_restart_keys(const struct daemon_config *a, const struct daemon_config *b,
                         char *buf, size_t len);

#endif
