/*
 * suggest.c — names and suggestions for the configuration loader's
 * messages: the closest known key or type to a misspelt one (edit
 * distance), a key's environment form ("maxOpenConns" -> "MAX_OPEN_CONNS")
 * and a pool name's ("my-app" -> "MY_APP"), and lists joined for printing.
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

/* ---- names and suggestions ---- */

/* Optimal string alignment distance, ignoring case; SIZE_MAX if too long. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), i, j;
    size_t d[KEY_NAME_MAX + 1][KEY_NAME_MAX + 1];

    if (la > KEY_NAME_MAX || lb > KEY_NAME_MAX)
        return SIZE_MAX;
    for (i = 0; i <= la; i++)
        d[i][0] = i;
    for (j = 0; j <= lb; j++)
        d[0][j] = j;
    for (i = 1; i <= la; i++) {
        for (j = 1; j <= lb; j++) {
            int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
            size_t best = d[i - 1][j - 1] + (ca != cb);

            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2])
                && tolower((unsigned char)a[i - 2]) == cb && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

/* The candidate closest to name (at most 2 edits, and fewer edits than name
 * has characters), or NULL. */
const char *cf_closest(const char *name, const char *const *cands, size_t n)
{
    const char *best = NULL;
    size_t best_d = 3, i;

    for (i = 0; i < n; i++) {
        size_t d = edit_distance(name, cands[i]);

        if (d < best_d && d < strlen(name)) {
            best = cands[i];
            best_d = d;
        }
    }
    return best;
}

size_t cf_strv_len(const char *const *v)
{
    size_t n = 0;

    while (v[n])
        n++;
    return n;
}

size_t cf_key_names(const struct key_spec *keys, size_t nkeys, const char **out)
{
    size_t i;

    for (i = 0; i < nkeys; i++)
        out[i] = keys[i].name;
    return nkeys;
}

/* "maxOpenConns" -> "MAX_OPEN_CONNS". */
void cf_env_key(const char *name, char *buf, size_t size)
{
    size_t o = 0;

    for (; *name && o + 2 < size; name++) {
        if (isupper((unsigned char)*name) && o > 0)
            buf[o++] = '_';
        buf[o++] = (char)toupper((unsigned char)*name);
    }
    buf[o] = '\0';
}

/* "my-app" -> "MY_APP". */
void cf_env_pool_name(const char *name, char *buf, size_t size)
{
    size_t o = 0;

    for (; *name && o + 1 < size; name++)
        buf[o++] = *name == '-' ? '_' : (char)toupper((unsigned char)*name);
    buf[o] = '\0';
}

/* ", " separated list of v, e.g. "sqlite, postgres, mysql". */
const char *cf_join(const char *const *v, char *buf, size_t size)
{
    size_t pos = 0;

    buf[0] = '\0';
    for (; *v; v++)
        cf_appendf(buf, size, &pos, "%s%s", pos ? ", " : "", *v);
    return buf;
}
