/*
 * main.c — dbpool-migrate, schema migrations through dbpoold
 * (man/dbpool-migrate.1, doc/migrations.md):
 *
 *   dbpool-migrate [-S SOCKET] [-d POOL] -path DIR [-lock-timeout N] [-verbose] COMMAND [arg...]
 *
 * golang-migrate's command line, commands, messages (stderr) and exit
 * codes, against the pool's database through the daemon, which holds the
 * database password: create, up [N], down [N] | down -all, goto V, force V,
 * version, drop [-f]; and dbpool-migrate's own status and --dry-run.
 * Exit status: 0 done (also "no change"), 1 error, 2 usage error, 3 `status`
 * found a problem.
 *
 * A command that touches the database connects, pins the session (one
 * server connection for the whole run), takes golang-migrate's lock
 * (lock.c), makes sure schema_migrations and schema_migrations_history
 * exist, runs, then unlocks and unpins. SIGINT/SIGTERM let the running
 * migration finish, stop before the next, and exit 1; a second signal ends
 * the program at once.
 */
#include "dbpool.h"
#include "migrate/flags.h"
#include "migrate/godur.h"
#include "migrate/migrate.h"

#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef PACKAGE_VERSION_STR
#define PACKAGE_VERSION_STR "unknown"
#endif

#define EXIT_ERROR 1
#define EXIT_USAGE 2

struct opts {
    const char *socket, *pool, *path, *source, *database;
    long lock_timeout, prefetch;
    bool verbose, version, help;
};

/* Written by the signal handler, read between migrations (runner.c). */
static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    static const char msg[] = "Stopping after this running migration ...\n";

    (void)sig;
    stop_requested = 1;
    if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0) {
        /* nothing to do about it in a handler */
    }
}

static void catch_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND;     /* a second signal: the default action */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static void usage(void)
{
    fputs("Usage: dbpool-migrate OPTIONS COMMAND [arg...]\n"
          "       dbpool-migrate [ -version | -help ]\n"
          "\n"
          "Options:\n"
          "  -S SOCKET        dbpoold's socket (default $DBPOOL_SOCKET, else the daemon's default)\n"
          "  -d POOL          the pool whose database is migrated (default $DBPOOL_POOL, else app)\n"
          "  -path DIR        the directory of the NNN_name.up.sql / .down.sql files\n"
          "  -source URL      file://DIR, the same as -path DIR\n"
          "  -lock-timeout N  Allow N seconds to acquire database lock (default 15)\n"
          "  -prefetch N      accepted for golang-migrate's command lines; no effect\n"
          "  -verbose         Print verbose logging\n"
          "  -version         Print version\n"
          "  -help            Print usage\n"
          "\n"
          "Commands:\n"
          "  create [-ext E] [-dir D] [-seq] [-digits N] [-format F] [-tz TZ] NAME\n"
          "           Create a set of timestamped up/down migrations titled NAME, in directory D with extension E.\n"
          "           Use -seq option to generate sequential up/down migrations with N digits.\n"
          "           Use -format option to specify a Go time format string.\n"
          "           Use -tz option to specify the timezone of the timestamp (default: UTC).\n"
          "           Use -ext to name the extension (required), -dir the directory (default: .),\n"
          "           -digits for the width of -seq numbers (default: 6).\n"
          "  goto [--dry-run] V      Migrate to version V\n"
          "  up [--dry-run] [N]      Apply all or N up migrations\n"
          "  down [--dry-run] [N] [-all]\n"
          "           Apply all or N down migrations; use -all to apply all down migrations\n"
          "  drop [-f]    Drop everything inside database; use -f to bypass confirmation\n"
          "  force V      Set version V but don't run migration (ignores dirty state)\n"
          "  version      Print current migration version\n"
          "  status       List applied and pending migrations; flag changed and skipped ones (exit 3)\n"
          "  --dry-run    with up, down and goto: print the migrations that would run; run none\n"
          "\n"
          "Exit status: 0 done (also \"no change\"), 1 error, 2 usage error, 3 status found a problem.\n",
          stderr);
}

static int fatal(const char *msg)
{
    fprintf(stderr, "error: %s\n", msg);
    return EXIT_ERROR;
}

/* Reads a y/N answer from stdin. */
static bool confirmed(const char *question)
{
    char line[64] = "";
    size_t n;

    fprintf(stderr, "%s [y/N]\n", question);
    if (fgets(line, sizeof line, stdin) == NULL)
        return false;
    for (n = strlen(line); n > 0 && isspace((unsigned char)line[n - 1]); n--)
        line[n - 1] = '\0';
    return strcasecmp(line, "y") == 0;
}

