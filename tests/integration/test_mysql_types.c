/*
 * test_mysql_types.c — the MySQL driver's statement side through the real
 * daemon and libdbpool against a real MariaDB server: the type mapping in
 * both protocols (text for statements without parameters, binary for
 * prepared statements), parameters, the placeholder count check, rows
 * affected and insert ids, the statement cache, CALL and multi-statement
 * text, transaction state after DDL and a deadlock, and a long stream
 * through a slow reader with the daemon's memory bounded.
 *
 * Run with DBPOOL_TEST_BACKEND=mysql and DBPOOL_TEST_MYSQL_{HOST,DB,USER,
 * PASSWORD_FILE} (tests/mysql/run-mysql-tests.sh sets them); with another
 * backend every test fails (it does not skip): these tests are MySQL's.
 * Each test drops and creates its own tables (mt_*).
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "common/proto.h"
#include "dbpool.h"
#include "harness.h"

TestSuite(mytypes, .fini = h_fini, .timeout = 120);

static dbpool_conn *start_with(const struct h_opts *opts)
{
    cr_assert_str_eq(h_profile()->name, "mysql",
                     "test_mysql_types needs DBPOOL_TEST_BACKEND=mysql and a MariaDB server");
    h_start(opts);
    return h_connect();
}

static dbpool_conn *start(void)
{
    return start_with(NULL);
}

/* ------------------------------------------------------------ the types */

#define TYPES_TABLE                                                                        \
    "CREATE TABLE mt_types (a TINYINT, b SMALLINT UNSIGNED, c MEDIUMINT, d INT, "          \
    "e BIGINT UNSIGNED, f FLOAT, g DOUBLE, h DECIMAL(30,10), i DATE, j DATETIME(6), "      \
    "k TIMESTAMP(3) NULL, l TIME, m YEAR, n CHAR(3), o VARCHAR(10), p BINARY(3), "         \
    "q VARBINARY(10), r TINYTEXT, s TEXT, u LONGTEXT, w BLOB, y LONGBLOB, z BIT(1), "      \
    "z2 BIT(12), z3 JSON, z4 ENUM('a','b'), z5 SET('x','y'), z6 BOOLEAN, z8 BIGINT, "      \
    "z9 INT UNSIGNED, zn INT)"

#define TYPES_ROW                                                                          \
    "INSERT INTO mt_types VALUES (-128, 65535, -8388608, 2147483647, "                     \
    "18446744073709551615, 1.1, 2.5e-300, '12345678901234567890.0123456789', '2024-02-29',"\
    " '2024-02-29 12:34:56.123456', '2024-02-29 12:34:56.789', '-838:59:59', 2024, 'ab', " \
    "'cd', x'010203', x'00ff', 'tt', 'ss', 'll', x'62', x'64', b'1', b'101010101010', "    \
    "'{\"a\": 1}', 'b', 'x,y', true, -9223372036854775808, 4294967295, NULL)"

struct expect {
    const char *name;
    const char *decl;
    dbpool_type type;
    int64_t i;
    double f;
    const char *s;    /* TEXT, or BLOB bytes */
    size_t len;       /* BLOB */
};

