/*
 * test_sqlsplit.c — unit tests for the CLI's SQL script splitter
 * (src/common/sqlsplit.c): quoting, comments, dollar quotes, BEGIN...END
 * bodies, dialect flags, trimming, line numbers and the helpers used by the
 * interactive mode.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "common/sqlsplit.h"

#define MAXSTMTS 16

/* The statements of a script, as NUL-terminated copies. */
struct split {
    size_t n;
    char text[MAXSTMTS][512];
    struct sqlsplit_stmt st[MAXSTMTS];
};

static void split_flags(const char *sql, unsigned flags, struct split *out)
{
    struct sqlsplit it;
    struct sqlsplit_stmt st;

    memset(out, 0, sizeof *out);
    sqlsplit_init(&it, sql, strlen(sql), flags);
    while (sqlsplit_next(&it, &st)) {
        cr_assert_lt(out->n, MAXSTMTS, "too many statements");
        cr_assert_lt(st.len, sizeof out->text[0]);
        memcpy(out->text[out->n], st.text, st.len);
        out->text[out->n][st.len] = '\0';
        out->st[out->n] = st;
        out->n++;
    }
}

static void split(const char *sql, struct split *out)
{
    split_flags(sql, 0, out);
}

/* Asserts that sql splits (with flags) into exactly the given statements. */
static void expect_flags(const char *sql, unsigned flags, size_t n, const char *const *want)
{
    struct split s;
    split_flags(sql, flags, &s);
    cr_assert_eq(s.n, n, "input <<%s>>: got %zu statements, want %zu", sql, s.n, n);
    for (size_t i = 0; i < n; i++)
        cr_assert_str_eq(s.text[i], want[i], "input <<%s>> statement %zu", sql, i);
}

#define EXPECT(sql, ...) do { \
        const char *const want_[] = { __VA_ARGS__ }; \
        expect_flags((sql), 0, sizeof want_ / sizeof want_[0], want_); \
    } while (0)
#define EXPECT_FLAGS(sql, flags, ...) do { \
        const char *const want_[] = { __VA_ARGS__ }; \
        expect_flags((sql), (flags), sizeof want_ / sizeof want_[0], want_); \
    } while (0)
#define EXPECT_NONE(sql) do { \
        struct split s_; split((sql), &s_); \
        cr_assert_eq(s_.n, 0, "input <<%s>>: expected no statement, got %zu", (sql), s_.n); \
    } while (0)

/* ---- basics ---- */

Test(sqlsplit, empty_input)
{
    EXPECT_NONE("");
    EXPECT_NONE("   \n\t  ");
    EXPECT_NONE(";");
    EXPECT_NONE(" ; ;\n;; ");
}

Test(sqlsplit, null_buffer)
{
    struct sqlsplit it;
    struct sqlsplit_stmt st;
    sqlsplit_init(&it, NULL, 10, 0);
    cr_assert_not(sqlsplit_next(&it, &st));
    cr_assert_eq(sqlsplit_complete_len(NULL, 0, 0), 0);
    cr_assert(sqlsplit_is_blank(NULL, 0, 0));
}

Test(sqlsplit, single_and_multiple)
{
    EXPECT("SELECT 1;", "SELECT 1");
    EXPECT("SELECT 1; SELECT 2;", "SELECT 1", "SELECT 2");
    EXPECT("  SELECT 1 ;\n\n  SELECT 2 ;  \n", "SELECT 1", "SELECT 2");
    EXPECT("SELECT 1;;;SELECT 2", "SELECT 1", "SELECT 2");
}

Test(sqlsplit, no_trailing_semicolon)
{
    struct split s;
    split("SELECT 1; SELECT 2\n", &s);
    cr_assert_eq(s.n, 2);
    cr_assert_str_eq(s.text[1], "SELECT 2");
    cr_assert(s.st[0].terminated);
    cr_assert_not(s.st[1].terminated);
    cr_assert_not(s.st[1].unclosed);
}

