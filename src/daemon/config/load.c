/*
 * load.c — config_load() and config_free() (contract: configuration.h):
 * reads the file with libconfig (phase 1; a syntax error stops there), then
 * runs the phases on the parsed tree — walk (walk.c), environment (env.c),
 * conversion and checks (checks.c) — and hands back the config when no
 * error was found. Also config_find_pool().
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
#include <sys/stat.h>

/* ---- loading ---- */

static void report_syntax(struct loader *ld, const config_t *lc)
{
    struct where w = { 0 };
    const char *text = config_error_text(lc);

    w.file = config_error_file(lc) ? config_error_file(lc) : ld->path;
    w.line = config_error_line(lc) > 0 ? (unsigned)config_error_line(lc) : 0;
    if (!text || strcmp(text, "syntax error") == 0)
        cf_report(ld, &w, "syntax error: unexpected input (look for a missing ';', '=', quote or "
                  "brace on this line or the one before)");
    else
        cf_report(ld, &w, "syntax error: %s", text);
}

/* Makes @include paths relative to the configuration file's directory. */
static void set_include_dir(struct loader *ld, config_t *lc)
{
    char *dir = strdup(ld->path), *slash;

    if (!dir) {
        ld->oom = true;
        return;
    }
    slash = strrchr(dir, '/');
    if (slash) {
        slash[slash == dir] = '\0';
        config_set_include_dir(lc, dir);
    }
    free(dir);
}

static bool read_file(struct loader *ld, config_t *lc)
{
    struct where w = { 0 };
    struct stat st;
    FILE *fp;
    bool ok;

    w.file = ld->path;
    fp = fopen(ld->path, "r");
    if (!fp) {
        cf_report(ld, &w, "cannot open the configuration file: %s (check the path and its "
                  "permissions)", strerror(errno));
        return false;
    }
    if (fstat(fileno(fp), &st) == 0 && S_ISDIR(st.st_mode)) {
        cf_report(ld, &w, "is a directory, not a configuration file");
        fclose(fp);
        return false;
    }
    set_include_dir(ld, lc);
    ok = config_read(lc, fp) == CONFIG_TRUE;
    fclose(fp);
    if (!ok)
        report_syntax(ld, lc);
    return ok;
}

static void init_daemon_section(struct loader *ld)
{
    struct section *sec = &ld->daemon;

    sec->keys = cf_daemon_keys;
    sec->nkeys = cf_ndaemon_keys;
    sec->base = &ld->cfg->daemon;
    sec->group = "daemon";
    snprintf(sec->env_prefix, sizeof(sec->env_prefix), "%s", ENV_DAEMON_PREFIX);
}

/* Phases 2-4 on a parsed file. Returns the config, or NULL on any error. */
static struct config *build(struct loader *ld, const config_t *lc)
{
    struct config *cfg = calloc(1, sizeof(*cfg));

    if (!cfg) {
        ld->oom = true;
        return NULL;
    }
    ld->cfg = cfg;
    cf_set_str(ld, &cfg->path, ld->path);
    cf_daemon_defaults(ld, &cfg->daemon);
    init_daemon_section(ld);
    cf_init_types(ld);
    cf_walk_root(ld, config_root_setting(lc));
    cf_apply_env(ld);
    cf_finish(ld);
    free(ld->pools);
    ld->pools = NULL;
    if (ld->diag->nerrors == 0 && !ld->oom)
        return cfg;
    config_free(cfg);
    return NULL;
}

/* On failure diag holds every error found; if it holds none, memory ran out. */
struct config *config_load(const char *path, struct config_diag *diag)
{
    struct config_diag scratch;
    struct loader ld = { 0 };
    struct config *cfg = NULL;
    config_t lc;

    ld.diag = diag ? diag : &scratch;
    memset(ld.diag, 0, sizeof(*ld.diag));
    ld.path = path ? path : "(none)";
    if (!path) {
        struct where w = { .file = "dbpoold" };

        cf_report(&ld, &w, "no configuration file given");
    } else {
        config_init(&lc);
        if (read_file(&ld, &lc))
            cfg = build(&ld, &lc);
        config_destroy(&lc);
    }
    if (ld.oom) {
        struct where w = { .file = ld.path };

        cf_report(&ld, &w, "out of memory while loading the configuration");
    }
    if (!ld.oom) {
        cf_sort_by_line(ld.diag->errors, ld.order[0], ld.diag->nerrors);
        cf_sort_by_line(ld.diag->warnings, ld.order[1], ld.diag->nwarnings);
    }
    free(ld.order[0]);
    free(ld.order[1]);
    if (!diag)
        config_diag_free(&scratch);
    return cfg;
}

/* ---- freeing and small lookups ---- */

static void free_pool(struct pool_config *p)
{
    free(p->name);
    free(p->host);
    free(p->dbname);
    free(p->username);
    secret_free(p->password);    /* wiped: it does not linger in the heap */
    free(p->password_file);
    free(p->allow_users.ids);
    free(p->allow_groups.ids);
    cf_free_driver_opts(p);
}

void config_free(struct config *cfg)
{
    size_t i;

    if (!cfg)
        return;
    for (i = 0; i < cfg->npools; i++)
        free_pool(&cfg->pools[i]);
    free(cfg->pools);
    free(cfg->daemon.socket);
    free(cfg->daemon.status_socket);
    free(cfg->daemon.admin_users.ids);
    free(cfg->daemon.admin_groups.ids);
    free(cfg->path);
    free(cfg);
}

const struct pool_config *config_find_pool(const struct config *cfg,
                                           const char *name, size_t name_len)
{
    size_t i;

    if (!cfg || !name)
        return NULL;
    for (i = 0; i < cfg->npools; i++) {
        const char *n = cfg->pools[i].name;

        if (strlen(n) == name_len && memcmp(n, name, name_len) == 0)
            return &cfg->pools[i];
    }
    return NULL;
}
