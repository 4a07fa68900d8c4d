/*
 * history.c — schema_migrations_history, dbpool-migrate's record beside
 * golang-migrate's one-row table: one row per migration run (and per
 * force), with the SHA-256 of the file, so that `status` can tell applied
 * from pending, spot files changed after they were applied and versions that
 * were skipped. golang-migrate neither reads nor minds it. The DDL per
 * backend is in columns() below and in doc/migrations.md, "Tables".
 */
#include "migrate/migrate.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The column list of the table for the backend. */
static const char *columns(const struct mig *m)
{
    switch (m->backend) {
    case MB_POSTGRES:
        return "(id bigserial primary key, version bigint not null, "
               "name text not null, direction text not null, checksum text not null, "
               "applied_at timestamptz not null default now(), duration_ms bigint not null, "
               "applied_by text not null)";
    case MB_MYSQL:
        return "(id bigint not null auto_increment primary key, "
               "version bigint not null, name varchar(255) not null, direction varchar(8) not null, "
               "checksum varchar(64) not null, applied_at timestamp(3) not null default "
               "current_timestamp(3), duration_ms bigint not null, applied_by varchar(255) not null)";
    default:
        return "(id integer primary key, version integer not null, "
               "name text not null, direction text not null, checksum text not null, "
               "applied_at text not null default (strftime('%Y-%m-%d %H:%M:%f', 'now')), "
               "duration_ms integer not null, applied_by text not null)";
    }
}

int history_ensure_table(struct mig *m)
{
    char sql[1200];

    snprintf(sql, sizeof sql, "CREATE TABLE IF NOT EXISTS %s %s", m->history, columns(m));
    return mig_query(m, sql, NULL, 0, NULL);
}

/* "user@host" of whoever runs dbpool-migrate. */
static void applied_by(char *out, size_t cap)
{
    struct passwd *pw = getpwuid(getuid());
    char host[256] = "";

    if (gethostname(host, sizeof host - 1) != 0)
        host[0] = '\0';
    if (pw != NULL)
        snprintf(out, cap, "%s@%s", pw->pw_name, host);
    else
        snprintf(out, cap, "uid %u@%s", (unsigned)getuid(), host);
}

int history_add(struct mig *m, int64_t version, const char *name, const char *direction,
                const char *checksum, int64_t duration_ms)
{
    char sql[1000], by[400];

    applied_by(by, sizeof by);
    dbpool_value p[6] = { dbpool_int(version), dbpool_text(name), dbpool_text(direction),
                          dbpool_text(checksum), dbpool_int(duration_ms), dbpool_text(by) };
    snprintf(sql, sizeof sql, "INSERT INTO %s (version, name, direction, checksum, duration_ms, "
             "applied_by) VALUES (%s, %s, %s, %s, %s, %s)", m->history, mig_ph(m, 1), mig_ph(m, 2),
             mig_ph(m, 3), mig_ph(m, 4), mig_ph(m, 5), mig_ph(m, 6));
    return mig_query(m, sql, p, 6, NULL);
}

static void copy_text(const dbpool_value *v, char *out, size_t cap)
{
    if (v->type == DBPOOL_TEXT || v->type == DBPOOL_BLOB)
        snprintf(out, cap, "%.*s", (int)v->u.s.len, v->u.s.ptr);
    else
        out[0] = '\0';
}

static void fill_row(const dbpool_result *r, size_t i, struct hist_row *h)
{
    memset(h, 0, sizeof *h);
    mig_value_int(dbpool_result_value(r, i, 0), &h->version);
    copy_text(dbpool_result_value(r, i, 1), h->name, sizeof h->name);
    copy_text(dbpool_result_value(r, i, 2), h->direction, sizeof h->direction);
    copy_text(dbpool_result_value(r, i, 3), h->checksum, sizeof h->checksum);
    copy_text(dbpool_result_value(r, i, 4), h->applied_at, sizeof h->applied_at);
    mig_value_int(dbpool_result_value(r, i, 5), &h->duration_ms);
    copy_text(dbpool_result_value(r, i, 6), h->applied_by, sizeof h->applied_by);
}

int history_read(struct mig *m, struct hist_row **rows, size_t *n)
{
    char sql[800];
    dbpool_result *r = NULL;
    const char *at = m->backend == MB_POSTGRES ? "CAST(applied_at AS text)"
                   : m->backend == MB_MYSQL ? "CAST(applied_at AS CHAR)" : "applied_at";

    snprintf(sql, sizeof sql, "SELECT version, name, direction, checksum, %s, duration_ms, "
             "applied_by FROM %s ORDER BY id", at, m->history);
    if (mig_query(m, sql, NULL, 0, &r) != 0)
        return -1;
    *n = dbpool_result_nrows(r);
    *rows = calloc(*n ? *n : 1, sizeof **rows);
    if (*rows == NULL) {
        dbpool_result_free(r);
        return mig_fail(m, "out of memory");
    }
    for (size_t i = 0; i < *n; i++)
        fill_row(r, i, &(*rows)[i]);
    dbpool_result_free(r);
    return 0;
}
