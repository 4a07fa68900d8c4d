/*
 * godur.c — Go's time.Duration text form (godur.h): below one second a
 * single unit (ns, µs, ms) with up to 0/3/6 fraction digits; from one second
 * on h, m and s with up to 9 fraction digits on the seconds; trailing zeros
 * of a fraction and an empty fraction are left out.
 */
#include "migrate/godur.h"

#include <stdio.h>
#include <string.h>

/* Appends ".ddd" (prec digits of v % 10^prec, trailing zeros dropped, no
 * dot when all are zero) to out; returns v / 10^prec. */
static uint64_t frac(uint64_t v, int prec, char *out, size_t cap)
{
    char digits[24];
    int n = prec;
    uint64_t scale = 1;

    for (int i = 0; i < prec; i++)
        scale *= 10;
    snprintf(digits, sizeof digits, "%0*llu", prec, (unsigned long long)(v % scale));
    while (n > 0 && digits[n - 1] == '0')
        n--;
    if (n > 0)
        snprintf(out, cap, ".%.*s", n, digits);
    else
        out[0] = '\0';
    return v / scale;
}

char *godur_format(int64_t ns, char *buf, size_t cap)
{
    const char *sign = ns < 0 ? "-" : "";
    uint64_t u = ns < 0 ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;
    char f[16];

    if (u == 0) {
        snprintf(buf, cap, "0s");
    } else if (u < 1000) {
        snprintf(buf, cap, "%s%lluns", sign, (unsigned long long)u);
    } else if (u < 1000000) {
        uint64_t i = frac(u, 3, f, sizeof f);
        snprintf(buf, cap, "%s%llu%s\xc2\xb5s", sign, (unsigned long long)i, f);
    } else if (u < 1000000000) {
        uint64_t i = frac(u, 6, f, sizeof f);
        snprintf(buf, cap, "%s%llu%sms", sign, (unsigned long long)i, f);
    } else {
        uint64_t s = frac(u, 9, f, sizeof f);
        uint64_t m = s / 60, h = m / 60;
        if (h > 0)
            snprintf(buf, cap, "%s%lluh%llum%llu%ss", sign, (unsigned long long)h,
                     (unsigned long long)(m % 60), (unsigned long long)(s % 60), f);
        else if (m > 0)
            snprintf(buf, cap, "%s%llum%llu%ss", sign, (unsigned long long)m,
                     (unsigned long long)(s % 60), f);
        else
            snprintf(buf, cap, "%s%llu%ss", sign, (unsigned long long)s, f);
    }
    return buf;
}
