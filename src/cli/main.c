/*
 * main.c — dbpool, the command-line client: a small psql/sqlite3-like tool
 * that talks to dbpoold through libdbpool (man/dbpool.1 is its manual).
 *
 *   dbpool [-S SOCKET] [-d POOL] [-c SQL]... [-f FILE]... [--csv|--json] [-q]
 *          [--connect-timeout=DURATION] [--timeout=DURATION]
 *
 * All -c and -f arguments run in the order given, in one session, statement
 * by statement (scripts are cut with sqlsplit), stopping at the first error.
 * Without -c/-f it reads statements interactively when stdin is a terminal,
 * or runs stdin as a script otherwise.
 *
 * Output goes through one "printer" per result set: an aligned table (rows
 * are buffered up to TABLE_BUFFER_ROWS to compute column widths, then the
 * rest streams with those widths), CSV or JSON (both streamed row by row).
 * Status lines and errors never mix into CSV/JSON output.
 *
 * Exit status: 0 success, 1 an error (SQL, connection, I/O), 2 usage error.
 */
#include "dbpool.h"
#include "common/duration.h"
#include "common/sqlsplit.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef PACKAGE_VERSION_STR
#define PACKAGE_VERSION_STR "unknown"
#endif

#define TABLE_BUFFER_ROWS 10000     /* rows buffered to size table columns */
#define EXIT_ERROR 1
#define EXIT_USAGE 2

enum format { FMT_TABLE, FMT_CSV, FMT_JSON };

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
    struct action *actions;     /* owned (malloc) */
    size_t nactions;
    dbpool_options conn_opts;   /* timeouts; DBPOOL_TIMEOUT_FROM_ENV unless given */
};

struct session {
    dbpool_conn *conn;
    const struct options *opt;
    unsigned split_flags;       /* sqlsplit dialect of the pool's backend */
};

/* Growable string; the memory belongs to whoever holds the struct. */
struct sbuf {
    char *p;
    size_t len;
    size_t cap;
};

/* ------------------------------------------------------------ small helpers */

static void die_oom(void)
{
    fputs("dbpool: out of memory\n", stderr);
    exit(EXIT_ERROR);
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (p == NULL)
        die_oom();
    return p;
}

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->p = xrealloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_adds(struct sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

/* Display width of UTF-8 text: one column per code point. */
static size_t display_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    return w;
}

/* Shortest of %.15g / %.16g / %.17g that reads back as the same double. */
static void format_double(char *buf, size_t cap, double f)
{
    if (isnan(f)) {
        snprintf(buf, cap, "NaN");
        return;
    }
    if (isinf(f)) {
        snprintf(buf, cap, "%s", f < 0 ? "-Infinity" : "Infinity");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, f);
        if (strtod(buf, NULL) == f)
            return;
    }
}

static void add_hex(struct sbuf *b, const char *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    char pair[2];

    sb_add(b, "\\x", 2);
    for (size_t i = 0; i < n; i++) {
        pair[0] = digits[(unsigned char)p[i] >> 4];
        pair[1] = digits[(unsigned char)p[i] & 15];
        sb_add(b, pair, 2);
    }
}

/* Text form of a value (table and CSV). NULL is the empty string. With
 * escape, control characters in TEXT become \n, \t, \r, \xNN (table cells
 * must stay on one line). */
static void add_value_text(struct sbuf *b, const dbpool_value *v, bool escape)
{
    char num[40];

    switch (v->type) {
    case DBPOOL_NULL:
        break;
    case DBPOOL_INT64:
        snprintf(num, sizeof num, "%" PRId64, v->u.i);
        sb_adds(b, num);
        break;
    case DBPOOL_FLOAT64:
        format_double(num, sizeof num, v->u.f);
        sb_adds(b, num);
        break;
    case DBPOOL_BOOL:
        sb_adds(b, v->u.b ? "true" : "false");
        break;
    case DBPOOL_BLOB:
        add_hex(b, v->u.s.ptr, v->u.s.len);
        break;
    case DBPOOL_TEXT:
        for (size_t i = 0; i < v->u.s.len; i++) {
            unsigned char c = (unsigned char)v->u.s.ptr[i];
            if (!escape || c >= 0x20) {
                sb_add(b, (const char *)&c, 1);
            } else {
                snprintf(num, sizeof num, c == '\n' ? "\\n" : c == '\t' ? "\\t" :
                         c == '\r' ? "\\r" : "\\x%02x", c);
                sb_adds(b, num);
            }
        }
        break;
    }
}

/* ------------------------------------------------------------ table printer */

