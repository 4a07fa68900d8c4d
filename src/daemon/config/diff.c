/*
 * diff.c — comparing two loaded configurations (contract: daemon/
 * config_diff.h), driven by the same key tables as the loader (keys.c, the
 * drivers' specs), so a new key is compared without code here. Which keys a
 * running pool applies in place and which daemon keys need a restart are
 * the two lists below.
 */
#include "daemon/config/config_internal.h"
#include "daemon/config_diff.h"

#include <string.h>

/* Pool keys a running pool applies in place (pool_reconfigure). Every other
 * key of a pool is a connection setting. */
static const char *const tuned_keys[] = {
    "maxOpenConns", "maxIdleConns", "connMaxLifetime", "connMaxIdleTime",
    "healthCheckInterval", "acquireTimeout", "statementTimeout", "maxRetries",
    "retryDelay", "retryMaxDelay",
    "allowUsers", "allowGroups", "maxClientsPerPool",   /* checked at each HELLO */
    "maxPinned",                                        /* checked at each PIN */
    NULL,
};

/* Daemon keys read only when the sockets are made. */
static const char *const restart_keys[] = {
    "socket", "statusSocket", "socketMode", "statusSocketMode", "listenBacklog", NULL,
};

static bool listed(const char *const *names, const char *name)
{
    for (size_t i = 0; names[i]; i++)
        if (strcmp(names[i], name) == 0)
            return true;
    return false;
}

static bool ids_eq(const struct id_set *a, const struct id_set *b)
{
    return a->n == b->n && (a->n == 0 || memcmp(a->ids, b->ids, a->n * sizeof(*a->ids)) == 0);
}

static bool str_eq(const char *a, const char *b)
{
    return (!a || !b) ? a == b : strcmp(a, b) == 0;
}

/* Whether the field k describes is equal in the structs at a and b. */
static bool field_eq(const struct key_spec *k, const char *a, const char *b)
{
    const void *fa = a + k->offset, *fb = b + k->offset;

    switch (k->kind) {
    case K_STRING:
    case K_CHOICE:
        return str_eq(*(char *const *)fa, *(char *const *)fb);
    case K_INT:
        return *(const int *)fa == *(const int *)fb;
    case K_U32:
        return *(const uint32_t *)fa == *(const uint32_t *)fb;
    case K_SIZE:
        return *(const size_t *)fa == *(const size_t *)fb;
    case K_DURATION:
        return *(const uint64_t *)fa == *(const uint64_t *)fb;
    case K_BOOL:
        return *(const bool *)fa == *(const bool *)fb;
    case K_LOG_LEVEL:
        return *(const enum log_level *)fa == *(const enum log_level *)fb;
    case K_MODE:
        return *(const unsigned *)fa == *(const unsigned *)fb;
    case K_USERS:
    case K_GROUPS:
        return ids_eq(fa, fb);
    }
    return false;
}

/* The changes among keys[0..n) of the structs at a and b. */
static unsigned table_changes(const struct key_spec *keys, size_t n, const void *a, const void *b)
{
    unsigned ch = POOL_SAME;

    for (size_t i = 0; i < n; i++)
        if (!field_eq(&keys[i], a, b))
            ch |= listed(tuned_keys, keys[i].name) ? POOL_TUNED : POOL_RECONNECT;
    return ch;
}

unsigned config_pool_changes(const struct pool_config *a, const struct pool_config *b)
{
    const struct driver_config_spec *spec = cf_spec_of(a->type);
    unsigned ch;

    if (a->type != b->type || !spec)
        return POOL_RETYPED;
    ch = table_changes(cf_common_pool_keys, cf_ncommon_pool_keys, a, b);
    if (spec->server)
        ch |= table_changes(cf_server_pool_keys, cf_nserver_pool_keys, a, b);
    if (a->driver_opts && b->driver_opts)
        ch |= table_changes(spec->keys, spec->nkeys, a->driver_opts, b->driver_opts);
    else if (a->driver_opts != b->driver_opts)
        ch |= POOL_RECONNECT;
    return ch;
}

void config_restart_keys(const struct daemon_config *a, const struct daemon_config *b,
                         char *buf, size_t len)
{
    size_t pos = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < cf_ndaemon_keys; i++) {
        const struct key_spec *k = &cf_daemon_keys[i];
        if (listed(restart_keys, k->name) && !field_eq(k, (const char *)a, (const char *)b))
            cf_appendf(buf, len, &pos, "%s%s", pos ? ", " : "", k->name);
    }
}
