/*
 * results.c — the MySQL driver's results (mysql_internal.h): typed values,
 * columns, streaming with back-pressure. STUB from the shared skeleton:
 * helper "myexec" replaces this file.
 */
#include "backend/mysql/mysql_internal.h"

void my_resume(struct mysql_conn *c)
{
    (void)c;
}

void my_exec_release(struct mysql_conn *c)
{
    (void)c;
}