struct cell {
    char *s;                    /* owned */
    size_t width;
    bool right;                 /* numbers are right-aligned */
};

struct table {
    const dbpool_column *cols;  /* the connection's; valid for this statement */
    size_t ncols;
    size_t *width;              /* owned */
    struct cell *buf;           /* buffered rows, nbuf * ncols cells; owned */
    struct cell *line;          /* one row once flushed; owned */
    size_t nbuf;
    size_t bufcap;              /* in rows */
    size_t nrows;
    bool flushed;               /* header printed: widths are final */
};

static void print_spaces(size_t n)
{
    while (n-- > 0)
        putchar(' ');
}

static void table_begin(struct table *t, const dbpool_column *cols, size_t ncols)
{
    memset(t, 0, sizeof *t);
    t->cols = cols;
    t->ncols = ncols;
    t->width = xrealloc(NULL, ncols * sizeof *t->width);
    t->line = xrealloc(NULL, ncols * sizeof *t->line);
    for (size_t i = 0; i < ncols; i++)
        t->width[i] = display_width(cols[i].name);
}

static void print_cell(const struct cell *c, size_t width, bool last)
{
    size_t pad = width > c->width ? width - c->width : 0;

    putchar(' ');
    if (c->right)
        print_spaces(pad);
    fputs(c->s, stdout);
    if (!last) {
        if (!c->right)
            print_spaces(pad);
        fputs(" |", stdout);
    }
}

static void print_table_row(const struct table *t, const struct cell *row)
{
    for (size_t i = 0; i < t->ncols; i++)
        print_cell(&row[i], t->width[i], i + 1 == t->ncols);
    putchar('\n');
}

static void print_table_header(const struct table *t)
{
    for (size_t i = 0; i < t->ncols; i++) {
        size_t w = display_width(t->cols[i].name), pad = t->width[i] - w;
        putchar(' ');
        print_spaces(pad / 2);
        fputs(t->cols[i].name, stdout);
        if (i + 1 < t->ncols) {
            print_spaces(pad - pad / 2);
            fputs(" |", stdout);
        }
    }
    putchar('\n');
    for (size_t i = 0; i < t->ncols; i++) {
        if (i > 0)
            putchar('+');
        for (size_t k = 0; k < t->width[i] + 2; k++)
            putchar('-');
    }
    putchar('\n');
}

static void free_cells(struct cell *row, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(row[i].s);
}

/* Prints the header and the buffered rows; later rows print directly. */
static void table_flush(struct table *t)
{
    if (t->flushed)
        return;
    print_table_header(t);
    for (size_t r = 0; r < t->nbuf; r++) {
        print_table_row(t, t->buf + r * t->ncols);
        free_cells(t->buf + r * t->ncols, t->ncols);
    }
    free(t->buf);
    t->buf = NULL;
    t->nbuf = t->bufcap = 0;
    t->flushed = true;
}

static void table_row(struct table *t, const dbpool_value *vals)
{
    struct cell *row;

    if (!t->flushed && t->nbuf == t->bufcap) {
        t->bufcap = t->bufcap ? t->bufcap * 2 : 64;
        t->buf = xrealloc(t->buf, t->bufcap * t->ncols * sizeof *t->buf);
    }
    row = t->flushed ? t->line : t->buf + t->nbuf * t->ncols;
    for (size_t i = 0; i < t->ncols; i++) {
        struct sbuf b = { 0 };
        add_value_text(&b, &vals[i], true);
        row[i].s = b.p ? b.p : xrealloc(NULL, 1);
        if (b.p == NULL)
            row[i].s[0] = '\0';
        row[i].width = display_width(row[i].s);
        row[i].right = vals[i].type == DBPOOL_INT64 || vals[i].type == DBPOOL_FLOAT64;
        if (!t->flushed && row[i].width > t->width[i])
            t->width[i] = row[i].width;
    }
    t->nrows++;
    if (t->flushed) {
        print_table_row(t, row);
        free_cells(row, t->ncols);
    } else if (++t->nbuf == TABLE_BUFFER_ROWS) {
        table_flush(t);
    }
}

/* ok: the statement completed (print what is buffered and the footer). */
static void table_end(struct table *t, bool ok)
{
    if (ok) {
        table_flush(t);
        printf("(%zu row%s)\n\n", t->nrows, t->nrows == 1 ? "" : "s");
    }
    for (size_t r = 0; r < t->nbuf; r++)
        free_cells(t->buf + r * t->ncols, t->ncols);
    free(t->buf);
    free(t->width);
    free(t->line);
}

