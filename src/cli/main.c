/*
 * main.c — dbpool, the command-line client: a small psql/sqlite3-like tool
 * that talks to dbpoold through libdbpool (man/dbpool.1 is its manual).
 *
 *   dbpool [-S SOCKET] [-d POOL] [-c SQL]... [-f FILE]... [--csv|--json] [-q]
 *          [--pin] [--connect-timeout=DURATION] [--timeout=DURATION]
 *
 * All -c and -f arguments run in the order given, in one session, statement
 * by statement (scripts are cut with sqlsplit), stopping at the first error.
 * Without -c/-f it reads statements interactively when stdin is a terminal,
 * or runs stdin as a script otherwise. With --pin the session is pinned to
 * one server connection right after connecting (dbpool_pin), so temporary
 * tables, SETs and locks last from one transaction to the next.
 *
 * Result sets print through output.c (table, CSV or JSON); status lines and
 * errors never mix into CSV/JSON output.
 *
 * Exit status: 0 success, 1 an error (SQL, connection, I/O), 2 usage error.
 */
#include "dbpool.h"
#include "cli/describe.h"
#include "cli/lineedit.h"
#include "cli/output.h"
#include "cli/sbuf.h"
#include "common/duration.h"
#include "common/sqlsplit.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#ifndef PACKAGE_VERSION_STR
#define PACKAGE_VERSION_STR "unknown"
#endif

#define EXIT_ERROR 1
#define EXIT_USAGE 2

/* One -c or -f argument, kept in command-line order. */
struct action {
    bool is_file;
    const char *arg;
};

struct options {
    const char *socket;         /* NULL: $DBPOOL_SOCKET or the default */
    const char *pool;
    enum format format;
    bool quiet;
    bool pin;                   /* --pin: dbpool_pin right after connecting */
    struct action *actions;     /* owned (malloc) */
    size_t nactions;
    dbpool_options conn_opts;   /* timeouts; DBPOOL_TIMEOUT_FROM_ENV unless given */
};

struct session {
    dbpool_conn *conn;
    const struct options *opt;
    unsigned split_flags;       /* sqlsplit dialect of the pool's backend */
    bool pin_lost;              /* --pin, and the daemon has ended the pin */
    enum format format;         /* the -o format; \x toggles FMT_TABLE / FMT_EXPANDED */
    bool timing;                /* \timing: print each statement's time */
    bool schema_changed;        /* DDL ran: refresh the completion's table names */
};

/* ------------------------------------------------------------ running SQL */

/* dbpool: ERROR [SQL 23505, vendor 2067]: message (the vendor code when there is one) */
static void print_error(const dbpool_error *e)
{
    char vendor[32] = "";

    if (e->vendor_code != 0)
        snprintf(vendor, sizeof vendor, ", vendor %d", (int)e->vendor_code);
    fflush(stdout);
    fprintf(stderr, "dbpool: ERROR [%s%s%s%s]: %s\n", dbpool_code_name(e->code),
            e->sqlstate[0] ? " " : "", e->sqlstate, vendor, e->message);
}

static void print_status(const struct session *s)
{
    int64_t n = dbpool_rows_affected(s->conn);

    if ((s->format != FMT_TABLE && s->format != FMT_EXPANDED) || s->opt->quiet)
        return;
    if (n < 0)
        puts("OK");
    else
        printf("OK, %" PRId64 " row%s affected\n", n, n == 1 ? "" : "s");
}

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* CREATE, DROP, ALTER (and so maybe a new table name for completion). */
static bool is_ddl(const char *sql)
{
    sql += strspn(sql, " \t\r\n(");
    return strncasecmp(sql, "create", 6) == 0 || strncasecmp(sql, "drop", 4) == 0
        || strncasecmp(sql, "alter", 5) == 0;
}

