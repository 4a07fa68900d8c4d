/*
 * keys.c — the keys the loader itself owns, described once: the daemon
 * group's keys, the keys every pool type has and the network servers'
 * keys (a key_spec gives name, kind, field offset, range and flags), their
 * defaults, and the lookups in key tables. The rest of the loader is driven
 * by the tables: a new key is a line here (and in doc/configuration.md).
 * A driver's own keys live in its folder (daemon/config_spec.h; types.c
 * puts each type's table together).
 */
#include "daemon/config/config_internal.h"
#include "daemon/backoff.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#ifdef RUNSTATEDIR
#define DEFAULT_RUNDIR RUNSTATEDIR
#else
#define DEFAULT_RUNDIR "/run"
#endif
#define DEFAULT_SOCKET DEFAULT_RUNDIR "/dbpoold/dbpoold.sock"
#define DEFAULT_STATUS_SOCKET DEFAULT_RUNDIR "/dbpoold/status.sock"

/* ---- key tables ---- */

/* Indexed by enum log_level. */
static const char *const log_levels[] = { "debug", "info", "warn", "error", NULL };

#define DOFF(f) offsetof(struct daemon_config, f)
#define POFF(f) offsetof(struct pool_config, f)

const struct key_spec cf_daemon_keys[] = {
    { "socket", K_STRING, DOFF(socket), 0, 0, NULL, F_NONEMPTY | F_SOCKPATH, NULL },
    { "statusSocket", K_STRING, DOFF(status_socket), 0, 0, NULL, F_SOCKPATH, NULL },
    { "socketMode", K_MODE, DOFF(socket_mode), 0, 0777, NULL, 0, NULL },
    { "statusSocketMode", K_MODE, DOFF(status_socket_mode), 0, 0777, NULL, 0, NULL },
    { "adminUsers", K_USERS, DOFF(admin_users), 0, 0, NULL, 0, NULL },
    { "adminGroups", K_GROUPS, DOFF(admin_groups), 0, 0, NULL, 0, NULL },
    { "logLevel", K_LOG_LEVEL, DOFF(log_level), 0, 0, log_levels, 0, NULL },
    { "maxFrameSize", K_U32, DOFF(max_frame_size), 1024, 1073741824, NULL, 0, NULL },
    { "maxParams", K_U32, DOFF(max_params), 1, 65535, NULL, 0, NULL },
    { "maxBatchStatements", K_U32, DOFF(max_batch_statements), 1, 65535, NULL, 0, NULL },
    { "maxClients", K_U32, DOFF(max_clients), 1, 1000000, NULL, 0, NULL },
    { "maxClientsPerUser", K_U32, DOFF(max_clients_per_user), 0, 1000000, NULL, 0, NULL },
    { "listenBacklog", K_U32, DOFF(listen_backlog), 1, 65535, NULL, 0, NULL },
    { "outputHighWater", K_SIZE, DOFF(output_high_water), 4096, 1073741824, NULL, 0, NULL },
    { "clientBufferBudget", K_SIZE, DOFF(client_buffer_budget), 2048, 1099511627776LL, NULL, 0, NULL },
    { "frameTimeout", K_DURATION, DOFF(frame_timeout_ms), 1, DURATION_MAX_MS, NULL, 0, NULL },
    { "writeStallTimeout", K_DURATION, DOFF(write_stall_timeout_ms), 0, DURATION_MAX_MS, NULL, 0, NULL },
    { "shutdownTimeout", K_DURATION, DOFF(shutdown_timeout_ms), 1, DURATION_MAX_MS, NULL, 0, NULL },
    { "clientIdleTimeout", K_DURATION, DOFF(client_idle_timeout_ms), 0, DURATION_MAX_MS, NULL, 0, NULL },
    { "idleTransactionTimeout", K_DURATION, DOFF(idle_transaction_timeout_ms), 0, DURATION_MAX_MS, NULL, 0, NULL },
};

/* Keys every pool type has, at the start of every type's table. */
#define COMMON_POOL_KEYS \
    { "maxOpenConns", K_INT, POFF(max_open_conns), 1, INT_MAX, NULL, 0, NULL }, \
    { "maxIdleConns", K_INT, POFF(max_idle_conns), 0, INT_MAX, NULL, 0, NULL }, \
    { "connMaxLifetime", K_DURATION, POFF(conn_max_lifetime_ms), 0, DURATION_MAX_MS, NULL, 0, NULL }, \
    { "connMaxIdleTime", K_DURATION, POFF(conn_max_idle_time_ms), 0, DURATION_MAX_MS, NULL, 0, NULL }, \
    { "timeout", K_DURATION, POFF(timeout_ms), 1, DURATION_MAX_MS, NULL, 0, NULL }, \
    { "healthCheckInterval", K_DURATION, POFF(health_check_interval_ms), 0, DURATION_MAX_MS, NULL, 0, NULL }, \
    { "acquireTimeout", K_DURATION, POFF(acquire_timeout_ms), 1, DURATION_MAX_MS, NULL, 0, NULL }, \
    { "statementTimeout", K_DURATION, POFF(statement_timeout_ms), 0, DURATION_MAX_MS, NULL, 0, NULL }, \
    { "allowUsers", K_USERS, POFF(allow_users), 0, 0, NULL, 0, NULL }, \
    { "allowGroups", K_GROUPS, POFF(allow_groups), 0, 0, NULL, 0, NULL }, \
    { "maxClientsPerPool", K_U32, POFF(max_clients_per_pool), 0, 1000000, NULL, 0, NULL }, \
    { "maxPinned", K_INT, POFF(max_pinned), 0, INT_MAX, NULL, 0, NULL }

