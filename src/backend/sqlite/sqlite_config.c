/*
 * sqlite_config.c — the sqlite group's own keys, their defaults and ranges
 * (daemon/config_spec.h; doc/configuration.md lists them). The loader
 * fills a struct sqlite_options from them.
 */
#include <limits.h>
#include <stddef.h>

#include "backend/sqlite/sqlite_options.h"

#define SQ(f) offsetof(struct sqlite_options, f)

static const char *const journal_modes[] =
    { "WAL", "DELETE", "TRUNCATE", "PERSIST", "MEMORY", "OFF", NULL };
static const char *const sync_modes[] = { "OFF", "NORMAL", "FULL", "EXTRA", NULL };
static const char *const auto_vacuum_modes[] = { "NONE", "FULL", "INCREMENTAL", NULL };

static const struct key_spec sqlite_keys[] = {
    { "filePath", K_STRING, SQ(file_path), 0, 0, NULL, F_REQUIRED | F_NONEMPTY,
      "filePath = \"/var/lib/dbpoold/app.db\";" },
    { "journalMode", K_CHOICE, SQ(journal_mode), 0, 0, journal_modes, 0, NULL },
    { "syncMode", K_CHOICE, SQ(sync_mode), 0, 0, sync_modes, 0, NULL },
    { "cacheSize", K_INT, SQ(cache_size), INT_MIN, INT_MAX, NULL, 0, NULL },
    { "foreignKeys", K_BOOL, SQ(foreign_keys), 0, 0, NULL, 0, NULL },
    { "autoVacuum", K_CHOICE, SQ(auto_vacuum), 0, 0, auto_vacuum_modes, 0, NULL },
};

const struct sqlite_options sqlite_default_options = {
    .journal_mode = "WAL",
    .sync_mode = "NORMAL",
    .cache_size = 1000,
    .foreign_keys = true,
    .auto_vacuum = "INCREMENTAL",
};

/* One writer and readers: one connection by default (a file database
 * gains readers with maxOpenConns). */
const struct driver_config_spec sqlite_config_spec = {
    .name = "sqlite",
    .type = BACKEND_SQLITE,
    .server = false,
    .default_max_open_conns = 1,
    .default_max_idle_conns = 1,
    .keys = sqlite_keys,
    .nkeys = sizeof(sqlite_keys) / sizeof(sqlite_keys[0]),
    .opts_size = sizeof(struct sqlite_options),
    .defaults = &sqlite_default_options,
};
