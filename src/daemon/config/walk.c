/*
 * walk.c — phase 2 of loading: walks the libconfig tree (root, daemon
 * group, the pools list and each pool entry with its type group),
 * remembers in each section's slots the setting that gives a known key its
 * value, and reports unknown keys, misplaced groups and bad names or types
 * with a suggestion.
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

/* ---- phase 2: walking the file ---- */

/* "it is a postgres and mysql setting, not a sqlite one", or NULL. */
static const char *other_type_hint(const struct loader *ld, const struct type_info *t,
                                   const char *name, char *buf, size_t size)
{
    size_t pos = 0, i, n = 0;

    buf[0] = '\0';
    for (i = 0; i < ld->ntypes; i++) {
        const struct type_info *o = &ld->types[i];

        if (o == t || cf_find_key(o->keys, o->nkeys, name) < 0)
            continue;
        cf_appendf(buf, size, &pos, "%s%s", n++ ? " and " : "it is a ", o->name);
    }
    if (!n)
        return NULL;
    cf_appendf(buf, size, &pos, " setting, not a %s one", t->name);
    return buf;
}

static void report_unknown(struct loader *ld, const struct where *w, const char *name,
                           const char *const *cands, size_t n, const char *hint)
{
    const char *best = cf_closest(name, cands, n);
    char q[96], list[512];
    size_t pos = 0, i;

    cf_quoted(name, q, sizeof(q));
    if (hint) {
        cf_report(ld, w, "unknown key %s (%s)", q, hint);
    } else if (best) {
        cf_report(ld, w, "unknown key %s (did you mean \"%s\"?)", q, best);
    } else {
        list[0] = '\0';
        for (i = 0; i < n; i++)
            cf_appendf(list, sizeof(list), &pos, "%s%s", i ? ", " : "", cands[i]);
        cf_report(ld, w, "unknown key %s (valid keys here: %s)", q, list);
    }
}

/* Unknown key inside the daemon group or a pool's type group. */
static void unknown_in_section(struct loader *ld, const struct section *sec,
                               const struct type_info *t, const config_setting_t *s)
{
    const char *names[MAX_KEYS];
    const char *name = config_setting_name(s);
    const char *hint = NULL;
    struct where w = cf_where_setting(ld, sec, s, NULL);
    size_t n = cf_key_names(sec->keys, sec->nkeys, names);
    char hbuf[128];

    if (t && !cf_closest(name, names, n))
        hint = other_type_hint(ld, t, name, hbuf, sizeof(hbuf));
    report_unknown(ld, &w, name, names, n, hint);
}

static void collect(struct loader *ld, struct section *sec, const struct type_info *t,
                    const config_setting_t *group)
{
    int i, n = config_setting_length(group);

    sec->anchor = group;
    for (i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
        int idx = cf_find_key(sec->keys, sec->nkeys, config_setting_name(s));

        if (idx >= 0)
            sec->slots[idx].setting = s;
        else
            unknown_in_section(ld, sec, t, s);
    }
}

static bool valid_pool_name(const char *s)
{
    size_t n = strlen(s), i;

    if (n < 1 || n > POOL_NAME_MAX)
        return false;
    for (i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
            return false;
    return true;
}

struct where cf_where_entry(const struct loader *ld, const struct pool_work *pw,
                            const config_setting_t *s, const char *key)
{
    struct where w = cf_where_setting(ld, NULL, s, key);

    w.ctx = pw->ctx;
    return w;
}

static void read_pool_name(struct loader *ld, struct pool_work *pw, struct pool_config *pc,
                           size_t i)
{
    const config_setting_t *s = config_setting_get_member(pw->entry, "name");
    struct where w = cf_where_entry(ld, pw, s ? s : pw->entry, "name");
    const char *name;
    char q[96];

    if (!s) {
        cf_report(ld, &w, "missing required key (add name = \"app\"; using letters, digits, '_' and '-')");
        return;
    }
    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        cf_type_error(ld, &w, &cf_name_spec, s);
        return;
    }
    name = config_setting_get_string(s);
    if (!valid_pool_name(name)) {
        cf_report(ld, &w, "must be 1 to %d characters from A-Z, a-z, 0-9, '_' and '-' (got %s)",
                  POOL_NAME_MAX, cf_quoted(name, q, sizeof(q)));
        return;
    }
    cf_set_str(ld, &pc->name, name);
    pw->named = pc->name != NULL;
    snprintf(pw->ctx, sizeof(pw->ctx), "pools[%zu] \"%s\"", i, name);
    cf_env_pool_name(name, pw->env_name, sizeof(pw->env_name));
}