Test(sqlsplit, multiline_statement_kept_intact)
{
    EXPECT("INSERT INTO t (a, b)\nVALUES (1,\n  2);\n", "INSERT INTO t (a, b)\nVALUES (1,\n  2)");
}

/* ---- quotes ---- */

Test(sqlsplit, single_quotes)
{
    EXPECT("SELECT 'a;b'; SELECT 2", "SELECT 'a;b'", "SELECT 2");
    EXPECT("SELECT 'it''s; fine'; SELECT 2", "SELECT 'it''s; fine'", "SELECT 2");
    EXPECT("SELECT '';SELECT ''''", "SELECT ''", "SELECT ''''");
    EXPECT("SELECT '--not a comment;'; SELECT 2", "SELECT '--not a comment;'", "SELECT 2");
    EXPECT("SELECT '/*;*/'; SELECT 2", "SELECT '/*;*/'", "SELECT 2");
}

Test(sqlsplit, double_quotes_and_backticks)
{
    EXPECT("SELECT \"a;b\" FROM t; SELECT 2", "SELECT \"a;b\" FROM t", "SELECT 2");
    EXPECT("SELECT \"a\"\";b\"; SELECT 2", "SELECT \"a\"\";b\"", "SELECT 2");
    EXPECT("SELECT `a;b` FROM t; SELECT 2", "SELECT `a;b` FROM t", "SELECT 2");
    EXPECT("SELECT `a``;b`; SELECT 2", "SELECT `a``;b`", "SELECT 2");
    EXPECT("SELECT \"it's;\"; SELECT 'say \"hi;\"'", "SELECT \"it's;\"", "SELECT 'say \"hi;\"'");
}

Test(sqlsplit, backslash_is_literal_by_default)
{
    /* Standard SQL: a backslash is an ordinary character in '...'. */
    EXPECT("SELECT 'C:\\'; SELECT 2", "SELECT 'C:\\'", "SELECT 2");
}

Test(sqlsplit, postgres_escape_strings)
{
    EXPECT("SELECT E'it\\'s;'; SELECT 2", "SELECT E'it\\'s;'", "SELECT 2");
    EXPECT("SELECT e'\\\\'; SELECT 2", "SELECT e'\\\\'", "SELECT 2");
    /* A word ending in e is not an E string prefix. */
    EXPECT("SELECT name'x\\'; SELECT 2", "SELECT name'x\\'", "SELECT 2");
}

Test(sqlsplit, mysql_backslash_escapes)
{
    EXPECT_FLAGS("SELECT 'it\\'s;'; SELECT 2", SQLSPLIT_MYSQL, "SELECT 'it\\'s;'", "SELECT 2");
    EXPECT_FLAGS("SELECT \"a\\\";b\"; SELECT 2", SQLSPLIT_MYSQL, "SELECT \"a\\\";b\"", "SELECT 2");
    /* Backticks never take backslash escapes. */
    EXPECT_FLAGS("SELECT `a\\`; SELECT 2", SQLSPLIT_MYSQL, "SELECT `a\\`", "SELECT 2");
}

Test(sqlsplit, unterminated_quote_takes_the_rest)
{
    struct split s;
    split("SELECT 1; SELECT 'abc; SELECT 3;\n", &s);
    cr_assert_eq(s.n, 2);
    cr_assert_str_eq(s.text[0], "SELECT 1");
    cr_assert_str_eq(s.text[1], "SELECT 'abc; SELECT 3;");
    cr_assert(s.st[1].unclosed);
    cr_assert_not(s.st[1].terminated);

    split("SELECT \"x;", &s);
    cr_assert_eq(s.n, 1);
    cr_assert_str_eq(s.text[0], "SELECT \"x;");
    cr_assert(s.st[0].unclosed);

    split("SELECT E'x\\", &s);   /* backslash as the very last byte */
    cr_assert_eq(s.n, 1);
    cr_assert(s.st[0].unclosed);
}

/* ---- comments ---- */

Test(sqlsplit, line_comments)
{
    EXPECT("SELECT 1; -- a; b\nSELECT 2;", "SELECT 1", "SELECT 2");
    EXPECT("SELECT 1 -- trailing; comment\n, 2;", "SELECT 1 -- trailing; comment\n, 2");
    EXPECT("SELECT 1 -- no newline at the end", "SELECT 1");
}

