/*
 * uid_counts.h — how many client sessions each local user (the uid
 * SO_PEERCRED reports) has open, for daemon.maxClientsPerUser.
 *
 * A small open-addressing hash table of (uid, count); a uid whose count
 * drops to zero leaves the table, so it holds only the users connected
 * now. The sessions keep one (session.h) and change it only where a
 * session enters and leaves the set (client_register, client_free), next
 * to the per-state counts: it cannot drift from the sessions it counts.
 * Memory is allocated only when the table grows (amortised, never per
 * request).
 */
#ifndef DBPOOLD_UID_COUNTS_H
#define DBPOOLD_UID_COUNTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct uid_count {
    uint32_t uid;
    uint32_t n;                 /* 0: the slot is free */
};

struct uid_counts {
    struct uid_count *slot;     /* cap slots (a power of two), or NULL */
    size_t cap;
    size_t used;                /* slots with n > 0 */
};

/* Sessions of uid now (0 when none). */
uint32_t uid_counts_get(const struct uid_counts *t, uint32_t uid);
/* One more session of uid; false (nothing changed) when out of memory. */
bool uid_counts_add(struct uid_counts *t, uint32_t uid);
/* One session of uid fewer (it must have been added). */
void uid_counts_remove(struct uid_counts *t, uint32_t uid);
void uid_counts_free(struct uid_counts *t);

#endif
