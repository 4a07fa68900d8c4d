/*
 * backend.c — small helpers shared by the backend drivers (backend.h):
 * filling completion results and the lexical statement classifier used to
 * route autocommit statements to reader or writer connections.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "backend.h"

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

/* Skip whitespace, -- line comments and block comments. */
static size_t skip_space_and_comments(const char *s, size_t len, size_t i)
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
    size_t i = skip_space_and_comments(sql, len, 0);

    for (; *keywords; keywords++) {
        size_t k = strlen(*keywords);
        if (len - i < k || strncasecmp(sql + i, *keywords, k) != 0)
            continue;
        if (i + k == len || !(isalnum((unsigned char)sql[i + k]) || sql[i + k] == '_'))
            return true;
    }
    return false;
}
