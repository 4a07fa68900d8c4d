/*
 * sbuf.h — the dbpool CLI's growable string and its allocation helpers:
 * an allocation failure ends the program with a message (the CLI has no
 * state worth saving). Used by main.c (scripts, interactive input) and
 * output.c (cells, CSV fields).
 */
#ifndef DBPOOL_CLI_SBUF_H
#define DBPOOL_CLI_SBUF_H

#include <stddef.h>

/* Growable string; the memory belongs to whoever holds the struct. p is
 * NUL-terminated once anything was added. */
struct sbuf {
    char *p;
    size_t len;
    size_t cap;
};

/* Prints "dbpool: out of memory" and exits 1. */
void die_oom(void);
/* realloc that never returns NULL (n == 0 allocates one byte). */
void *xrealloc(void *p, size_t n);
void sb_add(struct sbuf *b, const char *s, size_t n);
void sb_adds(struct sbuf *b, const char *s);

#endif
