/*
 * test_stmtcache.c — unit tests for the per-connection prepared-statement
 * cache (src/backend/stmtcache.c): prepare on second sight, ids and driver
 * handles, statement identity (SQL and parameter types), LRU eviction and
 * the garbage list, forget, gone, clear, which handles are dropped; and
 * the PostgreSQL side (src/backend/pg/pg_stmtcache.c): names, the
 * DEALLOCATE text, which statements are worth caching at all.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/pg/pg_stmtcache.h"
#include "backend/stmtcache.h"

#define OID_INT8 20u
#define OID_TEXT 25u
#define OID_FLOAT8 701u

static struct stmt_cache *sc;

/* The handle add_t stores for a statement: derived from its id, so a test
 * can tell which statement a handle belongs to. */
#define HANDLE(id) ((uintptr_t)(id) + 1000u)

/* Handles the cache dropped (client side released), in order. */
static uintptr_t dropped[64];
static size_t ndropped;

static void record_drop(uintptr_t handle, void *arg)
{
    cr_assert_eq(arg, &ndropped, "drop called with another argument");
    cr_assert_lt(ndropped, sizeof(dropped) / sizeof(dropped[0]));
    dropped[ndropped++] = handle;
}

static struct stmt_cache *new_cache(unsigned capacity)
{
    ndropped = 0;
    return stmt_cache_new(capacity, record_drop, &ndropped);
}

static void fini(void)
{
    stmt_cache_free(sc);
    sc = NULL;
    ndropped = 0;
}

TestSuite(stmtcache, .fini = fini);

static enum stmt_verdict look_t(const char *sql, const unsigned *types, size_t n,
                                struct stmt_ref *ref)
{
    struct stmt_ref dummy;
    return stmt_cache_lookup(sc, sql, strlen(sql), types, n * sizeof(*types), ref ? ref : &dummy);
}

static enum stmt_verdict look(const char *sql, struct stmt_ref *ref)
{
    return look_t(sql, NULL, 0, ref);
}

static void add_t(const struct stmt_ref *ref, const char *sql, const unsigned *types, size_t n)
{
    cr_assert(stmt_cache_add(sc, ref, HANDLE(ref->id), sql, strlen(sql), types, n * sizeof(*types)),
              "stmt_cache_add(%s)", sql);
}

/* Run sql through the cache as the driver does: look it up, and when told
 * to prepare it, report it prepared. Returns the verdict; *ref the name. */
static enum stmt_verdict use(const char *sql, struct stmt_ref *ref)
{
    struct stmt_ref r;
    enum stmt_verdict v = look(sql, &r);
    if (v == SC_PREPARE)
        add_t(&r, sql, NULL, 0);
    if (ref)
        *ref = r;
    return v;
}

/* Bring sql into the cache (first sight, then prepare); its name in *ref. */
static void cache(const char *sql, struct stmt_ref *ref)
{
    cr_assert_eq(use(sql, NULL), SC_UNNAMED, "%s: first sight", sql);
    cr_assert_eq(use(sql, ref), SC_PREPARE, "%s: second sight", sql);
}

/* A statement no longer cached that was seen before: the cache tells the
 * driver to prepare it again (under a new name). The "seen" table is
 * direct-mapped, so a collision may have forgotten the sighting: then it
 * is first sight again and the next lookup prepares it. */
static enum stmt_verdict lookup_again_t(const char *sql, const unsigned *types, size_t n,
                                        struct stmt_ref *ref)
{
    enum stmt_verdict v = look_t(sql, types, n, ref);
    if (v == SC_UNNAMED)
        v = look_t(sql, types, n, ref);
    return v;
}

static enum stmt_verdict lookup_again(const char *sql, struct stmt_ref *ref)
{
    return lookup_again_t(sql, NULL, 0, ref);
}

/* A prepared statement's ref: a fresh id, and (once cached) its handle. */
static void expect_id(const struct stmt_ref *ref)
{
    cr_assert_neq(ref->id, 0, "id 0 given out");
}

static bool no_garbage(void)
{
    size_t n;
    return stmt_cache_garbage(sc, &n) == NULL && n == 0;
}

/* The garbage list as the PostgreSQL driver sends it. */
static const char *garbage(void)
{
    static char *buf;
    static size_t cap;
    const char *g = pg_stmt_dealloc_sql(sc, &buf, &cap);
    return g ? g : "(null)";
}

/* ----------------------------------------------------------------- basics */

