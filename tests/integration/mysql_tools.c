/*
 * mysql_tools.c — helpers shared by the MySQL integration tests
 * (test_mysql.c, test_mysql_resilience.c, test_mysql_session.c; see
 * mysql_tools.h): error assertions with the vendor code, the server's
 * environment, extra mysql pools, server threads (CONNECTION_ID, KILL,
 * PROCESSLIST). The status-socket and background-statement helpers are the
 * harness's (harness.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "mysql_tools.h"

#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void my_init(void)
{
    setenv("DBPOOL_TEST_BACKEND", "mysql", 1);
}

/* The server's own error number of the last error (MySQL 1062, ...). */
int vendor_code(const dbpool_error *e)
{
    return (int)e->vendor_code;
}

void must_ok(dbpool_conn *c, int rc, const char *what)
{
    const dbpool_error *e = dbpool_last_error(c);
    cr_assert_eq(rc, 0, "%s failed: %s [%s] (%d): %s", what, dbpool_code_name(e->code),
                 e->sqlstate, vendor_code(e), e->message);
}

void assert_txstate(dbpool_conn *c, char want, const char *when)
{
    char got = (char)dbpool_txstate_of(c);
    cr_assert_eq(got, want, "txstate %s: '%c', expected '%c'", when, got, want);
}

/* Assert the last call failed with DBPOOL_E_SQL, sqlstate and vendor code. */
void expect_vendor_error(dbpool_conn *c, int rc, const char *sqlstate, int vendor,
                                const char *what)
{
    const dbpool_error *e = dbpool_last_error(c);
    cr_assert_eq(rc, -1, "%s succeeded", what);
    cr_assert_eq(e->code, DBPOOL_E_SQL, "%s: %s [%s] %s", what, dbpool_code_name(e->code),
                 e->sqlstate, e->message);
    cr_assert_str_eq(e->sqlstate, sqlstate, "%s: SQLSTATE %s, expected %s: %s", what,
                     e->sqlstate, sqlstate, e->message);
    cr_assert_eq(vendor_code(e), vendor, "%s: vendor code %d, expected %d: %s", what,
                 vendor_code(e), vendor, e->message);
    cr_assert(e->message[0], "%s: no message", what);
    cr_assert(dbpool_is_open(c), "%s closed the session", what);
}

void expect_sql(dbpool_conn *c, const char *sql, const char *sqlstate, int vendor)
{
    expect_vendor_error(c, dbpool_exec(c, sql), sqlstate, vendor, sql);
}

const char *my_env(const char *suffix)
{
    char var[64];
    snprintf(var, sizeof(var), "DBPOOL_TEST_MYSQL_%s", suffix);
    const char *v = getenv(var);
    cr_assert(v && *v, "%s is not set: run under tests/mysql/run-mysql-tests.sh, which starts "
              "a MariaDB server (or eval \"$(bash tests/mysql/mysql-harness.sh start DIR)\")", var);
    return v;
}

/* Append a mysql pool entry on the test server for h_opts.extra_pools. */
void add_pool(char *buf, size_t len, const char *name, const char *host,
                     const char *settings)
{
    size_t pos = strlen(buf);
    int n = snprintf(buf + pos, len - pos,
                     ", { name = \"%s\"; type = \"mysql\"; mysql = { host = \"%s\"; "
                     "name = \"%s\"; username = \"%s\"; passwordFile = \"%s\"; %s }; }",
                     name, host ? host : my_env("HOST"), my_env("DB"), my_env("USER"),
                     my_env("PASSWORD_FILE"), settings ? settings : "");
    cr_assert(n > 0 && (size_t)n < len - pos, "extra_pools buffer too small");
}

/* The "admin" pool: the same server, for killing and inspecting sessions. */
void add_admin_pool(char *buf, size_t len)
{
    add_pool(buf, len, "admin", NULL, "maxOpenConns = 2;");
}

dbpool_conn *connect_pool(const char *pool)
{
    dbpool_error err;
    memset(&err, 0, sizeof(err));
    dbpool_conn *c = h_try_connect(pool, &err);
    cr_assert_not_null(c, "connect to pool %s: %s: %s", pool, dbpool_code_name(err.code),
                       err.message);
    return c;
}

int64_t thread_id(dbpool_conn *c)
{
    return h_scalar(c, "SELECT CAST(CONNECTION_ID() AS SIGNED)");
}

/* KILL [QUERY] id through an admin session. */
void kill_thread(dbpool_conn *adm, int64_t id, bool query_only)
{
    char sql[64];
    snprintf(sql, sizeof(sql), "KILL %s%lld", query_only ? "QUERY " : "", (long long)id);
    h_exec(adm, sql);
}

bool thread_exists(dbpool_conn *adm, int64_t id)
{
    dbpool_value p = dbpool_int(id);
    dbpool_result *r = h_query(adm, "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                                    "WHERE ID = ?", &p, 1);
    int64_t n = dbpool_result_value(r, 0, 0)->u.i;
    dbpool_result_free(r);
    return n > 0;
}

/* Statements running on the server whose text contains marker (not ours). */
int64_t running_with_marker(dbpool_conn *adm, const char *marker, int64_t *id)
{
    char like[128];
    snprintf(like, sizeof(like), "%%%s%%", marker);
    dbpool_value p = dbpool_text(like);
    dbpool_result *r = h_query(adm, "SELECT CAST(ID AS SIGNED) FROM information_schema.PROCESSLIST "
                                    "WHERE INFO LIKE ? AND ID <> CONNECTION_ID() ORDER BY ID",
                               &p, 1);
    int64_t n = (int64_t)dbpool_result_nrows(r);
    if (id && n > 0)
        *id = dbpool_result_value(r, 0, 0)->u.i;
    dbpool_result_free(r);
    return n;
}

