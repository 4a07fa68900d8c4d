/*
 * checks.c — phase 4 of loading: converts every slot into its field
 * (values.c; allowUsers / allowGroups: ids.c), reports missing required keys, and runs the checks that span
 * keys: socket vs statusSocket, clientBufferBudget vs maxFrameSize,
 * maxIdleConns vs maxOpenConns, the driver's own checks (config_spec.h),
 * password vs passwordFile, unique pool names. A pool's passwordFile is
 * read here, at load (backend/secret.c).
 */
#include "daemon/config/config_internal.h"
#include "backend/secret.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- phase 4: conversion and checks across keys ---- */

static void report_missing(struct loader *ld, const struct section *sec, const struct key_spec *k)
{
    struct where w = cf_where_setting(ld, sec, sec->anchor, k->name);
    char env[KEY_NAME_MAX];

    cf_env_key(k->name, env, sizeof(env));
    if (sec->env_prefix[0])
        cf_report(ld, &w, "missing required key (add %s to the %s group, or set %s%s)",
                  k->example, sec->group, sec->env_prefix, env);
    else
        cf_report(ld, &w, "missing required key (add %s to the %s group)", k->example, sec->group);
}

/* One slot into its field: allowUsers / allowGroups by ids.c, the rest by values.c. */
static bool apply_slot(struct loader *ld, const struct section *sec, const struct key_spec *k,
                       const struct slot *sl)
{
    if (k->kind == K_USERS || k->kind == K_GROUPS)
        return cf_apply_ids(ld, sec, k, sl);
    return cf_apply_slot(ld, sec, k, sl);
}

static void finish_section(struct loader *ld, struct section *sec)
{
    size_t i;

    for (i = 0; i < sec->nkeys; i++) {
        const struct slot *sl = &sec->slots[i];

        if (sl->setting || sl->env)
            sec->failed[i] = !apply_slot(ld, sec, &sec->keys[i], sl);
        else if ((sec->keys[i].flags & F_REQUIRED) && !sec->skip_required)
            report_missing(ld, sec, &sec->keys[i]);
    }
}

static bool slot_set(const struct slot *sl)
{
    return sl->setting || sl->env;
}

static void check_daemon(struct loader *ld)
{
    const struct daemon_config *d = &ld->cfg->daemon;
    struct section *sec = &ld->daemon;
    int is = cf_find_key(cf_daemon_keys, cf_ndaemon_keys, "socket");
    int iss = cf_find_key(cf_daemon_keys, cf_ndaemon_keys, "statusSocket");
    const struct slot *sl = slot_set(&sec->slots[iss]) ? &sec->slots[iss] : &sec->slots[is];
    struct where w;
    char q[96];

    if (!d->socket || !d->status_socket || !d->status_socket[0]
        || strcmp(d->socket, d->status_socket) != 0 || !slot_set(sl))
        return;
    w = cf_where_slot(ld, sec, &cf_daemon_keys[sl == &sec->slots[iss] ? iss : is], sl);
    cf_report(ld, &w, "socket and statusSocket are both %s (give the status socket its own path, "
              "or set statusSocket = \"\"; to disable it)", cf_quoted(d->socket, q, sizeof(q)));
}

/* The budget must hold a frame being received while the one before it is
 * processed, or a maximum-size frame could wait for budget for ever. */
static void check_budget(struct loader *ld)
{
    const struct daemon_config *d = &ld->cfg->daemon;
    struct section *sec = &ld->daemon;
    int ib = cf_find_key(cf_daemon_keys, cf_ndaemon_keys, "clientBufferBudget");
    int ifs = cf_find_key(cf_daemon_keys, cf_ndaemon_keys, "maxFrameSize");
    const struct slot *sl = slot_set(&sec->slots[ib]) ? &sec->slots[ib] : &sec->slots[ifs];
    struct where w;

    if (sec->failed[ib] || sec->failed[ifs] || d->client_buffer_budget / 2 >= d->max_frame_size)
        return;
    w = cf_where_slot(ld, sec, &cf_daemon_keys[sl == &sec->slots[ib] ? ib : ifs], sl);
    cf_report(ld, &w, "clientBufferBudget (%zu) must be at least twice maxFrameSize (%u) (raise "
              "clientBufferBudget or lower maxFrameSize)", d->client_buffer_budget, d->max_frame_size);
}

