/*
 * config_show.h — the effective configuration, key by key, for GET
 * /config: every key of the daemon group and of each pool (defaults
 * included), driven by the loader's key tables, so a new key shows without
 * code here. Secrets never leave: a secret key (password) is reported as
 * set or not, never its value. Implemented in config/show.c; the status
 * socket writes the JSON (status_config.c).
 */
#ifndef DBPOOLD_CONFIG_SHOW_H
#define DBPOOLD_CONFIG_SHOW_H

#include <stdbool.h>

#include "daemon/configuration.h"

enum config_value_kind {
    CV_INT,         /* i */
    CV_BOOL,        /* b */
    CV_STRING,      /* s: also durations ("30s"), modes ("0660"), log levels */
    CV_NULL,        /* not set (an optional string) */
    CV_REDACTED,    /* a secret that is set: show "***" */
    CV_IDS,         /* ids: allowUsers, adminGroups, ... (numeric, as resolved at load) */
};

struct config_value {
    const char *key;                /* camelCase, as in the file */
    enum config_value_kind kind;
    long long i;
    bool b;
    const char *s;
    const struct id_set *ids;
};

struct config_visitor {
    /* A section begins: the daemon group (pool NULL) or a pool (its name and type). */
    void (*section)(void *ctx, const char *pool, const char *type);
    void (*value)(void *ctx, const struct config_value *v);
};

/* Visit the daemon group, then every pool in configuration order. */
void config_show(const struct config *cfg, const struct config_visitor *v, void *ctx);

#endif
