/*
 * values.c — phase 4's conversion of one slot (a file setting or an
 * environment variable) into its struct field: parsing integers, booleans,
 * durations, modes and choices, type and range checks with a hint on how
 * to write the value, and storing it.
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
#include <sys/un.h>

/* ---- values ---- */

/* Whole-string base-10 integer. */
static bool parse_int(const char *s, long long *out)
{
    char *end;
    long long v;

    if (!*s || isspace((unsigned char)*s))
        return false;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

static bool parse_bool_word(const char *s, bool *out)
{
    static const char *const yes[] = { "true", "1", "yes", "on" };
    static const char *const no[] = { "false", "0", "no", "off" };
    size_t i;

    for (i = 0; i < NELEMS(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0 || strcasecmp(s, no[i]) == 0) {
            *out = strcasecmp(s, yes[i]) == 0;
            return true;
        }
    }
    return false;
}

/* "0660" or "660": 1 to 4 octal digits, at most 0777. */
static bool parse_mode(const char *s, unsigned *out)
{
    unsigned v = 0;
    size_t n = 0;

    for (; *s; s++, n++) {
        if (*s < '0' || *s > '7' || n >= 4)
            return false;
        v = v * 8 + (unsigned)(*s - '0');
    }
    if (n == 0 || v > 0777)
        return false;
    *out = v;
    return true;
}

/* Index of s in choices, ignoring case, or -1. */
static int find_choice(const char *const *choices, const char *s)
{
    int i;

    for (i = 0; choices[i]; i++)
        if (strcasecmp(choices[i], s) == 0)
            return i;
    return -1;
}

/* ---- storing into the structs ---- */

static void *field(void *base, const struct key_spec *k)
{
    return (char *)base + k->offset;
}

void cf_set_str(struct loader *ld, char **dst, const char *s)
{
    char *copy = strdup(s);

    if (!copy) {
        ld->oom = true;
        return;
    }
    free(*dst);
    *dst = copy;
}

static void store_int(void *base, const struct key_spec *k, long long v)
{
    if (k->kind == K_INT)
        *(int *)field(base, k) = (int)v;
    else if (k->kind == K_U32)
        *(uint32_t *)field(base, k) = (uint32_t)v;
    else
        *(size_t *)field(base, k) = (size_t)v;
}

/* ---- reading one value (from a setting or an environment variable) ---- */

const char *cf_type_noun(int type)
{
    switch (type) {
    case CONFIG_TYPE_GROUP: return "a group";
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64: return "an integer";
    case CONFIG_TYPE_FLOAT: return "a floating-point number";
    case CONFIG_TYPE_STRING: return "a string";
    case CONFIG_TYPE_BOOL: return "a boolean";
    case CONFIG_TYPE_ARRAY: return "an array";
    case CONFIG_TYPE_LIST: return "a list";
    default: return "an unknown type";
    }
}

static const char *kind_noun(enum kind kind)
{
    switch (kind) {
    case K_INT:
    case K_U32:
    case K_SIZE: return "an integer";
    case K_DURATION: return "a duration string";
    case K_BOOL: return "true or false";
    case K_MODE: return "an octal string like \"0660\"";
    default: return "a string";
    }
}

static const char *type_hint(enum kind kind, int got)
{
    if (got == CONFIG_TYPE_GROUP || got == CONFIG_TYPE_LIST || got == CONFIG_TYPE_ARRAY)
        return "a single value is expected here";
    switch (kind) {
    case K_INT:
    case K_U32:
    case K_SIZE:
        return got == CONFIG_TYPE_STRING ? "remove the quotes" : "use a whole number";
    case K_DURATION:
        return "write durations as strings like \"30s\"";
    case K_BOOL:
        return got == CONFIG_TYPE_STRING ? "remove the quotes" : "write true or false";
    case K_MODE:
        return "quote it: an unquoted 0660 would be read as the decimal number 660";
    default:
        return "put the value in double quotes";
    }
}

void cf_type_error(struct loader *ld, const struct where *w, const struct key_spec *k,
                   const config_setting_t *s)
{
    int got = config_setting_type(s);

    if (got == CONFIG_TYPE_FLOAT && !(k->flags & F_SECRET))
        cf_report(ld, w, "must be %s, not %s (got %g; %s)", kind_noun(k->kind),
                  cf_type_noun(got), config_setting_get_float(s), type_hint(k->kind, got));
    else
        cf_report(ld, w, "must be %s, not %s (%s)", kind_noun(k->kind), cf_type_noun(got),
                  type_hint(k->kind, got));
}

/* The value as a string; false (reported) when the setting is no string. */
static bool slot_string(struct loader *ld, const struct where *w, const struct key_spec *k,
                        const struct slot *sl, const char **out)
{
    if (sl->env) {
        *out = sl->env_val;
        return true;
    }
    if (config_setting_type(sl->setting) != CONFIG_TYPE_STRING) {
        cf_type_error(ld, w, k, sl->setting);
        return false;
    }
    *out = config_setting_get_string(sl->setting);
    return true;
}

static bool slot_int(struct loader *ld, const struct where *w, const struct key_spec *k,
                     const struct slot *sl, long long *out)
{
    char q[96];
    int t;

    if (sl->env) {
        if (parse_int(sl->env_val, out))
            return true;
        cf_report(ld, w, "must be an integer (got %s)", cf_quoted(sl->env_val, q, sizeof(q)));
        return false;
    }
    t = config_setting_type(sl->setting);
    if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) {
        cf_type_error(ld, w, k, sl->setting);
        return false;
    }
    *out = config_setting_get_int64(sl->setting);
    return true;
}

