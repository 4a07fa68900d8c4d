/*
 * json_check.c — a strict recursive-descent JSON syntax checker (see
 * json_check.h). Used only by the fuzz targets.
 */
#include "json_check.h"

#include <string.h>

#define MAX_DEPTH 64

struct jc {
    const unsigned char *p, *end;
    int depth;
};

static bool value(struct jc *j);

static void skip_ws(struct jc *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static bool take(struct jc *j, char c)
{
    skip_ws(j);
    if (j->p < j->end && *j->p == (unsigned char)c) {
        j->p++;
        return true;
    }
    return false;
}

static bool literal(struct jc *j, const char *word)
{
    size_t n = strlen(word);

    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
        return false;
    j->p += n;
    return true;
}

static bool digits(struct jc *j)
{
    const unsigned char *start = j->p;

    while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
        j->p++;
    return j->p > start;
}

static bool number(struct jc *j)
{
    if (j->p < j->end && *j->p == '-')
        j->p++;
    if (j->p < j->end && *j->p == '0')
        j->p++;
    else if (!digits(j))
        return false;
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        if (!digits(j))
            return false;
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
            j->p++;
        if (!digits(j))
            return false;
    }
    return true;
}

/* One UTF-8 sequence (not ASCII) at j->p; strict (no overlongs, surrogates). */
static bool utf8_seq(struct jc *j)
{
    unsigned c = *j->p, n, cp;

    if (c >= 0xc2 && c <= 0xdf)
        n = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, cp = c & 0x07;
    else
        return false;
    if ((size_t)(j->end - j->p) < n)
        return false;
    for (unsigned i = 1; i < n; i++) {
        if ((j->p[i] & 0xc0) != 0x80)
            return false;
        cp = cp << 6 | (j->p[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return false;
    j->p += n;
    return true;
}

static bool escape(struct jc *j)
{
    if (j->p >= j->end)
        return false;
    if (strchr("\"\\/bfnrt", *j->p) && *j->p) {
        j->p++;
        return true;
    }
    if (*j->p != 'u' || j->end - j->p < 5)
        return false;
    for (int i = 1; i <= 4; i++)
        if (!strchr("0123456789abcdefABCDEF", j->p[i]) || !j->p[i])
            return false;
    j->p += 5;
    return true;
}

static bool string(struct jc *j)
{
    if (!take(j, '"'))
        return false;
    while (j->p < j->end) {
        unsigned char c = *j->p;
        if (c == '"') {
            j->p++;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c == '\\') {
            j->p++;
            if (!escape(j))
                return false;
        } else if (c < 0x80) {
            j->p++;
        } else if (!utf8_seq(j)) {
            return false;
        }
    }
    return false;
}

static bool members(struct jc *j, char close, bool keyed)
{
    if (take(j, close))
        return true;
    do {
        if (keyed && (!string(j) || !take(j, ':')))
            return false;
        if (!value(j))
            return false;
    } while (take(j, ','));
    return take(j, close);
}

static bool value(struct jc *j)
{
    bool ok;

    skip_ws(j);
    if (j->p >= j->end)
        return false;
    switch (*j->p) {
    case '{':
    case '[':
        if (++j->depth > MAX_DEPTH)
            return false;
        ok = *j->p++ == '{' ? members(j, '}', true) : members(j, ']', false);
        j->depth--;
        return ok;
    case '"': return string(j);
    case 't': return literal(j, "true");
    case 'f': return literal(j, "false");
    case 'n': return literal(j, "null");
    default: return number(j);
    }
}

bool json_check(const char *p, size_t n)
{
    struct jc j = { (const unsigned char *)p, (const unsigned char *)p + n, 0 };

    if (!value(&j))
        return false;
    skip_ws(&j);
    return j.p == j.end;
}
