/*
 * pg_config.c — the postgres group's own keys, their defaults and ranges
 * (daemon/config_spec.h; doc/configuration.md lists them). The host, port,
 * name, username, password and retry keys are the loader's server keys;
 * PostgreSQL's port default is 5432.
 */
#include <stddef.h>

#include "backend/pg/pg_options.h"

#define PO(f) offsetof(struct pg_options, f)

static const char *const ssl_modes[] = { "disable", "allow", "prefer", "require",
                                         "verify-ca", "verify-full", NULL };

static const struct key_spec pg_keys[] = {
    { "sslMode", K_CHOICE, PO(ssl_mode), 0, 0, ssl_modes, 0, NULL },
    { "statementCacheSize", K_INT, PO(statement_cache_size), 0, 65536, NULL, 0, NULL },
};

const struct pg_options pg_default_options = {
    .ssl_mode = "disable",
    .statement_cache_size = 256,
};

const struct driver_config_spec pg_config_spec = {
    .name = "postgres",
    .type = BACKEND_POSTGRES,
    .server = true,
    .default_port = 5432,
    .keys = pg_keys,
    .nkeys = sizeof(pg_keys) / sizeof(pg_keys[0]),
    .opts_size = sizeof(struct pg_options),
    .defaults = &pg_default_options,
};