Test(stmtcache, capacity_zero_means_no_cache)
{
    cr_assert_null(stmt_cache_new(0, NULL, NULL));
    cr_assert_eq(stmt_cache_count(NULL), 0);
    stmt_cache_free(NULL);   /* harmless */
}

Test(stmtcache, prepared_on_second_sight_and_executed_by_name_after)
{
    struct stmt_ref r1, r2, r3;
    const char *sql = "SELECT 1";

    sc = new_cache(4);
    cr_assert_not_null(sc);
    cr_assert_eq(stmt_cache_count(sc), 0);
    cr_assert_eq(look(sql, &r1), SC_UNNAMED, "first sight must run unnamed");
    cr_assert_eq(stmt_cache_count(sc), 0, "first sight must not enter the cache");
    cr_assert_eq(look(sql, &r2), SC_PREPARE, "second sight must prepare");
    expect_id(&r2);
    cr_assert_eq(r2.handle, 0, "a statement to prepare has no handle yet");
    cr_assert_eq(stmt_cache_count(sc), 0, "not in the cache before it was prepared");
    add_t(&r2, sql, NULL, 0);
    cr_assert_eq(stmt_cache_count(sc), 1);
    for (int i = 0; i < 3; i++) {
        memset(&r3, 0, sizeof(r3));
        cr_assert_eq(look(sql, &r3), SC_PREPARED, "run %d after prepare", i);
        cr_assert_eq(r3.id, r2.id, "executed under another id");
        cr_assert_eq(r3.handle, HANDLE(r2.id), "the handle stored is not the one given back");
        cr_assert_eq(r3.hash, r2.hash);
    }
    cr_assert_eq(stmt_cache_count(sc), 1);
    cr_assert(no_garbage(), "nothing was evicted: %s", garbage());
}

Test(stmtcache, every_prepare_gets_a_new_name)
{
    struct stmt_ref a, b, c;

    sc = new_cache(8);
    cache("SELECT 'a'", &a);
    cache("SELECT 'b'", &b);
    cache("SELECT 'c'", &c);
    expect_id(&a);
    expect_id(&b);
    expect_id(&c);
    cr_assert_neq(a.id, b.id);
    cr_assert_neq(a.id, c.id);
    cr_assert_neq(b.id, c.id);
    cr_assert_eq(stmt_cache_count(sc), 3);
}

Test(stmtcache, sql_and_types_make_the_statement)
{
    const unsigned t8[] = { OID_INT8 }, tf[] = { OID_FLOAT8 }, tu[] = { 0 };
    const unsigned t88[] = { OID_INT8, OID_INT8 }, t8f[] = { OID_INT8, OID_FLOAT8 };
    const unsigned tf8[] = { OID_FLOAT8, OID_INT8 };
    const char *one = "SELECT $1", *two = "SELECT $1, $2";
    struct stmt_ref r, r8, rf;

    sc = new_cache(16);
    /* int8 parameter: seen, then prepared. */
    cr_assert_eq(look_t(one, t8, 1, NULL), SC_UNNAMED);
    cr_assert_eq(look_t(one, t8, 1, &r8), SC_PREPARE);
    add_t(&r8, one, t8, 1);
    cr_assert_eq(look_t(one, t8, 1, &r), SC_PREPARED);
    cr_assert_eq(r.id, r8.id);

    /* The same SQL with a float8, an inferred or no parameter type is
     * another statement: first sight again. */
    cr_assert_eq(look_t(one, tf, 1, NULL), SC_UNNAMED, "float8 matched the int8 statement");
    cr_assert_eq(look_t(one, tu, 1, NULL), SC_UNNAMED, "unknown type matched the int8 statement");
    cr_assert_eq(look_t(one, NULL, 0, NULL), SC_UNNAMED, "no types matched the int8 statement");
    cr_assert_eq(lookup_again_t(one, tf, 1, &rf), SC_PREPARE);
    add_t(&rf, one, tf, 1);
    cr_assert_neq(rf.id, r8.id, "two statements, one name");
    cr_assert_eq(look_t(one, tf, 1, &r), SC_PREPARED);
    cr_assert_eq(r.id, rf.id);
    cr_assert_eq(look_t(one, t8, 1, &r), SC_PREPARED);
    cr_assert_eq(r.id, r8.id, "int8 statement now resolves to the float8 one");

    /* Order of the types matters. */
    cr_assert_eq(look_t(two, t8f, 2, NULL), SC_UNNAMED);
    cr_assert_eq(look_t(two, t8f, 2, &r), SC_PREPARE);
    add_t(&r, two, t8f, 2);
    cr_assert_eq(look_t(two, tf8, 2, NULL), SC_UNNAMED, "swapped types matched");
    cr_assert_eq(look_t(two, t88, 2, NULL), SC_UNNAMED, "other types matched");

    /* Different SQL (even by one character or by case) is another statement. */
    cr_assert_eq(look("SELECT 1", NULL), SC_UNNAMED);
    cr_assert_eq(look("SELECT 1", &r), SC_PREPARE);
    add_t(&r, "SELECT 1", NULL, 0);
    cr_assert_eq(look("SELECT 2", NULL), SC_UNNAMED);
    cr_assert_eq(look("select 1", NULL), SC_UNNAMED);
    cr_assert_eq(look("SELECT 1 ", NULL), SC_UNNAMED);
    cr_assert_eq(look("SELECT 1", NULL), SC_PREPARED);

    /* The length counts, not a NUL: a prefix of a cached statement is new. */
    cr_assert_eq(stmt_cache_lookup(sc, "SELECT 12", 8, NULL, 0, &r), SC_PREPARED,
                 "length-delimited SQL (\"SELECT 1\" out of \"SELECT 12\")");
    cr_assert_eq(stmt_cache_lookup(sc, "SELECT 1", 7, NULL, 0, &r), SC_UNNAMED);
    cr_assert_eq(stmt_cache_count(sc), 4);
}

