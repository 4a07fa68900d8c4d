/*
 * test_migrate_pure.c — unit tests of dbpool-migrate's parts that need no
 * database: the migration file name rule and directory scan (source.c),
 * golang-migrate's choice of steps for up/down/goto (plan.c), SHA-256
 * against FIPS 180-2's example vectors (sha256.c), the advisory lock key
 * against golang-migrate's test vector (lock.c), Go's duration text
 * (godur.c) and Go-style flags (flags.c).
 */
#include <criterion/criterion.h>

#include "migrate/flags.h"
#include "migrate/godur.h"
#include "migrate/migrate.h"
#include "migrate/plan.h"
#include "migrate/sha256.h"
#include "migrate/source.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- names */

static void name_is(const char *f, int64_t v, const char *name, bool up)
{
    int64_t got;
    const char *n;
    size_t len;
    bool u;

    cr_assert(mig_parse_name(f, &got, &n, &len, &u), "%s should match", f);
    cr_assert_eq(got, v, "%s: version %lld", f, (long long)got);
    cr_assert_eq(len, strlen(name), "%s: name %.*s", f, (int)len, n);
    cr_assert(strncmp(n, name, len) == 0, "%s: name %.*s", f, (int)len, n);
    cr_assert_eq(u, up, "%s: direction", f);
}

Test(migrate_names, matching)
{
    name_is("1_create_users.up.sql", 1, "create_users", true);
    name_is("000042_x.down.sql", 42, "x", false);
    name_is("20240101120000_add.up.sql", 20240101120000LL, "add", true);
    name_is("1_a.up.b.up.sql", 1, "a.up.b", true);          /* the name is greedy */
    name_is("1_a.down.b.up.sql", 1, "a.down.b", true);
    name_is("1_x.up.b.down.", 1, "x.up.b", false);          /* empty extension */
    name_is("1_.up.sql", 1, "", true);                      /* empty name */
    name_is("3_with space.up.txt", 3, "with space", true);
}

Test(migrate_names, not_matching)
{
    const char *bad[] = { "x_1.up.sql", "1-x.up.sql", "1_x.sql", "1_x.UP.sql", "_1.up.sql",
                          "1_x.upsql", "1x.up.sql", "README.md", "1_x.up", "",
                          "99999999999999999999_too_big.up.sql", "1_new\nline.up.sql" };
    int64_t v;
    const char *n;
    size_t len;
    bool up;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_not(mig_parse_name(bad[i], &v, &n, &len, &up), "%s should not match", bad[i]);
}

/* ---------------------------------------------------------------- directory */

static char dir[64];

static void touch(const char *name)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs("SELECT 1;\n", f);
    fclose(f);
}