/* ------------------------------------------------------------ the session */

typedef int (*db_fn)(struct mig *m, void *arg);

static int open_session(struct mig *m, const struct opts *o)
{
    dbpool_error err;

    m->conn = dbpool_connect_opts(o->socket, o->pool, "dbpool-migrate", NULL, &err);
    if (m->conn == NULL)
        return mig_fail(m, "cannot reach pool %s through dbpoold: %s", o->pool, err.message);
    if (mig_describe(m) != 0 || mig_lock(m) != 0)
        return -1;
    if (version_ensure_table(m) != 0 || history_ensure_table(m) != 0)
        return -1;
    return 0;
}

/* Connects, locks, runs fn, unlocks. Returns fn's status (or 1 on error). */
static int with_db(const struct opts *o, bool need_path, bool dry_run, db_fn fn, void *arg)
{
    struct mig_source src;
    struct mig m;
    int rc = -1;
    int64_t t0 = mig_now_ns();

    memset(&m, 0, sizeof m);
    memset(&src, 0, sizeof src);
    if (o->path == NULL && need_path)
        return fatal("-path DIR is required: name the directory of the migration files");
    if (o->path != NULL && source_load(o->path, &src, m.err, sizeof m.err) != 0) {
        source_free(&src);
        return fatal(m.err);
    }
    m.src = &src;
    m.verbose = o->verbose;
    m.dry_run = dry_run;
    m.stop = &stop_requested;
    m.lock_timeout_ms = o->lock_timeout * 1000;
    if (open_session(&m, o) == 0)
        rc = fn(&m, arg);
    if (rc < 0)
        fprintf(stderr, "error: %s\n", m.err);
    if (m.conn != NULL) {
        mig_unlock(&m);
        dbpool_close(m.conn);
    }
    source_free(&src);
    if (rc >= 0 && o->verbose) {
        char d[32];
        mig_log(&m, "Finished after %s", godur_format(mig_now_ns() - t0, d, sizeof d));
    }
    if (rc == 0 && stop_requested) {
        fputs("error: interrupted: stopped after the running migration\n", stderr);
        return EXIT_ERROR;
    }
    return rc < 0 ? EXIT_ERROR : rc == 1 ? 0 : rc;
}

/* ------------------------------------------------------------ commands */

struct steps_arg { long n; int64_t v; };

static int do_up(struct mig *m, void *a) { return run_up(m, ((struct steps_arg *)a)->n); }
static int do_down(struct mig *m, void *a) { return run_down(m, ((struct steps_arg *)a)->n); }
static int do_goto(struct mig *m, void *a) { return run_goto(m, ((struct steps_arg *)a)->v); }
static int do_status(struct mig *m, void *a) { (void)a; return status_report(m); }

static int do_force(struct mig *m, void *a)
{
    int64_t v = ((struct steps_arg *)a)->v;
    long i = v >= 0 ? source_find(m->src, v) : -1;
    const char *name = i >= 0 ? (m->src->v[i].up_name ? m->src->v[i].up_name : m->src->v[i].down_name) : "";

    if (version_set(m, v, false) != 0)
        return -1;
    return history_add(m, v, name, "force", "", 0);
}

static int do_version(struct mig *m, void *a)
{
    int64_t v;
    bool dirty;

    (void)a;
    if (version_read(m, &v, &dirty) != 0)
        return -1;
    if (v == MIG_NIL_VERSION)
        return mig_fail(m, "no migration");
    if (dirty)
        mig_log(m, "%lld (dirty)", (long long)v);
    else
        mig_log(m, "%lld", (long long)v);
    return 0;
}

static int do_drop(struct mig *m, void *a)
{
    (void)a;
    return drop_all(m);
}

/* Parses a subcommand's flags; returns -1 to go on, else the exit status. */
static int sub_flags(int argc, char **argv, int *i, const struct flag_def *defs, int n,
                     const char *cmd_usage)
{
    int rc = flags_parse(argc, argv, i, defs, n);
    bool help = false;

    for (int k = 0; k < n; k++)
        if (strcmp(defs[k].name, "help") == 0)
            help = *(bool *)defs[k].target;
    if (rc == -2 || help) {
        fprintf(stderr, "%s\n", cmd_usage);
        return 0;
    }
    return rc == -1 ? EXIT_USAGE : -1;
}

