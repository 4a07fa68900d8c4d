/*
 * test_backend_sqlite.c — the SQLite driver (src/backend/sqlite/backend_sqlite.c) driven
 * through struct backend_driver on a real libevent loop and real database
 * files in a temporary directory.
 *
 * Every wait runs the loop until a callback sets a flag, with a timer guard
 * (20 s): a hang fails the test instead of hanging it (driver_loop.c, shared
 * with test_backend_pg.c). Each test ends with
 * driver->quiesce(), so worker threads are joined before the process exits
 * (clean under ASan and valgrind).
 */
#include <criterion/criterion.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <sqlite3.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "backend/backend.h"
#include "backend/sqlite/backend_sqlite.h"
#include "backend/sqlite/sqlite_options.h"
#include "driver_loop.h"

static const struct backend_driver *drv = &backend_sqlite_driver;
static struct event_base *base;
static char dir[64];
static char dbpath[128];
static char journal_mode[] = "WAL", sync_mode[] = "NORMAL", auto_vacuum[] = "INCREMENTAL";
static char pool_name[] = "test";
static struct pool_config cfg;
static struct sqlite_options opts;   /* cfg.driver_opts */

/* ------------------------------------------------------------ fixtures */

static void setup(void)
{
    cr_assert_eq(evthread_use_pthreads(), 0);
    base = event_base_new();
    cr_assert_not_null(base);
    driver_loop_init(base, drv, 20);
    snprintf(dir, sizeof(dir), "/tmp/dbpoold-sqlite-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(dbpath, sizeof(dbpath), "%s/test.db", dir);
    memset(&cfg, 0, sizeof(cfg));
    cfg.name = pool_name;
    cfg.type = BACKEND_SQLITE;
    memset(&opts, 0, sizeof(opts));
    cfg.driver_opts = &opts;
    opts.file_path = dbpath;
    opts.journal_mode = journal_mode;
    opts.sync_mode = sync_mode;
    opts.auto_vacuum = auto_vacuum;
    opts.cache_size = 1000;
    opts.foreign_keys = true;
    cfg.timeout_ms = 5000;
    cfg.max_open_conns = 3;
}

static void teardown(void)
{
    static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };
    char path[160];

    drv->quiesce();
    event_base_free(base);
    libevent_global_shutdown();
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        snprintf(path, sizeof(path), "%s%s", dbpath, suffixes[i]);
        unlink(path);
    }
    rmdir(dir);
}

TestSuite(sqlite, .init = setup, .fini = teardown, .timeout = 60);

/* ------------------------------------------------------------- helpers */

static struct backend_conn *new_conn(enum backend_role role)
{
    char err[256] = "";
    struct backend_conn *c = drv->conn_new(&cfg, base, role, err, sizeof(err));
    cr_assert_not_null(c, "conn_new: %s", err);
    return c;
}

static struct backend_conn *open_conn(enum backend_role role)
{
    struct backend_conn *c = new_conn(role);
    struct opdone d = { 0 };

    drv->connect(c, on_done, &d);
    run_until(&d.done);
    cr_assert(d.res.ok, "connect: %s", d.res.err.message);
    cr_assert_eq(d.res.txstate, 'I');
    return c;
}

/* ---------------------------------------------------------------- tests */

Test(sqlite, writer_connect_applies_settings)
{
    struct backend_conn *w = open_conn(ROLE_WRITER);
    struct collect k;

    run_q(w, "PRAGMA journal_mode", NULL, 0, 0, &k);
    cr_assert(k.res.ok, "%s", k.res.err.message);
    cr_assert_eq(k.nrows, 1);
    cr_assert_eq(k.cells[0][0].type, DBPOOL_TEXT);
    cr_assert_str_eq(k.cells[0][0].s, "wal");
    collect_free(&k);
    cr_assert_eq(query_int(w, "PRAGMA auto_vacuum"), 2);   /* INCREMENTAL */
    cr_assert_eq(query_int(w, "PRAGMA synchronous"), 1);   /* NORMAL */
    cr_assert_eq(query_int(w, "PRAGMA cache_size"), 1000);
    cr_assert_eq(query_int(w, "PRAGMA foreign_keys"), 1);
    cr_assert_eq(query_int(w, "PRAGMA query_only"), 0);
    cr_assert(strncmp(drv->server_info(w), "SQLite 3.", 9) == 0, "%s", drv->server_info(w));
    drv->close(w);
}