Test(sqlsplit, block_comments)
{
    EXPECT("SELECT /* ; */ 1; SELECT 2", "SELECT /* ; */ 1", "SELECT 2");
    EXPECT("/* header;\n comment */ SELECT 1; /* trailer; */", "SELECT 1");
    EXPECT("SELECT 1 /* unterminated; SELECT 2;", "SELECT 1");
    EXPECT("SELECT 1/**/;SELECT 2", "SELECT 1", "SELECT 2");
}

Test(sqlsplit, only_comments)
{
    EXPECT_NONE("-- nothing here\n");
    EXPECT_NONE("-- one;\n/* two; */\n  -- three");
    EXPECT_NONE("/* unterminated");
    EXPECT_NONE("-- a\n;\n-- b\n;");
}

Test(sqlsplit, comment_around_statements_trimmed)
{
    EXPECT("-- create it\nCREATE TABLE t (a int); -- done\n", "CREATE TABLE t (a int)");
}

Test(sqlsplit, nested_block_comments_postgres)
{
    EXPECT_FLAGS("SELECT /* a /* b; */ c; */ 1; SELECT 2", SQLSPLIT_POSTGRES,
                 "SELECT /* a /* b; */ c; */ 1", "SELECT 2");
    /* Without nesting, the first star-slash closes the comment. */
    EXPECT("SELECT /* a /* b */ 1; SELECT 2", "SELECT /* a /* b */ 1", "SELECT 2");
}

Test(sqlsplit, mysql_comments)
{
    EXPECT_FLAGS("SELECT 1; # a; comment\nSELECT 2", SQLSPLIT_MYSQL, "SELECT 1", "SELECT 2");
    /* In MySQL "--" needs whitespace after it: 1--1 is arithmetic. */
    EXPECT_FLAGS("SELECT 1--1; SELECT 2", SQLSPLIT_MYSQL, "SELECT 1--1", "SELECT 2");
    EXPECT_FLAGS("SELECT 1; -- x;\nSELECT 2", SQLSPLIT_MYSQL, "SELECT 1", "SELECT 2");
    EXPECT_FLAGS("SELECT 1 -- x;\n+ 1", SQLSPLIT_MYSQL, "SELECT 1 -- x;\n+ 1");
    /* Without the flag # is an ordinary character. */
    EXPECT("SELECT 1 #x; SELECT 2", "SELECT 1 #x", "SELECT 2");
}

Test(sqlsplit, mysql_executable_comments_are_statements)
{
    EXPECT_FLAGS("/*!40101 SET NAMES utf8 */;\n/*!40014 SET FOREIGN_KEY_CHECKS=0 */;",
                 SQLSPLIT_MYSQL,
                 "/*!40101 SET NAMES utf8 */", "/*!40014 SET FOREIGN_KEY_CHECKS=0 */");
}

/* ---- dollar quoting ---- */

Test(sqlsplit, dollar_quotes)
{
    EXPECT("SELECT $$a;b$$; SELECT 2", "SELECT $$a;b$$", "SELECT 2");
    EXPECT("SELECT $fn$ x; $$ y; $fn$; SELECT 2", "SELECT $fn$ x; $$ y; $fn$", "SELECT 2");
    EXPECT("SELECT $a$ $b$ ; $a$;", "SELECT $a$ $b$ ; $a$");
}

Test(sqlsplit, dollar_function_body)
{
    const char *sql =
        "CREATE FUNCTION f() RETURNS trigger AS $body$\n"
        "BEGIN\n"
        "  NEW.x := 'a;b';\n"
        "  RETURN NEW;\n"
        "END;\n"
        "$body$ LANGUAGE plpgsql;\n"
        "SELECT 2;";
    struct split s;
    split_flags(sql, SQLSPLIT_POSTGRES, &s);
    cr_assert_eq(s.n, 2);
    cr_assert_eq(s.st[0].len, strstr(sql, ";\nSELECT 2") - sql);
    cr_assert_str_eq(s.text[1], "SELECT 2");
}