/* Runs one statement and prints its output. Returns 0 or -1 (error printed). */
static int run_statement(struct session *s, const char *sql, size_t len)
{
    char *text = xrealloc(NULL, len + 1);
    const dbpool_value *none;
    double start = now_ms();
    int rc;

    memcpy(text, sql, len);
    text[len] = '\0';
    s->schema_changed = s->schema_changed || is_ddl(text);
    rc = dbpool_query_start(s->conn, text, NULL, 0);
    free(text);
    if (rc == 0) {
        if (dbpool_ncolumns(s->conn) > 0)
            rc = output_rows(s->conn, s->format);
        else
            rc = dbpool_next_row(s->conn, &none);   /* 0: completed */
        if (rc == 0 && dbpool_ncolumns(s->conn) == 0)
            print_status(s);
    }
    if (rc < 0)
        print_error(dbpool_last_error(s->conn));
    if (s->timing)
        printf("Time: %.3f ms\n", now_ms() - start);
    fflush(stdout);
    return rc < 0 ? -1 : 0;
}

/* Runs every statement of a script; stops at the first error. where names
 * the script in error messages (NULL for -c). */
static int run_script(struct session *s, const char *buf, size_t len, const char *where)
{
    struct sqlsplit it;
    struct sqlsplit_stmt st;

    sqlsplit_init(&it, buf, len, s->split_flags);
    while (sqlsplit_next(&it, &st)) {
        if (run_statement(s, st.text, st.len) < 0) {
            if (where != NULL)
                fprintf(stderr, "dbpool: in %s, statement starting at line %u\n", where, st.line);
            return -1;
        }
    }
    return 0;
}

/* Reads a whole stream into *out (owned by the caller, NUL-terminated). */
static int read_all(FILE *f, struct sbuf *out)
{
    char chunk[65536];
    size_t n;

    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        sb_add(out, chunk, n);
    if (out->p == NULL)
        sb_add(out, "", 0);
    return ferror(f) ? -1 : 0;
}

