/*
 * configuration.h — the running configuration as a value.
 *
 * config_load() parses a libconfig file, applies environment overrides
 * (DBPOOLD_DAEMON_<KEY>, DBPOOLD_POOL_<NAME>_<KEY>; camelCase keys written in
 * UPPER_SNAKE, e.g. DBPOOLD_POOL_APP_FILE_PATH), fills defaults and validates
 * strictly. All errors are collected, each naming file, line and key (or the
 * environment variable). doc/configuration.md is the reference.
 *
 * Which keys a pool takes is the drivers' to say: daemon/config_spec.h,
 * and each driver's *_config.c, listed by the factory.
 *
 * Ownership: config_load returns a struct config the caller frees with
 * config_free. Nothing in it is shared.
 */
#ifndef DBPOOLD_CONFIGURATION_H
#define DBPOOLD_CONFIGURATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/duration.h"   /* parse_duration_ms, shared with libdbpool */

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

enum backend_type { BACKEND_SQLITE = 0, BACKEND_POSTGRES = 1, BACKEND_MYSQL = 2 };

/* A set of numeric user or group ids (allowUsers, allowGroups): names were
 * resolved when the config was loaded, so checking a client never asks
 * NSS. Sorted, without duplicates; owned. n == 0: the key is not set. */
struct id_set {
    uint32_t *ids;
    size_t n;
};
bool id_set_has(const struct id_set *s, uint32_t id);

struct daemon_config {
    char *socket;                   /* client socket path */
    char *status_socket;            /* status (HTTP) socket path; "" disables */
    unsigned socket_mode;           /* permission bits of the client socket (default 0666) */
    unsigned status_socket_mode;    /* permission bits of the status socket (default 0660):
                                       who may connect may GET */
    struct id_set admin_users;      /* uids that may POST (besides root and our own uid) */
    struct id_set admin_groups;     /* gids whose members (primary or supplementary) may POST */
    enum log_level log_level;
    uint32_t max_frame_size;        /* bytes, default 16 MiB */
    uint32_t max_params;            /* parameters per statement, default 1024 */
    uint32_t max_batch_statements;  /* statements per batch, default 1000 */
    uint32_t max_clients;           /* accepted client sessions, default 10000 */
    uint32_t max_clients_per_user;  /* sessions of one uid (SO_PEERCRED), default 1000; 0 = off */
    uint32_t listen_backlog;        /* listen() backlog of both sockets, default 4096 */
    size_t output_high_water;       /* bytes queued to a client before row fetching pauses, default 256 KiB */
    size_t client_buffer_budget;    /* bytes buffered for all clients (in + out), default 256 MiB */
    uint64_t frame_timeout_ms;      /* a started frame must arrive within this, default 30s */
    uint64_t write_stall_timeout_ms;        /* output not draining; default 60s, 0 = off */
    uint64_t shutdown_timeout_ms;   /* SIGTERM drain bound, default 30s */
    uint64_t client_idle_timeout_ms;        /* 0 = off (default) */
    uint64_t idle_transaction_timeout_ms;   /* idle inside a transaction; 0 = off (default) */
};

struct pool_config {
    char *name;
    enum backend_type type;
    int line;                       /* source line of the pool entry, for messages */

    /* common to every type */
    int max_open_conns;             /* sqlite default 1, others 25 */
    int max_idle_conns;             /* sqlite default 1, others 5 */
    uint64_t conn_max_lifetime_ms;  /* default 5m; 0 = unlimited */
    uint64_t conn_max_idle_time_ms; /* default 1m; 0 = unlimited */
    uint64_t timeout_ms;            /* default 30s: connect timeout; sqlite busy timeout */
    uint64_t health_check_interval_ms; /* default 30s; 0 = off */
    uint64_t acquire_timeout_ms;    /* wait-queue bound, default 10s (dbpoold addition) */
    int max_retries;                /* connect retries, default 3 (postgres, mysql) */
    uint64_t retry_delay_ms;        /* first backoff delay, default 1s */
    uint64_t retry_max_delay_ms;    /* backoff cap, default 30s (BACKOFF_CAP_MS) */
    uint64_t statement_timeout_ms;  /* 0 = off (default) */

    /* who may use the pool (doc/configuration.md, "Who may use a pool") */
    struct id_set allow_users;      /* uids; with allow_groups empty too: everyone */
    struct id_set allow_groups;     /* gids: the client's primary or a supplementary group */
    uint32_t max_clients_per_pool;  /* sessions after HELLO; 0 = no limit of its own (maxClients) */
    int max_pinned;                 /* pinned sessions at once; resolved at load (checks.c):
                                       default maxOpenConns / 4, at least 1, below maxOpenConns;
                                       SQLite 1 (its one writer) */

    /* network servers (postgres, mysql: driver_config_spec.server) */
    char *host;                     /* required; postgres: a directory = Unix socket;
                                       mysql: a path starting with '/' = socket file */
    int port;                       /* default from the driver (5432, 3306); 1..65535 */
    char *dbname;                   /* key "name"; required */
    char *username;                 /* required */
    char *password;                 /* secret: never logged or reported; from the password
                                       key or read from passwordFile at load; wiped on free */
    char *password_file;            /* path; its contents are in password */

    /* The driver's own settings (owned; freed by config_free): struct
     * sqlite_options, pg_options or mysql_options (backend/<driver>/
     * *_options.h), each read through its accessor (sqlite_opts(cfg),
     * ...), which gives the driver's defaults when this is NULL. */
    const void *driver_opts;
};

struct config {
    char *path;                     /* file the config came from */
    struct daemon_config daemon;
    struct pool_config *pools;
    size_t npools;
};

/* Collected diagnostics: errors make the config invalid, warnings do not. */
struct config_diag {
    char **errors;
    size_t nerrors;
    char **warnings;
    size_t nwarnings;
};

/* Parse path (or the built-in defaults when path is NULL... not supported:
 * path is required). Returns NULL when there is at least one error; diag
 * always receives every error and warning found (free with config_diag_free). */
struct config *config_load(const char *path, struct config_diag *diag);
void config_free(struct config *cfg);
void config_diag_free(struct config_diag *diag);

const struct pool_config *config_find_pool(const struct config *cfg,
                                           const char *name, size_t name_len);

/* The type's name as written in "type" (defined by the factory's driver table). */
const char *backend_type_name(enum backend_type t);
const char *log_level_name(enum log_level l);

#endif