Test(sqlsplit, dollar_params_and_identifiers_are_not_quotes)
{
    EXPECT("SELECT $1; SELECT $2", "SELECT $1", "SELECT $2");
    EXPECT("SELECT a$b$c; SELECT 2", "SELECT a$b$c", "SELECT 2");
    EXPECT("SELECT $x, $y; SELECT 2", "SELECT $x, $y", "SELECT 2");
    EXPECT("SELECT 1 $ 2; SELECT 3", "SELECT 1 $ 2", "SELECT 3");
}

Test(sqlsplit, unterminated_dollar_quote)
{
    struct split s;
    split("SELECT $$ never; closed", &s);
    cr_assert_eq(s.n, 1);
    cr_assert_str_eq(s.text[0], "SELECT $$ never; closed");
    cr_assert(s.st[0].unclosed);
}

/* ---- BEGIN ... END bodies ---- */

Test(sqlsplit, sqlite_trigger)
{
    const char *sql =
        "CREATE TABLE t (a int);\n"
        "CREATE TRIGGER trg AFTER INSERT ON t\n"
        "BEGIN\n"
        "  INSERT INTO log VALUES (new.a);\n"
        "  UPDATE c SET n = n + 1;\n"
        "END;\n"
        "INSERT INTO t VALUES (1);";
    struct split s;
    split(sql, &s);
    cr_assert_eq(s.n, 3);
    cr_assert_str_eq(s.text[0], "CREATE TABLE t (a int)");
    cr_assert_str_eq(s.text[1],
        "CREATE TRIGGER trg AFTER INSERT ON t\n"
        "BEGIN\n"
        "  INSERT INTO log VALUES (new.a);\n"
        "  UPDATE c SET n = n + 1;\n"
        "END");
    cr_assert_str_eq(s.text[2], "INSERT INTO t VALUES (1)");
}

Test(sqlsplit, trigger_variants)
{
    EXPECT("create temp trigger if not exists x before delete on t begin select 1; end; select 2",
           "create temp trigger if not exists x before delete on t begin select 1; end",
           "select 2");
    EXPECT("CREATE TRIGGER x AFTER UPDATE ON t BEGIN\n"
           "  SELECT CASE WHEN new.a < 0 THEN RAISE(ABORT, 'neg;') END;\n"
           "  UPDATE t2 SET b = CASE a WHEN 1 THEN 2 ELSE 3 END;\n"
           "END; SELECT 2",
           "CREATE TRIGGER x AFTER UPDATE ON t BEGIN\n"
           "  SELECT CASE WHEN new.a < 0 THEN RAISE(ABORT, 'neg;') END;\n"
           "  UPDATE t2 SET b = CASE a WHEN 1 THEN 2 ELSE 3 END;\n"
           "END",
           "SELECT 2");
}

Test(sqlsplit, mysql_trigger_and_procedure)
{
    EXPECT_FLAGS("CREATE DEFINER=`root`@`localhost` TRIGGER trg BEFORE INSERT ON t\n"
                 "FOR EACH ROW BEGIN\n"
                 "  IF NEW.a < 0 THEN SET NEW.a = 0; END IF;\n"
                 "END;\nSELECT 2",
                 SQLSPLIT_MYSQL,
                 "CREATE DEFINER=`root`@`localhost` TRIGGER trg BEFORE INSERT ON t\n"
                 "FOR EACH ROW BEGIN\n"
                 "  IF NEW.a < 0 THEN SET NEW.a = 0; END IF;\n"
                 "END",
                 "SELECT 2");
    EXPECT_FLAGS("CREATE DEFINER = admin@localhost PROCEDURE p()\n"
                 "BEGIN\n"
                 "  DECLARE i INT DEFAULT 0;\n"
                 "  WHILE i < 3 DO SET i = i + 1; END WHILE;\n"
                 "  lbl: LOOP LEAVE lbl; END LOOP lbl;\n"
                 "  REPEAT SET i = i - 1; UNTIL i = 0 END REPEAT;\n"
                 "  CASE i WHEN 0 THEN SELECT 1; ELSE SELECT 2; END CASE;\n"
                 "  BEGIN SELECT 3; END;\n"
                 "END;\nCALL p();",
                 SQLSPLIT_MYSQL,
                 "CREATE DEFINER = admin@localhost PROCEDURE p()\n"
                 "BEGIN\n"
                 "  DECLARE i INT DEFAULT 0;\n"
                 "  WHILE i < 3 DO SET i = i + 1; END WHILE;\n"
                 "  lbl: LOOP LEAVE lbl; END LOOP lbl;\n"
                 "  REPEAT SET i = i - 1; UNTIL i = 0 END REPEAT;\n"
                 "  CASE i WHEN 0 THEN SELECT 1; ELSE SELECT 2; END CASE;\n"
                 "  BEGIN SELECT 3; END;\n"
                 "END",
                 "CALL p()");
}