static int run_file(struct session *s, const char *path)
{
    bool is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "r");
    struct sbuf buf = { 0 };
    int rc;

    if (f == NULL) {
        fprintf(stderr, "dbpool: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    rc = read_all(f, &buf);
    if (rc < 0)
        fprintf(stderr, "dbpool: cannot read %s: %s\n", is_stdin ? "standard input" : path,
                strerror(errno));
    if (!is_stdin)
        fclose(f);
    if (rc == 0)
        rc = run_script(s, buf.p, buf.len, is_stdin ? "standard input" : path);
    free(buf.p);
    return rc;
}

/* ------------------------------------------------------------ interactive */

static void interactive_help(void)
{
    puts("Type SQL statements ending with ';' (they may span several lines).\n"
         "  \\dt           list tables\n"
         "  \\d NAME       describe table NAME (columns, types, nullable, default)\n"
         "  \\i FILE       run the statements in FILE\n"
         "  \\timing [on|off]  show how long each statement takes\n"
         "  \\x [on|off]   expanded output (one line per column)\n"
         "  \\?           show this help\n"
         "  \\q           quit (so does end of input, Ctrl-D)\n"
         "Results print as a table; errors are shown and the session goes on.\n"
         "Arrow keys edit and recall lines (history in ~/.dbpool_history, or\n"
         "$DBPOOL_HISTORY); Tab completes commands and table names.");
}

/* \timing / \x argument: "on", "off", or none to toggle. */
static void set_toggle(bool *flag, const char *arg, const char *what)
{
    if (strcmp(arg, "on") == 0 || strcmp(arg, "off") == 0)
        *flag = strcmp(arg, "on") == 0;
    else if (arg[0] == '\0')
        *flag = !*flag;
    else {
        fprintf(stderr, "dbpool: %s takes \"on\" or \"off\", not \"%s\"\n", what, arg);
        return;
    }
    printf("%s is %s.\n", strcmp(what, "\\x") == 0 ? "Expanded display" : "Timing",
           *flag ? "on" : "off");
}

/* Refreshes the table names tab completion offers (not inside a failed
 * transaction, where any query fails). */
static void refresh_completion(struct session *s)
{
    char **names;
    size_t n;

    if (dbpool_txstate_of(s->conn) == DBPOOL_TX_FAILED
        || describe_table_names(s->conn, &names, &n) < 0)
        return;
    le_set_tables(names, n);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    s->schema_changed = false;
}

static int run_file(struct session *s, const char *path);

static void describe(struct session *s, const char *cmd, const char *arg)
{
    int rc = strcmp(cmd, "\\dt") == 0 || arg[0] == '\0'
           ? describe_tables(s->conn, s->format)
           : describe_table(s->conn, arg, s->format);

    if (rc < 0)
        print_error(dbpool_last_error(s->conn));
}

/* A backslash command typed at the start of a statement. Returns false to quit. */
static bool meta_command(struct session *s, const char *line)
{
    char cmd[16] = "", arg[4096] = "";
    bool expanded = s->format == FMT_EXPANDED;

    sscanf(line, " %15s %4095[^\n]", cmd, arg);
    arg[strcspn(arg, " \t")] = '\0';
    if (strcmp(cmd, "\\q") == 0)
        return false;
    if (strcmp(cmd, "\\?") == 0 || strcmp(cmd, "\\h") == 0)
        interactive_help();
    else if (strcmp(cmd, "\\dt") == 0 || strcmp(cmd, "\\d") == 0)
        describe(s, cmd, arg);
    else if (strcmp(cmd, "\\timing") == 0)
        set_toggle(&s->timing, arg, "\\timing");
    else if (strcmp(cmd, "\\x") == 0) {
        set_toggle(&expanded, arg, "\\x");
        s->format = expanded ? FMT_EXPANDED : s->opt->format;     /* back to --csv etc. */
    } else if (strcmp(cmd, "\\i") == 0 && arg[0] != '\0')
        run_file(s, arg);
    else if (strcmp(cmd, "\\i") == 0)
        fputs("dbpool: \\i needs a file name: \\i FILE\n", stderr);
    else
        fprintf(stderr, "dbpool: invalid command %s; try \\? for help\n", cmd);
    fflush(stdout);
    return true;
}

/* Runs the complete statements at the start of acc and keeps the rest. */
static void run_complete(struct session *s, struct sbuf *acc)
{
    size_t n = sqlsplit_complete_len(acc->p, acc->len, s->split_flags);
    struct sqlsplit it;
    struct sqlsplit_stmt st;

    if (n > 0) {
        sqlsplit_init(&it, acc->p, n, s->split_flags);
        while (sqlsplit_next(&it, &st) && dbpool_is_open(s->conn))
            run_statement(s, st.text, st.len);
        memmove(acc->p, acc->p + n, acc->len - n + 1);
        acc->len -= n;
    }
    if (sqlsplit_is_blank(acc->p, acc->len, s->split_flags))
        acc->len = 0;
}

/* With --pin, tells once that a lost server connection ended the pin. */
static void warn_if_unpinned(struct session *s)
{
    if (!s->opt->pin || s->pin_lost || !dbpool_is_open(s->conn) || dbpool_is_pinned(s->conn))
        return;
    s->pin_lost = true;
    fputs("dbpool: warning: the server connection was lost, so the session is no longer "
          "pinned: temporary tables, SETs and locks are gone; reconnect to pin again\n", stderr);
}

/* psql's prompt: POOL=> , POOL=*> in a transaction, POOL=!> in a failed
 * one; '-' instead of '=' while a statement is not complete. */
static void make_prompt(const struct session *s, bool continued, char *buf, size_t cap)
{
    dbpool_txstate tx = dbpool_txstate_of(s->conn);

    snprintf(buf, cap, "%s%c%s> ", s->opt->pool, continued ? '-' : '=',
             tx == DBPOOL_TX_ACTIVE ? "*" : tx == DBPOOL_TX_FAILED ? "!" : "");
}

/* One line typed at the terminal. Returns false to quit, or when the
 * session with the daemon is gone (*closed). */
static bool interactive_line(struct session *s, struct sbuf *acc, const char *line,
                             bool *closed)
{
    if (acc->len == 0 && line[strspn(line, " \t")] == '\\')
        return meta_command(s, line);
    sb_adds(acc, line);
    sb_adds(acc, "\n");
    run_complete(s, acc);
    warn_if_unpinned(s);
    if (!dbpool_is_open(s->conn)) {
        fputs("dbpool: the session with dbpoold was closed\n", stderr);
        *closed = true;
        return false;
    }
    if (s->schema_changed)
        refresh_completion(s);
    return true;
}

static int interactive(struct session *s)
{
    struct sbuf acc = { 0 };
    char prompt[512];
    bool closed = false;
    char *line;

    if (!s->opt->quiet)
        printf("dbpool %s, pool \"%s\" (%s%s). Type \\? for help, \\q to quit.\n",
               PACKAGE_VERSION_STR, s->opt->pool, dbpool_backend(s->conn),
               dbpool_is_pinned(s->conn) ? ", pinned" : "");
    le_open();
    refresh_completion(s);
    for (;;) {
        make_prompt(s, acc.len > 0, prompt, sizeof prompt);
        fflush(stdout);
        if ((line = le_read(prompt)) == NULL) {
            putchar('\n');
            break;
        }
        bool go_on = interactive_line(s, &acc, line, &closed);
        free(line);
        if (!go_on)
            break;
    }
    le_close();
    free(acc.p);
    return closed ? EXIT_ERROR : 0;
}

/* ------------------------------------------------------------ options */

static void usage(FILE *f)
{
    fputs("Usage: dbpool [OPTION]...\n"
          "Run SQL through dbpoold, the database connection pool.\n"
          "\n"
          "  -S, --socket=PATH    daemon socket (default $DBPOOL_SOCKET, else the built-in path)\n"
          "  -d, --pool=POOL      pool to use (alias --dbname; default $DBPOOL_POOL, else \"app\")\n"
          "  -c, --command=SQL    run SQL (may be repeated)\n"
          "  -f, --file=FILE      run the statements in FILE, '-' for stdin (may be repeated)\n"
          "      --csv            print result sets as CSV\n"
          "      --json           print each result set as one JSON array per line\n"
          "  -q, --quiet          no status lines or banner\n"
          "      --pin            pin the session to one server connection, so temporary\n"
          "                       tables, SETs and locks last across its transactions\n"
          "      --connect-timeout=DURATION  give up connecting after DURATION (\"10s\", \"250ms\";\n"
          "                       0: never; default $DBPOOL_CONNECT_TIMEOUT, else 10s)\n"
          "      --timeout=DURATION  give up on a statement dbpoold has not answered within\n"
          "                       DURATION (0: never; default $DBPOOL_TIMEOUT, else never)\n"
          "  -h, --help           show this help and exit\n"
          "  -V, --version        show the version and exit\n"
          "\n"
          "-c and -f run in the order given, in one session, stopping at the first error.\n"
          "Without them, statements are read from stdin (interactively on a terminal).\n"
          "Exit status: 0 success, 1 error, 2 usage error.\n", f);
}

static void add_action(struct options *o, bool is_file, const char *arg)
{
    o->actions = xrealloc(o->actions, (o->nactions + 1) * sizeof *o->actions);
    o->actions[o->nactions].is_file = is_file;
    o->actions[o->nactions].arg = arg;
    o->nactions++;
}

/* A --connect-timeout / --timeout value into *ms. Returns false (after
 * telling the user) when it is not a duration. */
static bool parse_timeout_flag(const char *flag, const char *arg, int64_t *ms)
{
    uint64_t v;

    if (!parse_duration_ms(arg, &v) || v > INT64_MAX) {
        fprintf(stderr, "dbpool: --%s: \"%s\" is not a duration; write it like \"10s\", "
                "\"250ms\" or \"1m30s\" (0: no limit)\n", flag, arg);
        return false;
    }
    *ms = (int64_t)v;
    return true;
}

/* Returns -1 to continue, else the exit status to exit with now. */
static int parse_options(int argc, char **argv, struct options *o)
{
    enum { OPT_CSV = 1000, OPT_JSON, OPT_CONNECT_TIMEOUT, OPT_TIMEOUT, OPT_PIN };
    static const struct option longopts[] = {
        { "socket", required_argument, NULL, 'S' },
        { "pool", required_argument, NULL, 'd' },
        { "dbname", required_argument, NULL, 'd' },
        { "command", required_argument, NULL, 'c' },
        { "file", required_argument, NULL, 'f' },
        { "csv", no_argument, NULL, OPT_CSV },
        { "json", no_argument, NULL, OPT_JSON },
        { "quiet", no_argument, NULL, 'q' },
        { "pin", no_argument, NULL, OPT_PIN },
        { "connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT },
        { "timeout", required_argument, NULL, OPT_TIMEOUT },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *env_pool = getenv("DBPOOL_POOL");
    int ch;

    memset(o, 0, sizeof *o);
    dbpool_options_init(&o->conn_opts);
    o->pool = env_pool != NULL && env_pool[0] != '\0' ? env_pool : "app";
    while ((ch = getopt_long(argc, argv, "S:d:c:f:qhV", longopts, NULL)) != -1) {
        switch (ch) {
        case 'S': o->socket = optarg; break;
        case 'd': o->pool = optarg; break;
        case 'c': add_action(o, false, optarg); break;
        case 'f': add_action(o, true, optarg); break;
        case OPT_CSV: o->format = FMT_CSV; break;
        case OPT_JSON: o->format = FMT_JSON; break;
        case 'q': o->quiet = true; break;
        case OPT_PIN: o->pin = true; break;
        case OPT_CONNECT_TIMEOUT:
            if (!parse_timeout_flag("connect-timeout", optarg, &o->conn_opts.connect_timeout_ms))
                return EXIT_USAGE;
            break;
        case OPT_TIMEOUT:
            if (!parse_timeout_flag("timeout", optarg, &o->conn_opts.request_timeout_ms))
                return EXIT_USAGE;
            break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("dbpool (dbpoold) %s\n", PACKAGE_VERSION_STR); return 0;
        default:
            fputs("Try 'dbpool --help' for more information.\n", stderr);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "dbpool: unexpected argument '%s' (SQL goes after -c)\n"
                "Try 'dbpool --help' for more information.\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (o->pool[0] == '\0') {
        fputs("dbpool: the pool name is empty\n", stderr);
        return EXIT_USAGE;
    }
    return -1;
}

/* ------------------------------------------------------------ main */

/* --pin. Returns 0, or EXIT_ERROR after telling the user why not (and
 * closing the session). */
static int pin_session(struct session *s)
{
    if (dbpool_pin(s->conn) == 0)
        return 0;
    print_error(dbpool_last_error(s->conn));     /* LIMIT: the message names maxPinned */
    dbpool_close(s->conn);
    return EXIT_ERROR;
}

/* Returns 0, or the exit status: EXIT_USAGE for a bad argument or
 * environment variable (a timeout), else EXIT_ERROR. */
static int connect_session(struct session *s, const struct options *o)
{
    dbpool_error err;

    memset(s, 0, sizeof *s);
    s->opt = o;
    s->conn = dbpool_connect_opts(o->socket, o->pool, "dbpool", &o->conn_opts, &err);
    if (s->conn == NULL) {
        if (err.code == DBPOOL_E_IO || err.code == DBPOOL_E_USAGE)
            fprintf(stderr, "dbpool: %s\n", err.message);
        else
            print_error(&err);
        return err.code == DBPOOL_E_USAGE ? EXIT_USAGE : EXIT_ERROR;
    }
    s->split_flags = sqlsplit_flags_for_backend(dbpool_backend(s->conn));
    s->format = o->format;
    return o->pin ? pin_session(s) : 0;
}

static int run_actions(struct session *s, const struct options *o)
{
    for (size_t i = 0; i < o->nactions; i++) {
        const struct action *a = &o->actions[i];
        int rc = a->is_file ? run_file(s, a->arg)
                            : run_script(s, a->arg, strlen(a->arg), NULL);
        if (rc < 0)
            return EXIT_ERROR;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct options o;
    struct session s;
    int status;

    if (!isatty(STDOUT_FILENO))         /* fewer write(2)s for big result sets */
        setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    status = parse_options(argc, argv, &o);
    if (status >= 0) {
        free(o.actions);
        return status;
    }
    status = connect_session(&s, &o);
    if (status != 0) {
        free(o.actions);
        return status;
    }
    if (o.nactions > 0)
        status = run_actions(&s, &o);
    else if (isatty(STDIN_FILENO))
        status = interactive(&s);
    else
        status = run_file(&s, "-") < 0 ? EXIT_ERROR : 0;
    if (status == 0 && dbpool_is_open(s.conn) && dbpool_txstate_of(s.conn) != DBPOOL_TX_IDLE
        && !o.quiet)
        fputs("dbpool: warning: the session ended inside a transaction; "
              "dbpoold rolls it back\n", stderr);
    dbpool_close(s.conn);
    free(o.actions);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "dbpool: error writing output: %s\n", strerror(errno));
        return EXIT_ERROR;
    }
    return status;
}