static bool apply_int(struct loader *ld, const struct where *w, const struct key_spec *k,
                      const struct slot *sl, void *base)
{
    long long v;

    if (!slot_int(ld, w, k, sl, &v))
        return false;
    if (v < k->min) {
        cf_report(ld, w, "must be at least %lld (got %lld)", k->min, v);
        return false;
    }
    if (v > k->max) {
        cf_report(ld, w, "must be at most %lld (got %lld)", k->max, v);
        return false;
    }
    store_int(base, k, v);
    return true;
}

static bool apply_duration(struct loader *ld, const struct where *w, const struct key_spec *k,
                           const struct slot *sl, void *base)
{
    const char *s;
    char q[96];
    uint64_t ms;

    if (!slot_string(ld, w, k, sl, &s))
        return false;
    if (!parse_duration_ms(s, &ms)) {
        cf_report(ld, w, "must be a duration such as \"250ms\", \"30s\", \"5m\" or \"1h30m\" "
                  "(got %s; units are ms, s, m and h, largest first, whole numbers only)",
                  cf_quoted(s, q, sizeof(q)));
        return false;
    }
    if (ms < (uint64_t)k->min) {
        cf_report(ld, w, "must be greater than 0 (got %s)", cf_quoted(s, q, sizeof(q)));
        return false;
    }
    if (ms > (uint64_t)k->max) {
        cf_report(ld, w, "must be at most \"8760h\" (one year) (got %s)", cf_quoted(s, q, sizeof(q)));
        return false;
    }
    *(uint64_t *)field(base, k) = ms;
    return true;
}

static bool apply_bool(struct loader *ld, const struct where *w, const struct key_spec *k,
                       const struct slot *sl, void *base)
{
    char q[96];
    bool v;

    if (sl->env) {
        if (!parse_bool_word(sl->env_val, &v)) {
            cf_report(ld, w, "must be true or false (also accepted: 1/0, yes/no, on/off) (got %s)",
                      cf_quoted(sl->env_val, q, sizeof(q)));
            return false;
        }
    } else if (config_setting_type(sl->setting) == CONFIG_TYPE_BOOL) {
        v = config_setting_get_bool(sl->setting) != 0;
    } else {
        cf_type_error(ld, w, k, sl->setting);
        return false;
    }
    *(bool *)field(base, k) = v;
    return true;
}

/* Checks a string value against the key's kind and stores it. */
static bool store_string_value(struct loader *ld, const struct where *w,
                               const struct key_spec *k, const char *s, void *base)
{
    char q[96], list[128];
    int choice;

    if (k->kind == K_CHOICE || k->kind == K_LOG_LEVEL) {
        choice = find_choice(k->choices, s);
        if (choice < 0) {
            cf_report(ld, w, "must be one of %s (got %s)", cf_join(k->choices, list, sizeof(list)),
                      cf_quoted(s, q, sizeof(q)));
            return false;
        }
        if (k->kind == K_LOG_LEVEL)
            *(enum log_level *)field(base, k) = (enum log_level)choice;
        else
            cf_set_str(ld, field(base, k), k->choices[choice]);
        return true;
    }
    if (k->kind == K_MODE) {
        if (!parse_mode(s, field(base, k))) {
            cf_report(ld, w, "must be an octal permission mode from \"0000\" to \"0777\", "
                      "such as \"0660\" (got %s)", cf_quoted(s, q, sizeof(q)));
            return false;
        }
        return true;
    }
    cf_set_str(ld, field(base, k), s);
    return true;
}

static bool apply_string(struct loader *ld, const struct where *w, const struct key_spec *k,
                         const struct slot *sl, void *base)
{
    const char *s;

    if (!slot_string(ld, w, k, sl, &s))
        return false;
    if ((k->flags & F_NONEMPTY) && !*s) {
        cf_report(ld, w, "must not be empty");
        return false;
    }
    if ((k->flags & F_SOCKPATH) && strlen(s) > SUN_PATH_MAX) {
        cf_report(ld, w, "is %zu bytes long, but a Unix socket path can have at most %zu "
                  "(choose a shorter path)", strlen(s), (size_t)SUN_PATH_MAX);
        return false;
    }
    return store_string_value(ld, w, k, s, base);
}

bool cf_apply_slot(struct loader *ld, const struct section *sec, const struct key_spec *k,
                   const struct slot *sl)
{
    struct where w = cf_where_slot(ld, sec, k, sl);
    void *base = (k->flags & F_OPTS) ? sec->opts : sec->base;

    if (!base)
        return false;   /* the driver's options could not be allocated (reported) */

    switch (k->kind) {
    case K_INT:
    case K_U32:
    case K_SIZE:
        return apply_int(ld, &w, k, sl, base);
    case K_DURATION:
        return apply_duration(ld, &w, k, sl, base);
    case K_BOOL:
        return apply_bool(ld, &w, k, sl, base);
    default:
        return apply_string(ld, &w, k, sl, base);
    }
}