static const struct expect types_expect[] = {
    { "a", "TINYINT", DBPOOL_INT64, -128, 0, NULL, 0 },
    { "b", "SMALLINT UNSIGNED", DBPOOL_INT64, 65535, 0, NULL, 0 },
    { "c", "MEDIUMINT", DBPOOL_INT64, -8388608, 0, NULL, 0 },
    { "d", "INT", DBPOOL_INT64, 2147483647, 0, NULL, 0 },
    { "e", "BIGINT UNSIGNED", DBPOOL_TEXT, 0, 0, "18446744073709551615", 0 },
    { "f", "FLOAT", DBPOOL_FLOAT64, 0, 1.1, NULL, 0 },
    { "g", "DOUBLE", DBPOOL_FLOAT64, 0, 2.5e-300, NULL, 0 },
    { "h", "DECIMAL", DBPOOL_TEXT, 0, 0, "12345678901234567890.0123456789", 0 },
    { "i", "DATE", DBPOOL_TEXT, 0, 0, "2024-02-29", 0 },
    { "j", "DATETIME", DBPOOL_TEXT, 0, 0, "2024-02-29 12:34:56.123456", 0 },
    { "k", "TIMESTAMP", DBPOOL_TEXT, 0, 0, "2024-02-29 12:34:56.789", 0 },
    { "l", "TIME", DBPOOL_TEXT, 0, 0, "-838:59:59", 0 },
    { "m", "YEAR", DBPOOL_INT64, 2024, 0, NULL, 0 },
    { "n", "CHAR", DBPOOL_TEXT, 0, 0, "ab", 0 },
    { "o", "VARCHAR", DBPOOL_TEXT, 0, 0, "cd", 0 },
    { "p", "BINARY", DBPOOL_BLOB, 0, 0, "\x01\x02\x03", 3 },
    { "q", "VARBINARY", DBPOOL_BLOB, 0, 0, "\x00\xff", 2 },
    { "r", "TINYTEXT", DBPOOL_TEXT, 0, 0, "tt", 0 },
    { "s", "TEXT", DBPOOL_TEXT, 0, 0, "ss", 0 },
    { "u", "LONGTEXT", DBPOOL_TEXT, 0, 0, "ll", 0 },
    { "w", "BLOB", DBPOOL_BLOB, 0, 0, "b", 1 },
    { "y", "LONGBLOB", DBPOOL_BLOB, 0, 0, "d", 1 },
    { "z", "BIT", DBPOOL_BLOB, 0, 0, "\x01", 1 },
    { "z2", "BIT", DBPOOL_BLOB, 0, 0, "\x0a\xaa", 2 },
    { "z3", "JSON", DBPOOL_TEXT, 0, 0, "{\"a\": 1}", 0 },
    { "z4", "ENUM", DBPOOL_TEXT, 0, 0, "b", 0 },
    { "z5", "SET", DBPOOL_TEXT, 0, 0, "x,y", 0 },
    { "z6", "TINYINT", DBPOOL_INT64, 1, 0, NULL, 0 },
    { "z8", "BIGINT", DBPOOL_INT64, INT64_MIN, 0, NULL, 0 },
    { "z9", "INT UNSIGNED", DBPOOL_INT64, 4294967295, 0, NULL, 0 },
    { "zn", "INT", DBPOOL_NULL, 0, 0, NULL, 0 },
};

static void check_value(const struct expect *e, const dbpool_value *v, const char *proto)
{
    cr_assert_eq(v->type, e->type, "%s protocol, column %s: type %s, expected %s", proto,
                 e->name, dbpool_type_name(v->type), dbpool_type_name(e->type));
    switch (e->type) {
    case DBPOOL_INT64:
        cr_assert_eq(v->u.i, e->i, "%s protocol, column %s: %lld, expected %lld", proto, e->name,
                     (long long)v->u.i, (long long)e->i);
        break;
    case DBPOOL_FLOAT64:
        cr_assert_eq(v->u.f, e->f, "%s protocol, column %s: %.17g, expected %.17g", proto,
                     e->name, v->u.f, e->f);
        break;
    case DBPOOL_TEXT:
        cr_assert_eq(v->u.s.len, strlen(e->s), "%s protocol, column %s: \"%.*s\", expected \"%s\"",
                     proto, e->name, (int)v->u.s.len, v->u.s.ptr, e->s);
        cr_assert(memcmp(v->u.s.ptr, e->s, v->u.s.len) == 0, "%s protocol, column %s: \"%.*s\"",
                  proto, e->name, (int)v->u.s.len, v->u.s.ptr);
        break;
    case DBPOOL_BLOB:
        cr_assert_eq(v->u.s.len, e->len, "%s protocol, column %s: %zu bytes, expected %zu", proto,
                     e->name, v->u.s.len, e->len);
        cr_assert(memcmp(v->u.s.ptr, e->s, e->len) == 0, "%s protocol, column %s: bytes differ",
                  proto, e->name);
        break;
    default:
        break;
    }
}

static void check_types(dbpool_result *r, const char *proto)
{
    size_t n = sizeof(types_expect) / sizeof(types_expect[0]);

    cr_assert_eq(dbpool_result_nrows(r), 1);
    cr_assert_eq(dbpool_result_ncols(r), n, "%s protocol: %zu columns", proto,
                 dbpool_result_ncols(r));
    for (size_t i = 0; i < n; i++) {
        const dbpool_column *col = &dbpool_result_columns(r)[i];
        cr_assert_str_eq(col->name, types_expect[i].name);
        cr_assert_str_eq(col->decl_type, types_expect[i].decl, "%s protocol, column %s: \"%s\"",
                         proto, col->name, col->decl_type);
        check_value(&types_expect[i], dbpool_result_value(r, 0, i), proto);
    }
}

