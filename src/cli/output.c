/*
 * output.c — the dbpool CLI's result-set printers (output.h), one per
 * format: an aligned table (rows are buffered up to TABLE_BUFFER_ROWS to
 * compute column widths, then the rest streams with those widths), CSV or
 * JSON (both streamed row by row). Status lines and errors are main.c's and
 * go to stderr or after the table, never into CSV/JSON output.
 */
#include "cli/output.h"
#include "cli/sbuf.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TABLE_BUFFER_ROWS 10000     /* rows buffered to size table columns */

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

/* ------------------------------------------------------------ expanded (\x) */

static void expanded_row(const dbpool_column *cols, const dbpool_value *vals, size_t ncols,
                         size_t nrows, struct sbuf *scratch)
{
    size_t w = 0;

    for (size_t i = 0; i < ncols; i++)
        if (display_width(cols[i].name) > w)
            w = display_width(cols[i].name);
    printf("-[ RECORD %zu ]-\n", nrows + 1);
    for (size_t i = 0; i < ncols; i++) {
        scratch->len = 0;
        sb_adds(scratch, "");
        add_value_text(scratch, &vals[i], true);
        fputs(cols[i].name, stdout);
        print_spaces(w - display_width(cols[i].name));
        printf(" | %s\n", scratch->p);
    }
}

/* ------------------------------------------------------------ all formats */

int output_rows(dbpool_conn *c, enum format format)
{
    const dbpool_column *cols = dbpool_columns(c);
    size_t ncols = dbpool_ncolumns(c), nrows = 0;
    const dbpool_value *row;
    struct sbuf scratch = { 0 };
    struct table t;
    int rc;

    if (format == FMT_TABLE)
        table_begin(&t, cols, ncols);
    else if (format == FMT_CSV)
        csv_header(cols, ncols);
    else if (format == FMT_JSON)
        putchar('[');
    while ((rc = dbpool_next_row(c, &row)) == 1) {
        if (format == FMT_TABLE)
            table_row(&t, row);
        else if (format == FMT_CSV)
            csv_row(row, ncols, &scratch);
        else if (format == FMT_EXPANDED)
            expanded_row(cols, row, ncols, nrows, &scratch);
        else
            json_row(cols, row, ncols, nrows, &scratch);
        nrows++;
    }
    if (format == FMT_TABLE)
        table_end(&t, rc == 0);
    else if (format == FMT_JSON)
        fputs(rc == 0 ? "]\n" : "\n", stdout);
    else if (format == FMT_EXPANDED && rc == 0 && nrows == 0)
        puts("(0 rows)");
    free(scratch.p);
    return rc;
}