Test(sqlsplit, mariadb_anonymous_block)
{
    EXPECT_FLAGS("BEGIN NOT ATOMIC SELECT 1; SELECT 2; END; SELECT 3",
                 SQLSPLIT_MYSQL, "BEGIN NOT ATOMIC SELECT 1; SELECT 2; END", "SELECT 3");
}

Test(sqlsplit, postgres_begin_atomic)
{
    EXPECT_FLAGS("CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql\n"
                 "BEGIN ATOMIC SELECT 1; SELECT 2; END; SELECT f();",
                 SQLSPLIT_POSTGRES,
                 "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql\n"
                 "BEGIN ATOMIC SELECT 1; SELECT 2; END",
                 "SELECT f()");
}

Test(sqlsplit, transaction_begin_is_not_a_block)
{
    EXPECT("BEGIN; INSERT INTO t VALUES (1); COMMIT;",
           "BEGIN", "INSERT INTO t VALUES (1)", "COMMIT");
    EXPECT("BEGIN TRANSACTION; END;", "BEGIN TRANSACTION", "END");
    EXPECT("begin immediate; select 1; end", "begin immediate", "select 1", "end");
}

Test(sqlsplit, ordinary_create_is_not_a_block)
{
    EXPECT("CREATE TABLE begin_log (begin_at int, x int); SELECT 1",
           "CREATE TABLE begin_log (begin_at int, x int)", "SELECT 1");
    EXPECT("CREATE TABLE t (\"begin\" int); INSERT INTO t VALUES (1)",
           "CREATE TABLE t (\"begin\" int)", "INSERT INTO t VALUES (1)");
    EXPECT("CREATE INDEX i ON t (a); SELECT 1", "CREATE INDEX i ON t (a)", "SELECT 1");
    /* A trigger without BEGIN (PostgreSQL) ends at its first ';'. */
    EXPECT_FLAGS("CREATE TRIGGER t AFTER INSERT ON x FOR EACH ROW EXECUTE FUNCTION f(); SELECT 1",
                 SQLSPLIT_POSTGRES,
                 "CREATE TRIGGER t AFTER INSERT ON x FOR EACH ROW EXECUTE FUNCTION f()",
                 "SELECT 1");
}

Test(sqlsplit, keywords_in_quotes_do_not_count)
{
    EXPECT("CREATE TRIGGER x AFTER INSERT ON t BEGIN SELECT 'end;'; SELECT \"END\"; END; SELECT 2",
           "CREATE TRIGGER x AFTER INSERT ON t BEGIN SELECT 'end;'; SELECT \"END\"; END",
           "SELECT 2");
    EXPECT("CREATE TRIGGER x AFTER INSERT ON t BEGIN SELECT 1; -- end;\nEND; SELECT 2",
           "CREATE TRIGGER x AFTER INSERT ON t BEGIN SELECT 1; -- end;\nEND",
           "SELECT 2");
}