Test(mytypes, every_type_in_both_protocols)
{
    dbpool_conn *c = start();
    dbpool_value one = dbpool_int(1);

    h_exec(c, "DROP TABLE IF EXISTS mt_types");
    h_exec(c, TYPES_TABLE);
    h_exec(c, TYPES_ROW);
    dbpool_result *text = h_query(c, "SELECT * FROM mt_types", NULL, 0);
    check_types(text, "text");
    dbpool_result *bin = h_query(c, "SELECT * FROM mt_types WHERE 1 = ?", &one, 1);
    check_types(bin, "binary");
    dbpool_result_free(text);
    dbpool_result_free(bin);
    dbpool_close(c);
    h_stop_ok();
}

/* ----------------------------------------------------------- parameters */

Test(mytypes, parameters_round_trip_extremes_utf8_and_binary)
{
    dbpool_conn *c = start();
    unsigned char bytes[256];
    const char *utf8 = "caf\xc3\xa9 \xf0\x9f\x98\x80 \xf0\x9d\x84\x9e";   /* é, 😀, 𝄞 */

    for (int i = 0; i < 256; i++)
        bytes[i] = (unsigned char)i;
    h_exec(c, "DROP TABLE IF EXISTS mt_params");
    h_exec(c, "CREATE TABLE mt_params (id INT AUTO_INCREMENT PRIMARY KEY, i BIGINT, f DOUBLE, "
              "t VARCHAR(100) CHARACTER SET utf8mb4, b LONGBLOB, n INT)");
    const int64_t ints[] = { INT64_MIN, -1, 0, INT64_MAX };
    for (size_t k = 0; k < 4; k++) {
        dbpool_value p[5] = { dbpool_int(ints[k]), dbpool_float(k == 0 ? -0.0 : 1e308 / (double)(k + 1)),
                              dbpool_text(utf8), dbpool_blob(bytes, sizeof(bytes)), dbpool_null() };
        dbpool_result *r = h_query(c, "INSERT INTO mt_params (i, f, t, b, n) VALUES (?, ?, ?, ?, ?)",
                                   p, 5);
        cr_assert_eq(dbpool_result_rows_affected(r), 1);
        cr_assert_eq(dbpool_result_last_insert_id(r), (int64_t)k + 1,
                     "insert id %lld, expected %zu", (long long)dbpool_result_last_insert_id(r),
                     k + 1);
        dbpool_result_free(r);
    }
    /* Read back through both protocols. */
    for (int proto = 0; proto < 2; proto++) {
        dbpool_value zero = dbpool_int(0);
        dbpool_result *r = proto ? h_query(c, "SELECT i, f, t, b, n FROM mt_params WHERE id > ? "
                                              "ORDER BY id", &zero, 1)
                                 : h_query(c, "SELECT i, f, t, b, n FROM mt_params ORDER BY id", NULL, 0);
        cr_assert_eq(dbpool_result_nrows(r), 4);
        for (size_t k = 0; k < 4; k++) {
            const dbpool_value *v = dbpool_result_value(r, k, 0);
            cr_assert_eq(v->type, DBPOOL_INT64);
            cr_assert_eq(v->u.i, ints[k], "row %zu: %lld", k, (long long)v->u.i);
            v = dbpool_result_value(r, k, 2);
            cr_assert_eq(v->type, DBPOOL_TEXT);
            cr_assert_eq(v->u.s.len, strlen(utf8));
            cr_assert(memcmp(v->u.s.ptr, utf8, strlen(utf8)) == 0, "4-byte UTF-8 changed");
            v = dbpool_result_value(r, k, 3);
            cr_assert_eq(v->type, DBPOOL_BLOB);
            cr_assert_eq(v->u.s.len, sizeof(bytes));
            cr_assert(memcmp(v->u.s.ptr, bytes, sizeof(bytes)) == 0, "BLOB bytes changed");
            cr_assert_eq(dbpool_result_value(r, k, 4)->type, DBPOOL_NULL);
        }
        const dbpool_value *f = dbpool_result_value(r, 3, 1);
        cr_assert_eq(f->type, DBPOOL_FLOAT64);
        cr_assert_eq(f->u.f, 1e308 / 4.0);
        dbpool_result_free(r);
    }
    /* A long string through the binary protocol (grows the column buffer). */
    char *big = malloc(300001);
    cr_assert_not_null(big);
    memset(big, 'x', 300000);
    big[300000] = '\0';
    dbpool_value bp = dbpool_text(big);
    dbpool_result *r = h_query(c, "SELECT CONCAT(?, 'y') AS v, 5 AS five", &bp, 1);
    const dbpool_value *v = dbpool_result_value(r, 0, 0);
    cr_assert_eq(v->type, DBPOOL_TEXT);
    cr_assert_eq(v->u.s.len, 300001u, "long value: %zu bytes", v->u.s.len);
    cr_assert_eq(v->u.s.ptr[300000], 'y');
    cr_assert_eq(dbpool_result_value(r, 0, 1)->u.i, 5);
    dbpool_result_free(r);
    free(big);
    dbpool_close(c);
    h_stop_ok();
}