/* ----------------------------------------------------------------- LRU */

Test(stmtcache, lru_eviction_puts_the_oldest_on_the_garbage_list)
{
    struct stmt_ref a, b, c, r;
    char want[64];

    sc = new_cache(2);
    cache("SELECT 'a'", &a);
    cache("SELECT 'b'", &b);
    cr_assert_eq(stmt_cache_count(sc), 2);
    cr_assert(no_garbage(), "garbage before the cache was full: %s", garbage());

    /* A third statement evicts the least recently used one: a. */
    cache("SELECT 'c'", &c);
    cr_assert_eq(stmt_cache_count(sc), 2, "the cache grew beyond its capacity");
    snprintf(want, sizeof(want), "DEALLOCATE dbpool_s%u", a.id);
    cr_assert_not(no_garbage(), "nothing to deallocate after an eviction");
    cr_assert_str_eq(garbage(), want);
    cr_assert_eq(look("SELECT 'b'", &r), SC_PREPARED, "b was evicted instead of a");
    cr_assert_eq(r.id, b.id);
    cr_assert_eq(look("SELECT 'c'", &r), SC_PREPARED);
    cr_assert_eq(r.id, c.id);
    /* a is no longer prepared; it was seen, so the next run prepares it
     * again under a new name. */
    cr_assert_eq(lookup_again("SELECT 'a'", &r), SC_PREPARE, "an evicted statement is still cached");
    cr_assert_neq(r.id, a.id, "an evicted name reused");

    /* garbage_done empties the list. */
    stmt_cache_garbage_done(sc);
    cr_assert(no_garbage(), "garbage after garbage_done: %s", garbage());
}

Test(stmtcache, using_an_entry_makes_it_recent)
{
    struct stmt_ref a, b, r;
    char want[64];

    sc = new_cache(2);
    cache("SELECT 'a'", &a);
    cache("SELECT 'b'", &b);
    /* Use a: now b is the least recently used one. */
    cr_assert_eq(use("SELECT 'a'", NULL), SC_PREPARED);
    cache("SELECT 'c'", NULL);
    snprintf(want, sizeof(want), "DEALLOCATE dbpool_s%u", b.id);
    cr_assert_str_eq(garbage(), want, "LRU must evict b (a was used after it)");
    cr_assert_eq(look("SELECT 'a'", &r), SC_PREPARED, "a was evicted although used recently");
    cr_assert_eq(r.id, a.id);
    cr_assert_neq(look("SELECT 'b'", NULL), SC_PREPARED, "b survived the eviction");
}

Test(stmtcache, garbage_accumulates_until_done)
{
    struct stmt_ref a, b, c, d;
    char want[128];

    sc = new_cache(1);
    cache("SELECT 'a'", &a);
    cache("SELECT 'b'", &b);   /* evicts a */
    cache("SELECT 'c'", &c);   /* evicts b */
    snprintf(want, sizeof(want), "DEALLOCATE dbpool_s%u; DEALLOCATE dbpool_s%u", a.id, b.id);
    cr_assert_str_eq(garbage(), want);
    cr_assert_eq(stmt_cache_count(sc), 1);
    stmt_cache_garbage_done(sc);
    cr_assert(no_garbage());
    cache("SELECT 'd'", &d);   /* evicts c: the list starts afresh */
    snprintf(want, sizeof(want), "DEALLOCATE dbpool_s%u", c.id);
    cr_assert_str_eq(garbage(), want);
    stmt_cache_garbage_done(sc);
    cr_assert(no_garbage());
    stmt_cache_garbage_done(sc);   /* twice is harmless */
    cr_assert(no_garbage());
    cr_assert_eq(look("SELECT 'd'", NULL), SC_PREPARED);
}

