/*
 * diag.c — the configuration loader's messages: each is prefixed with its
 * location ("file:line: pools[0] \"app\": postgres.port: " or
 * "environment VAR: "), collected into the caller's struct config_diag as
 * an error or a warning, and put in file order at the end. Also the
 * helpers every message uses: locations of settings and variables, and
 * values quoted safely for printing.
 */
#include "daemon/config/config_internal.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- diagnostics ---- */

void cf_appendf(char *buf, size_t size, size_t *pos, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (*pos >= size)
        return;
    va_start(ap, fmt);
    n = vsnprintf(buf + *pos, size - *pos, fmt, ap);
    va_end(ap);
    if (n > 0)
        *pos = (size_t)n >= size - *pos ? size - 1 : *pos + (size_t)n;
}

static void build_prefix(const struct where *w, char *buf, size_t size)
{
    size_t pos = 0;

    buf[0] = '\0';
    if (w->env) {
        cf_appendf(buf, size, &pos, "environment %.*s: ", (int)w->env_len, w->env);
        return;
    }
    cf_appendf(buf, size, &pos, "%s", w->file);
    if (w->line)
        cf_appendf(buf, size, &pos, ":%u", w->line);
    cf_appendf(buf, size, &pos, ": ");
    if (w->ctx)
        cf_appendf(buf, size, &pos, "%s: ", w->ctx);
    if (w->group && w->key)
        cf_appendf(buf, size, &pos, "%s.%s: ", w->group, w->key);
    else if (w->group || w->key)
        cf_appendf(buf, size, &pos, "%s: ", w->group ? w->group : w->key);
}

static bool list_push(char ***list, size_t *n, char *msg)
{
    char **grown = realloc(*list, (*n + 1) * sizeof(**list));

    if (!grown)
        return false;
    grown[(*n)++] = msg;
    *list = grown;
    return true;
}

/* Remembers the line of message number n, so messages can be put in file
 * order at the end (environment messages last). */
static void push_order(struct loader *ld, bool warning, unsigned line, size_t n)
{
    unsigned *grown = realloc(ld->order[warning], n * sizeof(*grown));

    if (!grown) {
        ld->oom = true;
        return;
    }
    grown[n - 1] = line;
    ld->order[warning] = grown;
}

/* Stable insertion sort of msgs by line. */
void cf_sort_by_line(char **msgs, unsigned *lines, size_t n)
{
    size_t i, j;

    for (i = 1; i < n; i++) {
        char *m = msgs[i];
        unsigned l = lines[i];

        for (j = i; j > 0 && lines[j - 1] > l; j--) {
            msgs[j] = msgs[j - 1];
            lines[j] = lines[j - 1];
        }
        msgs[j] = m;
        lines[j] = l;
    }
}

static void vadd(struct loader *ld, bool warning, const struct where *w,
                 const char *fmt, va_list ap) PRINTF_LIKE(4, 0);

static void vadd(struct loader *ld, bool warning, const struct where *w,
                 const char *fmt, va_list ap)
{
    char prefix[512];
    char *msg;
    size_t plen;
    va_list ap2;
    int n;

    build_prefix(w, prefix, sizeof(prefix));
    plen = strlen(prefix);
    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    msg = n < 0 ? NULL : malloc(plen + (size_t)n + 1);
    if (!msg) {
        ld->oom = true;
        return;
    }
    memcpy(msg, prefix, plen);
    vsnprintf(msg + plen, (size_t)n + 1, fmt, ap);
    if (warning ? !list_push(&ld->diag->warnings, &ld->diag->nwarnings, msg)
                : !list_push(&ld->diag->errors, &ld->diag->nerrors, msg)) {
        free(msg);
        ld->oom = true;
        return;
    }
    push_order(ld, warning, w->env ? UINT_MAX : w->line,
               warning ? ld->diag->nwarnings : ld->diag->nerrors);
}

void cf_report(struct loader *ld, const struct where *w, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vadd(ld, false, w, fmt, ap);
    va_end(ap);
}

void cf_warn(struct loader *ld, const struct where *w, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vadd(ld, true, w, fmt, ap);
    va_end(ap);
}

/* s as a double-quoted string safe to print: non-printable bytes become '?',
 * long values are cut with "...". Returns buf. */
const char *cf_quoted(const char *s, char *buf, size_t size)
{
    size_t len = strlen(s), i, o = 0;
    bool cut = len + 3 > size;

    buf[o++] = '"';
    for (i = 0; i < len && o + (cut ? 5 : 2) < size; i++)
        buf[o++] = isprint((unsigned char)s[i]) ? s[i] : '?';
    if (cut) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

struct where cf_where_setting(const struct loader *ld, const struct section *sec,
                              const config_setting_t *s, const char *key)
{
    const char *file = config_setting_source_file(s);
    struct where w = { 0 };

    w.file = file ? file : ld->path;
    w.line = config_setting_source_line(s);
    w.ctx = sec ? sec->ctx : NULL;
    w.group = sec ? sec->group : NULL;
    w.key = key;
    return w;
}

struct where cf_where_env(const char *env, size_t env_len)
{
    struct where w = { 0 };

    w.env = env;
    w.env_len = env_len;
    return w;
}

struct where cf_where_slot(const struct loader *ld, const struct section *sec,
                           const struct key_spec *k, const struct slot *sl)
{
    if (sl->env)
        return cf_where_env(sl->env, sl->env_len);
    return cf_where_setting(ld, sec, sl->setting, k->name);
}

static void free_strings(char **v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void config_diag_free(struct config_diag *diag)
{
    if (!diag)
        return;
    free_strings(diag->errors, diag->nerrors);
    free_strings(diag->warnings, diag->nwarnings);
    memset(diag, 0, sizeof(*diag));
}
