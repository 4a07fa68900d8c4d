/*
 * duration.h — the one parser of human durations ("250ms", "30s", "1h30m"),
 * shared by the daemon's configuration (src/daemon/config/) and by libdbpool and
 * the dbpool CLI (timeouts from $DBPOOL_TIMEOUT, --timeout, ...). It lives in
 * libdbpool, which the daemon links.
 */
#ifndef DBPOOLD_DURATION_H
#define DBPOOLD_DURATION_H

#include <stdbool.h>
#include <stdint.h>

/* "250ms", "30s", "5m", "1h30m", "0" -> milliseconds. Returns false when the
 * string is not a valid duration. Units: ms s m h; components in descending
 * order; no sign. */
bool parse_duration_ms(const char *s, uint64_t *out_ms);

#endif