/* Name of the first type group the entry has, for hints; NULL if none. */
static const char *present_type_group(const struct loader *ld, const config_setting_t *entry)
{
    size_t i;

    for (i = 0; i < ld->ntypes; i++)
        if (config_setting_get_member(entry, ld->types[i].name))
            return ld->types[i].name;
    return NULL;
}

static void read_pool_type(struct loader *ld, struct pool_work *pw)
{
    const config_setting_t *s = config_setting_get_member(pw->entry, "type");
    struct where w = cf_where_entry(ld, pw, s ? s : pw->entry, "type");
    const char *t, *best, *group;
    char q[96], list[64];

    cf_join(ld->type_names, list, sizeof(list));
    if (!s) {
        group = present_type_group(ld, pw->entry);
        if (group)
            cf_report(ld, &w, "missing required key (this pool has a %s group, so add type = \"%s\";)",
                      group, group);
        else
            cf_report(ld, &w, "missing required key (add type = \"sqlite\"; valid types: %s)", list);
        return;
    }
    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        cf_type_error(ld, &w, &cf_type_spec, s);
        return;
    }
    t = config_setting_get_string(s);
    pw->type = cf_find_type(ld, t);
    if (pw->type)
        return;
    best = cf_closest(t, ld->type_names, ld->ntypes);
    if (best)
        cf_report(ld, &w, "unknown type %s (did you mean \"%s\"? valid types: %s)",
                  cf_quoted(t, q, sizeof(q)), best, list);
    else
        cf_report(ld, &w, "unknown type %s (valid types: %s)", cf_quoted(t, q, sizeof(q)), list);
}

static void init_pool_section(struct loader *ld, struct pool_work *pw, struct pool_config *pc)
{
    struct section *sec = &pw->sec;

    pc->type = pw->type->type;
    sec->opts = cf_pool_defaults(ld, pc, pw->type);
    sec->keys = pw->type->keys;
    sec->nkeys = pw->type->nkeys;
    sec->base = pc;
    sec->ctx = pw->ctx;
    sec->group = pw->type->name;
    sec->anchor = pw->entry;
    if (pw->named)
        snprintf(sec->env_prefix, sizeof(sec->env_prefix), ENV_POOL_PREFIX "%s_", pw->env_name);
}

/* A "sqlite"/"postgres"/"mysql" member of a pool entry. Returns true when
 * it is the pool's settings group. */
static bool entry_type_group(struct loader *ld, struct pool_work *pw,
                             const struct type_info *ti, const config_setting_t *c)
{
    struct where w = cf_where_entry(ld, pw, c, ti->name);

    if (!pw->type)
        return false;           /* the type problem is already reported */
    if (ti != pw->type) {
        cf_report(ld, &w, "a %s pool cannot have a %s group (move these settings into "
                  "%s = { ... }; or change type to \"%s\")",
                  pw->type->name, ti->name, pw->type->name, ti->name);
        return false;
    }
    if (config_setting_type(c) != CONFIG_TYPE_GROUP) {
        cf_report(ld, &w, "must be a group, not %s (write %s = { key = value; ... };)",
                  cf_type_noun(config_setting_type(c)), ti->name);
        return false;
    }
    collect(ld, &pw->sec, pw->type, c);
    return true;
}

