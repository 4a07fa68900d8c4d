/*
 * top.c — dbpoolctl top: a per-pool view refreshed every interval
 * (transactions per second from the change of totals.transactions, the
 * last minute's p50/p99 transaction and wait times, waiting clients).
 * On a terminal the screen is redrawn in place and q quits (the terminal
 * is put in non-canonical mode and restored on the way out); otherwise
 * each refresh is printed below the last, for logs and pipes.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "ctl/ctl.h"

#define MAX_POOLS 256

struct top_state {
    char names[MAX_POOLS][64];
    double tx[MAX_POOLS];
    size_t n;
    double at;                  /* monotonic seconds of the last sample */
};

static double mono_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Transactions per second of pool name since the last screen (-1: first). */
static double tps(struct top_state *st, const char *name, double tx, double now)
{
    for (size_t i = 0; i < st->n; i++) {
        if (strcmp(st->names[i], name) == 0) {
            double rate = now > st->at ? (tx - st->tx[i]) / (now - st->at) : 0;
            st->tx[i] = tx;
            return rate;
        }
    }
    if (st->n < MAX_POOLS) {
        snprintf(st->names[st->n], sizeof(st->names[0]), "%s", name);
        st->tx[st->n++] = tx;
    }
    return -1;
}

static void draw(const struct json *pools, struct top_state *st, bool tty)
{
    double now = mono_s();
    char a[5][32];

    if (tty)
        fputs("\033[H\033[2J", stdout);
    printf("dbpoolctl top — %s%s\n", "tps over the refresh period; latency: last 60 s",
           tty ? "; q quits" : "");
    printf("%-16s %-9s %8s %7s %7s %8s %8s %8s %8s\n", "POOL", "STATE", "TPS", "ACTIVE",
           "WAITING", "TX_P50", "TX_P99", "WAIT_P50", "WAIT_P99");
    for (const struct json *p = pools ? pools->child : NULL; p; p = p->next) {
        const char *name = json_str(json_get(p, "name"), "?");
        const struct json *paused = json_get(p, "paused"), *healthy = json_get(p, "healthy");
        double rate = tps(st, name, json_num(JSON_AT(p, "totals", "transactions"), 0), now);
        if (rate < 0)
            snprintf(a[4], sizeof(a[4]), "-");
        else
            snprintf(a[4], sizeof(a[4]), "%.1f", rate);
        printf("%-16s %-9s %8s %7.0f %7.0f %8s %8s %8s %8s\n", name,
               paused && paused->b ? "paused" : healthy && healthy->b ? "ok" : "unhealthy", a[4],
               json_num(JSON_AT(p, "clients", "active"), 0),
               json_num(JSON_AT(p, "clients", "waiting"), 0),
               fmt_latency(p, "transaction", "p50_ms", a[0], 32),
               fmt_latency(p, "transaction", "p99_ms", a[1], 32),
               fmt_latency(p, "wait", "p50_ms", a[2], 32),
               fmt_latency(p, "wait", "p99_ms", a[3], 32));
    }
    st->at = now;
    fflush(stdout);
}

/* Wait up to seconds for a key; true when it was q (or input ended). */
static bool quit_key(bool tty, double seconds)
{
    struct pollfd p = { STDIN_FILENO, POLLIN, 0 };
    char ch;

    if (!tty) {
        struct timespec ts = { (time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9) };
        nanosleep(&ts, NULL);
        return false;
    }
    double end = mono_s() + seconds;
    while (mono_s() < end) {
        if (poll(&p, 1, (int)((end - mono_s()) * 1000) + 1) > 0) {
            if (read(STDIN_FILENO, &ch, 1) != 1 || ch == 'q' || ch == 'Q')
                return true;
        }
    }
    return false;
}

int ctl_top(const struct ctl *c)
{
    bool tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    struct termios saved, raw;
    struct top_state *st = calloc(1, sizeof(*st));
    int rc = 0;

    if (!st)
        return 1;
    if (tty && tcgetattr(STDIN_FILENO, &saved) == 0) {
        raw = saved;
        raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
        raw.c_cc[VMIN] = 1;
        raw.c_cc[VTIME] = 0;
        tcsetattr(STDIN_FILENO, TCSANOW, &raw);
    } else {
        tty = false;
    }
    for (int i = 0; c->iterations == 0 || i < c->iterations; i++) {
        struct json *pools = ctl_get(c, "/pools", &rc);
        if (!pools)
            break;
        draw(pools, st, tty);
        json_free(pools);
        if ((c->iterations == 0 || i + 1 < c->iterations) && quit_key(tty, c->interval_s))
            break;
    }
    if (tty)
        tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    free(st);
    return rc;
}
