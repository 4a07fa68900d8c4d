/*
 * json.c — the JSON reader of dbpoolctl (contract: json.h): recursive
 * descent over RFC 8259 text, depth-limited so hostile input cannot
 * exhaust the stack.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/json.h"

#define MAX_DEPTH 64

struct parser {
    const char *p;
    char *err;
    size_t errlen;
    bool failed;
};

static void fail(struct parser *ps, const char *what)
{
    if (!ps->failed)
        snprintf(ps->err, ps->errlen, "bad JSON from the daemon: %s near \"%.20s\"", what, ps->p);
    ps->failed = true;
}

static void skip_ws(struct parser *ps)
{
    while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')
        ps->p++;
}

static struct json *node(struct parser *ps, enum json_type t)
{
    struct json *j = calloc(1, sizeof(*j));

    if (!j)
        fail(ps, "out of memory");
    else
        j->type = t;
    return j;
}

static int hex4(const char *s)
{
    int v = 0;

    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= c - '0';
        else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
        else return -1;
    }
    return v;
}

/* Append code point cp as UTF-8 at *out. */
static void put_utf8(char **out, unsigned cp)
{
    char *o = *out;

    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xc0 | (cp >> 6));
        *o++ = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xe0 | (cp >> 12));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
    } else {
        *o++ = (char)(0xf0 | (cp >> 18));
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3f));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
    }
    *out = o;
}

static bool escape(struct parser *ps, char **out)
{
    char c = *ps->p++;
    const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
    const char *k = c ? strchr(from, c) : NULL;
    int cp;

    if (k) {
        *(*out)++ = to[k - from];
        return true;
    }
    if (c != 'u' || (cp = hex4(ps->p)) < 0) {
        fail(ps, "bad escape");
        return false;
    }
    ps->p += 4;
    if (cp >= 0xd800 && cp < 0xdc00 && ps->p[0] == '\\' && ps->p[1] == 'u') {
        int lo = hex4(ps->p + 2);
        if (lo >= 0xdc00 && lo < 0xe000) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            ps->p += 6;
        }
    }
    put_utf8(out, (unsigned)cp);
    return true;
}

/* A string literal at ps->p (after the quote is checked). */
static char *string_lit(struct parser *ps)
{
    const char *end = ps->p + 1;
    char *s, *o;

    while (*end && *end != '"')
        end += (*end == '\\' && end[1]) ? 2 : 1;
    if (*end != '"') {
        fail(ps, "unterminated string");
        return NULL;
    }
    if (!(s = o = malloc((size_t)(end - ps->p) * 2 + 1))) {
        fail(ps, "out of memory");
        return NULL;
    }
    ps->p++;
    while (*ps->p != '"' && !ps->failed) {
        if (*ps->p == '\\') {
            ps->p++;
            escape(ps, &o);
        } else {
            *o++ = *ps->p++;
        }
    }
    ps->p++;
    *o = '\0';
    return s;
}

static struct json *value(struct parser *ps, int depth);

/* Elements of an array or members of an object, up to close. */
static struct json *container(struct parser *ps, enum json_type t, char close, int depth)
{
    struct json *j = node(ps, t), **tail;

    if (!j)
        return NULL;
    tail = &j->child;
    ps->p++;
    skip_ws(ps);
    if (*ps->p == close) {
        ps->p++;
        return j;
    }
    while (!ps->failed) {
        char *key = NULL;
        skip_ws(ps);
        if (t == J_OBJ) {
            if (*ps->p != '"' || !(key = string_lit(ps))) {
                fail(ps, "expected a member name");
                break;
            }
            skip_ws(ps);
            if (*ps->p++ != ':') {
                free(key);
                fail(ps, "expected ':'");
                break;
            }
        }
        struct json *v = value(ps, depth + 1);
        if (!v) {
            free(key);
            break;
        }
        v->key = key;
        *tail = v;
        tail = &v->next;
        skip_ws(ps);
        if (*ps->p == ',') {
            ps->p++;
            continue;
        }
        if (*ps->p == close) {
            ps->p++;
            return j;
        }
        fail(ps, "expected ',' or a closing bracket");
    }
    json_free(j);
    return NULL;
}

static struct json *scalar(struct parser *ps)
{
    struct json *j;
    char *end;

    if (strncmp(ps->p, "null", 4) == 0 || strncmp(ps->p, "true", 4) == 0 ||
        strncmp(ps->p, "false", 5) == 0) {
        if (!(j = node(ps, *ps->p == 'n' ? J_NULL : J_BOOL)))
            return NULL;
        j->b = *ps->p == 't';
        ps->p += *ps->p == 'f' ? 5 : 4;
        return j;
    }
    double d = strtod(ps->p, &end);
    if (end == ps->p) {
        fail(ps, "unexpected character");
        return NULL;
    }
    if ((j = node(ps, J_NUM)))
        j->num = d;
    ps->p = end;
    return j;
}

static struct json *value(struct parser *ps, int depth)
{
    struct json *j;

    skip_ws(ps);
    if (depth > MAX_DEPTH) {
        fail(ps, "nested too deeply");
        return NULL;
    }
    if (*ps->p == '{')
        return container(ps, J_OBJ, '}', depth);
    if (*ps->p == '[')
        return container(ps, J_ARR, ']', depth);
    if (*ps->p != '"')
        return scalar(ps);
    if (!(j = node(ps, J_STR)))
        return NULL;
    if (!(j->str = string_lit(ps))) {
        free(j);
        return NULL;
    }
    return j;
}

struct json *json_parse(const char *text, char *err, size_t errlen)
{
    struct parser ps = { text, err, errlen, false };
    struct json *j = value(&ps, 0);

    skip_ws(&ps);
    if (j && *ps.p) {
        fail(&ps, "trailing characters");
        json_free(j);
        return NULL;
    }
    return j;
}

void json_free(struct json *j)
{
    while (j) {
        struct json *next = j->next;
        json_free(j->child);
        free(j->str);
        free(j->key);
        free(j);
        j = next;
    }
}

const struct json *json_get(const struct json *o, const char *key)
{
    if (!o || o->type != J_OBJ)
        return NULL;
    for (const struct json *m = o->child; m; m = m->next)
        if (m->key && strcmp(m->key, key) == 0)
            return m;
    return NULL;
}

const struct json *json_path(const struct json *o, const char *const *keys)
{
    for (size_t i = 0; keys[i] && o; i++)
        o = json_get(o, keys[i]);
    return o;
}

double json_num(const struct json *o, double fallback)
{
    return o && o->type == J_NUM ? o->num : fallback;
}

const char *json_str(const struct json *o, const char *fallback)
{
    return o && o->type == J_STR ? o->str : fallback;
}