Test(stmtcache, many_evictions_keep_the_cache_bounded)
{
    char sql[64];
    struct stmt_ref r;

    sc = new_cache(3);
    for (int i = 0; i < 200; i++) {
        snprintf(sql, sizeof(sql), "SELECT %d", i);
        cache(sql, &r);
        expect_id(&r);
        cr_assert_leq(stmt_cache_count(sc), 3, "after %d statements", i + 1);
        stmt_cache_garbage_done(sc);
    }
    cr_assert_eq(stmt_cache_count(sc), 3);
    /* The three most recent ones are the ones cached. */
    for (int i = 197; i < 200; i++) {
        snprintf(sql, sizeof(sql), "SELECT %d", i);
        cr_assert_eq(look(sql, NULL), SC_PREPARED, "%s", sql);
    }
    cr_assert_neq(look("SELECT 196", NULL), SC_PREPARED);
}

/* ----------------------------------------------------------------- forget, clear */

Test(stmtcache, forget_deallocates_later_and_uncaches)
{
    struct stmt_ref a, b, r;
    char want[64];

    sc = new_cache(4);
    cache("SELECT * FROM t", &a);
    cache("SELECT 'b'", &b);
    cr_assert(no_garbage());
    stmt_cache_forget(sc, &a);
    cr_assert_eq(stmt_cache_count(sc), 1);
    snprintf(want, sizeof(want), "DEALLOCATE dbpool_s%u", a.id);
    cr_assert_str_eq(garbage(), want);
    cr_assert_neq(look("SELECT * FROM t", &r), SC_PREPARED, "a forgotten statement is still cached");
    cr_assert_eq(look("SELECT 'b'", &r), SC_PREPARED, "forget dropped another statement");
    cr_assert_eq(r.id, b.id);
}

Test(stmtcache, forgotten_statement_is_prepared_again_under_a_new_name)
{
    struct stmt_ref a, r;

    sc = new_cache(4);
    cache("SELECT * FROM t", &a);
    stmt_cache_forget(sc, &a);
    cr_assert_eq(look("SELECT * FROM t", &r), SC_PREPARE, "the retry must prepare afresh");
    cr_assert_neq(r.id, a.id, "re-prepared under the name being deallocated");
    add_t(&r, "SELECT * FROM t", NULL, 0);
    cr_assert_eq(look("SELECT * FROM t", NULL), SC_PREPARED);
    cr_assert_eq(stmt_cache_count(sc), 1);
    /* Forgetting an unknown ref changes nothing. */
    stmt_cache_garbage_done(sc);
    stmt_cache_forget(sc, &a);
    cr_assert(no_garbage(), "forget of a statement no longer cached: %s", garbage());
    cr_assert_eq(stmt_cache_count(sc), 1);
}

Test(stmtcache, clear_forgets_everything_without_garbage)
{
    struct stmt_ref a, r;

    sc = new_cache(2);
    cache("SELECT 'a'", &a);
    cache("SELECT 'b'", NULL);
    cache("SELECT 'c'", NULL);   /* evicts a: garbage */
    cr_assert_not(no_garbage());
    stmt_cache_clear(sc);
    cr_assert_eq(stmt_cache_count(sc), 0);
    cr_assert(no_garbage(), "the server dropped everything: nothing to "
                   "deallocate, got %s", garbage());
    cr_assert_neq(look("SELECT 'b'", NULL), SC_PREPARED, "b still cached after clear");
    cr_assert_neq(look("SELECT 'c'", NULL), SC_PREPARED, "c still cached after clear");
    /* The cache works after a clear: names are never reused. */
    cr_assert_eq(lookup_again("SELECT 'a'", &r), SC_PREPARE);
    cr_assert_neq(r.id, a.id);
    add_t(&r, "SELECT 'a'", NULL, 0);
    cr_assert_eq(look("SELECT 'a'", NULL), SC_PREPARED);
    cr_assert_eq(stmt_cache_count(sc), 1);
}

