/*
 * godur.h — durations written the way Go's time.Duration.String() writes
 * them ("12.3456ms", "1.5s", "2m3.0004s", "850ns", "7µs"), so that the lines
 * dbpool-migrate prints ("1/u create_users (12.3456ms)") look exactly like
 * golang-migrate's.
 */
#ifndef DBPOOL_MIGRATE_GODUR_H
#define DBPOOL_MIGRATE_GODUR_H

#include <stddef.h>
#include <stdint.h>

/* Writes ns as Go would into buf (32 bytes are always enough); returns buf. */
char *godur_format(int64_t ns, char *buf, size_t cap);

#endif
