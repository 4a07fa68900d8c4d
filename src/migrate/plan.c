/*
 * plan.c — golang-migrate's choice of migrations (plan.h). Each function
 * returns 0 with the plan filled (steps, no_change, or err), or -1 when out
 * of memory. Errors read like golang-migrate's, whose file source names the
 * directory ".": "no migration found for version 7: read down for version 7
 * .: file does not exist".
 */
#include "migrate/plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int add(struct plan *p, int64_t version, int64_t target)
{
    struct plan_step *s = realloc(p->steps, (p->n + 1) * sizeof *s);

    if (s == NULL)
        return -1;
    p->steps = s;
    s[p->n].version = version;
    s[p->n].target = target;
    s[p->n].up = target >= version;
    p->n++;
    return 0;
}

/* versionExists(): the version has an up or a down file. */
static bool exists(const struct mig_source *src, int64_t v, struct plan *p)
{
    if (source_find(src, v) >= 0)
        return true;
    snprintf(p->err, sizeof p->err, "no migration found for version %lld: read down for "
             "version %lld .: file does not exist", (long long)v, (long long)v);
    return false;
}

/* Empties p; false (with p->err) when the current version has no file. */
static bool start(const struct mig_source *src, int64_t cur, struct plan *p)
{
    memset(p, 0, sizeof *p);
    return cur < 0 || exists(src, cur, p);
}

int plan_up(const struct mig_source *src, int64_t cur, long limit, struct plan *p)
{
    long count = 0;
    long i;

    if (!start(src, cur, p))
        return 0;
    if (limit == 0) {
        p->no_change = true;
        return 0;
    }
    if (cur == -1) {
        if (src->n == 0) {
            snprintf(p->err, sizeof p->err, "first .: file does not exist");
            return 0;
        }
        if (add(p, src->v[0].version, src->v[0].version) != 0)
            return -1;
        count++;
        i = 1;
    } else {
        i = source_find(src, cur) + 1;
    }
    for (; count < limit || limit == -1; i++, count++) {
        if ((size_t)i >= src->n) {
            if (limit == -1 && count == 0)
                p->no_change = true;
            else if (limit > 0 && count == 0)
                snprintf(p->err, sizeof p->err, "file does not exist");
            else if (limit > 0 && count < limit)
                snprintf(p->err, sizeof p->err, "limit %ld short", limit - count);
            return 0;
        }
        if (add(p, src->v[i].version, src->v[i].version) != 0)
            return -1;
    }
    return 0;
}

int plan_down(const struct mig_source *src, int64_t cur, long limit, struct plan *p)
{
    long count = 0;
    long i;

    if (!start(src, cur, p))
        return 0;
    if (limit == 0 || (cur == -1 && limit == -1)) {
        p->no_change = true;
        return 0;
    }
    if (cur == -1) {
        snprintf(p->err, sizeof p->err, "file does not exist");
        return 0;
    }
    for (i = source_find(src, cur); count < limit || limit == -1; i--, count++) {
        if (i == 0) {
            if (add(p, src->v[0].version, -1) != 0)
                return -1;
            count++;
            if (limit > 0 && count < limit)
                snprintf(p->err, sizeof p->err, "limit %ld short", limit - count);
            return 0;
        }
        if (add(p, src->v[i].version, src->v[i - 1].version) != 0)
            return -1;
    }
    return 0;
}

int plan_goto(const struct mig_source *src, int64_t cur, int64_t to, struct plan *p)
{
    long i;

    if (!start(src, cur, p) || (to >= 0 && !exists(src, to, p)))
        return 0;
    if (cur == to) {
        p->no_change = true;
        return 0;
    }
    if (cur < to) {
        i = cur == -1 ? 0 : source_find(src, cur) + 1;
        for (; (size_t)i < src->n && src->v[i].version <= to; i++)
            if (add(p, src->v[i].version, src->v[i].version) != 0)
                return -1;
        return 0;
    }
    for (i = source_find(src, cur); i >= 0 && src->v[i].version > to; i--)
        if (add(p, src->v[i].version, i > 0 ? src->v[i - 1].version : -1) != 0)
            return -1;
    return 0;
}

void plan_free(struct plan *p)
{
    free(p->steps);
    p->steps = NULL;
    p->n = 0;
}