Test(stmtcache, forget_all_deallocates_everything_later)
{
    struct stmt_ref b, c, r;
    char want[128];

    sc = new_cache(4);
    cache("SELECT 'b'", &b);
    cache("SELECT 'c'", &c);
    stmt_cache_forget_all(sc);
    cr_assert_eq(stmt_cache_count(sc), 0);
    snprintf(want, sizeof(want), "DEALLOCATE dbpool_s%u; DEALLOCATE dbpool_s%u", b.id, c.id);
    cr_assert_str_eq(garbage(), want);
    cr_assert_neq(look("SELECT 'b'", NULL), SC_PREPARED, "b still cached after forget_all");
    /* Prepared again under a new name. */
    cr_assert_eq(lookup_again("SELECT 'c'", &r), SC_PREPARE);
    cr_assert_neq(r.id, c.id);
    add_t(&r, "SELECT 'c'", NULL, 0);
    cr_assert_eq(look("SELECT 'c'", NULL), SC_PREPARED);
    stmt_cache_forget_all(sc);
    stmt_cache_forget_all(sc);   /* nothing left: no second DEALLOCATE of the same name */
    cr_assert_eq(stmt_cache_count(sc), 0);
}

/* ----------------------------------------------------------------- handles */

Test(stmtcache, garbage_list_carries_ids_and_handles_oldest_first)
{
    struct stmt_ref a, b, c;
    const struct stmt_garbage *g;
    size_t n;

    sc = new_cache(1);
    cache("SELECT 'a'", &a);
    cache("SELECT 'b'", &b);   /* evicts a */
    cache("SELECT 'c'", &c);   /* evicts b */
    g = stmt_cache_garbage(sc, &n);
    cr_assert_not_null(g);
    cr_assert_eq(n, 2);
    cr_assert_eq(g[0].id, a.id);
    cr_assert_eq(g[0].handle, HANDLE(a.id), "an evicted statement lost its handle");
    cr_assert_eq(g[1].id, b.id);
    cr_assert_eq(g[1].handle, HANDLE(b.id));
    cr_assert_eq(ndropped, 0, "an evicted statement is deallocated by the driver, not dropped");
    stmt_cache_forget_all(sc);
    g = stmt_cache_garbage(sc, &n);
    cr_assert_eq(n, 3);
    cr_assert_eq(g[2].handle, HANDLE(c.id), "forget_all lost c's handle");
    stmt_cache_garbage_done(sc);
    cr_assert(no_garbage());
    cr_assert_eq(ndropped, 0);
}

Test(stmtcache, gone_clear_and_free_drop_the_handles_the_server_lost)
{
    struct stmt_ref a, b, c, d;

    sc = new_cache(2);
    cache("SELECT 'a'", &a);
    cache("SELECT 'b'", &b);
    stmt_cache_gone(sc, a.id);
    cr_assert_eq(ndropped, 1, "gone must drop the statement's handle");
    cr_assert_eq(dropped[0], HANDLE(a.id));
    cr_assert(no_garbage(), "the server no longer has it: nothing to deallocate, got %s", garbage());
    stmt_cache_gone(sc, a.id);   /* twice: nothing more */
    cr_assert_eq(ndropped, 1);

    cache("SELECT 'c'", &c);
    cache("SELECT 'd'", &d);     /* evicts b onto the garbage list */
    stmt_cache_clear(sc);
    cr_assert_eq(ndropped, 4, "clear must drop the cached and the garbage handles, dropped %zu",
                 ndropped);
    cr_assert_eq(stmt_cache_count(sc), 0);
    cr_assert(no_garbage());

    cache("SELECT 'e'", &a);
    stmt_cache_forget(sc, &a);   /* on the garbage list */
    cache("SELECT 'f'", &b);     /* cached */
    stmt_cache_free(sc);
    sc = NULL;
    cr_assert_eq(ndropped, 6, "free must drop what is cached and what awaits deallocation");
    cr_assert_eq(dropped[4], HANDLE(b.id));
    cr_assert_eq(dropped[5], HANDLE(a.id));
}

/* A driver with one-byte type codes (as MySQL's enum_field_types fit):
 * the types are compared as bytes, their count counts. */