Test(mytypes, unsigned_bigint_above_int64_is_text_never_wrapped)
{
    dbpool_conn *c = start();
    dbpool_value one = dbpool_int(1);
    const char *sql[2] = { "SELECT CAST(18446744073709551615 AS UNSIGNED), "
                           "CAST(9223372036854775807 AS UNSIGNED), CAST(9223372036854775808 AS UNSIGNED)",
                           "SELECT CAST(18446744073709551615 AS UNSIGNED), "
                           "CAST(9223372036854775807 AS UNSIGNED), CAST(9223372036854775808 AS UNSIGNED) "
                           "FROM DUAL WHERE 1 = ?" };

    for (int proto = 0; proto < 2; proto++) {
        dbpool_result *r = h_query(c, sql[proto], proto ? &one : NULL, proto ? 1 : 0);
        const dbpool_value *v = dbpool_result_value(r, 0, 0);
        cr_assert_eq(v->type, DBPOOL_TEXT, "protocol %d: max unsigned is %s", proto,
                     dbpool_type_name(v->type));
        cr_assert_eq(v->u.s.len, 20u);
        cr_assert(memcmp(v->u.s.ptr, "18446744073709551615", 20) == 0);
        v = dbpool_result_value(r, 0, 1);
        cr_assert_eq(v->type, DBPOOL_INT64);
        cr_assert_eq(v->u.i, INT64_MAX);
        v = dbpool_result_value(r, 0, 2);
        cr_assert_eq(v->type, DBPOOL_TEXT);
        cr_assert(memcmp(v->u.s.ptr, "9223372036854775808", 19) == 0);
        cr_assert_str_eq(dbpool_result_columns(r)[0].decl_type, "BIGINT UNSIGNED");
        dbpool_result_free(r);
    }
    dbpool_close(c);
    h_stop_ok();
}

Test(mytypes, placeholder_count_must_match_the_parameters)
{
    dbpool_conn *c = start();
    dbpool_value p[3] = { dbpool_int(1), dbpool_int(2), dbpool_int(3) };
    dbpool_result *r = NULL;

    int rc = dbpool_query(c, "SELECT ?, ?", p, 3, &r);
    cr_assert_neq(rc, 0, "3 parameters for 2 placeholders were accepted");
    const dbpool_error *e = dbpool_last_error(c);
    cr_assert_eq(e->code, DBPOOL_E_SQL);
    cr_assert_str_eq(e->sqlstate, "07001");
    cr_assert_eq(e->vendor_code, 0, "a check of the daemon's has no vendor code");
    cr_assert(strstr(e->message, "2 ? placeholders but 3 parameters"), "message: %s", e->message);
    /* Fewer parameters, the same statement (cached) */
    rc = dbpool_query(c, "SELECT ?, ?", p, 1, &r);
    cr_assert_neq(rc, 0);
    cr_assert(strstr(dbpool_last_error(c)->message, "but 1 parameter was given"), "message: %s",
              dbpool_last_error(c)->message);
    /* No parameters at all: the text protocol would call the ? a syntax
     * error; placeholders in strings, quoted names and comments do not count. */
    rc = dbpool_query(c, "SELECT ?, '?', \"?\", `?` -- ?\n, 1 # ?\n /* ? */", NULL, 0, &r);
    cr_assert_neq(rc, 0);
    cr_assert_str_eq(dbpool_last_error(c)->sqlstate, "07001");
    cr_assert(strstr(dbpool_last_error(c)->message, "1 ? placeholder but no parameters"),
              "message: %s", dbpool_last_error(c)->message);
    r = h_query(c, "SELECT '?', \"a\\\"?\", 'it''s ?' -- ?\n, 1 # ?\n /* ? */", NULL, 0);
    cr_assert_eq(dbpool_result_ncols(r), 4);
    dbpool_result_free(r);
    /* The session and the statement are fine with the right count. */
    r = h_query(c, "SELECT ?, ?", p, 2);
    cr_assert_eq(dbpool_result_value(r, 0, 1)->u.i, 2);
    dbpool_result_free(r);
    dbpool_close(c);
    h_stop_ok();
}

/* ------------------------------------------- statement cache, status */

static double metric_total(const char *key)
{
    const char *const keys[] = { "totals", key, NULL };

    return h_status_num("/pools", keys);
}

