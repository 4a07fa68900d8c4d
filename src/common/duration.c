/*
 * duration.c — parses durations written as in the configuration ("250ms",
 * "30s", "1h30m"; see src/common/duration.h). Linked into libdbpool so that the
 * daemon's config, the library's environment variables and the CLI's flags
 * accept exactly the same strings.
 */
#include "common/duration.h"

#include <stddef.h>
#include <string.h>

/* Duration units, "ms" before "m" so that the longer suffix wins. */
static const struct { const char *suffix; uint64_t ms; } duration_units[] = {
    { "ms", 1 }, { "h", 3600000 }, { "m", 60000 }, { "s", 1000 },
};

/* Reads a unit suffix at *s; returns its length in ms (0 if none). */
static uint64_t duration_unit(const char **s)
{
    size_t i, n;

    for (i = 0; i < sizeof duration_units / sizeof duration_units[0]; i++) {
        n = strlen(duration_units[i].suffix);
        if (strncmp(*s, duration_units[i].suffix, n) == 0) {
            *s += n;
            return duration_units[i].ms;
        }
    }
    return 0;
}

bool parse_duration_ms(const char *s, uint64_t *out_ms)
{
    uint64_t total = 0, last_unit = UINT64_MAX;

    if (!s || !*s)
        return false;
    if (strcmp(s, "0") == 0) {
        *out_ms = 0;
        return true;
    }
    while (*s) {
        uint64_t n = 0, unit;

        if (*s < '0' || *s > '9')
            return false;
        for (; *s >= '0' && *s <= '9'; s++) {
            if (n > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
                return false;
            n = n * 10 + (uint64_t)(*s - '0');
        }
        unit = duration_unit(&s);
        /* each component needs a unit smaller than the one before it */
        if (unit == 0 || unit >= last_unit || n > UINT64_MAX / unit
            || n * unit > UINT64_MAX - total)
            return false;
        total += n * unit;
        last_unit = unit;
    }
    *out_ms = total;
    return true;
}