static void make_dir(void)
{
    snprintf(dir, sizeof dir, "/tmp/test_migrate.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

Test(migrate_source, gaps_order_and_ignored_files, .init = make_dir, .fini = remove_dir)
{
    struct mig_source src;
    char err[512];
    char sub[128];

    touch("10_ten.up.sql");
    touch("5_five.up.sql");
    touch("5_five_down.down.sql");
    touch("0001_one.down.sql");
    touch("notes.txt");
    touch("2_bad.sql");
    snprintf(sub, sizeof sub, "%s/7_dir.up.sql", dir);
    cr_assert_eq(mkdir(sub, 0700), 0);                 /* directories are not migrations */
    cr_assert_eq(source_load(dir, &src, err, sizeof err), 0, "%s", err);
    cr_assert_eq(src.n, 3);
    cr_assert_eq(src.v[0].version, 1);
    cr_assert_null(src.v[0].up_file);
    cr_assert_str_eq(src.v[0].down_name, "one");
    cr_assert_eq(src.v[1].version, 5);
    cr_assert_str_eq(src.v[1].up_name, "five");
    cr_assert_str_eq(src.v[1].down_name, "five_down");
    cr_assert_eq(src.v[2].version, 10);                /* numeric, not by name */
    cr_assert_eq(source_find(&src, 5), 1);
    cr_assert_eq(source_find(&src, 7), -1);
    source_free(&src);
}

Test(migrate_source, duplicates_are_an_error, .init = make_dir, .fini = remove_dir)
{
    struct mig_source src;
    char err[512];

    touch("1_a.up.sql");
    touch("01_b.up.sql");               /* leading zeros: the same version */
    cr_assert_eq(source_load(dir, &src, err, sizeof err), -1);
    cr_assert(strstr(err, "duplicate migration file: 1_a.up.sql") != NULL, "%s", err);
    source_free(&src);
}

Test(migrate_source, missing_directory)
{
    struct mig_source src;
    char err[512];

    cr_assert_eq(source_load("/nonexistent/migrations", &src, err, sizeof err), -1);
    cr_assert(strstr(err, "No such file or directory") != NULL, "%s", err);
    source_free(&src);
}

/* ---------------------------------------------------------------- plans */

/* Versions 1, 3, 5. */
static struct mig_source three(void)
{
    static struct mig_version v[3] = { { .version = 1 }, { .version = 3 }, { .version = 5 } };
    struct mig_source s = { .dir = NULL, .v = v, .n = 3 };
    return s;
}

/* "1>1 3>3" style: version>target per step. */
static void steps_are(const struct plan *p, const char *want)
{
    char got[256] = "";
    for (size_t i = 0; i < p->n; i++) {
        size_t l = strlen(got);
        snprintf(got + l, sizeof got - l, "%s%lld>%lld", i ? " " : "",
                 (long long)p->steps[i].version, (long long)p->steps[i].target);
    }
    cr_assert_str_eq(got, want);
}

Test(migrate_plan, up)
{
    struct mig_source s = three();
    struct plan p;

    cr_assert_eq(plan_up(&s, -1, -1, &p), 0);
    steps_are(&p, "1>1 3>3 5>5");
    cr_assert_str_eq(p.err, "");
    plan_free(&p);
    plan_up(&s, -1, 2, &p);
    steps_are(&p, "1>1 3>3");
    plan_free(&p);
    plan_up(&s, 5, -1, &p);
    cr_assert(p.no_change);
    steps_are(&p, "");
    plan_up(&s, 5, 1, &p);
    cr_assert_str_eq(p.err, "file does not exist");
    plan_up(&s, 1, 5, &p);
    steps_are(&p, "3>3 5>5");
    cr_assert_str_eq(p.err, "limit 3 short");
    plan_free(&p);
    plan_up(&s, 4, -1, &p);
    cr_assert_str_eq(p.err, "no migration found for version 4: read down for version 4 .: "
                     "file does not exist");
    steps_are(&p, "");
}

Test(migrate_plan, down)
{
    struct mig_source s = three();
    struct plan p;

    plan_down(&s, 5, -1, &p);
    steps_are(&p, "5>3 3>1 1>-1");
    plan_free(&p);
    plan_down(&s, 3, 1, &p);
    steps_are(&p, "3>1");
    cr_assert(p.steps[0].up == false);
    plan_free(&p);
    plan_down(&s, 3, 4, &p);
    steps_are(&p, "3>1 1>-1");
    cr_assert_str_eq(p.err, "limit 2 short");
    plan_free(&p);
    plan_down(&s, -1, -1, &p);
    cr_assert(p.no_change);
    plan_down(&s, -1, 1, &p);
    cr_assert_str_eq(p.err, "file does not exist");
}

Test(migrate_plan, goto_)
{
    struct mig_source s = three();
    struct plan p;

    plan_goto(&s, -1, 3, &p);
    steps_are(&p, "1>1 3>3");
    plan_free(&p);
    plan_goto(&s, 5, 1, &p);
    steps_are(&p, "5>3 3>1");
    plan_free(&p);
    plan_goto(&s, 3, 3, &p);
    cr_assert(p.no_change);
    plan_goto(&s, 1, 4, &p);
    cr_assert_str_eq(p.err, "no migration found for version 4: read down for version 4 .: "
                     "file does not exist");
    steps_are(&p, "");
}

/* ---------------------------------------------------------------- sha256 */

static void sha_is(const char *msg, size_t len, const char *want)
{
    char hex[65];
    sha256_hex(msg, len, hex);
    cr_assert_str_eq(hex, want, "sha256 of %zu bytes", len);
}

Test(migrate_sha256, fips_vectors)
{
    sha_is("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sha_is("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha_is(two, strlen(two), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

Test(migrate_sha256, million_a_in_pieces)
{
    struct sha256 s;
    uint8_t d[32];
    char chunk[1000], hex[65];

    memset(chunk, 'a', sizeof chunk);
    sha256_init(&s);
    for (int i = 0; i < 1000; i++)
        sha256_update(&s, chunk, sizeof chunk);
    sha256_final(&s, d);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    cr_assert_str_eq(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

Test(migrate_sha256, padding_boundaries)
{
    char a[64];

    memset(a, 'a', sizeof a);
    sha_is(a, 55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
    sha_is(a, 56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
    sha_is(a, 64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}

/* ---------------------------------------------------------------- lock key */

Test(migrate_lock, golang_migrate_vectors)
{
    const char *one[] = { "database_name" };
    const char *pg[] = { "public", "schema_migrations", "mydb" };   /* schema, table, database */
    const char *my[] = { "app:schema_migrations" };

    cr_assert_eq(mig_crc32("123456789", 9), 0xCBF43926u);      /* the CRC-32 check value */
    cr_assert_eq(mig_lock_key(one, 1), 1764327054u);            /* golang-migrate's own test */
    cr_assert_eq(mig_lock_key(pg, 3), 2103762914u);             /* names joined by NUL */
    cr_assert_eq(mig_lock_key(my, 1), 2938252834u);
}

/* ---------------------------------------------------------------- durations */

static void dur_is(int64_t ns, const char *want)
{
    char buf[32];
    cr_assert_str_eq(godur_format(ns, buf, sizeof buf), want, "%lld ns", (long long)ns);
}

Test(migrate_godur, like_go)
{
    dur_is(0, "0s");
    dur_is(1, "1ns");
    dur_is(999, "999ns");
    dur_is(1000, "1\xc2\xb5s");
    dur_is(1500, "1.5\xc2\xb5s");
    dur_is(12345600, "12.3456ms");
    dur_is(1740584, "1.740584ms");
    dur_is(1000000000, "1s");
    dur_is(1500000000, "1.5s");
    dur_is(61000000000LL, "1m1s");
    dur_is(3600000000000LL, "1h0m0s");
    dur_is(3723004000000LL, "1h2m3.004s");
    dur_is(-1500, "-1.5\xc2\xb5s");
}

/* ---------------------------------------------------------------- flags */

Test(migrate_flags, go_style)
{
    bool v = false, all = false;
    const char *path = NULL;
    long n = 0;
    struct flag_def defs[] = { { "verbose", FLAG_BOOL, &v }, { "path", FLAG_STRING, &path },
                               { "lock-timeout", FLAG_UINT, &n }, { "all", FLAG_BOOL, &all } };
    char *argv[] = { "prog", "--verbose", "-path=dir", "-lock-timeout", "3", "up", "-1", NULL };
    int i = 1;

    cr_assert_eq(flags_parse(7, argv, &i, defs, 4), 0);
    cr_assert(v);
    cr_assert_str_eq(path, "dir");
    cr_assert_eq(n, 3);
    cr_assert_eq(i, 5);                                 /* stops at the command */
    char *neg[] = { "prog", "-1", NULL };
    i = 1;
    cr_assert_eq(flags_parse(2, neg, &i, defs, 4), 0);
    cr_assert_eq(i, 1);                                 /* "-1" is an argument */
    char *bad[] = { "prog", "-nope", NULL };
    i = 1;
    cr_assert_eq(flags_parse(2, bad, &i, defs, 4), -1);
    char *help[] = { "prog", "-h", NULL };
    i = 1;
    cr_assert_eq(flags_parse(2, help, &i, defs, 4), -2);
}
