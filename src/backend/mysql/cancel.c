/*
 * cancel.c — cancelling a running statement of the MySQL driver
 * (mysql_internal.h): KILL QUERY <thread id> on a side connection, and
 * holding the operation's completion until the KILL has been answered, so
 * that a late KILL can never hit the next statement on this connection.
 * (Skeleton: cancel() only marks the operation; the side connection follows.)
 */
#include <stdbool.h>

#include "backend/mysql/mysql_internal.h"

void my_cancel(struct mysql_conn *c)
{
    if (!c || c->closed || c->op != MOP_EXEC)
        return;
    c->canceled = true;
}

void my_kill_finished(struct mysql_conn *c)
{
    (void)c;
}

void my_kill_timed_out(struct mysql_conn *c)
{
    (void)c;
}

void my_kill_forget(struct mysql_conn *c)
{
    c->kill = NULL;
}
