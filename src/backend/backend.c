/*
 * backend.c — small helpers shared by the backend drivers (backend.h):
 * filling completion results, the SQL standard's transaction statements and
 * a reset() by ROLLBACK for the drivers that use them, and the lexical
 * statement classifier used to route autocommit statements to reader or
 * writer connections.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "backend/backend.h"

void backend_result_ok(struct backend_result *r, char txstate)
{
    memset(r, 0, sizeof(*r));
    r->ok = true;
    r->txstate = txstate;
}

void backend_result_error(struct backend_result *r, int code, const char *sqlstate,
                          char txstate, const char *fmt, ...)
{
    va_list ap;

    memset(r, 0, sizeof(*r));
    r->ok = false;
    r->txstate = txstate;
    r->err.code = code;
    snprintf(r->err.sqlstate, sizeof(r->err.sqlstate), "%s", sqlstate ? sqlstate : "");
    va_start(ap, fmt);
    vsnprintf(r->err.message, sizeof(r->err.message), fmt, ap);
    va_end(ap);
}

const char *backend_standard_tx_sql(enum backend_tx_op op)
{
    switch (op) {
    case BTX_COMMIT: return "COMMIT";
    case BTX_ROLLBACK: return "ROLLBACK";
    case BTX_SAVEPOINT: return "SAVEPOINT";
    case BTX_RELEASE: return "RELEASE SAVEPOINT";
    case BTX_ROLLBACK_TO: return "ROLLBACK TO SAVEPOINT";
    }
    return "ROLLBACK";   /* not reached: every op is listed */
}

/* Drivers copy the sink when the operation starts: it may live here. */
void backend_reset_by_rollback(void (*exec)(struct backend_conn *c, const struct backend_query *q,
                                            const struct backend_sink *sink, void *arg),
                               struct backend_conn *c, backend_done_fn done, void *arg)
{
    static const char rollback[] = "ROLLBACK";
    const struct backend_query q = { rollback, sizeof(rollback) - 1, NULL, 0, BQ_INTERNAL, NULL };
    const struct backend_sink sink = { NULL, NULL, done };

    exec(c, &q, &sink, arg);
}

void backend_result_verror(struct backend_result *r, int code, const char *sqlstate,
                           char txstate, bool broken, const char *fmt, va_list ap)
{
    char msg[sizeof(r->err.message)];

    vsnprintf(msg, sizeof(msg), fmt, ap);
    backend_result_error(r, code, sqlstate, txstate, "%s", msg);
    r->broken = broken;
}

size_t sql_skip_space_and_comments(const char *s, size_t len, size_t i)
{
    while (i < len) {
        if (isspace((unsigned char)s[i])) {
            i++;
        } else if (s[i] == '-' && i + 1 < len && s[i + 1] == '-') {
            while (i < len && s[i] != '\n')
                i++;
        } else if (s[i] == '/' && i + 1 < len && s[i + 1] == '*') {
            i += 2;
            while (i + 1 < len && !(s[i] == '*' && s[i + 1] == '/'))
                i++;
            i = (i + 1 < len) ? i + 2 : len;
        } else {
            break;
        }
    }
    return i;
}

bool sql_starts_with_keyword(const char *sql, size_t len, const char *const *keywords)
{
    size_t i = sql_skip_space_and_comments(sql, len, 0);

    for (; *keywords; keywords++) {
        size_t k = strlen(*keywords);
        if (len - i < k || strncasecmp(sql + i, *keywords, k) != 0)
            continue;
        if (i + k == len || !(isalnum((unsigned char)sql[i + k]) || sql[i + k] == '_'))
            return true;
    }
    return false;
}

/* Skip a quoted run starting at s[i] == q ('...', "...", with doubled-quote
 * escapes, and backslash escapes when `backslash`: PostgreSQL's E'...');
 * returns the index after the closing quote. */
static size_t skip_quoted(const char *s, size_t len, size_t i, char q, bool backslash)
{
    for (i++; i < len; i++) {
        if (backslash && s[i] == '\\') {
            i++;
        } else if (s[i] == q) {
            if (i + 1 < len && s[i + 1] == q)
                i++;
            else
                return i + 1;
        }
    }
    return len;
}

/* At s[i] == '$': skip a dollar-quoted string ($$...$$ or $tag$...$tag$) if
 * one starts here; returns i unchanged when it is not a dollar quote. */
static size_t skip_dollar_quote(const char *s, size_t len, size_t i)
{
    size_t t = i + 1;

    while (t < len && (isalnum((unsigned char)s[t]) || s[t] == '_') && !isdigit((unsigned char)s[i + 1]))
        t++;
    if (t >= len || s[t] != '$')
        return i;
    size_t taglen = t - i + 1;
    for (size_t j = t + 1; j + taglen <= len; j++)
        if (s[j] == '$' && memcmp(s + j, s + i, taglen) == 0)
            return j + taglen;
    return len;
}

/* At s[i] == '/' and s[i + 1] == '*': skip a PostgreSQL block comment,
 * which nests; returns the index after it. */
static size_t skip_nested_comment(const char *s, size_t len, size_t i)
{
    unsigned depth = 0;

    while (i + 1 < len) {
        if (s[i] == '/' && s[i + 1] == '*') {
            depth++;
            i += 2;
        } else if (s[i] == '*' && s[i + 1] == '/') {
            i += 2;
            if (--depth == 0)
                return i;
        } else {
            i++;
        }
    }
    return len;
}

/* Whether the quote at s[i] opens an escape string constant (E'...'). */
static bool escape_string_at(const char *s, size_t i)
{
    return i > 0 && (s[i - 1] == 'E' || s[i - 1] == 'e') &&
           (i == 1 || !(isalnum((unsigned char)s[i - 2]) || s[i - 2] == '_'));
}

unsigned sql_max_dollar_param(const char *s, size_t len)
{
    unsigned max = 0;

    for (size_t i = 0; i < len;) {
        char ch = s[i];
        if (ch == '\'' || ch == '"') {
            i = skip_quoted(s, len, i, ch, ch == '\'' && escape_string_at(s, i));
        } else if (ch == '/' && i + 1 < len && s[i + 1] == '*') {
            i = skip_nested_comment(s, len, i);
        } else if (ch == '-' && i + 1 < len && s[i + 1] == '-') {
            i = sql_skip_space_and_comments(s, len, i);
        } else if (ch == '$' && i + 1 < len && isdigit((unsigned char)s[i + 1]) &&
                   (i == 0 || !(isalnum((unsigned char)s[i - 1]) || s[i - 1] == '_'))) {
            unsigned n = 0;
            for (i++; i < len && isdigit((unsigned char)s[i]); i++)
                n = n < 100000 ? n * 10 + (unsigned)(s[i] - '0') : n;
            if (n > max)
                max = n;
        } else if (ch == '$') {
            size_t j = skip_dollar_quote(s, len, i);
            i = j > i ? j : i + 1;
        } else {
            i++;
        }
    }
    return max;
}
