/*
 * status.c — `status`, dbpool-migrate's own command: the database's version
 * and, for every migration file, whether it is applied or pending, from
 * schema_migrations and schema_migrations_history. It flags what
 * golang-migrate never notices, and then exits 3 (like Flyway's validate,
 * so a deploy can stop on it):
 *   changed  applied, but the up file's SHA-256 differs from the one
 *            recorded when it ran (the file was edited afterwards);
 *   skipped  at or below the current version, never applied, while versions
 *            below and above it were (a file added with an old number:
 *            `up` runs only what lies above the current version);
 *   dirty    the database is dirty (a migration failed halfway);
 *   missing  the database's version has no file in -path.
 * Versions at or below the current one with no history at all were applied
 * before the history table existed (by golang-migrate): "applied", no
 * checksum to compare.
 */
#include "migrate/migrate.h"
#include "migrate/sha256.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The last 'up' history row of version v (NULL: none): the file that was
 * applied, whatever a later `force` or `down` row says; whether v has any
 * row at all; and whether any 'up' row lies below and above v. */
static const struct hist_row *last_up_row(const struct hist_row *h, size_t n, int64_t v,
                                          bool *seen, bool *below, bool *above)
{
    const struct hist_row *last = NULL;

    *seen = *below = *above = false;
    for (size_t i = 0; i < n; i++) {
        bool up = strcmp(h[i].direction, "up") == 0;
        if (h[i].version == v) {
            *seen = true;
            if (up)
                last = &h[i];
        } else if (up) {
            *(h[i].version < v ? below : above) = true;
        }
    }
    return last;
}

static bool file_changed(struct mig *m, const struct mig_version *v, const struct hist_row *r)
{
    char *buf = NULL, sum[65] = "";
    size_t len;

    if (v->up_file == NULL)
        return r->checksum[0] != '\0';
    if (source_read(m->src, v->up_file, &buf, &len, m->err, sizeof m->err) != 0)
        return true;
    sha256_hex(buf, len, sum);
    free(buf);
    return strcmp(sum, r->checksum) != 0;
}

/* One line; returns true when it is a problem. */
static bool report_version(struct mig *m, const struct mig_version *v, int64_t cur,
                           const struct hist_row *h, size_t n)
{
    bool seen, below, above;
    const struct hist_row *r = last_up_row(h, n, v->version, &seen, &below, &above);
    const char *name = v->up_name ? v->up_name : v->down_name;
    const char *state;
    bool problem = false;

    if (v->version > cur)
        state = "pending";
    else if (r != NULL && file_changed(m, v, r))
        state = "CHANGED", problem = true;
    else if (!seen && below && above)
        state = "SKIPPED", problem = true;
    else
        state = "applied";
    if (strcmp(state, "CHANGED") == 0)
        fprintf(stderr, "changed: version %lld (%s) is not the file that was applied on %s; "
                "restore it (an applied migration must not change) and put the change in a "
                "new migration\n", (long long)v->version, name, r->applied_at);
    else if (strcmp(state, "SKIPPED") == 0)
        fprintf(stderr, "skipped: version %lld (%s) lies below the current version %lld and was "
                "never applied (`up` will not run it); renumber it above %lld\n",
                (long long)v->version, name, (long long)cur, (long long)cur);
    printf("%-16lld %-8s %-32s %-24s %s\n", (long long)v->version, state, name,
           r != NULL && v->version <= cur ? r->applied_at : "",
           r != NULL && v->version <= cur ? r->applied_by : "");
    return problem;
}

int status_report(struct mig *m)
{
    struct hist_row *h = NULL;
    size_t n = 0;
    int64_t cur;
    bool dirty, problem = false;

    if (version_read(m, &cur, &dirty) != 0 || history_read(m, &h, &n) != 0)
        return -1;
    if (cur == MIG_NIL_VERSION)
        printf("database version: none%s\n", dirty ? " (dirty)" : "");
    else
        printf("database version: %lld%s\n", (long long)cur, dirty ? " (dirty)" : "");
    printf("%-16s %-8s %-32s %-24s %s\n", "VERSION", "STATE", "NAME", "APPLIED AT", "APPLIED BY");
    for (size_t i = 0; i < m->src->n; i++)
        problem |= report_version(m, &m->src->v[i], cur, h, n);
    free(h);
    if (dirty) {
        fprintf(stderr, "dirty: version %lld failed halfway; repair the database by hand, "
                "then `force` the version it is really at\n", (long long)cur);
        problem = true;
    }
    if (cur >= 0 && source_find(m->src, cur) < 0) {
        fprintf(stderr, "missing: the database is at version %lld, which has no file in %s\n",
                (long long)cur, m->src->dir);
        problem = true;
    }
    return problem ? 3 : 0;
}
