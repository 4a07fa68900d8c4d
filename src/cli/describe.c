/*
 * describe.c — the catalog queries behind \dt and \d NAME, one set per
 * backend (describe.h). Each query names its columns like psql does, so the
 * ordinary result printers (output.c) show them.
 */
#include "cli/describe.h"
#include "cli/sbuf.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum backend { BE_SQLITE, BE_POSTGRES, BE_MYSQL };

static enum backend backend_of(const dbpool_conn *c)
{
    const char *b = dbpool_backend(c);

    return strcmp(b, "postgres") == 0 ? BE_POSTGRES
         : strcmp(b, "mysql") == 0 ? BE_MYSQL : BE_SQLITE;
}

/* The table list; its last column is the table name. */
static const char *tables_sql(enum backend b)
{
    switch (b) {
    case BE_POSTGRES:
        return "SELECT table_schema AS \"Schema\", table_name AS \"Name\" "
               "FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
               "AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2";
    case BE_MYSQL:
        return "SELECT table_name AS \"Name\" FROM information_schema.tables "
               "WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE' ORDER BY 1";
    default:
        return "SELECT name AS \"Name\" FROM sqlite_master "
               "WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY 1";
    }
}

/* name as the inside of a SQL string literal ('' doubled; \ too on MySQL). */
static void add_literal(struct sbuf *b, const char *name, enum backend be)
{
    for (const char *p = name; *p; p++) {
        if (*p == '\'' || (*p == '\\' && be == BE_MYSQL))
            sb_add(b, p, 1);
        sb_add(b, p, 1);
    }
}

static void columns_sql(struct sbuf *b, const char *name, enum backend be)
{
    if (be == BE_SQLITE) {
        sb_adds(b, "SELECT name AS \"Column\", type AS \"Type\", CASE WHEN \"notnull\" "
                   "THEN 'not null' ELSE '' END AS \"Nullable\", COALESCE(dflt_value, '') "
                   "AS \"Default\" FROM pragma_table_info('");
        add_literal(b, name, be);
        sb_adds(b, "') ORDER BY cid");
        return;
    }
    sb_adds(b, be == BE_POSTGRES ? "SELECT column_name AS \"Column\", data_type AS \"Type\", "
                                 : "SELECT COLUMN_NAME AS \"Column\", COLUMN_TYPE AS \"Type\", ");
    sb_adds(b, "CASE WHEN is_nullable = 'NO' THEN 'not null' ELSE '' END AS \"Nullable\", "
               "COALESCE(column_default, '') AS \"Default\" FROM information_schema.columns "
               "WHERE table_name = '");
    add_literal(b, name, be);
    sb_adds(b, be == BE_POSTGRES ? "' AND table_schema = ANY (current_schemas(false))"
                                 : "' AND table_schema = DATABASE()");
    sb_adds(b, " ORDER BY ordinal_position");
}

/* Runs sql and prints its result set. */
static int print_query(dbpool_conn *c, const char *sql, enum format format)
{
    if (dbpool_query_start(c, sql, NULL, 0) < 0)
        return -1;
    return output_rows(c, format);
}

int describe_tables(dbpool_conn *c, enum format format)
{
    return print_query(c, tables_sql(backend_of(c)), format);
}

int describe_table_names(dbpool_conn *c, char ***names, size_t *n)
{
    dbpool_result *r = NULL;
    size_t ncols;

    *names = NULL;
    *n = 0;
    if (dbpool_query(c, tables_sql(backend_of(c)), NULL, 0, &r) < 0)
        return -1;
    ncols = dbpool_result_ncols(r);
    *names = xrealloc(NULL, (dbpool_result_nrows(r) + 1) * sizeof **names);
    for (size_t i = 0; i < dbpool_result_nrows(r); i++) {
        const dbpool_value *v = dbpool_result_value(r, i, ncols - 1);
        if (v->type == DBPOOL_TEXT && (((*names)[*n] = strdup(v->u.s.ptr)) != NULL))
            (*n)++;
    }
    dbpool_result_free(r);
    return 0;
}

static bool has_table(dbpool_conn *c, const char *name, bool *failed)
{
    char **names;
    size_t n;
    bool found = false;

    *failed = describe_table_names(c, &names, &n) < 0;
    for (size_t i = 0; i < n; i++) {
        found = found || strcmp(names[i], name) == 0;
        free(names[i]);
    }
    free(names);
    return found;
}

int describe_table(dbpool_conn *c, const char *name, enum format format)
{
    struct sbuf sql = { 0 };
    bool failed;
    int rc;

    if (!has_table(c, name, &failed)) {
        if (failed)
            return -1;
        fprintf(stderr, "dbpool: did not find a table named \"%s\"; \\dt lists them\n", name);
        return 1;
    }
    columns_sql(&sql, name, backend_of(c));
    rc = print_query(c, sql.p, format);
    free(sql.p);
    return rc < 0 ? -1 : 0;
}
