/*
 * source.c — scanning a -path directory for migration files (source.h).
 * Names are taken in sorted order so that, as in golang-migrate, the second
 * of two duplicates (by name) is the one reported.
 */
#include "migrate/source.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_FILE_BYTES (64u << 20)  /* a migration file larger than this is refused */

/* The rightmost ".up." or ".down." at or after from: the greedy (.*) of the
 * name gives the direction the last place where one fits. */
static const char *last_direction(const char *from, bool *up)
{
    const char *hit = NULL;

    for (const char *p = from; *p; p++) {
        if (strncmp(p, ".up.", 4) == 0) {
            hit = p;
            *up = true;
        } else if (strncmp(p, ".down.", 6) == 0) {
            hit = p;
            *up = false;
        }
    }
    return hit;
}

bool mig_parse_name(const char *fname, int64_t *version, const char **name,
                    size_t *name_len, bool *up)
{
    const char *p = fname;
    uint64_t v = 0;
    const char *dir;

    if (*p < '0' || *p > '9')
        return false;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > ((uint64_t)INT64_MAX - (uint64_t)(*p - '0')) / 10)
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (*p != '_' || strchr(fname, '\n') != NULL)
        return false;
    dir = last_direction(p + 1, up);
    if (dir == NULL)
        return false;
    *version = (int64_t)v;
    *name = p + 1;
    *name_len = (size_t)(dir - (p + 1));
    return true;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_versions(const void *a, const void *b)
{
    const struct mig_version *x = a, *y = b;
    return x->version < y->version ? -1 : x->version > y->version;
}

/* The sorted names of the regular files in dir (NULL-terminated array). */
static char **list_files(const char *dir, size_t *n, char *err, size_t errcap)
{
    DIR *d = opendir(dir);
    char **names = NULL;
    struct dirent *e;
    size_t cap = 0;

    *n = 0;
    if (d == NULL) {
        snprintf(err, errcap, "-path %s: %s (name the directory that holds the "
                 "NNN_name.up.sql / .down.sql files)", dir, strerror(errno));
        return NULL;
    }
    while ((e = readdir(d)) != NULL) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (*n + 1 >= cap) {
            cap = cap ? cap * 2 : 32;
            char **nn = realloc(names, cap * sizeof *names);
            if (nn == NULL)
                break;
            names = nn;
        }
        names[(*n)++] = strdup(e->d_name);
    }
    closedir(d);
    if (names != NULL)
        qsort(names, *n, sizeof *names, cmp_names);
    return names;
}

/* The entry for version v, added at the end when new. */
static struct mig_version *slot(struct mig_source *src, int64_t v, size_t *cap)
{
    for (size_t i = 0; i < src->n; i++)
        if (src->v[i].version == v)
            return &src->v[i];
    if (src->n == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        struct mig_version *nv = realloc(src->v, *cap * sizeof *nv);
        if (nv == NULL)
            return NULL;
        src->v = nv;
    }
    memset(&src->v[src->n], 0, sizeof src->v[0]);
    src->v[src->n].version = v;
    return &src->v[src->n++];
}

/* Files the version of one matching name. Returns 0, or -1 (err set). */
static int add_file(struct mig_source *src, const char *fname, size_t *cap, char *err, size_t errcap)
{
    int64_t v;
    const char *name;
    size_t len;
    bool up;
    struct mig_version *mv;

    if (!mig_parse_name(fname, &v, &name, &len, &up))
        return 0;
    mv = slot(src, v, cap);
    if (mv == NULL) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    if ((up ? mv->up_file : mv->down_file) != NULL) {
        snprintf(err, errcap, "duplicate migration file: %s (version %lld has two %s files; "
                 "rename or remove one)", fname, (long long)v, up ? "up" : "down");
        return -1;
    }
    char **file = up ? &mv->up_file : &mv->down_file;
    char **ident = up ? &mv->up_name : &mv->down_name;
    *file = strdup(fname);
    *ident = strndup(name, len);
    if (*file == NULL || *ident == NULL) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    return 0;
}

int source_load(const char *dir, struct mig_source *src, char *err, size_t errcap)
{
    size_t n, cap = 0;
    char **names;
    int rc = 0;

    memset(src, 0, sizeof *src);
    err[0] = '\0';
    src->dir = strdup(dir);
    names = list_files(dir, &n, err, errcap);
    if (names == NULL && n == 0 && err[0] != '\0')
        return -1;
    for (size_t i = 0; i < n && rc == 0; i++)
        if (names[i] == NULL) {
            snprintf(err, errcap, "out of memory");
            rc = -1;
        } else {
            rc = add_file(src, names[i], &cap, err, errcap);
        }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (rc == 0 && src->n > 0)
        qsort(src->v, src->n, sizeof src->v[0], cmp_versions);
    return rc;
}

void source_free(struct mig_source *src)
{
    for (size_t i = 0; i < src->n; i++) {
        free(src->v[i].up_file);
        free(src->v[i].up_name);
        free(src->v[i].down_file);
        free(src->v[i].down_name);
    }
    free(src->v);
    free(src->dir);
    memset(src, 0, sizeof *src);
}

long source_find(const struct mig_source *src, int64_t v)
{
    size_t lo = 0, hi = src->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (src->v[mid].version == v)
            return (long)mid;
        if (src->v[mid].version < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

int source_read(const struct mig_source *src, const char *name, char **buf, size_t *len,
                char *err, size_t errcap)
{
    char path[4096];
    FILE *f;
    struct stat st;

    snprintf(path, sizeof path, "%s/%s", src->dir, name);
    f = fopen(path, "rb");
    if (f == NULL || fstat(fileno(f), &st) != 0 || st.st_size > (off_t)MAX_FILE_BYTES) {
        snprintf(err, errcap, "%s: %s", path, f == NULL ? strerror(errno)
                 : "larger than 64 MiB; split the migration");
        if (f != NULL)
            fclose(f);
        return -1;
    }
    *buf = malloc((size_t)st.st_size + 1);
    *len = *buf ? fread(*buf, 1, (size_t)st.st_size, f) : 0;
    if (*buf == NULL || ferror(f)) {
        snprintf(err, errcap, "%s: %s", path, *buf ? strerror(errno) : "out of memory");
        free(*buf);
        *buf = NULL;
        fclose(f);
        return -1;
    }
    (*buf)[*len] = '\0';
    fclose(f);
    return 0;
}
