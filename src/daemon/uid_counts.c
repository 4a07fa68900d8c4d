/*
 * uid_counts.c — sessions per uid (see uid_counts.h): linear probing,
 * grown at half full, and backward-shift deletion so that a lookup never
 * has to step over removed entries.
 */
#include <stdlib.h>

#include "daemon/uid_counts.h"

#define MIN_CAP 16

static size_t home(uint32_t uid, size_t cap)
{
    uint32_t h = uid * 0x9E3779B1u;

    return (size_t)(h ^ (h >> 16)) & (cap - 1);
}

/* The slot holding uid, or the free slot where it would go. */
static struct uid_count *find(const struct uid_counts *t, uint32_t uid)
{
    size_t i = home(uid, t->cap);

    while (t->slot[i].n && t->slot[i].uid != uid)
        i = (i + 1) & (t->cap - 1);
    return &t->slot[i];
}

static bool grow(struct uid_counts *t)
{
    size_t cap = t->cap ? t->cap * 2 : MIN_CAP;
    struct uid_counts bigger = { calloc(cap, sizeof(struct uid_count)), cap, t->used };

    if (!bigger.slot)
        return false;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slot[i].n)
            *find(&bigger, t->slot[i].uid) = t->slot[i];
    free(t->slot);
    *t = bigger;
    return true;
}

uint32_t uid_counts_get(const struct uid_counts *t, uint32_t uid)
{
    return t->cap ? find(t, uid)->n : 0;
}

bool uid_counts_add(struct uid_counts *t, uint32_t uid)
{
    struct uid_count *e;

    if ((t->used + 1) * 2 > t->cap && !grow(t))
        return false;
    e = find(t, uid);
    if (e->n == 0) {
        e->uid = uid;
        t->used++;
    }
    e->n++;
    return true;
}

/* Slot i was emptied: pull later entries of the same probe run back into
 * it, so that every entry stays reachable from its home slot. */
static void close_gap(struct uid_counts *t, size_t i)
{
    size_t mask = t->cap - 1, j = i;

    for (;;) {
        j = (j + 1) & mask;
        if (!t->slot[j].n)
            return;
        size_t k = home(t->slot[j].uid, t->cap);
        /* Entry j may move to i unless its home lies cyclically in (i, j]. */
        if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
            continue;
        t->slot[i] = t->slot[j];
        t->slot[j].n = 0;
        i = j;
    }
}

void uid_counts_remove(struct uid_counts *t, uint32_t uid)
{
    struct uid_count *e;

    if (!t->cap || !(e = find(t, uid))->n)
        return;
    if (--e->n)
        return;
    t->used--;
    close_gap(t, (size_t)(e - t->slot));
}

void uid_counts_free(struct uid_counts *t)
{
    free(t->slot);
    t->slot = NULL;
    t->cap = t->used = 0;
}