Test(sqlite, ping)
{
    struct backend_conn *w = open_conn(ROLE_WRITER);
    struct opdone d = { 0 };

    drv->ping(w, on_done, &d);
    run_until(&d.done);
    cr_assert(d.res.ok, "%s", d.res.err.message);
    drv->close(w);
}

Test(sqlite, ping_before_connect_is_broken)
{
    struct backend_conn *w = new_conn(ROLE_WRITER);
    struct opdone d = { 0 };

    drv->ping(w, on_done, &d);
    run_until(&d.done);
    cr_assert(!d.res.ok);
    cr_assert(d.res.broken);
    drv->close(w);
}

Test(sqlite, every_type_round_trips)
{
    static const unsigned char blob[] = { 0, 1, 2, 255 };
    struct backend_conn *w = open_conn(ROLE_WRITER);
    struct backend_result r;
    struct collect k;
    dbpool_value p[9];

    exec_ok(w, "CREATE TABLE t(id INTEGER PRIMARY KEY, i INTEGER, f REAL, s TEXT, b BLOB, "
               "n TEXT, flag BOOLEAN, vc VARCHAR(20), eb BLOB, et TEXT)");
    p[0] = dbpool_int(9007199254740993LL);     /* not representable as a double */
    p[1] = dbpool_float(3.25);
    p[2] = dbpool_textn("a\0b", 3);
    p[3] = dbpool_blob(blob, sizeof(blob));
    p[4] = dbpool_null();
    p[5] = dbpool_bool(1);
    p[6] = dbpool_textn("h\xc3\xa9llo", 6);
    p[7] = dbpool_blob(NULL, 0);               /* empty, not NULL */
    p[8] = dbpool_textn(NULL, 0);
    run_q(w, "INSERT INTO t(i, f, s, b, n, flag, vc, eb, et) VALUES (?,?,?,?,?,?,?,?,?)", p, 9, 0,
          &k);
    cr_assert(k.res.ok, "%s", k.res.err.message);
    cr_assert_eq(k.res.rows_affected, 1);
    cr_assert_eq(k.res.last_insert_id, 1);
    cr_assert_eq(k.columns_calls, 0);
    collect_free(&k);

    run_q(w, "SELECT i, f, s, b, n, flag, vc, eb, et, 1 + 1 AS two FROM t", NULL, 0, 0, &k);
    cr_assert(k.res.ok, "%s", k.res.err.message);
    cr_assert_eq(k.columns_calls, 1);
    cr_assert(!k.columns_after_row);
    cr_assert_eq(k.ncols, 10);
    {
        static const char *const names[] = { "i", "f", "s", "b", "n", "flag", "vc", "eb", "et", "two" };
        static const char *const decls[] = { "integer", "real", "text", "blob", "text", "boolean",
                                             "varchar(20)", "blob", "text", "" };
        for (int i = 0; i < 10; i++) {
            cr_assert_str_eq(k.names[i], names[i]);
            cr_assert_str_eq(k.decls[i], decls[i]);
        }
    }
    cr_assert_eq(k.nrows, 1);
    cr_assert_eq(k.res.rows_affected, 1);
    cr_assert_eq(k.res.last_insert_id, 0);
    cr_assert_eq(k.cells[0][0].type, DBPOOL_INT64);
    cr_assert_eq(k.cells[0][0].i, 9007199254740993LL);
    cr_assert_eq(k.cells[0][1].type, DBPOOL_FLOAT64);
    cr_assert_eq(k.cells[0][1].f, 3.25);
    cr_assert_eq(k.cells[0][2].type, DBPOOL_TEXT);
    cr_assert_eq(k.cells[0][2].len, 3);
    cr_assert_eq(memcmp(k.cells[0][2].s, "a\0b", 3), 0);
    cr_assert_eq(k.cells[0][3].type, DBPOOL_BLOB);
    cr_assert_eq(k.cells[0][3].len, sizeof(blob));
    cr_assert_eq(memcmp(k.cells[0][3].s, blob, sizeof(blob)), 0);
    cr_assert_eq(k.cells[0][4].type, DBPOOL_NULL);
    cr_assert_eq(k.cells[0][5].type, DBPOOL_INT64);
    cr_assert_eq(k.cells[0][5].i, 1);
    cr_assert_eq(k.cells[0][6].type, DBPOOL_TEXT);
    cr_assert_str_eq(k.cells[0][6].s, "h\xc3\xa9llo");
    cr_assert_eq(k.cells[0][7].type, DBPOOL_BLOB);
    cr_assert_eq(k.cells[0][7].len, 0);
    cr_assert_eq(k.cells[0][8].type, DBPOOL_TEXT);
    cr_assert_eq(k.cells[0][8].len, 0);
    cr_assert_eq(k.cells[0][9].type, DBPOOL_INT64);
    cr_assert_eq(k.cells[0][9].i, 2);
    collect_free(&k);

    /* A second insert, then statements whose counts must not be stale. */
    r = exec_ok(w, "INSERT INTO t(i) VALUES (7)");
    cr_assert_eq(r.last_insert_id, 2);
    r = exec_ok(w, "UPDATE t SET i = i + 1");
    cr_assert_eq(r.rows_affected, 2);
    cr_assert_eq(r.last_insert_id, 0);
    r = exec_ok(w, "CREATE TABLE other(x)");
    cr_assert_eq(r.rows_affected, 0);
    cr_assert_eq(r.last_insert_id, 0);

    /* Zero rows: columns still arrive, once. */
    run_q(w, "SELECT id, s FROM t WHERE id < 0", NULL, 0, 0, &k);
    cr_assert(k.res.ok, "%s", k.res.err.message);
    cr_assert_eq(k.columns_calls, 1);
    cr_assert_eq(k.ncols, 2);
    cr_assert_eq(k.nrows, 0);
    cr_assert_eq(k.res.rows_affected, 0);
    collect_free(&k);

    /* INSERT ... RETURNING: rows, and rows_affected counts them. */
    run_q(w, "INSERT INTO t(i) VALUES (10), (11) RETURNING id", NULL, 0, 0, &k);
    cr_assert(k.res.ok, "%s", k.res.err.message);
    cr_assert_eq(k.nrows, 2);
    cr_assert_eq(k.res.rows_affected, 2);
    cr_assert_eq(k.res.last_insert_id, 4);
    collect_free(&k);
    drv->close(w);
}

