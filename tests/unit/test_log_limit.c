/*
 * test_log_limit.c — the per-event log volume bound (src/daemon/log_limit.c),
 * driven with an explicit clock.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "daemon/log_limit.h"

static struct log_limit lim;

static void reset(void)
{
    memset(&lim, 0, sizeof(lim));
}

TestSuite(log_limit, .init = reset);

static bool admit(const char *ev, uint64_t now, struct log_limit_summary *sum, size_t *n)
{
    struct log_limit_summary scratch[4];
    size_t k;
    bool ok = log_limit_admit(&lim, ev, now, sum ? sum : scratch, 4, n ? n : &k);
    return ok;
}

Test(log_limit, a_flood_of_one_event_is_cut_and_summarised)
{
    struct log_limit_summary sum[4];
    size_t n = 0, written = 0;

    for (int i = 0; i < 100000; i++)
        written += admit("accept_failed", 1000 + (uint64_t)i / 1000, NULL, NULL);
    /* 100 000 lines over 100 ms: one window. */
    cr_assert_eq(written, LOG_LIMIT_PER_WINDOW, "%zu lines written", written);
    /* Another event is not starved by the flood. */
    cr_assert(admit("client_hello", 1050, NULL, NULL));
    /* The next window: the summary comes first, then lines again. */
    cr_assert(admit("accept_failed", 1000 + LOG_LIMIT_WINDOW_MS, sum, &n));
    cr_assert_eq(n, 1);
    cr_assert_str_eq(sum[0].name, "accept_failed");
    cr_assert_eq(sum[0].suppressed, 100000 - LOG_LIMIT_PER_WINDOW);
}

Test(log_limit, the_summary_comes_with_any_later_line)
{
    struct log_limit_summary sum[4];
    size_t n = 0;

    for (int i = 0; i < LOG_LIMIT_PER_WINDOW + 7; i++)
        admit("server_broken", 0, NULL, NULL);
    cr_assert(admit("other", 10, sum, &n));
    cr_assert_eq(n, 0, "summary before the window ended");
    cr_assert(admit("other", 5000, sum, &n));
    cr_assert_eq(n, 1);
    cr_assert_str_eq(sum[0].name, "server_broken");
    cr_assert_eq(sum[0].suppressed, 7);
    cr_assert(admit("other", 9000, sum, &n));
    cr_assert_eq(n, 0, "a summary was given twice");
}

Test(log_limit, below_the_bound_nothing_is_suppressed)
{
    for (uint64_t t = 0; t < 20 * LOG_LIMIT_WINDOW_MS; t += LOG_LIMIT_WINDOW_MS / 10)
        cr_assert(admit("pool_recovered", t, NULL, NULL));
}

Test(log_limit, more_event_names_than_slots_share_the_last)
{
    char name[32];
    size_t written = 0;

    for (int i = 0; i < LOG_LIMIT_EVENTS * 4; i++) {
        snprintf(name, sizeof(name), "event_%d", i);
        for (int k = 0; k < 3; k++)
            written += admit(name, 0, NULL, NULL);
    }
    cr_assert_leq(written, (size_t)(LOG_LIMIT_EVENTS - 1) * 3 + LOG_LIMIT_PER_WINDOW);
    cr_assert_geq(written, (size_t)(LOG_LIMIT_EVENTS - 1) * 3);
}

Test(log_limit, an_instance_may_set_its_own_window_and_rate)
{
    struct log_limit_summary sum[4];
    size_t n = 0, written = 0;

    lim.window_ms = 10000;
    lim.per_window = 1;
    for (uint64_t t = 0; t < 9000; t += 100)
        written += admit("refused u1001 app", t, NULL, NULL);
    cr_assert_eq(written, 1, "%zu lines in one 10 s window with a rate of one", written);
    cr_assert(admit("refused u1002 app", 9500, NULL, NULL), "another key is not starved");
    cr_assert(admit("refused u1001 app", 10000, sum, &n));
    cr_assert_eq(n, 1);
    cr_assert_str_eq(sum[0].name, "refused u1001 app");
    cr_assert_eq(sum[0].suppressed, 89);
}
