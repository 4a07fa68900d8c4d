/*
 * utf8-bench.c — micro-benchmark of the daemon's UTF-8 check
 * (proto_utf8_check in src/common/proto.c), which runs on the SQL text and TEXT
 * parameters of every statement a client sends. It prints nanoseconds per
 * call and throughput for typical inputs, next to a byte-at-a-time check of
 * the same rules (what the 8-byte ASCII fast path saves). Not a test: speed
 * is measured here, never asserted in the suite.
 *
 *   cc -O2 -Iinclude -Isrc bench/utf8-bench.c src/common/proto.c -o /tmp/utf8-bench
 *   /tmp/utf8-bench
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/proto.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);   /* CPU time: steadier on a shared machine */
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The same rules, one byte at a time (the baseline). */
static size_t bytewise_check(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i], lo = 0x80, hi = 0xbf;
        size_t k;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            k = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 3;
            lo = c == 0xe0 ? 0xa0 : 0x80;
            hi = c == 0xed ? 0x9f : 0xbf;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 4;
            lo = c == 0xf0 ? 0x90 : 0x80;
            hi = c == 0xf4 ? 0x8f : 0xbf;
        } else {
            return i;
        }
        if (n - i < k || s[i + 1] < lo || s[i + 1] > hi)
            return i;
        for (size_t j = 2; j < k; j++)
            if ((s[i + j] & 0xc0) != 0x80)
                return i;
        i += k;
    }
    return n;
}

static volatile size_t sink;

static void run(const char *name, const uint8_t *p, size_t n)
{
    double t[2];
    if (proto_utf8_check(p, n) != n || bytewise_check(p, n) != n) {
        fprintf(stderr, "%s: the input is not valid UTF-8\n", name);
        exit(1);
    }
    for (int v = 0; v < 2; v++) {
        size_t iters = 0, batch = n < 4096 ? 100000 : n < 100000 ? 1000 : 10;
        double t0 = now_s(), el;
        do {
            for (size_t i = 0; i < batch; i++)
                sink += v == 0 ? proto_utf8_check(p, n) : bytewise_check(p, n);
            iters += batch;
            el = now_s() - t0;
        } while (el < 0.3);
        t[v] = el / (double)iters;
    }
    printf("| %-34s | %9zu | %10.1f | %8.2f | %10.1f | %8.2f |\n", name, n, t[0] * 1e9,
           (double)n / t[0] / 1e9, t[1] * 1e9, (double)n / t[1] / 1e9);
}

static uint8_t *repeat(const char *unit, size_t total)
{
    size_t u = strlen(unit);
    uint8_t *p = malloc(total);
    if (!p)
        exit(1);
    for (size_t i = 0; i < total; i++)
        p[i] = (uint8_t)unit[i % u];
    /* cut at a character boundary: drop a trailing partial sequence */
    size_t end = total;
    while (end > 0 && (p[end - 1] & 0xc0) == 0x80)
        end--;
    if (end > 0 && p[end - 1] >= 0xc0)
        end--;
    memset(p + end, ' ', total - end);
    return p;
}

int main(void)
{
    static const char pgbench[] = "SELECT abalance FROM pgbench_accounts WHERE aid = $1";
    static const char tpcb[] = "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2";
    uint8_t *ascii1k = repeat("SELECT col_a, col_b FROM some_table WHERE x = 1; ", 1024);
    uint8_t *ascii1m = repeat("The quick brown fox jumps over the lazy dog. ", 1 << 20);
    uint8_t *latin1m = repeat("Voil\xc3\xa0 une cha\xc3\xaene fran\xc3\xa7" "aise \xc3\xa9l\xc3\xa9gante. ", 1 << 20);
    uint8_t *cjk1m = repeat("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe6\x96\x87\xe7\xab\xa0", 1 << 20);
    uint8_t *emoji1m = repeat("\xf0\x9f\x98\x80\xf0\x9f\x8e\x89", 1 << 20);

    printf("| input                              |     bytes | fast ns/call | GB/s | bytewise ns/call | GB/s |\n");
    printf("|---|---:|---:|---:|---:|---:|\n");
    run("pgbench select-only SQL", (const uint8_t *)pgbench, sizeof(pgbench) - 1);
    run("pgbench TPC-B UPDATE SQL", (const uint8_t *)tpcb, sizeof(tpcb) - 1);
    run("1 KiB ASCII SQL", ascii1k, 1024);
    run("1 MiB ASCII TEXT", ascii1m, 1 << 20);
    run("1 MiB French TEXT (~10% 2-byte)", latin1m, 1 << 20);
    run("1 MiB Japanese TEXT (3-byte)", cjk1m, 1 << 20);
    run("1 MiB emoji TEXT (4-byte)", emoji1m, 1 << 20);
    free(ascii1k);
    free(ascii1m);
    free(latin1m);
    free(cjk1m);
    free(emoji1m);
    return 0;
}