Test(mytypes, prepared_statements_are_cached_per_connection)
{
    struct h_opts o = { .max_open_conns = 1 };   /* one server connection: one cache */
    dbpool_conn *c = start_with(&o);

    for (int k = 0; k < 5; k++) {
        dbpool_value p = dbpool_int(k);
        cr_assert_eq(h_scalar(c, "SELECT 40 + 2"), 42);
        dbpool_result *r = h_query(c, "SELECT ? + 1", &p, 1);
        cr_assert_eq(dbpool_result_value(r, 0, 0)->u.i, k + 1);
        dbpool_result_free(r);
    }
    /* first sight: prepared, run and closed; second: prepared and kept;
     * then executed from the cache */
    double prepares = metric_total("prepares"), cached = metric_total("cached_executions");
    cr_assert_eq(prepares, 1, "the statement was kept %g times", prepares);
    cr_assert_eq(cached, 3, "cached executions: %g", cached);
    /* DDL forgets them (the server re-prepares on its own; the pool's rule). */
    h_exec(c, "DROP TABLE IF EXISTS mt_ddl");
    dbpool_value p = dbpool_int(1);
    dbpool_result *r = h_query(c, "SELECT ? + 1", &p, 1);
    dbpool_result_free(r);
    cr_assert_eq(metric_total("prepares"), prepares + 1, "not prepared again after DDL");
    dbpool_close(c);
    h_stop_ok();
}

/* ---------------------------------------------- CALL, multi-statements */

Test(mytypes, call_with_one_result_set_works_more_are_refused)
{
    dbpool_conn *c = start();

    h_exec(c, "DROP TABLE IF EXISTS mt_call");
    h_exec(c, "CREATE TABLE mt_call (v INT)");
    h_exec(c, "DROP PROCEDURE IF EXISTS mt_noresult");
    h_exec(c, "CREATE PROCEDURE mt_noresult(x INT) BEGIN INSERT INTO mt_call VALUES (x), (x); END");
    h_exec(c, "DROP PROCEDURE IF EXISTS mt_one");
    h_exec(c, "CREATE PROCEDURE mt_one() BEGIN SELECT v FROM mt_call ORDER BY v; END");
    h_exec(c, "DROP PROCEDURE IF EXISTS mt_two");
    h_exec(c, "CREATE PROCEDURE mt_two() BEGIN SELECT 1 AS a; SELECT 2 AS b; END");

    h_exec(c, "CALL mt_noresult(7)");
    dbpool_value p = dbpool_int(8);
    h_execp(c, "CALL mt_noresult(?)", &p, 1);   /* binary protocol */
    dbpool_result *r = h_query(c, "CALL mt_one()", NULL, 0);
    cr_assert_eq(dbpool_result_nrows(r), 4);
    cr_assert_eq(dbpool_result_value(r, 3, 0)->u.i, 8);
    dbpool_result_free(r);

    int rc = dbpool_query(c, "CALL mt_two()", NULL, 0, &r);
    cr_assert_neq(rc, 0, "a second result set was dropped silently");
    cr_assert_str_eq(dbpool_last_error(c)->sqlstate, "0A000");
    cr_assert(strstr(dbpool_last_error(c)->message, "more than one result set"), "message: %s",
              dbpool_last_error(c)->message);
    cr_assert_eq(h_scalar(c, "SELECT 3"), 3, "the session is unusable after CALL");

    rc = dbpool_query(c, "SELECT 1; SELECT 2", NULL, 0, &r);
    cr_assert_neq(rc, 0, "multi-statement text was accepted");
    cr_assert_eq(dbpool_last_error(c)->code, DBPOOL_E_SQL);
    cr_assert_eq(dbpool_last_error(c)->vendor_code, 1064);
    cr_assert(strstr(dbpool_last_error(c)->message, "one statement per request"),
              "the syntax error does not say why: %s", dbpool_last_error(c)->message);
    /* a trailing ';' (and a comment after it) is one statement */
    cr_assert_eq(h_scalar(c, "SELECT 5; -- done"), 5);
    rc = dbpool_query(c, "SELECT 'a;b' FROM DUAL WHERE", NULL, 0, &r);   /* a syntax error */
    cr_assert_neq(rc, 0);
    cr_assert_null(strstr(dbpool_last_error(c)->message, "one statement per request"),
                   "a ';' inside a string counted: %s", dbpool_last_error(c)->message);
    cr_assert_eq(h_scalar(c, "SELECT 4"), 4);
    dbpool_close(c);
    h_stop_ok();
}

/* ---------------------------------------------------- transaction state */

