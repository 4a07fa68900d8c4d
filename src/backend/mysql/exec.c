/*
 * exec.c — the MySQL driver's statements (mysql_internal.h). STUB from the
 * shared skeleton: helper "myexec" replaces this file (text protocol and
 * prepared statements). Until then every statement fails cleanly.
 */
#include "backend/mysql/mysql_internal.h"

void my_exec(struct mysql_conn *c, const struct backend_query *q,
             const struct backend_sink *sink, void *arg)
{
    (void)q;
    my_start_op(c, MOP_EXEC, sink ? sink->done : NULL, arg, sink);
    if (my_usable(c))
        my_fail_later(c, DBPOOL_E_INTERNAL, "0A000", false,
                      "statements on MySQL pools are not implemented yet");
}
