/*
 * drop.c — `drop`: every table of the pool's database (PostgreSQL: of the
 * current schema), one by one, as golang-migrate drops them:
 *   PostgreSQL  DROP TABLE IF EXISTS "t" CASCADE for each base table of
 *               current_schema() in information_schema.tables;
 *   MySQL       SHOW TABLES, foreign_key_checks off, DROP TABLE IF EXISTS `t`;
 *   SQLite      DROP TABLE for each table of sqlite_master (but SQLite's own
 *               sqlite_* tables, which cannot be dropped), then VACUUM.
 */
#include "migrate/migrate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *list_sql(const struct mig *m)
{
    switch (m->backend) {
    case MB_POSTGRES:
        return "SELECT table_name FROM information_schema.tables WHERE "
               "table_schema=(SELECT current_schema()) AND table_type='BASE TABLE'";
    case MB_MYSQL:
        return "SHOW TABLES LIKE '%'";
    default:
        return "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'";
    }
}

static int drop_one(struct mig *m, const char *table)
{
    char q[600], sql[700];

    mig_quote_ident(m, table, q, sizeof q);
    snprintf(sql, sizeof sql, m->backend == MB_POSTGRES ? "DROP TABLE IF EXISTS %s CASCADE"
             : m->backend == MB_MYSQL ? "DROP TABLE IF EXISTS %s" : "DROP TABLE %s", q);
    return mig_query(m, sql, NULL, 0, NULL);
}

int drop_all(struct mig *m)
{
    dbpool_result *r = NULL;
    size_t n;
    int rc = 0;

    if (mig_query(m, list_sql(m), NULL, 0, &r) != 0)
        return -1;
    n = dbpool_result_nrows(r);
    if (n > 0 && m->backend == MB_MYSQL)
        rc = mig_query(m, "SET foreign_key_checks = 0", NULL, 0, NULL);
    for (size_t i = 0; i < n && rc == 0; i++) {
        const dbpool_value *v = dbpool_result_value(r, i, 0);
        char name[300];
        if (v->type != DBPOOL_TEXT && v->type != DBPOOL_BLOB)
            continue;
        snprintf(name, sizeof name, "%.*s", (int)v->u.s.len, v->u.s.ptr);
        if (name[0] != '\0')
            rc = drop_one(m, name);
    }
    dbpool_result_free(r);
    if (n > 0 && m->backend == MB_MYSQL)
        dbpool_exec(m->conn, "SET foreign_key_checks = 1");
    if (rc == 0 && n > 0 && m->backend == MB_SQLITE)
        rc = mig_query(m, "VACUUM", NULL, 0, NULL);
    return rc;
}