static void walk_entry_members(struct loader *ld, struct pool_work *pw)
{
    int i, n = config_setting_length(pw->entry);
    bool have_group = false, misplaced;
    char hint[128];

    for (i = 0; i < n; i++) {
        const config_setting_t *c = config_setting_get_elem(pw->entry, (unsigned)i);
        const char *nm = config_setting_name(c);
        const struct type_info *ti = cf_find_type(ld, nm);
        struct where w = cf_where_entry(ld, pw, c, NULL);

        if (strcmp(nm, "name") == 0 || strcmp(nm, "type") == 0)
            continue;
        if (ti) {
            have_group |= entry_type_group(ld, pw, ti, c);
            continue;
        }
        misplaced = pw->type && cf_find_key(pw->type->keys, pw->type->nkeys, nm) >= 0;
        if (misplaced)
            snprintf(hint, sizeof(hint), "settings of a %s pool go inside %s = { ... };",
                     pw->type->name, pw->type->name);
        report_unknown(ld, &w, nm, ld->entry_keys, cf_strv_len(ld->entry_keys), misplaced ? hint : NULL);
    }
    if (pw->type && !have_group) {
        struct where w = cf_where_entry(ld, pw, pw->entry, NULL);

        if (!config_setting_get_member(pw->entry, pw->type->name))
            cf_report(ld, &w, "missing group \"%s\" (a %s pool keeps its settings in %s = { ... };)",
                      pw->type->name, pw->type->name, pw->type->name);
        pw->sec.skip_required = true;
    }
}

static void walk_pool(struct loader *ld, size_t i, const config_setting_t *entry)
{
    struct pool_work *pw = &ld->pools[i];
    struct pool_config *pc = &ld->cfg->pools[i];

    pw->entry = entry;
    pc->line = (int)config_setting_source_line(entry);
    snprintf(pw->ctx, sizeof(pw->ctx), "pools[%zu]", i);
    if (config_setting_type(entry) != CONFIG_TYPE_GROUP) {
        struct where w = cf_where_entry(ld, pw, entry, NULL);

        cf_report(ld, &w, "must be a group, not %s (write { name = \"app\"; type = \"sqlite\"; ... })",
                  cf_type_noun(config_setting_type(entry)));
        return;
    }
    read_pool_name(ld, pw, pc, i);
    read_pool_type(ld, pw);
    if (pw->type)
        init_pool_section(ld, pw, pc);
    walk_entry_members(ld, pw);
}

static void walk_pools(struct loader *ld, const config_setting_t *list)
{
    int type = config_setting_type(list);
    size_t n = (size_t)config_setting_length(list), i;

    if (type != CONFIG_TYPE_LIST && !(type == CONFIG_TYPE_ARRAY && n == 0)) {
        struct where w = cf_where_setting(ld, NULL, list, "pools");

        cf_report(ld, &w, "must be a list of pool groups, not %s "
                  "(write pools = ( { name = \"app\"; ... }, { ... } );)", cf_type_noun(type));
        ld->pools_bad = true;
        return;
    }
    if (n == 0)
        return;
    ld->pools = calloc(n, sizeof(*ld->pools));
    ld->cfg->pools = calloc(n, sizeof(*ld->cfg->pools));
    if (!ld->pools || !ld->cfg->pools) {
        ld->oom = true;
        return;
    }
    ld->cfg->npools = n;
    for (i = 0; i < n; i++)
        walk_pool(ld, i, config_setting_get_elem(list, (unsigned)i));
}

void cf_walk_root(struct loader *ld, const config_setting_t *root)
{
    int i, n = config_setting_length(root);

    for (i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
        const char *nm = config_setting_name(s);
        struct where w = cf_where_setting(ld, NULL, s, NULL);

        if (strcmp(nm, "daemon") == 0 && config_setting_type(s) == CONFIG_TYPE_GROUP) {
            collect(ld, &ld->daemon, NULL, s);
        } else if (strcmp(nm, "daemon") == 0) {
            w.key = "daemon";
            cf_report(ld, &w, "must be a group, not %s (write daemon = { socket = \"...\"; ... };)",
                      cf_type_noun(config_setting_type(s)));
        } else if (strcmp(nm, "pools") == 0) {
            walk_pools(ld, s);
        } else {
            report_unknown(ld, &w, nm, cf_root_keys, cf_strv_len(cf_root_keys),
                           cf_find_key(cf_daemon_keys, cf_ndaemon_keys, nm) >= 0
                               ? "daemon settings go inside daemon = { ... };" : NULL);
        }
    }
}
