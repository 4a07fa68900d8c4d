/*
 * source.h — the migration files of a -path directory, read the way
 * golang-migrate's file source reads them: every regular file whose name
 * matches ^([0-9]+)_(.*)\.(down|up)\.(.*)$ (the version's leading zeros
 * ignored, the name greedy), other files ignored, gaps between versions
 * allowed, two files with the same version and direction an error.
 */
#ifndef DBPOOL_MIGRATE_SOURCE_H
#define DBPOOL_MIGRATE_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One version: its up and/or down file (NULL when absent). */
struct mig_version {
    int64_t version;
    char *up_file, *up_name;        /* file name in the directory; identifier */
    char *down_file, *down_name;
};

/* The directory's migrations, sorted by version. Owns everything. */
struct mig_source {
    char *dir;
    struct mig_version *v;
    size_t n;
};

/* Splits a file name by the rule above. On a match sets *version, the name
 * (identifier) as [*name, *name + *name_len) and *up, and returns true. A
 * version above INT64_MAX does not match (the database stores a bigint). */
bool mig_parse_name(const char *fname, int64_t *version, const char **name,
                    size_t *name_len, bool *up);

/* Reads dir. Returns 0, or -1 with a message in err (missing directory,
 * duplicate migration file, out of memory). */
int source_load(const char *dir, struct mig_source *src, char *err, size_t errcap);
void source_free(struct mig_source *src);

/* Index of version v, or -1. */
long source_find(const struct mig_source *src, int64_t v);

/* The whole file dir/name in *buf (NUL-terminated, owned by the caller),
 * its length in *len. Returns 0, or -1 with a message in err. */
int source_read(const struct mig_source *src, const char *name, char **buf, size_t *len,
                char *err, size_t errcap);

#endif