Test(sqlite, parameter_count_mismatch)
{
    struct backend_conn *w = open_conn(ROLE_WRITER);
    dbpool_value p[3] = { dbpool_int(1), dbpool_int(2), dbpool_int(3) };
    struct collect k;

    run_q(w, "SELECT ?, ?", p, 1, 0, &k);
    cr_assert(!k.res.ok);
    cr_assert_eq(k.res.err.code, DBPOOL_E_SQL);
    cr_assert_str_eq(k.res.err.message, "statement expects 2 parameters, got 1");
    cr_assert_eq(k.columns_calls, 0);
    collect_free(&k);
    run_q(w, "SELECT ?", p, 3, 0, &k);
    cr_assert(!k.res.ok);
    cr_assert_str_eq(k.res.err.message, "statement expects 1 parameters, got 3");
    collect_free(&k);
    run_q(w, "SELECT ?2, ?1", p, 2, 0, &k);
    cr_assert(k.res.ok, "%s", k.res.err.message);
    cr_assert_eq(k.cells[0][0].i, 2);
    collect_free(&k);
    drv->close(w);
}

Test(sqlite, multiple_statements_rejected)
{
    struct backend_conn *w = open_conn(ROLE_WRITER);
    struct collect k;

    exec_ok(w, "CREATE TABLE m(x)");
    run_q(w, "INSERT INTO m VALUES (1); INSERT INTO m VALUES (2)", NULL, 0, 0, &k);
    cr_assert(!k.res.ok);
    cr_assert_eq(k.res.err.code, DBPOOL_E_SQL);
    cr_assert_str_eq(k.res.err.message,
                     "query contains more than one statement; send them as a batch or one at a time");
    collect_free(&k);
    cr_assert_eq(query_int(w, "SELECT count(*) FROM m"), 0);   /* nothing executed */

    /* Trailing semicolons and comments are fine, as are leading empty statements. */
    cr_assert_eq(query_int(w, "SELECT 5; -- done\n ; /* really */"), 5);
    cr_assert_eq(query_int(w, " ; SELECT 6"), 6);
    exec_ok(w, "  -- nothing at all\n");
    drv->close(w);
}

static void expect_sql_error(struct backend_conn *w, const char *sql, const char *sqlstate)
{
    struct collect k;

    run_q(w, sql, NULL, 0, 0, &k);
    cr_assert(!k.res.ok, "%s succeeded", sql);
    cr_assert_eq(k.res.err.code, DBPOOL_E_SQL, "%s: code %d", sql, k.res.err.code);
    cr_assert_str_eq(k.res.err.sqlstate, sqlstate, "%s: %s", sql, k.res.err.message);
    cr_assert(!k.res.broken);
    cr_assert_eq(k.res.txstate, 'I');
    collect_free(&k);
    cr_assert_eq(query_int(w, "SELECT 1"), 1);   /* the session goes on */
}

