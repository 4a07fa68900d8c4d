/*
 * sqlite_options.h — a sqlite pool's own settings (the sqlite group's keys
 * beyond the common ones), declared in sqlite_config.c and read by the
 * driver through sqlite_opts().
 */
#ifndef DBPOOLD_SQLITE_OPTIONS_H
#define DBPOOLD_SQLITE_OPTIONS_H

#include <stdbool.h>

#include "daemon/config_spec.h"
#include "daemon/configuration.h"

struct sqlite_options {
    char *file_path;                /* required */
    char *journal_mode;             /* default "WAL" (DELETE TRUNCATE PERSIST MEMORY WAL OFF) */
    char *sync_mode;                /* default "NORMAL" (OFF NORMAL FULL EXTRA) */
    int cache_size;                 /* default 1000 (PRAGMA cache_size; negative = KiB) */
    bool foreign_keys;              /* default true */
    char *auto_vacuum;              /* default "INCREMENTAL" (NONE FULL INCREMENTAL) */
};

extern const struct driver_config_spec sqlite_config_spec;
extern const struct sqlite_options sqlite_default_options;

/* The pool's sqlite settings (the defaults when the config has none, as
 * for a pool_config a test builds by hand). */
static inline const struct sqlite_options *sqlite_opts(const struct pool_config *cfg)
{
    return cfg->driver_opts ? (const struct sqlite_options *)cfg->driver_opts
                            : &sqlite_default_options;
}

#endif