Test(sqlsplit, unterminated_trigger_body)
{
    struct split s;
    split("CREATE TRIGGER x AFTER INSERT ON t BEGIN SELECT 1; SELECT 2;", &s);
    cr_assert_eq(s.n, 1);
    cr_assert(s.st[0].unclosed);
    cr_assert_not(s.st[0].terminated);
}

/* ---- positions ---- */

Test(sqlsplit, line_numbers_and_offsets)
{
    const char *sql = "SELECT 1;\n\n-- c\nSELECT\n2;\n  SELECT 3";
    struct split s;
    split(sql, &s);
    cr_assert_eq(s.n, 3);
    cr_assert_eq(s.st[0].line, 1);
    cr_assert_eq(s.st[1].line, 4);
    cr_assert_eq(s.st[2].line, 6);
    cr_assert_eq(s.st[1].offset, (size_t)(strstr(sql, "SELECT\n2") - sql));
    cr_assert_eq(s.st[2].text, sql + s.st[2].offset);
}

Test(sqlsplit, not_nul_terminated_input)
{
    char buf[] = { 'S', 'E', 'L', 'E', 'C', 'T', ' ', '1', ';', 'X', 'Y' };
    struct sqlsplit it;
    struct sqlsplit_stmt st;

    sqlsplit_init(&it, buf, 9, 0);       /* "SELECT 1;" only */
    cr_assert(sqlsplit_next(&it, &st));
    cr_assert_eq(st.len, 8);
    cr_assert_not(sqlsplit_next(&it, &st));

    sqlsplit_init(&it, buf, 4, 0);       /* "SELE" */
    cr_assert(sqlsplit_next(&it, &st));
    cr_assert_eq(st.len, 4);
}

/* ---- interactive helpers ---- */

Test(sqlsplit, complete_len)
{
    cr_assert_eq(sqlsplit_complete_len("", 0, 0), 0);
    cr_assert_eq(sqlsplit_complete_len("SELECT 1", 8, 0), 0);
    cr_assert_eq(sqlsplit_complete_len("SELECT 1;", 9, 0), 9);
    cr_assert_eq(sqlsplit_complete_len("SELECT 1; SELECT", 16, 0), 9);
    cr_assert_eq(sqlsplit_complete_len("SELECT 1; SELECT 2;\n", 20, 0), 19);
    cr_assert_eq(sqlsplit_complete_len("SELECT ';", 9, 0), 0);
    cr_assert_eq(sqlsplit_complete_len("SELECT 1 -- ;", 13, 0), 0);
    cr_assert_eq(sqlsplit_complete_len("SELECT $$;", 10, 0), 0);

    const char *trg = "CREATE TRIGGER x AFTER INSERT ON t BEGIN\n SELECT 1;\n";
    cr_assert_eq(sqlsplit_complete_len(trg, strlen(trg), 0), 0);
    const char *done = "CREATE TRIGGER x AFTER INSERT ON t BEGIN\n SELECT 1;\nEND;";
    cr_assert_eq(sqlsplit_complete_len(done, strlen(done), 0), strlen(done));
}

Test(sqlsplit, is_blank)
{
    cr_assert(sqlsplit_is_blank("", 0, 0));
    cr_assert(sqlsplit_is_blank(" \n\t", 3, 0));
    cr_assert(sqlsplit_is_blank("-- c\n", 5, 0));
    cr_assert(sqlsplit_is_blank("/* c */ ;", 9, 0));
    cr_assert_not(sqlsplit_is_blank("/* open", 7, 0));
    cr_assert_not(sqlsplit_is_blank("'", 1, 0));
    cr_assert_not(sqlsplit_is_blank("SELECT", 6, 0));
    cr_assert_not(sqlsplit_is_blank("; x", 3, 0));
}

Test(sqlsplit, flags_for_backend)
{
    cr_assert_eq(sqlsplit_flags_for_backend("mysql"), SQLSPLIT_MYSQL);
    cr_assert_eq(sqlsplit_flags_for_backend("postgres"), SQLSPLIT_POSTGRES);
    cr_assert_eq(sqlsplit_flags_for_backend("sqlite"), 0);
    cr_assert_eq(sqlsplit_flags_for_backend(NULL), 0);
}