Test(sqlite, errors_map_to_sqlstate)
{
    struct backend_conn *w = open_conn(ROLE_WRITER);
    struct collect k;

    exec_ok(w, "CREATE TABLE u(id INTEGER PRIMARY KEY, email TEXT UNIQUE NOT NULL, "
               "parent INTEGER REFERENCES u(id), n INTEGER CHECK (n > 0))");
    exec_ok(w, "INSERT INTO u(id, email) VALUES (1, 'a@x')");
    expect_sql_error(w, "INSERT INTO u(id, email) VALUES (2, 'a@x')", "23505");
    expect_sql_error(w, "INSERT INTO u(id, email) VALUES (1, 'b@x')", "23505");
    expect_sql_error(w, "INSERT INTO u(id, email) VALUES (3, NULL)", "23502");
    expect_sql_error(w, "INSERT INTO u(id, email, parent) VALUES (4, 'c@x', 999)", "23503");
    expect_sql_error(w, "INSERT INTO u(id, email, n) VALUES (5, 'd@x', -1)", "23514");
    expect_sql_error(w, "SELEC 1", "42601");
    expect_sql_error(w, "SELECT * FROM nosuch", "42P01");
    expect_sql_error(w, "SELECT nosuch FROM u", "42703");
    expect_sql_error(w, "SELECT json('{')", "");

    run_q(w, "INSERT INTO u(id, email) VALUES (2, 'a@x')", NULL, 0, 0, &k);
    cr_assert(strstr(k.res.err.message, "UNIQUE constraint failed: u.email"), "%s",
              k.res.err.message);
    collect_free(&k);
    cr_assert_eq(query_int(w, "SELECT count(*) FROM u"), 1);
    drv->close(w);
}

Test(sqlite, reader_is_read_only_and_reroutes)
{
    struct backend_conn *w = open_conn(ROLE_WRITER), *r;
    struct collect k;

    exec_ok(w, "CREATE TABLE t(x INTEGER)");
    exec_ok(w, "INSERT INTO t VALUES (1)");
    r = open_conn(ROLE_READER);
    cr_assert_eq(query_int(r, "PRAGMA query_only"), 1);
    cr_assert_eq(query_int(r, "SELECT count(*) FROM t"), 1);

    /* Data committed by the writer after the reader connected. */
    exec_ok(w, "INSERT INTO t VALUES (2)");
    cr_assert_eq(query_int(r, "SELECT sum(x) FROM t"), 3);

    /* A write on a reader fails ... */
    run_q(r, "INSERT INTO t VALUES (3)", NULL, 0, 0, &k);
    cr_assert(!k.res.ok);
    cr_assert_eq(k.res.err.code, DBPOOL_E_SQL);
    cr_assert_str_eq(k.res.err.sqlstate, "25006", "%s", k.res.err.message);
    cr_assert(!k.res.reroute_to_writer);
    collect_free(&k);

    /* ... and with BQ_REQUIRE_READONLY it is handed back without running. */
    run_q(r, "INSERT INTO t VALUES (4)", NULL, 0, BQ_REQUIRE_READONLY, &k);
    cr_assert(!k.res.ok);
    cr_assert(k.res.reroute_to_writer);
    cr_assert_eq(k.res.err.code, 0);
    collect_free(&k);
    run_q(r, "SELECT count(*) FROM t", NULL, 0, BQ_REQUIRE_READONLY, &k);
    cr_assert(k.res.ok, "%s", k.res.err.message);
    cr_assert(!k.res.reroute_to_writer);
    cr_assert_eq(k.cells[0][0].i, 2);
    collect_free(&k);
    cr_assert_eq(query_int(w, "SELECT count(*) FROM t"), 2);   /* nothing ran */

    /* A read-only transaction on the reader. */
    cr_assert_str_eq(drv->begin_sql(true, ROLE_READER), "BEGIN");
    cr_assert_eq(exec_ok(r, "BEGIN").txstate, 'T');
    cr_assert_eq(query_int(r, "SELECT count(*) FROM t"), 2);
    cr_assert_eq(drv->txstate(r), 'T');
    cr_assert_eq(exec_ok(r, "COMMIT").txstate, 'I');
    drv->close(r);
    drv->close(w);
}

