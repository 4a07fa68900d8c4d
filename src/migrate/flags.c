/*
 * flags.c — Go-style flag parsing for dbpool-migrate (flags.h).
 */
#include "migrate/flags.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_negative_number(const char *a)
{
    if (a[0] != '-' || !isdigit((unsigned char)a[1]))
        return false;
    for (a++; *a; a++)
        if (!isdigit((unsigned char)*a))
            return false;
    return true;
}

static const struct flag_def *find(const struct flag_def *defs, int n, const char *name, size_t len)
{
    for (int k = 0; k < n; k++)
        if (strlen(defs[k].name) == len && strncmp(defs[k].name, name, len) == 0)
            return &defs[k];
    return NULL;
}

static int set_value(const struct flag_def *d, const char *v)
{
    char *end;

    switch (d->kind) {
    case FLAG_BOOL:
        if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0 || strcmp(v, "t") == 0)
            *(bool *)d->target = true;
        else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0 || strcmp(v, "f") == 0)
            *(bool *)d->target = false;
        else
            break;
        return 0;
    case FLAG_STRING:
        *(const char **)d->target = v;
        return 0;
    case FLAG_UINT:
    case FLAG_INT: {
        long x = strtol(v, &end, 10);
        if (end == v || *end != '\0' || (d->kind == FLAG_UINT && x < 0))
            break;
        *(long *)d->target = x;
        return 0;
    }
    }
    fprintf(stderr, "invalid value \"%s\" for flag -%s: parse error\n", v, d->name);
    return -1;
}

int flags_parse(int argc, char **argv, int *i, const struct flag_def *defs, int n)
{
    while (*i < argc) {
        const char *a = argv[*i];
        if (a[0] != '-' || a[1] == '\0' || is_negative_number(a))
            return 0;
        (*i)++;
        if (strcmp(a, "--") == 0)
            return 0;
        const char *name = a + (a[1] == '-' ? 2 : 1);
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const struct flag_def *d = find(defs, n, name, len);
        if (d == NULL) {
            if ((len == 4 && strncmp(name, "help", 4) == 0) || (len == 1 && name[0] == 'h'))
                return -2;
            fprintf(stderr, "flag provided but not defined: -%.*s\n", (int)len, name);
            return -1;
        }
        if (eq != NULL) {
            if (set_value(d, eq + 1) != 0)
                return -1;
        } else if (d->kind == FLAG_BOOL) {
            *(bool *)d->target = true;
        } else if (*i < argc) {
            if (set_value(d, argv[(*i)++]) != 0)
                return -1;
        } else {
            fprintf(stderr, "flag needs an argument: -%s\n", d->name);
            return -1;
        }
    }
    return 0;
}
