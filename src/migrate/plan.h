/*
 * plan.h — which migrations `up [N]`, `down [N]` and `goto V` run from the
 * database's current version, decided exactly as golang-migrate decides
 * (migrate.go: readUp, readDown, read), before anything runs: the steps, and
 * the error golang-migrate reports after them ("limit 2 short", "file does
 * not exist") or instead of them ("no migration found for version 7: ...").
 * Pure: no database, so tests/unit/test_migrate_pure.c covers it.
 */
#ifndef DBPOOL_MIGRATE_PLAN_H
#define DBPOOL_MIGRATE_PLAN_H

#include "migrate/source.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct plan_step {
    int64_t version;        /* the file's version */
    int64_t target;         /* the database's version after it (-1: none) */
    bool up;
};

struct plan {
    struct plan_step *steps;    /* owned */
    size_t n;
    bool no_change;             /* golang-migrate's ErrNoChange: print "no change" */
    char err[256];              /* "" or the error to report after the steps ran */
};

int plan_up(const struct mig_source *src, int64_t cur, long limit, struct plan *p);
int plan_down(const struct mig_source *src, int64_t cur, long limit, struct plan *p);
int plan_goto(const struct mig_source *src, int64_t cur, int64_t to, struct plan *p);
void plan_free(struct plan *p);

#endif