Test(sqlite, reader_connect_without_database_fails)
{
    struct backend_conn *r = new_conn(ROLE_READER);
    struct opdone d = { 0 };

    drv->connect(r, on_done, &d);
    run_until(&d.done);
    cr_assert(!d.res.ok);
    cr_assert_eq(d.res.err.code, DBPOOL_E_UNAVAILABLE);
    drv->close(r);
}

Test(sqlite, transaction_state)
{
    struct backend_conn *w = open_conn(ROLE_WRITER);
    struct backend_result r;

    cr_assert_str_eq(drv->begin_sql(false, ROLE_WRITER), "BEGIN IMMEDIATE");
    exec_ok(w, "CREATE TABLE t(x)");
    cr_assert_eq(drv->txstate(w), 'I');
    r = exec_ok(w, drv->begin_sql(false, ROLE_WRITER));
    cr_assert_eq(r.txstate, 'T');
    cr_assert_eq(drv->txstate(w), 'T');
    r = exec_ok(w, "INSERT INTO t VALUES (1)");
    cr_assert_eq(r.txstate, 'T');
    r = exec_ok(w, "COMMIT");
    cr_assert_eq(r.txstate, 'I');
    cr_assert_eq(drv->txstate(w), 'I');
    cr_assert_eq(query_int(w, "SELECT count(*) FROM t"), 1);
    drv->close(w);
}

Test(sqlite, transaction_commit_and_rollback)
{
    struct backend_conn *w = open_conn(ROLE_WRITER);
    struct collect k;

    exec_ok(w, "CREATE TABLE t(x)");
    cr_assert_eq(exec_ok(w, "BEGIN IMMEDIATE").txstate, 'T');
    cr_assert_eq(exec_ok(w, "INSERT INTO t VALUES (1)").txstate, 'T');
    run_q(w, "SELECT * FROM nosuch", NULL, 0, 0, &k);   /* an error keeps the transaction */
    cr_assert(!k.res.ok);
    cr_assert_eq(k.res.txstate, 'T');
    collect_free(&k);
    cr_assert_eq(drv->txstate(w), 'T');
    cr_assert_eq(exec_ok(w, "COMMIT").txstate, 'I');
    cr_assert_eq(drv->txstate(w), 'I');
    cr_assert_eq(exec_ok(w, "BEGIN IMMEDIATE").txstate, 'T');
    exec_ok(w, "INSERT INTO t VALUES (2)");
    cr_assert_eq(exec_ok(w, "ROLLBACK").txstate, 'I');
    cr_assert_eq(query_int(w, "SELECT count(*) FROM t"), 1);
    drv->close(w);
}

Test(sqlite, route_and_limits)
{
    int wr = -1, rd = -1;

    cr_assert_eq(drv->route("SELECT 1", 8), ROLE_READER);
    cr_assert_eq(drv->route("  with x as (select 1) select * from x", 38), ROLE_READER);
    cr_assert_eq(drv->route("/* c */ VALUES (1)", 18), ROLE_READER);
    cr_assert_eq(drv->route("EXPLAIN SELECT 1", 16), ROLE_READER);
    cr_assert_eq(drv->route("PRAGMA journal_mode", 19), ROLE_WRITER);
    cr_assert_eq(drv->route("INSERT INTO t VALUES (1)", 24), ROLE_WRITER);
    cr_assert_eq(drv->route("SELECTED", 8), ROLE_WRITER);
    cr_assert_str_eq(drv->name, "sqlite");
    drv->pool_limits(&cfg, &wr, &rd);
    cr_assert_eq(wr, 1);
    cr_assert_eq(rd, 2);
    cfg.max_open_conns = 1;
    drv->pool_limits(&cfg, &wr, &rd);
    cr_assert_eq(wr, 1);
    cr_assert_eq(rd, 0);
}

Test(sqlite, memory_database)
{
    static char mem[] = ":memory:";
    struct backend_conn *w;
    int wr, rd;

    opts.file_path = mem;
    drv->pool_limits(&cfg, &wr, &rd);
    cr_assert_eq(rd, 0);
    w = open_conn(ROLE_WRITER);   /* WAL is not granted for :memory:, and that is fine */
    exec_ok(w, "CREATE TABLE t(x)");
    drv->close(w);
    opts.file_path = dbpath;
}

