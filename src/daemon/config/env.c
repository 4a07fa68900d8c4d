/*
 * env.c — phase 3 of loading: environment overrides. DBPOOLD_DAEMON_<KEY>
 * and DBPOOLD_POOL_<NAME>_<KEY> replace a slot's source (the variable wins
 * over the file); variables that name no key or no pool are reported with
 * the closest valid name.
 */
#include "daemon/config/config_internal.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

extern char **environ;

/* ---- phase 3: environment overrides ---- */

static void set_env_slot(struct slot *sl, const char *var, size_t name_len)
{
    sl->env = var;
    sl->env_len = name_len;
    sl->env_val = var + name_len + 1;
}

/* key[0..len) names no key of keys: report it, suggesting the closest. */
static void unknown_env(struct loader *ld, const struct where *w, const char *prefix,
                        const char *key, size_t len, const struct key_spec *keys, size_t nkeys,
                        const char *what)
{
    char forms[MAX_KEYS][KEY_NAME_MAX], kbuf[KEY_NAME_MAX + 1], list[768];
    const char *cands[MAX_KEYS], *best = NULL;
    size_t i, pos = 0;

    list[0] = '\0';
    for (i = 0; i < nkeys; i++) {
        cf_env_key(keys[i].name, forms[i], sizeof(forms[i]));
        cands[i] = forms[i];
        cf_appendf(list, sizeof(list), &pos, "%s%s", i ? ", " : "", forms[i]);
    }
    if (len > 0 && len <= KEY_NAME_MAX) {
        memcpy(kbuf, key, len);
        kbuf[len] = '\0';
        best = cf_closest(kbuf, cands, nkeys);
    }
    if (best)
        cf_report(ld, w, "no %s is called %.*s (did you mean %s%s?)", what, (int)len, key, prefix, best);
    else
        cf_report(ld, w, "no %s is called %.*s (valid: %s)", what, (int)len, key, list);
}

static void env_daemon(struct loader *ld, const char *var, size_t name_len)
{
    const char *key = var + strlen(ENV_DAEMON_PREFIX);
    size_t len = name_len - strlen(ENV_DAEMON_PREFIX);
    int idx = cf_find_env_key(cf_daemon_keys, cf_ndaemon_keys, key, len);
    struct where w = cf_where_env(var, name_len);

    if (idx >= 0)
        set_env_slot(&ld->daemon.slots[idx], var, name_len);
    else
        unknown_env(ld, &w, ENV_DAEMON_PREFIX, key, len, cf_daemon_keys, cf_ndaemon_keys,
                    "daemon setting");
}

/* No pool takes this variable: explain which prefixes exist. */
static void env_no_pool(struct loader *ld, const struct where *w)
{
    char list[512];
    size_t pos = 0, i;

    list[0] = '\0';
    for (i = 0; i < ld->cfg->npools; i++)
        if (ld->pools[i].named)
            cf_appendf(list, sizeof(list), &pos, "%s" ENV_POOL_PREFIX "%s_<KEY>",
                       pos ? ", " : "", ld->pools[i].env_name);
    if (pos)
        cf_report(ld, w, "does not name a configured pool (expected one of: %s; a pool's name "
                  "is written upper-case with '-' as '_')", list);
    else
        cf_report(ld, w, "does not name a configured pool (no pools are defined)");
}

/* Which pools DBPOOLD_POOL_<rest> can belong to. */
struct env_match {
    struct pool_work *hit, *other;  /* pools where <rest> is NAME_KEY */
    int idx;                        /* key index in hit */
    size_t nhits;
    struct pool_work *near;         /* longest NAME_ prefix, for messages */
    bool ignored;                   /* a pool with a bad type matched */
};

static void match_pools(struct loader *ld, const char *rest, size_t rlen, struct env_match *m)
{
    size_t i;

    for (i = 0; i < ld->cfg->npools; i++) {
        struct pool_work *pw = &ld->pools[i];
        size_t plen = strlen(pw->env_name);
        int idx;

        if (!pw->named || rlen <= plen + 1 || memcmp(rest, pw->env_name, plen) != 0
            || rest[plen] != '_')
            continue;
        if (!m->near || plen > strlen(m->near->env_name))
            m->near = pw;
        if (!pw->type) {
            m->ignored = true;      /* its type error is already reported */
            continue;
        }
        idx = cf_find_env_key(pw->type->keys, pw->type->nkeys, rest + plen + 1, rlen - plen - 1);
        if (idx < 0)
            continue;
        if (m->nhits++ == 0) {
            m->hit = pw;
            m->idx = idx;
        } else {
            m->other = pw;
        }
    }
}

static void env_pool(struct loader *ld, const char *var, size_t name_len)
{
    const char *rest = var + strlen(ENV_POOL_PREFIX);
    size_t rlen = name_len - strlen(ENV_POOL_PREFIX);
    struct where w = cf_where_env(var, name_len);
    struct env_match m = { 0 };

    match_pools(ld, rest, rlen, &m);
    if (m.nhits == 1) {
        set_env_slot(&m.hit->sec.slots[m.idx], var, name_len);
    } else if (m.nhits > 1) {
        cf_report(ld, &w, "is ambiguous: it can set a key of pool \"%s\" or of pool \"%s\" "
                  "(rename one of the pools)", ld->cfg->pools[m.hit - ld->pools].name,
                  ld->cfg->pools[m.other - ld->pools].name);
    } else if (m.near && m.near->type) {
        size_t plen = strlen(m.near->env_name);
        char what[128];

        snprintf(what, sizeof(what), "setting of %s pool \"%s\"", m.near->type->name,
                 ld->cfg->pools[m.near - ld->pools].name);
        unknown_env(ld, &w, m.near->sec.env_prefix, rest + plen + 1, rlen - plen - 1,
                    m.near->type->keys, m.near->type->nkeys, what);
    } else if (!m.ignored) {
        env_no_pool(ld, &w);
    }
}

void cf_apply_env(struct loader *ld)
{
    char **e;

    for (e = environ; e && *e; e++) {
        const char *eq = strchr(*e, '=');

        if (!eq)
            continue;
        if (strncmp(*e, ENV_DAEMON_PREFIX, strlen(ENV_DAEMON_PREFIX)) == 0)
            env_daemon(ld, *e, (size_t)(eq - *e));
        else if (strncmp(*e, ENV_POOL_PREFIX, strlen(ENV_POOL_PREFIX)) == 0)
            env_pool(ld, *e, (size_t)(eq - *e));
    }
}
