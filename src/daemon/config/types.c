/*
 * types.c — the pool types, one per driver the factory lists
 * (backend/factory.c): each type's key table put together from the common
 * keys, the server keys (when the driver is a network server) and the
 * driver's own (daemon/config_spec.h), the driver's options struct made
 * from its defaults before a pool's values are read, and freed with the
 * config. Nothing here knows a particular driver.
 */
#include "daemon/config/config_internal.h"
#include "backend/factory.h"
#include "backend/secret.h"

#include <stdlib.h>
#include <string.h>

static bool append_keys(struct type_info *t, const struct key_spec *keys, size_t n,
                        unsigned flags)
{
    if (t->nkeys + n > MAX_KEYS)
        return false;
    for (size_t i = 0; i < n; i++) {
        t->keys[t->nkeys] = keys[i];
        t->keys[t->nkeys++].flags |= flags;
    }
    return true;
}

/* One type from its driver's spec; false if its keys do not fit. */
static bool init_type(struct type_info *t, const struct driver_config_spec *spec)
{
    t->name = spec->name;
    t->type = spec->type;
    t->spec = spec;
    t->nkeys = 0;
    return append_keys(t, cf_common_pool_keys, cf_ncommon_pool_keys, 0) &&
           (!spec->server || append_keys(t, cf_server_pool_keys, cf_nserver_pool_keys, 0)) &&
           append_keys(t, spec->keys, spec->nkeys, F_OPTS);
}

void cf_init_types(struct loader *ld)
{
    const struct driver_config_spec *spec;
    size_t n = 0;

    ld->entry_keys[0] = "name";
    ld->entry_keys[1] = "type";
    for (size_t i = 0; n < MAX_TYPES && (spec = factory_config_spec(i)); i++) {
        if (!init_type(&ld->types[n], spec)) {
            struct where w = { .file = ld->path, .group = spec->name };

            cf_report(ld, &w, "the driver declares more than %d keys (raise MAX_KEYS in "
                      "src/daemon/config/config_internal.h)", MAX_KEYS);
            continue;
        }
        ld->type_names[n] = spec->name;
        ld->entry_keys[n + 2] = spec->name;
        n++;
    }
    ld->ntypes = n;
    ld->type_names[n] = NULL;
    ld->entry_keys[n + 2] = NULL;
}

const struct type_info *cf_find_type(const struct loader *ld, const char *name)
{
    for (size_t i = 0; i < ld->ntypes; i++)
        if (strcmp(ld->types[i].name, name) == 0)
            return &ld->types[i];
    return NULL;
}

static bool is_string(const struct key_spec *k)
{
    return k->kind == K_STRING || k->kind == K_CHOICE;
}

/* The common defaults adjusted for the type, and the driver's options as
 * its defaults (strings copied: the options own them). Returns the options,
 * also hung on p->driver_opts; NULL when memory ran out. */
void *cf_pool_defaults(struct loader *ld, struct pool_config *p, const struct type_info *t)
{
    const struct driver_config_spec *spec = t->spec;
    char *opts;

    cf_common_defaults(p);
    if (spec->default_max_open_conns)
        p->max_open_conns = spec->default_max_open_conns;
    if (spec->default_max_idle_conns)
        p->max_idle_conns = spec->default_max_idle_conns;
    p->port = spec->default_port;
    opts = calloc(1, spec->opts_size ? spec->opts_size : 1);
    if (!opts) {
        ld->oom = true;
        return NULL;
    }
    memcpy(opts, spec->defaults, spec->opts_size);
    for (size_t i = 0; i < spec->nkeys; i++) {
        char **f = (char **)(opts + spec->keys[i].offset);

        if (is_string(&spec->keys[i]) && *f && !(*f = strdup(*f)))
            ld->oom = true;
    }
    p->driver_opts = opts;
    return opts;
}

const struct driver_config_spec *cf_spec_of(enum backend_type type)
{
    const struct driver_config_spec *spec;

    for (size_t i = 0; (spec = factory_config_spec(i)); i++)
        if (spec->type == type)
            return spec;
    return NULL;
}

void cf_free_driver_opts(struct pool_config *p)
{
    const struct driver_config_spec *spec = cf_spec_of(p->type);
    char *opts = (char *)p->driver_opts;

    if (!opts || !spec)
        return;
    for (size_t i = 0; i < spec->nkeys; i++) {
        char **f = (char **)(opts + spec->keys[i].offset);

        if (!is_string(&spec->keys[i]))
            continue;
        if (spec->keys[i].flags & F_SECRET)
            secret_free(*f);
        else
            free(*f);
    }
    free(opts);
    p->driver_opts = NULL;
}