static bool parse_uint(const char *s, long *out)
{
    char *end;

    if (s == NULL || !isdigit((unsigned char)s[0]))
        return false;
    *out = strtol(s, &end, 10);
    return *end == '\0' && *out >= 0;
}

static int cmd_up(const struct opts *o, int argc, char **argv, int i)
{
    bool help = false, dry = false;
    struct flag_def defs[] = { { "help", FLAG_BOOL, &help }, { "dry-run", FLAG_BOOL, &dry } };
    struct steps_arg a = { -1, 0 };
    int rc = sub_flags(argc, argv, &i, defs, 2, "up [--dry-run] [N]       Apply all or N up migrations");

    if (rc >= 0)
        return rc;
    if (i < argc && !parse_uint(argv[i], &a.n))
        return fatal("can't read limit argument N");
    return with_db(o, true, dry, do_up, &a);
}

static int cmd_down(const struct opts *o, int argc, char **argv, int i)
{
    bool help = false, dry = false, all = false;
    struct flag_def defs[] = { { "help", FLAG_BOOL, &help }, { "dry-run", FLAG_BOOL, &dry },
                               { "all", FLAG_BOOL, &all } };
    struct steps_arg a = { -1, 0 };
    int rc = sub_flags(argc, argv, &i, defs, 3, "down [--dry-run] [N] [-all]    Apply all or N down "
                       "migrations\n\tUse -all to apply all down migrations");

    if (rc >= 0)
        return rc;
    if (all && i < argc)
        return fatal("-all cannot be used with other arguments");
    if (argc - i > 1)
        return fatal("too many arguments");
    if (i < argc && !parse_uint(argv[i], &a.n))
        return fatal("can't read limit argument N");
    if (!all && i == argc && !dry) {
        if (!confirmed("Are you sure you want to apply all down migrations?"))
            return fprintf(stderr, "Not applying all down migrations\n"), EXIT_ERROR;
        fprintf(stderr, "Applying all down migrations\n");
    }
    return with_db(o, true, dry, do_down, &a);
}

static int cmd_goto(const struct opts *o, int argc, char **argv, int i)
{
    bool help = false, dry = false;
    struct flag_def defs[] = { { "help", FLAG_BOOL, &help }, { "dry-run", FLAG_BOOL, &dry } };
    struct steps_arg a = { 0, 0 };
    long v;
    int rc = sub_flags(argc, argv, &i, defs, 2, "goto [--dry-run] V       Migrate to version V");

    if (rc >= 0)
        return rc;
    if (i >= argc)
        return fatal("please specify version argument V");
    if (!parse_uint(argv[i], &v))
        return fatal("can't read version argument V");
    a.v = v;
    return with_db(o, true, dry, do_goto, &a);
}

static int cmd_force(const struct opts *o, int argc, char **argv, int i)
{
    bool help = false;
    struct flag_def defs[] = { { "help", FLAG_BOOL, &help } };
    struct steps_arg a = { 0, 0 };
    char *end;
    int rc = sub_flags(argc, argv, &i, defs, 1, "force V      Set version V but don't run "
                       "migration (ignores dirty state)");

    if (rc >= 0)
        return rc;
    if (i >= argc)
        return fatal("please specify version argument V");
    a.v = strtoll(argv[i], &end, 10);
    if (end == argv[i] || *end != '\0')
        return fatal("can't read version argument V");
    if (a.v < -1)
        return fatal("argument V must be >= -1");
    return with_db(o, false, false, do_force, &a);
}

static int cmd_drop(const struct opts *o, int argc, char **argv, int i)
{
    bool help = false, force = false;
    struct flag_def defs[] = { { "help", FLAG_BOOL, &help }, { "f", FLAG_BOOL, &force } };
    int rc = sub_flags(argc, argv, &i, defs, 2, "drop [-f]    Drop everything inside database\n"
                       "\tUse -f to bypass confirmation");

    if (rc >= 0)
        return rc;
    if (!force) {
        if (!confirmed("Are you sure you want to drop the entire database schema?"))
            return fprintf(stderr, "Aborted dropping the entire database schema\n"), EXIT_ERROR;
        fprintf(stderr, "Dropping the entire database schema\n");
    }
    return with_db(o, false, false, do_drop, NULL);
}

