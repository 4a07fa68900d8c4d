/*
 * mysql_tools.h — helpers shared by the MySQL integration tests
 * (test_mysql.c, test_mysql_resilience.c, test_mysql_session.c: one
 * criterion program). They assert (cr_assert) and so belong to the test's
 * main thread.
 */
#ifndef DBPOOLD_TEST_MYSQL_TOOLS_H
#define DBPOOLD_TEST_MYSQL_TOOLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "harness.h"

/* Suite .init: the harness's mysql profile whatever the environment says
 * (it still needs the DBPOOL_TEST_MYSQL_* server variables). */
void my_init(void);

/* The server's own error number of e (MySQL 1062, ...). */
int vendor_code(const dbpool_error *e);
void must_ok(dbpool_conn *c, int rc, const char *what);
void assert_txstate(dbpool_conn *c, char want, const char *when);
/* rc == -1 with DBPOOL_E_SQL, sqlstate and vendor; the session still open. */
void expect_vendor_error(dbpool_conn *c, int rc, const char *sqlstate, int vendor,
                         const char *what);
/* dbpool_exec(sql) fails as expect_vendor_error says. */
void expect_sql(dbpool_conn *c, const char *sql, const char *sqlstate, int vendor);

/* $DBPOOL_TEST_MYSQL_<suffix> (asserts it is set). */
const char *my_env(const char *suffix);
/* Append `, { name = NAME; type = "mysql"; mysql = { ...; SETTINGS }; }` for
 * h_opts.extra_pools; host NULL: the test server. */
void add_pool(char *buf, size_t len, const char *name, const char *host, const char *settings);
/* Pool "admin" on the same server, for KILL and PROCESSLIST. */
void add_admin_pool(char *buf, size_t len);
dbpool_conn *connect_pool(const char *pool);

/* CONNECTION_ID() of the server connection running the statement. */
int64_t thread_id(dbpool_conn *c);
/* KILL [QUERY] id through adm. */
void kill_thread(dbpool_conn *adm, int64_t id, bool query_only);
bool thread_exists(dbpool_conn *adm, int64_t id);
/* Statements on the server whose text contains marker (not adm's own);
 * the first one's thread id into *id. */
int64_t running_with_marker(dbpool_conn *adm, const char *marker, int64_t *id);

/* The second server that tests may stop, crash or freeze
 * ($DBPOOL_TEST_MYSQL_FAULT_DIR, test_mysql_resilience.c): its directory;
 * take its lock (held until the test's process ends), start it if it is
 * down and point the harness's mysql profile at it. */
const char *fault_dir(void);
void use_fault_server(void);
/* `mysql-harness.sh CMD` on the fault server (pause, resume, crash, freeze,
 * thaw); its exit status, its messages in fault_dir().log. */
int fault_harness(const char *cmd);

#endif