static void check_idle(struct loader *ld, struct pool_work *pw, struct pool_config *pc)
{
    struct section *sec = &pw->sec;
    int io = cf_find_key(sec->keys, sec->nkeys, "maxOpenConns");
    int ii = cf_find_key(sec->keys, sec->nkeys, "maxIdleConns");
    struct where w;

    if (sec->failed[io] || sec->failed[ii] || pc->max_idle_conns <= pc->max_open_conns)
        return;
    if (!slot_set(&sec->slots[ii])) {
        pc->max_idle_conns = pc->max_open_conns;    /* a default never conflicts */
        return;
    }
    w = cf_where_slot(ld, sec, &sec->keys[ii], &sec->slots[ii]);
    cf_report(ld, &w, "must not exceed maxOpenConns (%d) (got %d; lower maxIdleConns or raise "
              "maxOpenConns)", pc->max_open_conns, pc->max_idle_conns);
}

/* maxPinned: pinned sessions must never take every connection of a
 * server pool (default a quarter of maxOpenConns, at least 1; none when
 * the pool has one connection). An embedded database's pool pins its one
 * writer (the database's write lock; reads go on): 0 or 1, default 1. */
static void check_pinned(struct loader *ld, struct pool_work *pw, struct pool_config *pc)
{
    struct section *sec = &pw->sec;
    int io = cf_find_key(sec->keys, sec->nkeys, "maxOpenConns");
    int ip = cf_find_key(sec->keys, sec->nkeys, "maxPinned");
    bool server = pw->type->spec->server;
    int most = server ? pc->max_open_conns - 1 : 1;
    struct where w;

    if (sec->failed[io] || sec->failed[ip])
        return;
    if (!slot_set(&sec->slots[ip])) {
        int quarter = pc->max_open_conns / 4;
        pc->max_pinned = server ? (quarter < 1 ? 1 : quarter) : 1;
        pc->max_pinned = pc->max_pinned > most ? most : pc->max_pinned;
        return;
    }
    if (pc->max_pinned <= most)
        return;
    w = cf_where_slot(ld, sec, &sec->keys[ip], &sec->slots[ip]);
    if (server)
        cf_report(ld, &w, "must be below maxOpenConns (%d) (got %d): pinned sessions must leave "
                  "connections for the others; lower maxPinned or raise maxOpenConns",
                  pc->max_open_conns, pc->max_pinned);
    else
        cf_report(ld, &w, "must be 0 or 1 (got %d): a pinned session holds the pool's one writer "
                  "connection", pc->max_pinned);
}

/* "line 9" or "environment DBPOOLD_POOL_DB_PASSWORD". */
static const char *slot_source(const struct slot *sl, char *buf, size_t size)
{
    if (sl->env)
        snprintf(buf, size, "environment %.*s", (int)sl->env_len, sl->env);
    else
        snprintf(buf, size, "line %u", config_setting_source_line(sl->setting));
    return buf;
}

static void check_password(struct loader *ld, struct pool_work *pw)
{
    struct section *sec = &pw->sec;
    int ip = cf_find_key(sec->keys, sec->nkeys, "password");
    int ipf = cf_find_key(sec->keys, sec->nkeys, "passwordFile");
    bool has_p = slot_set(&sec->slots[ip]), has_pf = slot_set(&sec->slots[ipf]);
    struct where w = cf_where_entry(ld, pw, pw->entry, NULL);
    char s1[128], s2[128];

    if (has_p && has_pf)
        cf_report(ld, &w, "password (%s) and passwordFile (%s) are both set; keep only one "
                  "(passwordFile is preferred: it keeps the secret out of the configuration)",
                  slot_source(&sec->slots[ip], s1, sizeof(s1)),
                  slot_source(&sec->slots[ipf], s2, sizeof(s2)));
    else if (!has_p && !has_pf)
        cf_warn(ld, &w, "no password or passwordFile set (fine if the server trusts this user, "
                "e.g. peer authentication; otherwise set passwordFile)");
}

