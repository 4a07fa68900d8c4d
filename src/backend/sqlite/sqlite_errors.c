/*
 * sqlite_errors.c — turns SQLite's result codes and messages into the
 * driver interface's errors: a dbpool code, a SQLSTATE that matches what
 * PostgreSQL would say where one fits, and a message that names the
 * SQLite code.
 */
#include "backend/sqlite/sqlite_internal.h"

#include <stdarg.h>
#include <strings.h>

/* -------------------------------------------------------- error mapping */

static const char *const primary_code_names[] = {
    "OK", "ERROR", "INTERNAL", "PERM", "ABORT", "BUSY", "LOCKED", "NOMEM",
    "READONLY", "INTERRUPT", "IOERR", "CORRUPT", "NOTFOUND", "FULL", "CANTOPEN",
    "PROTOCOL", "EMPTY", "SCHEMA", "TOOBIG", "CONSTRAINT", "MISMATCH", "MISUSE",
    "NOLFS", "AUTH", "FORMAT", "RANGE", "NOTADB", "NOTICE", "WARNING",
};

static const char *primary_name(int xrc)
{
    size_t prim = (size_t)(xrc & 0xff);

    if (prim < sizeof(primary_code_names) / sizeof(primary_code_names[0]))
        return primary_code_names[prim];
    return "UNKNOWN";
}

void sqd_canceled_result(struct backend_result *r)
{
    backend_result_error(r, DBPOOL_E_CANCELED, "57014", 'I',
                         "canceling statement due to user request");
}

/*
 * SQLite result code -> dbpool code and SQLSTATE. SQLite has no SQLSTATEs;
 * we report one only where a standard equivalent is unambiguous:
 *
 *   SQLITE_CONSTRAINT_UNIQUE, _PRIMARYKEY    23505 unique_violation
 *   SQLITE_CONSTRAINT_NOTNULL                23502 not_null_violation
 *   SQLITE_CONSTRAINT_FOREIGNKEY             23503 foreign_key_violation
 *   SQLITE_CONSTRAINT_CHECK                  23514 check_violation
 *   other SQLITE_CONSTRAINT_*                23000 integrity_constraint_violation
 *   SQLITE_ERROR at prepare, "syntax error"  42601 syntax_error
 *     or "incomplete input"
 *   SQLITE_ERROR at prepare, "no such table" 42P01 undefined_table
 *   SQLITE_ERROR at prepare, "no such column" 42703 undefined_column
 *   SQLITE_READONLY_* (query_only readers)   25006 read_only_sql_transaction
 *   SQLITE_INTERRUPT                         57014 query_canceled (DBPOOL_E_CANCELED)
 *   SQLITE_BUSY_SNAPSHOT (a deferred WAL     40001 serialization_failure
 *     transaction that read, then tried to
 *     write after another connection wrote)
 *   other SQLITE_BUSY after the busy timeout ""    "database is locked (...)"
 *   anything else                            ""
 *
 * Every error SQLite reported carries its extended result code as the
 * vendor code (2067 SQLITE_CONSTRAINT_UNIQUE, 1 SQLITE_ERROR, 5
 * SQLITE_BUSY, ...); cancellation and the driver's own errors carry 0.
 *
 * Driver-made errors: more than one statement 42601 (as PostgreSQL);
 * parameter count mismatch 07001 (dynamic SQL: wrong number of parameters).
 * Everything is DBPOOL_E_SQL except SQLITE_INTERRUPT. CANTOPEN, CORRUPT and
 * NOTADB also mark the connection broken; IOERR and NOMEM do not (they are
 * usually transient).
 */
static const char *constraint_sqlstate(int xrc)
{
    switch (xrc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
        return "23505";
    case SQLITE_CONSTRAINT_NOTNULL:
        return "23502";
    case SQLITE_CONSTRAINT_FOREIGNKEY:
        return "23503";
    case SQLITE_CONSTRAINT_CHECK:
        return "23514";
    default:
        return "23000";
    }
}

static const char *prepare_error_sqlstate(const char *msg)
{
    if (strstr(msg, "syntax error") || strstr(msg, "incomplete input"))
        return "42601";
    if (strstr(msg, "no such table"))
        return "42P01";
    if (strstr(msg, "no such column"))
        return "42703";
    return "";
}

void sqd_sql_error(struct backend_conn *c, struct backend_result *r, int xrc,
                   const char *msg, bool at_prepare)
{
    int prim = xrc & 0xff;
    const char *state = "";

    if (prim == SQLITE_INTERRUPT || (prim == SQLITE_BUSY && stop_requested(c))) {
        sqd_canceled_result(r);
        return;
    }
    if (xrc == SQLITE_BUSY_SNAPSHOT) {
        backend_result_error(r, DBPOOL_E_SQL, "40001", 'I',
                             "could not serialize access: another connection wrote since this "
                             "transaction read; roll back and retry (SQLITE_BUSY_SNAPSHOT)");
    } else if (prim == SQLITE_BUSY) {
        backend_result_error(r, DBPOOL_E_SQL, "", 'I',
                             "database is locked (another process holds the write lock; "
                             "busy timeout %llu ms)",
                             (unsigned long long)c->cfg->timeout_ms);
    } else {
        if (prim == SQLITE_CONSTRAINT)
            state = constraint_sqlstate(xrc);
        else if (prim == SQLITE_READONLY)
            state = "25006";
        else if (prim == SQLITE_ERROR && at_prepare)
            state = prepare_error_sqlstate(msg);
        backend_result_error(r, DBPOOL_E_SQL, state, 'I', "%s (SQLITE_%s, extended code %d)",
                             msg, primary_name(xrc), xrc);
        r->broken = prim == SQLITE_CANTOPEN || prim == SQLITE_CORRUPT || prim == SQLITE_NOTADB;
    }
    r->err.vendor_code = xrc;   /* the extended result code, e.g. 2067 SQLITE_CONSTRAINT_UNIQUE */
}

void sqd_oom_result(struct backend_result *r, const char *what)
{
    backend_result_error(r, DBPOOL_E_INTERNAL, "", 'I', "out of memory %s", what);
}