Test(mytypes, ddl_implicit_commit_ends_the_transaction)
{
    dbpool_conn *c = start();

    h_exec(c, "DROP TABLE IF EXISTS mt_tx");
    h_exec(c, "DROP TABLE IF EXISTS mt_tx2");
    h_exec(c, "CREATE TABLE mt_tx (v INT)");
    cr_assert_eq(dbpool_begin(c, 0), 0);
    h_exec(c, "INSERT INTO mt_tx VALUES (1)");
    cr_assert_eq(dbpool_txstate_of(c), DBPOOL_TX_ACTIVE);
    h_exec(c, "CREATE TABLE mt_tx2 (v INT)");   /* commits the INSERT */
    cr_assert_eq(dbpool_txstate_of(c), DBPOOL_TX_IDLE, "the session did not follow the implicit "
                 "commit: txstate %c", dbpool_txstate_of(c));
    h_exec(c, "INSERT INTO mt_tx VALUES (2)");   /* autocommit now */
    /* A DDL that fails still committed first (MySQL commits before it
     * runs the statement); the error packet says nothing about it. */
    cr_assert_eq(dbpool_begin(c, 0), 0);
    h_exec(c, "INSERT INTO mt_tx VALUES (3)");
    cr_assert_neq(dbpool_exec(c, "CREATE TABLE mt_tx2 (v INT)"), 0, "CREATE of an existing table");
    cr_assert_eq(dbpool_last_error(c)->vendor_code, 1050, "vendor code %d",
                 (int)dbpool_last_error(c)->vendor_code);
    cr_assert_eq(dbpool_txstate_of(c), DBPOOL_TX_IDLE, "the session did not follow the commit "
                 "of a failed DDL: txstate %c", dbpool_txstate_of(c));
    /* A DDL refused by the parser commits nothing. */
    cr_assert_eq(dbpool_begin(c, 0), 0);
    h_exec(c, "INSERT INTO mt_tx VALUES (4)");
    cr_assert_neq(dbpool_exec(c, "CREATE TABLE (broken"), 0);
    cr_assert_eq(dbpool_txstate_of(c), DBPOOL_TX_ACTIVE, "txstate %c after a syntax error",
                 dbpool_txstate_of(c));
    cr_assert_eq(dbpool_rollback(c), 0);
    dbpool_conn *other = h_connect();
    cr_assert_eq(h_scalar(other, "SELECT COUNT(*) FROM mt_tx"), 3);
    dbpool_close(other);
    dbpool_close(c);
    h_stop_ok();
}

struct deadlock_arg {
    volatile int finished;
    volatile int holds_row2;
    int rc;
    dbpool_error err;
    dbpool_txstate tx;
    int64_t in_tx;   /* the server's @@in_transaction after the first UPDATE */
};

static int64_t scalar_of(dbpool_conn *c, const char *sql)
{
    dbpool_result *r = NULL;
    int64_t v = -1;

    if (dbpool_query(c, sql, NULL, 0, &r) == 0 && dbpool_result_nrows(r) == 1)
        v = dbpool_result_value(r, 0, 0)->u.i;
    dbpool_result_free(r);
    return v;
}

static void *second_locker(void *p)
{
    struct deadlock_arg *a = p;
    dbpool_error err;
    dbpool_conn *c = dbpool_connect(h_paths()->sock, H_POOL, "t2", &err);

    a->rc = -1;
    if (!c) {
        a->err = err;
        a->finished = 1;
        return NULL;
    }
    if (dbpool_begin(c, 0) == 0 && dbpool_exec(c, "UPDATE mt_dl SET v = v + 1 WHERE id = 2") == 0) {
        a->in_tx = scalar_of(c, "SELECT @@in_transaction");
        a->holds_row2 = 1;
        a->rc = dbpool_exec(c, "UPDATE mt_dl SET v = v + 1 WHERE id = 1");   /* waits for t1 */
        a->err = *dbpool_last_error(c);
        a->tx = dbpool_txstate_of(c);
        if (a->rc == 0)
            (void)dbpool_commit(c);
    } else {
        a->err = *dbpool_last_error(c);
    }
    dbpool_close(c);
    a->finished = 1;
    return NULL;
}