/* ------------------------------------------------------------ CSV printer */

static void csv_field(const char *s, size_t n, bool quote_empty)
{
    bool quote = quote_empty && n == 0;

    for (size_t i = 0; i < n && !quote; i++)
        quote = s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n';
    if (!quote) {
        fwrite(s, 1, n, stdout);
        return;
    }
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"')
            putchar('"');
        putchar(s[i]);
    }
    putchar('"');
}

static void csv_header(const dbpool_column *cols, size_t ncols)
{
    for (size_t i = 0; i < ncols; i++) {
        if (i > 0)
            putchar(',');
        csv_field(cols[i].name, strlen(cols[i].name), true);
    }
    putchar('\n');
}

/* NULL is an empty field; an empty string is "" so the two stay distinct. */
static void csv_row(const dbpool_value *vals, size_t ncols, struct sbuf *scratch)
{
    for (size_t i = 0; i < ncols; i++) {
        if (i > 0)
            putchar(',');
        scratch->len = 0;
        add_value_text(scratch, &vals[i], false);
        csv_field(scratch->p ? scratch->p : "", scratch->len, vals[i].type == DBPOOL_TEXT);
    }
    putchar('\n');
}

/* ------------------------------------------------------------ JSON printer */

/* Length of the valid UTF-8 sequence at p (at most n bytes), or 0. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0], lo = 0x80, hi = 0xBF;
    size_t len;

    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4;
    else
        return 0;
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F;
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return len;
}

/* A JSON string; invalid UTF-8 bytes become U+FFFD so the output stays valid. */
static void json_string(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;

    putchar('"');
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        size_t len;
        if (c == '"' || c == '\\') {
            putchar('\\');
            putchar(c);
            i++;
        } else if (c < 0x20) {
            switch (c) {
            case '\n': fputs("\\n", stdout); break;
            case '\r': fputs("\\r", stdout); break;
            case '\t': fputs("\\t", stdout); break;
            case '\b': fputs("\\b", stdout); break;
            case '\f': fputs("\\f", stdout); break;
            default: printf("\\u%04x", c); break;
            }
            i++;
        } else if (c < 0x80) {
            putchar(c);
            i++;
        } else if ((len = utf8_len(p + i, n - i)) > 0) {
            fwrite(p + i, 1, len, stdout);
            i += len;
        } else {
            fputs("\\ufffd", stdout);
            i++;
        }
    }
    putchar('"');
}

static void json_value(const dbpool_value *v, struct sbuf *scratch)
{
    char num[40];

    switch (v->type) {
    case DBPOOL_NULL:
        fputs("null", stdout);
        break;
    case DBPOOL_INT64:
        printf("%" PRId64, v->u.i);
        break;
    case DBPOOL_FLOAT64:
        if (!isfinite(v->u.f)) {
            fputs("null", stdout);      /* JSON has no NaN / Infinity */
        } else {
            format_double(num, sizeof num, v->u.f);
            fputs(num, stdout);
        }
        break;
    case DBPOOL_BOOL:
        fputs(v->u.b ? "true" : "false", stdout);
        break;
    case DBPOOL_TEXT:
        json_string(v->u.s.ptr, v->u.s.len);
        break;
    case DBPOOL_BLOB:
        scratch->len = 0;
        add_hex(scratch, v->u.s.ptr, v->u.s.len);
        json_string(scratch->p, scratch->len);
        break;
    }
}

static void json_row(const dbpool_column *cols, const dbpool_value *vals, size_t ncols,
                     size_t rowno, struct sbuf *scratch)
{
    if (rowno > 0)
        putchar(',');
    putchar('{');
    for (size_t i = 0; i < ncols; i++) {
        if (i > 0)
            putchar(',');
        json_string(cols[i].name, strlen(cols[i].name));
        putchar(':');
        json_value(&vals[i], scratch);
    }
    putchar('}');
}

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

/* Streams the rows of a statement that returned a result set. */
static int print_rows(struct session *s)
{
    dbpool_conn *c = s->conn;
    const dbpool_column *cols = dbpool_columns(c);
    size_t ncols = dbpool_ncolumns(c), nrows = 0;
    const dbpool_value *row;
    struct sbuf scratch = { 0 };
    struct table t;
    int rc;

    if (s->opt->format == FMT_TABLE)
        table_begin(&t, cols, ncols);
    else if (s->opt->format == FMT_CSV)
        csv_header(cols, ncols);
    else
        putchar('[');
    while ((rc = dbpool_next_row(c, &row)) == 1) {
        if (s->opt->format == FMT_TABLE)
            table_row(&t, row);
        else if (s->opt->format == FMT_CSV)
            csv_row(row, ncols, &scratch);
        else
            json_row(cols, row, ncols, nrows, &scratch);
        nrows++;
    }
    if (s->opt->format == FMT_TABLE)
        table_end(&t, rc == 0);
    else if (s->opt->format == FMT_JSON)
        fputs(rc == 0 ? "]\n" : "\n", stdout);
    free(scratch.p);
    return rc;
}