Test(sqlite, connect_in_missing_directory)
{
    static char bad[] = "/nonexistent-dbpoold-dir/sub/app.db";
    struct backend_conn *w;
    struct opdone d = { 0 };

    opts.file_path = bad;
    w = new_conn(ROLE_WRITER);
    drv->connect(w, on_done, &d);
    run_until(&d.done);
    cr_assert(!d.res.ok);
    cr_assert_eq(d.res.err.code, DBPOOL_E_UNAVAILABLE);
    cr_assert(d.res.broken);
    cr_assert(strstr(d.res.err.message, bad), "%s", d.res.err.message);
    cr_assert(strstr(d.res.err.message, "check filePath and that the directory exists and is "
                                        "writable by the daemon"),
              "%s", d.res.err.message);
    drv->close(w);
    opts.file_path = dbpath;
}

Test(sqlite, bad_settings_rejected_by_conn_new)
{
    static char evil[] = "WAL; DROP TABLE x";
    char err[256] = "";

    opts.journal_mode = evil;
    cr_assert_null(drv->conn_new(&cfg, base, ROLE_WRITER, err, sizeof(err)));
    cr_assert(strstr(err, "journalMode"), "%s", err);
    opts.journal_mode = journal_mode;
}

/* ---------------------------------------------------------- streaming */

#define BIG_ROWS 100000
#define BIG_SQL "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 100000) " \
                "SELECT x, 'row ' || x AS label FROM c"

Test(sqlite, back_pressure_delivers_every_row_once_in_order)
{
    struct backend_conn *w = open_conn(ROLE_WRITER);
    struct stream s = { .pause_every = 1000, .auto_resume = true };

    stream_start(&s, w, BIG_SQL, NULL);
    run_until(&s.done);
    cr_assert(s.res.ok, "%s", s.res.err.message);
    cr_assert(!s.bad);
    cr_assert_eq(s.columns_calls, 1);
    cr_assert_eq(s.rows, BIG_ROWS);
    cr_assert_eq(s.rows_at_done, BIG_ROWS);
    cr_assert_eq(s.res.rows_affected, BIG_ROWS);
    cr_assert_eq(s.resumes, BIG_ROWS / 1000);   /* done waited for the last resume */
    unschedule(&s.timer);
    cr_assert_eq(query_int(w, "SELECT 1"), 1);
    drv->close(w);
}

Test(sqlite, stream_without_pauses)
{
    struct backend_conn *w = open_conn(ROLE_WRITER);
    struct stream s = { 0 };

    stream_start(&s, w, BIG_SQL, NULL);
    run_until(&s.done);
    cr_assert(s.res.ok, "%s", s.res.err.message);
    cr_assert(!s.bad);
    cr_assert_eq(s.rows, BIG_ROWS);
    drv->close(w);
}

/* ------------------------------------------------------------- cancel */

#define ENDLESS_SQL "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) " \
                    "SELECT count(*) FROM c"

Test(sqlite, cancel_endless_query)
{
    struct backend_conn *w = open_conn(ROLE_WRITER);
    struct collect k = { 0 };
    struct later t = { 0 };
    double t0 = now_s();

    start_exec(w, ENDLESS_SQL, NULL, 0, 0, &collect_sink, &k);
    schedule(&t, 100, do_cancel, w);
    run_until(&k.done);
    unschedule(&t);
    cr_assert(!k.res.ok);
    cr_assert_eq(k.res.err.code, DBPOOL_E_CANCELED, "%d %s", k.res.err.code, k.res.err.message);
    cr_assert_str_eq(k.res.err.sqlstate, "57014");
    cr_assert_eq(k.res.txstate, 'I');
    cr_assert_lt(now_s() - t0, 5.0);
    collect_free(&k);
    /* The connection goes on; a cancel with nothing running is harmless. */
    drv->cancel(w);
    cr_assert_eq(query_int(w, "SELECT 42"), 42);
    drv->close(w);
}

Test(sqlite, cancel_inside_transaction_keeps_session)
{
    struct backend_conn *w = open_conn(ROLE_WRITER);
    struct collect k = { 0 };
    struct later t = { 0 };

    exec_ok(w, "BEGIN IMMEDIATE");
    start_exec(w, ENDLESS_SQL, NULL, 0, 0, &collect_sink, &k);
    schedule(&t, 50, do_cancel, w);
    run_until(&k.done);
    unschedule(&t);
    cr_assert_eq(k.res.err.code, DBPOOL_E_CANCELED);
    collect_free(&k);
    cr_assert_eq(exec_ok(w, "ROLLBACK").txstate, 'I');
    drv->close(w);
}

