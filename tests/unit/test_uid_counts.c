/*
 * test_uid_counts.c — the sessions-per-uid table behind
 * daemon.maxClientsPerUser (src/daemon/uid_counts.c), against a plain
 * array as the reference: random adds and removes over a few uids that
 * collide in the table, growth, and uids leaving when their count is zero.
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "daemon/uid_counts.h"

#define NUIDS 300

/* uids spread wide (and some equal modulo the table size) */
static uint32_t uid_of(int i)
{
    return i % 3 == 0 ? (uint32_t)i * 1024u : (uint32_t)i * 7919u + 1000u;
}

Test(uid_counts, matches_a_reference_through_random_adds_and_removes)
{
    struct uid_counts t = { 0 };
    uint32_t ref[NUIDS] = { 0 };
    unsigned seed = 12345;

    for (int step = 0; step < 200000; step++) {
        int i = rand_r(&seed) % NUIDS;
        bool add = ref[i] == 0 || rand_r(&seed) % 100 < (step < 100000 ? 60 : 35);

        if (add) {
            cr_assert(uid_counts_add(&t, uid_of(i)));
            ref[i]++;
        } else {
            uid_counts_remove(&t, uid_of(i));
            ref[i]--;
        }
        if (step % 997 == 0)
            for (int k = 0; k < NUIDS; k++)
                cr_assert_eq(uid_counts_get(&t, uid_of(k)), ref[k], "step %d uid %u: %u, expected %u",
                             step, uid_of(k), uid_counts_get(&t, uid_of(k)), ref[k]);
    }
    size_t live = 0;
    for (int k = 0; k < NUIDS; k++) {
        cr_assert_eq(uid_counts_get(&t, uid_of(k)), ref[k]);
        live += ref[k] > 0;
    }
    cr_assert_eq(t.used, live, "the table holds %zu uids, %zu have sessions", t.used, live);
    uid_counts_free(&t);
}

Test(uid_counts, a_uid_leaves_when_its_last_session_ends)
{
    struct uid_counts t = { 0 };

    cr_assert_eq(uid_counts_get(&t, 1001), 0, "an empty table answers 0");
    for (int i = 0; i < 3; i++)
        cr_assert(uid_counts_add(&t, 1001));
    cr_assert(uid_counts_add(&t, 0));
    cr_assert_eq(uid_counts_get(&t, 1001), 3);
    cr_assert_eq(t.used, 2);
    for (int i = 0; i < 3; i++)
        uid_counts_remove(&t, 1001);
    cr_assert_eq(uid_counts_get(&t, 1001), 0);
    cr_assert_eq(uid_counts_get(&t, 0), 1);
    cr_assert_eq(t.used, 1, "uid 1001 stayed in the table with no session");
    uid_counts_free(&t);
}