static int cmd_create(int argc, char **argv, int i)
{
    bool help = false;
    struct create_opts c = { .ext = "", .dir = "", .format = "20060102150405", .tz = "UTC",
                             .digits = 6 };
    struct flag_def defs[] = {
        { "help", FLAG_BOOL, &help }, { "ext", FLAG_STRING, &c.ext }, { "dir", FLAG_STRING, &c.dir },
        { "format", FLAG_STRING, &c.format }, { "tz", FLAG_STRING, &c.tz },
        { "seq", FLAG_BOOL, &c.seq }, { "digits", FLAG_INT, &c.digits },
    };
    char err[1024];
    int rc = sub_flags(argc, argv, &i, defs, 7, "create [-ext E] [-dir D] [-seq] [-digits N] "
                       "[-format F] [-tz TZ] NAME");

    if (rc >= 0)
        return rc;
    if (i >= argc)
        return fatal("please specify name");
    c.name = argv[i];
    if (c.ext[0] == '\0')
        return fatal("-ext flag must be specified");
    if (create_files(&c, err, sizeof err) != 0)
        return fatal(err);
    return 0;
}

static int cmd_simple(const struct opts *o, int argc, char **argv, int i, bool status)
{
    bool help = false;
    struct flag_def defs[] = { { "help", FLAG_BOOL, &help } };
    int rc = sub_flags(argc, argv, &i, defs, 1, status
                       ? "status       List applied and pending migrations; flag changed and skipped ones"
                       : "version      Print current migration version");

    if (rc >= 0)
        return rc;
    return status ? with_db(o, true, false, do_status, NULL) : with_db(o, false, false, do_version, NULL);
}

/* ------------------------------------------------------------ main */

static int parse_globals(int argc, char **argv, struct opts *o, int *i)
{
    const char *env_pool = getenv("DBPOOL_POOL");
    struct flag_def defs[] = {
        { "S", FLAG_STRING, &o->socket }, { "d", FLAG_STRING, &o->pool },
        { "path", FLAG_STRING, &o->path }, { "source", FLAG_STRING, &o->source },
        { "database", FLAG_STRING, &o->database }, { "lock-timeout", FLAG_UINT, &o->lock_timeout },
        { "prefetch", FLAG_UINT, &o->prefetch }, { "verbose", FLAG_BOOL, &o->verbose },
        { "version", FLAG_BOOL, &o->version }, { "help", FLAG_BOOL, &o->help },
    };
    int rc;

    memset(o, 0, sizeof *o);
    o->pool = env_pool != NULL && env_pool[0] != '\0' ? env_pool : "app";
    o->lock_timeout = 15;
    *i = 1;
    rc = flags_parse(argc, argv, i, defs, (int)(sizeof defs / sizeof defs[0]));
    if (rc == -2 || (rc == 0 && o->help)) {
        usage();
        return 0;
    }
    if (rc != 0) {
        usage();
        return EXIT_USAGE;
    }
    if (o->version) {
        fprintf(stderr, "%s\n", PACKAGE_VERSION_STR);
        return 0;
    }
    if (o->database != NULL)
        return fatal("dbpool-migrate reaches the database through dbpoold, which holds its "
                     "password: name the pool with -d POOL (and the socket with -S) instead of -database");
    if (o->path == NULL && o->source != NULL)
        o->path = strncmp(o->source, "file://", 7) == 0 ? o->source + 7 : o->source;
    return -1;
}

int main(int argc, char **argv)
{
    struct opts o;
    int i;
    int rc = parse_globals(argc, argv, &o, &i);

    if (rc >= 0)
        return rc;
    if (i >= argc) {
        usage();
        return EXIT_USAGE;
    }
    catch_signals();
    const char *cmd = argv[i++];
    if (strcmp(cmd, "create") == 0) return cmd_create(argc, argv, i);
    if (strcmp(cmd, "up") == 0) return cmd_up(&o, argc, argv, i);
    if (strcmp(cmd, "down") == 0) return cmd_down(&o, argc, argv, i);
    if (strcmp(cmd, "goto") == 0) return cmd_goto(&o, argc, argv, i);
    if (strcmp(cmd, "force") == 0) return cmd_force(&o, argc, argv, i);
    if (strcmp(cmd, "drop") == 0) return cmd_drop(&o, argc, argv, i);
    if (strcmp(cmd, "version") == 0) return cmd_simple(&o, argc, argv, i, false);
    if (strcmp(cmd, "status") == 0) return cmd_simple(&o, argc, argv, i, true);
    usage();
    return EXIT_USAGE;
}