Test(mytypes, deadlock_victim_is_told_and_its_transaction_ends)
{
    dbpool_conn *c = start();
    struct deadlock_arg a = { 0 };
    pthread_t t;

    h_exec(c, "DROP TABLE IF EXISTS mt_dl");
    h_exec(c, "CREATE TABLE mt_dl (id INT PRIMARY KEY, v INT) ENGINE=InnoDB");
    h_exec(c, "INSERT INTO mt_dl VALUES (1, 0), (2, 0)");
    cr_assert_eq(dbpool_begin(c, 0), 0);
    h_exec(c, "UPDATE mt_dl SET v = v + 1 WHERE id = 1");
    cr_assert_eq(pthread_create(&t, NULL, second_locker, &a), 0);
    /* Wait until the other transaction holds row 2 (it then waits for row 1,
     * or soon will): asking for row 2 now closes the cycle. */
    uint64_t deadline = h_now_ms() + 20000;
    while (!a.holds_row2) {
        cr_assert(!a.finished, "the second transaction ended early: rc %d, %s", a.rc,
                  a.err.message);
        cr_assert_lt(h_now_ms(), deadline, "the second transaction never locked row 2");
        h_sleep_ms(5);
    }
    cr_assert_eq(a.in_tx, 1, "the second session is not in a transaction on the server");
    int rc = dbpool_exec(c, "UPDATE mt_dl SET v = v + 1 WHERE id = 2");   /* deadlock */
    dbpool_error mine = *dbpool_last_error(c);
    dbpool_txstate mytx = dbpool_txstate_of(c);
    if (rc == 0)
        (void)dbpool_commit(c);
    pthread_join(t, NULL);
    /* Exactly one of the two is the victim: 40001, and its transaction is over. */
    const dbpool_error *victim = rc != 0 ? &mine : &a.err;
    dbpool_txstate vtx = rc != 0 ? mytx : a.tx;
    cr_assert((rc != 0) != (a.rc != 0), "expected exactly one deadlock victim (rc %d and %d)", rc,
              a.rc);
    cr_assert_str_eq(victim->sqlstate, "40001", "victim: %s %s", victim->sqlstate, victim->message);
    cr_assert_eq(victim->vendor_code, 1213, "vendor code %d", (int)victim->vendor_code);
    cr_assert(strstr(victim->message, "Deadlock"), "message: %s", victim->message);
    cr_assert_eq(vtx, DBPOOL_TX_IDLE, "the victim's session still believes it is in a "
                 "transaction (%c) although the server rolled it back", vtx);
    dbpool_close(c);
    h_stop_ok();
}

/* ------------------------------------------------------------- streaming */

Test(mytypes, long_stream_to_a_slow_reader_keeps_daemon_memory_bounded)
{
    const int64_t rows = 300000;
    const long bound_kib = 30 * 1024;
    char pad[101];
    dbpool_value p[2];

    memset(pad, 'p', 100);
    pad[100] = '\0';
    dbpool_conn *c = start();
    p[0] = dbpool_int(2000);
    p[1] = dbpool_text(pad);
    dbpool_result *warm = h_query(c, h_profile()->series_sql, p, 2);
    cr_assert_eq(dbpool_result_nrows(warm), 2000);
    dbpool_result_free(warm);
    long base = h_await_stable_rss(10000);

    for (int proto = 0; proto < 2; proto++) {
        /* text protocol: the same statement with the values spliced in */
        char text_sql[4096];
        snprintf(text_sql, sizeof(text_sql), "%s", h_profile()->series_sql);
        char *q1 = strchr(text_sql, '?');
        cr_assert_not_null(q1);
        char rest[4096];
        snprintf(rest, sizeof(rest), "%s", q1 + 1);
        snprintf(q1, sizeof(text_sql) - (size_t)(q1 - text_sql), "%lld%s", (long long)rows, rest);
        char *q2 = strchr(text_sql, '?');
        snprintf(rest, sizeof(rest), "%s", q2 + 1);
        snprintf(q2, sizeof(text_sql) - (size_t)(q2 - text_sql), "'%s'%s", pad, rest);
        p[0] = dbpool_int(rows);
        cr_assert_eq(proto ? dbpool_query_start(c, h_profile()->series_sql, p, 2)
                           : dbpool_query_start(c, text_sql, NULL, 0), 0, "%s",
                     dbpool_last_error(c)->message);
        int64_t next = 1;
        const dbpool_value *row;
        int rc;
        long peak = base;
        while ((rc = dbpool_next_row(c, &row)) == 1) {
            cr_assert_eq(row[0].type, DBPOOL_INT64);
            cr_assert_eq(row[0].u.i, next, "row %lld out of order", (long long)next);
            next++;
            if (next == 1000 || next == rows / 2) {   /* the slow reader pauses */
                long paused = h_await_stable_rss(10000);
                if (paused > peak)
                    peak = paused;
                cr_assert_lt(paused - base, bound_kib, "protocol %d: daemon RSS +%ld KiB while "
                             "the client paused at row %lld: rows are buffered", proto,
                             paused - base, (long long)next);
            }
        }
        cr_assert_eq(rc, 0, "stream: %s", dbpool_last_error(c)->message);
        cr_assert_eq(next - 1, rows);
        cr_assert_eq(dbpool_rows_affected(c), rows);
        cr_log_info("protocol %d: %lld rows, daemon RSS peak +%ld KiB", proto, (long long)rows,
                    peak - base);
    }
    cr_assert_eq(h_scalar(c, "SELECT 5"), 5);
    dbpool_close(c);
    h_stop_ok();
}