/* Cancel a stream paused by the sink: done comes without resume(). */
Test(sqlite, cancel_paused_stream)
{
    struct backend_conn *w = open_conn(ROLE_WRITER);
    struct stream s = { .pause_every = 1, .auto_resume = true };
    struct later t = { 0 };

    stream_start(&s, w, BIG_SQL, NULL);
    run_until(&s.paused);
    unschedule(&s.timer);   /* nobody resumes */
    schedule(&t, 100, do_cancel, w);
    run_until(&s.done);
    unschedule(&t);
    cr_assert_eq(s.res.err.code, DBPOOL_E_CANCELED, "%s", s.res.err.message);
    cr_assert_eq(s.rows, 1);
    cr_assert_eq(query_int(w, "SELECT 7"), 7);
    drv->close(w);
}

struct busy_ctx {
    sqlite3 *other;
};

/* Another process-like connection holds the write lock. */
static sqlite3 *hold_write_lock(void)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    return db;
}

Test(sqlite, busy_timeout_reports_locked)
{
    struct backend_conn *w;
    struct collect k;
    sqlite3 *other;
    double t0;

    cfg.timeout_ms = 200;
    w = open_conn(ROLE_WRITER);
    exec_ok(w, "CREATE TABLE t(x)");
    other = hold_write_lock();
    t0 = now_s();
    run_q(w, "INSERT INTO t VALUES (1)", NULL, 0, 0, &k);
    cr_assert(!k.res.ok);
    cr_assert_eq(k.res.err.code, DBPOOL_E_SQL);
    cr_assert_str_eq(k.res.err.sqlstate, "");
    cr_assert_str_eq(k.res.err.message,
                     "database is locked (another process holds the write lock; busy timeout 200 ms)");
    cr_assert_geq(now_s() - t0, 0.15);
    collect_free(&k);
    cr_assert_eq(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_close(other), SQLITE_OK);
    exec_ok(w, "INSERT INTO t VALUES (1)");
    drv->close(w);
}