static void print_status(const struct session *s)
{
    int64_t n = dbpool_rows_affected(s->conn);

    if (s->opt->format != FMT_TABLE || s->opt->quiet)
        return;
    if (n < 0)
        puts("OK");
    else
        printf("OK, %" PRId64 " row%s affected\n", n, n == 1 ? "" : "s");
}

/* Runs one statement and prints its output. Returns 0 or -1 (error printed). */
static int run_statement(struct session *s, const char *sql, size_t len)
{
    char *text = xrealloc(NULL, len + 1);
    const dbpool_value *none;
    int rc;

    memcpy(text, sql, len);
    text[len] = '\0';
    rc = dbpool_query_start(s->conn, text, NULL, 0);
    free(text);
    if (rc == 0) {
        if (dbpool_ncolumns(s->conn) > 0)
            rc = print_rows(s);
        else
            rc = dbpool_next_row(s->conn, &none);   /* 0: completed */
        if (rc == 0 && dbpool_ncolumns(s->conn) == 0)
            print_status(s);
    }
    if (rc < 0)
        print_error(dbpool_last_error(s->conn));
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
         "  \\?   show this help\n"
         "  \\q   quit (so does end of input, Ctrl-D)\n"
         "Results print as a table; errors are shown and the session goes on.");
}

/* Reads one line (any length) with fgets; false at end of input. */
static bool read_line(struct sbuf *line)
{
    char chunk[4096];

    line->len = 0;
    while (fgets(chunk, sizeof chunk, stdin) != NULL) {
        sb_adds(line, chunk);
        if (line->len > 0 && line->p[line->len - 1] == '\n')
            return true;
    }
    return line->len > 0;
}

/* A backslash command typed at the start of a statement. Returns false to quit. */
static bool meta_command(const char *line)
{
    char cmd[16] = "";

    sscanf(line, " %15s", cmd);
    if (strcmp(cmd, "\\q") == 0)
        return false;
    if (strcmp(cmd, "\\?") == 0 || strcmp(cmd, "\\h") == 0)
        interactive_help();
    else
        fprintf(stderr, "dbpool: invalid command %s; try \\? for help\n", cmd);
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

static int interactive(struct session *s)
{
    struct sbuf acc = { 0 }, line = { 0 };
    const char *pool = s->opt->pool;

    if (!s->opt->quiet)
        printf("dbpool %s, pool \"%s\" (%s). Type \\? for help, \\q to quit.\n",
               PACKAGE_VERSION_STR, pool, dbpool_backend(s->conn));
    for (;;) {
        printf("%s%s ", pool, acc.len == 0 ? "=>" : "->");
        fflush(stdout);
        if (!read_line(&line)) {
            putchar('\n');
            break;
        }
        if (acc.len == 0 && line.p[strspn(line.p, " \t")] == '\\') {
            if (!meta_command(line.p))
                break;
            continue;
        }
        sb_add(&acc, line.p, line.len);
        run_complete(s, &acc);
        if (!dbpool_is_open(s->conn)) {
            fputs("dbpool: the session with dbpoold was closed\n", stderr);
            free(acc.p);
            free(line.p);
            return EXIT_ERROR;
        }
    }
    free(acc.p);
    free(line.p);
    return 0;
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
    enum { OPT_CSV = 1000, OPT_JSON, OPT_CONNECT_TIMEOUT, OPT_TIMEOUT };
    static const struct option longopts[] = {
        { "socket", required_argument, NULL, 'S' },
        { "pool", required_argument, NULL, 'd' },
        { "dbname", required_argument, NULL, 'd' },
        { "command", required_argument, NULL, 'c' },
        { "file", required_argument, NULL, 'f' },
        { "csv", no_argument, NULL, OPT_CSV },
        { "json", no_argument, NULL, OPT_JSON },
        { "quiet", no_argument, NULL, 'q' },
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

/* Returns 0, or the exit status: EXIT_USAGE for a bad argument or
 * environment variable (a timeout), else EXIT_ERROR. */
static int connect_session(struct session *s, const struct options *o)
{
    dbpool_error err;

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
    return 0;
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