/* --------------------------------------------------------------- cancel */

struct bg_stmt {
    dbpool_conn *c;
    const char *sql;
    const dbpool_value *params;
    size_t n;
    int rc;
    dbpool_error err;
};

static void *bg_stmt_main(void *p)
{
    struct bg_stmt *b = p;

    b->rc = dbpool_query(b->c, b->sql, b->params, b->n, NULL);
    b->err = *dbpool_last_error(b->c);
    return NULL;
}

static int64_t sleepers(dbpool_conn *watch)
{
    return h_scalar(watch, "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                           "WHERE INFO LIKE 'SELECT SLEEP(%' AND INFO NOT LIKE '%PROCESSLIST%'");
}

/* A prepared statement (binary protocol) is cancelled like a text one: the
 * server's 1317 becomes CANCELED, and the connection serves on. */
Test(mytypes, cancel_of_a_prepared_statement)
{
    dbpool_conn *c = start();
    dbpool_conn *watch = h_connect();
    dbpool_value secs = dbpool_int(60);
    struct bg_stmt b = { c, "SELECT SLEEP(?)", &secs, 1, 0, { 0 } };
    pthread_t t;

    cr_assert_eq(pthread_create(&t, NULL, bg_stmt_main, &b), 0);
    cr_assert(H_AWAIT(sleepers(watch) == 1, 10000), "the statement never ran");
    uint64_t t0 = h_now_ms();
    cr_assert_eq(dbpool_cancel(c), 0);
    pthread_join(t, NULL);
    cr_assert_lt(h_now_ms() - t0, 5000, "cancel took %llu ms",
                 (unsigned long long)(h_now_ms() - t0));
    cr_assert_neq(b.rc, 0, "the cancelled statement succeeded");
    cr_assert_eq(b.err.code, DBPOOL_E_CANCELED, "%s: %s", dbpool_code_name(b.err.code),
                 b.err.message);
    cr_assert_eq(b.err.vendor_code, 1317, "vendor code %d", (int)b.err.vendor_code);
    cr_assert_eq(h_scalar(c, "SELECT 7"), 7, "the session is unusable after the cancel");
    dbpool_value one = dbpool_int(1);
    dbpool_result *r = h_query(c, "SELECT ? + 1", &one, 1);
    cr_assert_eq(dbpool_result_value(r, 0, 0)->u.i, 2);
    dbpool_result_free(r);
    dbpool_close(watch);
    dbpool_close(c);
    h_stop_ok();
}

/* ------------------------------------------------------- vanishing client */

/* A client that sends a statement and goes away at once: the daemon frees
 * its request while the statement is still to be sent (or being
 * prepared); the driver works on its own copy. Text and prepared, with a
 * cancel frame right behind some of them. Under ASan a use of the freed
 * request shows in the daemon's log, which h_stop_ok checks. */
Test(mytypes, client_vanishing_right_after_its_statement)
{
    dbpool_conn *c = start();
    char big[20000];
    dbpool_value p[2];

    memset(big, 'v', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    p[0] = dbpool_text(big);
    p[1] = dbpool_int(3);
    for (int k = 0; k < 40; k++) {
        struct pbuf b;
        int fd = h_raw_connect();
        h_raw_handshake(fd);
        pbuf_init(&b);
        if (k % 2)
            proto_put_query(&b, "SELECT LENGTH(?), ? + 1", 23, p, 2);
        else
            proto_put_query(&b, "SELECT SLEEP(0.01), 'x'", 23, NULL, 0);
        if (k % 4 >= 2)
            proto_put_empty(&b, PT_CANCEL);
        cr_assert(!b.oom && h_raw_send(fd, b.data, b.len), "send QUERY");
        pbuf_free(&b);
        close(fd);
    }
    dbpool_result *r = h_query(c, "SELECT LENGTH(?), ? + 1", p, 2);
    cr_assert_eq(dbpool_result_value(r, 0, 0)->u.i, (int64_t)sizeof(big) - 1);
    cr_assert_eq(dbpool_result_value(r, 0, 1)->u.i, 4);
    dbpool_result_free(r);
    cr_assert(H_AWAIT(h_status_num("/pools", (const char *const[]){ "clients", "connected",
                                                                   NULL }) == 1, 10000),
              "the vanished clients are still counted");
    dbpool_close(c);
    h_stop_ok();
}