/* A deferred transaction that read, then writes after someone else wrote. */
Test(sqlite, stale_snapshot_is_serialization_failure)
{
    struct backend_conn *w = open_conn(ROLE_WRITER);
    struct collect k;
    sqlite3 *other = NULL;

    exec_ok(w, "CREATE TABLE t(x)");
    exec_ok(w, "BEGIN");
    cr_assert_eq(query_int(w, "SELECT count(*) FROM t"), 0);
    cr_assert_eq(sqlite3_open(dbpath, &other), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(other, "INSERT INTO t VALUES (1)", NULL, NULL, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_close(other), SQLITE_OK);
    run_q(w, "INSERT INTO t VALUES (2)", NULL, 0, 0, &k);
    cr_assert(!k.res.ok);
    cr_assert_str_eq(k.res.err.sqlstate, "40001", "%s", k.res.err.message);
    cr_assert_eq(k.res.txstate, 'T');
    collect_free(&k);
    cr_assert_eq(exec_ok(w, "ROLLBACK").txstate, 'I');
    drv->close(w);
}

Test(sqlite, cancel_while_waiting_for_lock)
{
    struct backend_conn *w;
    struct collect k = { 0 };
    struct later t = { 0 };
    sqlite3 *other;
    double t0;

    cfg.timeout_ms = 30000;
    w = open_conn(ROLE_WRITER);
    exec_ok(w, "CREATE TABLE t(x)");
    other = hold_write_lock();
    t0 = now_s();
    start_exec(w, "BEGIN IMMEDIATE", NULL, 0, 0, &collect_sink, &k);
    schedule(&t, 100, do_cancel, w);
    run_until(&k.done);
    unschedule(&t);
    cr_assert_eq(k.res.err.code, DBPOOL_E_CANCELED, "%s", k.res.err.message);
    cr_assert_lt(now_s() - t0, 5.0);
    collect_free(&k);
    cr_assert_eq(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_close(other), SQLITE_OK);
    drv->close(w);
}

/* -------------------------------------------------------------- close */

Test(sqlite, close_with_running_query_then_quiesce)
{
    struct backend_conn *w = open_conn(ROLE_WRITER);
    static const struct backend_sink sink = { NULL, never_row, never_done };
    bool called = false;
    struct later t = { 0 };
    double t0;

    start_exec(w, ENDLESS_SQL, NULL, 0, 0, &sink, &called);
    schedule(&t, 100, do_close, w);
    run_for(300);
    unschedule(&t);
    cr_assert(!called, "a callback ran after close");
    t0 = now_s();
    drv->quiesce();
    cr_assert_lt(now_s() - t0, 5.0);
}

Test(sqlite, close_while_worker_waits_for_room)
{
    struct backend_conn *w = open_conn(ROLE_WRITER);
    struct stream s = { .pause_every = 1, .auto_resume = true };

    stream_start(&s, w, BIG_SQL, NULL);
    run_until(&s.paused);
    unschedule(&s.timer);
    run_for(200);   /* the worker fills the queue and waits */
    drv->close(w);
    run_for(50);
    cr_assert(!s.done);
    drv->quiesce();
}

Test(sqlite, close_while_waiting_for_lock)
{
    struct backend_conn *w;
    static const struct backend_sink sink = { NULL, never_row, never_done };
    bool called = false;
    sqlite3 *other;
    double t0;

    cfg.timeout_ms = 30000;
    w = open_conn(ROLE_WRITER);
    other = hold_write_lock();
    start_exec(w, "BEGIN IMMEDIATE", NULL, 0, 0, &sink, &called);
    run_for(100);
    t0 = now_s();
    drv->close(w);
    drv->quiesce();
    cr_assert_lt(now_s() - t0, 5.0);
    cr_assert(!called);
    cr_assert_eq(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_close(other), SQLITE_OK);
}

Test(sqlite, close_from_row_callback)
{
    struct backend_conn *w = open_conn(ROLE_WRITER);
    struct stream s = { .on_row = close_after_rows };

    stream_start(&s, w, BIG_SQL, NULL);
    run_until(&s.done);
    run_for(50);
    cr_assert_eq(s.rows, 300);   /* no row after close */
    drv->quiesce();
}

Test(sqlite, close_from_done_callback)
{
    struct close_in_done x = { open_conn(ROLE_WRITER), false };
    static const struct backend_sink sink = { NULL, NULL, close_in_done_cb };

    start_exec(x.c, "SELECT 1", NULL, 0, 0, &sink, &x);
    run_until(&x.done);
    run_for(20);
    drv->quiesce();
}

/* A completion may start the next operation on the same connection. */
struct chain {
    struct backend_conn *c;
    struct collect second;
    bool first_done;
};

static void chain_first_done(void *arg, const struct backend_result *res)
{
    struct chain *x = arg;
    struct backend_query q = { "SELECT 99", 9, NULL, 0, 0, NULL };   /* dies with this frame */

    cr_assert(res->ok, "%s", res->err.message);
    x->first_done = true;
    drv->exec(x->c, &q, &collect_sink, &x->second);
}

Test(sqlite, exec_from_done_callback)
{
    struct chain x = { .c = open_conn(ROLE_WRITER) };
    static const struct backend_sink sink = { NULL, NULL, chain_first_done };

    start_exec(x.c, "SELECT 1", NULL, 0, 0, &sink, &x);
    run_until(&x.second.done);
    cr_assert(x.first_done);
    cr_assert(x.second.res.ok, "%s", x.second.res.err.message);
    cr_assert_eq(x.second.cells[0][0].i, 99);
    collect_free(&x.second);
    drv->close(x.c);
}

Test(sqlite, close_without_connect)
{
    struct backend_conn *w = new_conn(ROLE_WRITER);
    drv->close(w);
    drv->quiesce();
}

/* Many connections opened and closed: finished workers are reaped. */
Test(sqlite, churn)
{
    for (int i = 0; i < 50; i++) {
        struct backend_conn *w = open_conn(ROLE_WRITER);
        cr_assert_eq(query_int(w, "SELECT 1"), 1);
        drv->close(w);
    }
}

/* The caller may free the statement and parameters right after exec():
 * the driver works on its own copy (it must, since close() may abandon the
 * operation while the worker still uses them). */
Test(sqlite, exec_copies_its_input)
{
    struct backend_conn *w = open_conn(ROLE_WRITER);
    struct collect k = { 0 };
    char *sql = strdup("SELECT ? || 'x'");
    char *text = strdup("abc");
    dbpool_value *p = malloc(sizeof(*p));

    cr_assert(sql && text && p);
    *p = dbpool_textn(text, 3);
    start_exec(w, sql, p, 1, 0, &collect_sink, &k);
    memset(sql, 'Z', strlen(sql));
    memset(text, 'Z', 3);
    free(sql);
    free(text);
    free(p);
    run_until(&k.done);
    cr_assert(k.res.ok, "%s", k.res.err.message);
    cr_assert_str_eq(k.cells[0][0].s, "abcx");
    collect_free(&k);
    drv->close(w);
}