/* Reads passwordFile now, at load, into the pool's password: connecting
 * then reads no file on the event loop, and a file that cannot be used is
 * a configuration error here rather than a connect error later. */
static void read_password_file(struct loader *ld, struct pool_work *pw, struct pool_config *pc)
{
    struct section *sec = &pw->sec;
    int ipf = cf_find_key(sec->keys, sec->nkeys, "passwordFile");
    int ip = cf_find_key(sec->keys, sec->nkeys, "password");
    struct where w;
    char err[512];

    if (!pc->password_file || sec->failed[ipf] || slot_set(&sec->slots[ip]))
        return;     /* none, already reported, or both set (reported) */
    if (secret_read_file(pc->password_file, &pc->password, err, sizeof(err)) == 0)
        return;
    w = cf_where_slot(ld, sec, &sec->keys[ipf], &sec->slots[ipf]);
    cf_report(ld, &w, "%s (the file must hold the password, readable by the user dbpoold "
              "runs as; it is read when the configuration is loaded)", err);
}

/* The driver's checks across its keys (config_spec.h), once every value
 * converted without error: reported at the key the driver names. */
static void check_driver(struct loader *ld, struct pool_work *pw, const struct pool_config *pc)
{
    const struct driver_config_spec *spec = pw->type->spec;
    struct section *sec = &pw->sec;
    const char *key;
    char msg[512];
    struct where w;
    int i;

    if (!spec->check || !pc->driver_opts)
        return;
    for (size_t k = 0; k < sec->nkeys; k++)
        if (sec->failed[k])
            return;     /* reported; the driver would judge a default */
    if (!(key = spec->check(pc, pc->driver_opts, msg, sizeof(msg))))
        return;
    i = cf_find_key(sec->keys, sec->nkeys, key);
    if (i >= 0 && slot_set(&sec->slots[i]))
        w = cf_where_slot(ld, sec, &sec->keys[i], &sec->slots[i]);
    else
        w = cf_where_setting(ld, sec, sec->anchor, key);
    cf_report(ld, &w, "%s", msg);
}

static void finish_pools(struct loader *ld)
{
    size_t i;

    for (i = 0; i < ld->cfg->npools; i++) {
        struct pool_work *pw = &ld->pools[i];

        if (!pw->type)
            continue;
        finish_section(ld, &pw->sec);
        check_idle(ld, pw, &ld->cfg->pools[i]);
        check_pinned(ld, pw, &ld->cfg->pools[i]);
        check_driver(ld, pw, &ld->cfg->pools[i]);
        if (!pw->type->spec->server)
            continue;
        check_password(ld, pw);
        read_password_file(ld, pw, &ld->cfg->pools[i]);
    }
}

static void check_pool_set(struct loader *ld)
{
    struct where w = { 0 };
    size_t i, j;

    w.file = ld->path;
    if (ld->cfg->npools == 0 && !ld->pools_bad)
        cf_report(ld, &w, "no pools defined (add at least one, e.g. pools = ( { name = \"app\"; "
                  "type = \"sqlite\"; sqlite = { filePath = \"/var/lib/dbpoold/app.db\"; }; } );)");
    for (j = 0; j < ld->cfg->npools; j++) {
        const struct pool_config *pj = &ld->cfg->pools[j];

        for (i = 0; i < j && ld->pools[j].named; i++) {
            if (!ld->pools[i].named || strcmp(ld->cfg->pools[i].name, pj->name) != 0)
                continue;
            w = cf_where_entry(ld, &ld->pools[j],
                               config_setting_get_member(ld->pools[j].entry, "name"), "name");
            cf_report(ld, &w, "duplicate pool name \"%s\" (pools[%zu] at line %d has it too; "
                      "pool names must be unique)", pj->name, i, ld->cfg->pools[i].line);
            break;
        }
    }
}


/* Phase 4, in order: the daemon group, then the pools, then the pool set. */
void cf_finish(struct loader *ld)
{
    finish_section(ld, &ld->daemon);
    check_daemon(ld);
    check_budget(ld);
    finish_pools(ld);
    check_pool_set(ld);
}
