/*
 * stmt.c — the MySQL driver's per-connection cache of server-side prepared
 * statements (mysql_internal.h). STUB from the shared skeleton: helper
 * "myexec" replaces this file.
 */
#include "backend/mysql/mysql_internal.h"

void my_schema_changed(struct mysql_conn *c)
{
    (void)c;
}

void my_stmt_dropped(struct mysql_conn *c)
{
    (void)c;
}

void my_exec_free(struct mysql_conn *c)
{
    (void)c;
}
