/*
 * config_spec.h — how a pool type declares its configuration: the
 * vocabulary of key tables (struct key_spec) the loader (src/daemon/config/)
 * is driven by, and struct driver_config_spec, which each driver fills in
 * its own folder (sqlite/sqlite_config.c, pg/pg_config.c,
 * mysql/mysql_config.c) and the factory lists (backend/factory.c).
 *
 * A pool's settings are the keys every type has (maxOpenConns, timeouts:
 * struct pool_config), the network-server keys when the driver says it is
 * a server (host, port, name, username, password, passwordFile, retries:
 * also struct pool_config), and the driver's own keys, whose offsets are
 * into the driver's options struct. The loader allocates that struct from
 * the driver's defaults, converts and range-checks the values, runs the
 * driver's check, and hangs it on pool_config.driver_opts; config_free
 * frees it through the same table (string fields are owned copies).
 */
#ifndef DBPOOLD_CONFIG_SPEC_H
#define DBPOOLD_CONFIG_SPEC_H

#include <stdbool.h>
#include <stddef.h>

#include "daemon/configuration.h"

#define DURATION_MAX_MS (8760ULL * 3600 * 1000)     /* 8760h, one year */

enum kind {
    K_INT,          /* int field */
    K_U32,          /* uint32_t field */
    K_SIZE,         /* size_t field */
    K_DURATION,     /* uint64_t milliseconds, written as a string "30s" */
    K_BOOL,         /* bool field */
    K_STRING,       /* char * field */
    K_CHOICE,       /* char * field, one of choices (stored as spelled there) */
    K_LOG_LEVEL,    /* enum log_level field */
    K_MODE,         /* unsigned field, octal string "0660" */
    K_USERS,        /* struct id_set of uids: a list of names and ids (config/ids.c) */
    K_GROUPS,       /* struct id_set of gids: a list of names and ids (config/ids.c) */
};

enum {
    F_REQUIRED = 1u << 0,
    F_NONEMPTY = 1u << 1,
    F_SECRET = 1u << 2,     /* never show the value */
    F_SOCKPATH = 1u << 3,   /* must fit in sockaddr_un.sun_path */
    F_OPTS = 1u << 4,       /* offset is into the driver's options (the loader sets it) */
};

struct key_spec {
    const char *name;               /* camelCase, as written in the file */
    enum kind kind;
    size_t offset;                  /* into struct daemon_config / pool_config / options */
    long long min, max;             /* integers: value range; durations: ms */
    const char *const *choices;     /* K_CHOICE, NULL-terminated */
    unsigned flags;
    const char *example;            /* F_REQUIRED: shown when missing */
};

/* What a driver declares about its pools' configuration. */
struct driver_config_spec {
    const char *name;               /* the value of "type" and the name of the group */
    enum backend_type type;
    bool server;                    /* has the network-server keys (host, port, ...) */
    int default_port;               /* server: port when none is set */
    int default_max_open_conns;     /* 0: the common default (25) */
    int default_max_idle_conns;     /* 0: the common default (5) */
    const struct key_spec *keys;    /* the driver's own keys; offsets into its options */
    size_t nkeys;
    size_t opts_size;               /* sizeof its options struct */
    const void *defaults;           /* an options struct holding the defaults */
    /* Checks across the driver's keys once every value converted (NULL:
     * none). Returns the name of the key at fault with the reason (telling
     * the user what to do) in msg, or NULL when all is well. */
    const char *(*check)(const struct pool_config *p, const void *opts, char *msg, size_t size);
};

#endif