/* Keys of the network servers (postgres, mysql). */
#define SERVER_POOL_KEYS \
    { "host", K_STRING, POFF(host), 0, 0, NULL, F_REQUIRED | F_NONEMPTY, "host = \"localhost\";" }, \
    { "port", K_INT, POFF(port), 1, 65535, NULL, 0, NULL }, \
    { "name", K_STRING, POFF(dbname), 0, 0, NULL, F_REQUIRED | F_NONEMPTY, "name = \"appdb\";" }, \
    { "username", K_STRING, POFF(username), 0, 0, NULL, F_REQUIRED | F_NONEMPTY, "username = \"app\";" }, \
    { "password", K_STRING, POFF(password), 0, 0, NULL, F_SECRET, NULL }, \
    { "passwordFile", K_STRING, POFF(password_file), 0, 0, NULL, F_NONEMPTY, NULL }, \
    { "maxRetries", K_INT, POFF(max_retries), 0, INT_MAX, NULL, 0, NULL }, \
    { "retryDelay", K_DURATION, POFF(retry_delay_ms), 0, DURATION_MAX_MS, NULL, 0, NULL }, \
    { "retryMaxDelay", K_DURATION, POFF(retry_max_delay_ms), 1, DURATION_MAX_MS, NULL, 0, NULL }

const struct key_spec cf_common_pool_keys[] = { COMMON_POOL_KEYS };
const struct key_spec cf_server_pool_keys[] = { SERVER_POOL_KEYS };
const size_t cf_ncommon_pool_keys = NELEMS(cf_common_pool_keys);
const size_t cf_nserver_pool_keys = NELEMS(cf_server_pool_keys);
const size_t cf_ndaemon_keys = NELEMS(cf_daemon_keys);

_Static_assert(NELEMS(cf_daemon_keys) <= MAX_KEYS, "raise MAX_KEYS");

const char *const cf_root_keys[] = { "daemon", "pools", NULL };

/* Pseudo-specs for the pool entry's own keys, used in type errors. */
const struct key_spec cf_name_spec = { "name", K_STRING, 0, 0, 0, NULL, 0, NULL };
const struct key_spec cf_type_spec = { "type", K_STRING, 0, 0, 0, NULL, 0, NULL };


/* ---- lookups ---- */

int cf_find_key(const struct key_spec *keys, size_t nkeys, const char *name)
{
    size_t i;

    for (i = 0; i < nkeys; i++)
        if (strcmp(keys[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* Index of the key whose env form is key[0..len), or -1. */
int cf_find_env_key(const struct key_spec *keys, size_t nkeys, const char *key, size_t len)
{
    char buf[KEY_NAME_MAX];
    size_t i;

    for (i = 0; i < nkeys; i++) {
        cf_env_key(keys[i].name, buf, sizeof(buf));
        if (strlen(buf) == len && memcmp(buf, key, len) == 0)
            return (int)i;
    }
    return -1;
}

/* ---- defaults ---- */

void cf_daemon_defaults(struct loader *ld, struct daemon_config *d)
{
    cf_set_str(ld, &d->socket, DEFAULT_SOCKET);
    cf_set_str(ld, &d->status_socket, DEFAULT_STATUS_SOCKET);
    d->socket_mode = 0666;
    d->status_socket_mode = 0660;
    d->log_level = LOG_INFO;
    d->max_frame_size = 16777216;
    d->max_params = 1024;
    d->max_batch_statements = 1000;
    d->max_clients = 10000;
    d->max_clients_per_user = 1000;
    d->listen_backlog = 4096;
    d->output_high_water = 262144;
    d->client_buffer_budget = 268435456;
    d->frame_timeout_ms = 30000;
    d->write_stall_timeout_ms = 60000;
    d->shutdown_timeout_ms = 30000;
    d->client_idle_timeout_ms = 0;
    d->idle_transaction_timeout_ms = 0;
}

/* The defaults of the common and server keys; types.c adjusts them for
 * the pool's type (port, connection limits). */
void cf_common_defaults(struct pool_config *p)
{
    p->max_open_conns = 25;
    p->max_idle_conns = 5;
    p->conn_max_lifetime_ms = 5 * 60000;
    p->conn_max_idle_time_ms = 60000;
    p->timeout_ms = 30000;
    p->health_check_interval_ms = 30000;
    p->acquire_timeout_ms = 10000;
    p->max_retries = 3;
    p->retry_delay_ms = 1000;
    p->retry_max_delay_ms = BACKOFF_CAP_MS;
    p->statement_timeout_ms = 0;
    p->max_pinned = -1;   /* resolved by the checks from maxOpenConns */
}

const char *log_level_name(enum log_level l)
{
    if ((unsigned)l < NELEMS(log_levels) - 1)
        return log_levels[l];
    return "unknown";
}
