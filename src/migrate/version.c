/*
 * version.c — golang-migrate's schema_migrations table, created, read and
 * written with the very statements golang-migrate uses for each backend
 * (doc/migrations.md, "Tables"), so either tool can continue a database the
 * other migrated:
 *   PostgreSQL  CREATE TABLE IF NOT EXISTS "<schema>"."schema_migrations"
 *               (version bigint not null primary key, dirty boolean not null)
 *               in current_schema(), when information_schema does not list it
 *   MySQL       CREATE TABLE `schema_migrations` (version bigint not null
 *               primary key, dirty boolean not null), when SHOW TABLES does not
 *   SQLite      CREATE TABLE IF NOT EXISTS schema_migrations (version uint64,dirty bool)
 *               and CREATE UNIQUE INDEX IF NOT EXISTS version_unique ON
 *               schema_migrations (version)
 * One row (version, dirty); no row is NilVersion (-1).
 */
#include "migrate/migrate.h"

#include <stdio.h>
#include <string.h>

static int table_exists_pg(struct mig *m, bool *exists)
{
    dbpool_value p[2] = { dbpool_text(m->schema), dbpool_text(MIG_TABLE) };
    dbpool_result *r = NULL;
    int64_t n = 0;

    if (mig_query(m, "SELECT COUNT(1) FROM information_schema.tables WHERE table_schema = $1 "
                  "AND table_name = $2 LIMIT 1", p, 2, &r) != 0)
        return -1;
    *exists = dbpool_result_nrows(r) > 0 && mig_value_int(dbpool_result_value(r, 0, 0), &n) && n == 1;
    dbpool_result_free(r);
    return 0;
}

static int table_exists_mysql(struct mig *m, bool *exists)
{
    dbpool_result *r = NULL;

    if (mig_query(m, "SHOW TABLES LIKE '" MIG_TABLE "'", NULL, 0, &r) != 0)
        return -1;
    *exists = dbpool_result_nrows(r) > 0;
    dbpool_result_free(r);
    return 0;
}

int version_ensure_table(struct mig *m)
{
    char sql[1024];
    bool exists = false;

    if (m->backend == MB_SQLITE)
        return mig_query(m, "CREATE TABLE IF NOT EXISTS " MIG_TABLE " (version uint64,dirty bool)",
                         NULL, 0, NULL) != 0
            || mig_query(m, "CREATE UNIQUE INDEX IF NOT EXISTS version_unique ON " MIG_TABLE
                         " (version)", NULL, 0, NULL) != 0 ? -1 : 0;
    if ((m->backend == MB_POSTGRES ? table_exists_pg(m, &exists) : table_exists_mysql(m, &exists)) != 0)
        return -1;
    if (exists)
        return 0;
    snprintf(sql, sizeof sql, "CREATE TABLE %s%s (version bigint not null primary key, "
             "dirty boolean not null)", m->backend == MB_POSTGRES ? "IF NOT EXISTS " : "", m->table);
    return mig_query(m, sql, NULL, 0, NULL);
}

int version_read(struct mig *m, int64_t *version, bool *dirty)
{
    char sql[700];
    dbpool_result *r = NULL;
    int rc = 0;

    snprintf(sql, sizeof sql, "SELECT version, dirty FROM %s LIMIT 1", m->table);
    if (mig_query(m, sql, NULL, 0, &r) != 0)
        return -1;
    *version = MIG_NIL_VERSION;
    *dirty = false;
    if (dbpool_result_nrows(r) > 0) {
        const dbpool_value *v = dbpool_result_value(r, 0, 0), *d = dbpool_result_value(r, 0, 1);
        if (v->type == DBPOOL_NULL) {
            /* golang-migrate cannot scan a NULL version either: NilVersion */
        } else if (!mig_value_int(v, version) || !mig_value_bool(d, dirty)) {
            rc = mig_fail(m, "%s holds a row dbpool-migrate cannot read (version %s, dirty %s); "
                          "fix it with `force V`", m->table, dbpool_type_name(v->type),
                          dbpool_type_name(d->type));
        }
    }
    dbpool_result_free(r);
    return rc;
}

/* The statements of SetVersion, in whatever transaction is open. */
static int set_version_stmts(struct mig *m, int64_t version, bool dirty)
{
    char sql[800];
    dbpool_value p[2] = { dbpool_int(version), dbpool_bool(dirty) };

    snprintf(sql, sizeof sql, "%s %s", m->backend == MB_SQLITE ? "DELETE FROM" : "TRUNCATE", m->table);
    if (mig_query(m, sql, NULL, 0, NULL) != 0)
        return -1;
    if (version >= 0 || (version == MIG_NIL_VERSION && dirty)) {
        snprintf(sql, sizeof sql, "INSERT INTO %s (version, dirty) VALUES (%s, %s)", m->table,
                 mig_ph(m, 1), mig_ph(m, 2));
        if (mig_query(m, sql, p, 2, NULL) != 0)
            return -1;
    }
    return 0;
}

int version_set(struct mig *m, int64_t version, bool dirty)
{
    if (dbpool_begin(m->conn, 0) != 0)
        return mig_fail_db(m, "transaction start failed");
    if (set_version_stmts(m, version, dirty) != 0) {
        char saved[sizeof m->err];
        memcpy(saved, m->err, sizeof saved);
        if (dbpool_txstate_of(m->conn) != DBPOOL_TX_IDLE)
            dbpool_rollback(m->conn);
        memcpy(m->err, saved, sizeof saved);
        return -1;
    }
    /* MySQL's TRUNCATE commits implicitly: then there is nothing left to commit. */
    if (dbpool_txstate_of(m->conn) != DBPOOL_TX_IDLE && dbpool_commit(m->conn) != 0)
        return mig_fail_db(m, "transaction commit failed");
    return 0;
}
