/*
 * pg_options.h — a postgres pool's own settings (the postgres group's keys
 * beyond the common and server ones), declared in pg_config.c and read by
 * the driver through pg_opts().
 */
#ifndef DBPOOLD_PG_OPTIONS_H
#define DBPOOLD_PG_OPTIONS_H

#include "daemon/config_spec.h"
#include "daemon/configuration.h"

struct pg_options {
    char *ssl_mode;                 /* default "disable" (libpq's sslmode words) */
    int statement_cache_size;       /* prepared statements per connection, default 256; 0 = off */
};

extern const struct driver_config_spec pg_config_spec;
extern const struct pg_options pg_default_options;

/* The pool's postgres settings (the defaults when the config has none, as
 * for a pool_config a test builds by hand). */
static inline const struct pg_options *pg_opts(const struct pool_config *cfg)
{
    return cfg->driver_opts ? (const struct pg_options *)cfg->driver_opts : &pg_default_options;
}

#endif