Test(stmtcache, types_are_compared_as_bytes_of_any_width)
{
    const unsigned char t_long[] = { 3 }, t_str[] = { 253 }, t_two[] = { 3, 3 };
    const char *sql = "SELECT ?";
    struct stmt_ref r, p;

    sc = new_cache(4);
    cr_assert_eq(stmt_cache_lookup(sc, sql, strlen(sql), t_long, 1, &r), SC_UNNAMED);
    cr_assert_eq(stmt_cache_lookup(sc, sql, strlen(sql), t_long, 1, &p), SC_PREPARE);
    cr_assert(stmt_cache_add(sc, &p, (uintptr_t)&sc, sql, strlen(sql), t_long, 1));
    cr_assert_eq(stmt_cache_lookup(sc, sql, strlen(sql), t_long, 1, &r), SC_PREPARED);
    cr_assert_eq(r.handle, (uintptr_t)&sc, "a pointer handle must come back unchanged");
    cr_assert_eq(stmt_cache_lookup(sc, sql, strlen(sql), t_str, 1, &r), SC_UNNAMED);
    cr_assert_eq(stmt_cache_lookup(sc, sql, strlen(sql), t_two, 2, &r), SC_UNNAMED);
    cr_assert_eq(stmt_cache_lookup(sc, sql, strlen(sql), NULL, 0, &r), SC_UNNAMED);
}

Test(stmtcache, pg_names_and_dealloc_text)
{
    const unsigned t8[] = { OID_INT8 };
    struct pg_stmt_ref r, again;
    char want[STMT_NAME_LEN], *buf = NULL;
    size_t cap = 0;

    sc = new_cache(1);
    cr_assert_eq(pg_stmt_lookup(sc, "SELECT $1", 9, t8, 1, &r), SC_UNNAMED);
    cr_assert_eq(pg_stmt_lookup(sc, "SELECT $1", 9, t8, 1, &r), SC_PREPARE);
    snprintf(want, sizeof(want), "dbpool_s%u", r.r.id);
    cr_assert_str_eq(r.name, want);
    cr_assert(pg_stmt_add(sc, &r, "SELECT $1", 9, t8, 1));
    cr_assert_eq(pg_stmt_lookup(sc, "SELECT $1", 9, t8, 1, &again), SC_PREPARED);
    cr_assert_str_eq(again.name, want, "executed under another name");
    cr_assert_null(pg_stmt_dealloc_sql(sc, &buf, &cap), "no garbage, yet DEALLOCATE text");
    stmt_cache_forget_all(sc);
    cr_assert_not_null(pg_stmt_dealloc_sql(sc, &buf, &cap));
    cr_assert_eq(strncmp(buf, "DEALLOCATE ", 11), 0, "%s", buf);
    cr_assert_str_eq(buf + 11, want);
    free(buf);
}

/* ----------------------------------------------------------------- cacheable */

Test(stmtcache, cacheable_statements)
{
    static const char *const yes[] = {
        "SELECT 1", "select 1", "  SELECT 1", "\n\tSelect 1", "insert into t values (1)",
        "UPDATE t SET a = 1", "DELETE FROM t", "VALUES (1)", "TABLE t",
        "WITH x AS (SELECT 1) SELECT * FROM x", "   WITH x AS (SELECT 1) SELECT * FROM x",
        "-- comment\nSELECT 1", "/* comment */ SELECT 1", "/* a */ -- b\n  insert into t values (1)",
        "MERGE INTO t USING s ON true WHEN MATCHED THEN DO NOTHING", "SELECT",
        NULL,
    };
    static const char *const no[] = {
        "BEGIN", "begin", "SET search_path = x", "  SET x = 1", "CREATE TABLE t (a int)",
        "EXECUTE s", "PREPARE s AS SELECT 1", "DEALLOCATE ALL", "DISCARD ALL", "COMMIT",
        "ROLLBACK", "SHOW search_path", "DO $$ BEGIN END $$", "ALTER TABLE t ADD b int",
        "DROP TABLE t", "-- SELECT 1\nBEGIN", "/* SELECT */ SET x = 1", "SELECTED", "selectx 1",
        "WITHOUT", "", "   ", "-- only a comment", "COPY t FROM STDIN", "EXPLAIN SELECT 1",
        NULL,
    };

    for (const char *const *s = yes; *s; s++)
        cr_assert(pg_stmt_cacheable(*s, strlen(*s)), "not cacheable: <<%s>>", *s);
    for (const char *const *s = no; *s; s++)
        cr_assert_not(pg_stmt_cacheable(*s, strlen(*s)), "cacheable: <<%s>>", *s);
    /* Only len bytes count. */
    cr_assert_not(pg_stmt_cacheable("SELECT 1", 3));
    cr_assert(pg_stmt_cacheable("SELECT 1", 6));
}
