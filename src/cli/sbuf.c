/*
 * sbuf.c — the dbpool CLI's growable string (sbuf.h).
 */
#include "cli/sbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_ERROR 1

void die_oom(void)
{
    fputs("dbpool: out of memory\n", stderr);
    exit(EXIT_ERROR);
}

void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (p == NULL)
        die_oom();
    return p;
}

void sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->p = xrealloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void sb_adds(struct sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}
