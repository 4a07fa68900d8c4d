/*
 * sha256.h — SHA-256 (FIPS 180-4), for the checksums dbpool-migrate keeps
 * of every migration file it applies (schema_migrations_history.checksum).
 * Written from the standard; tests/unit/test_migrate_pure.c checks it
 * against the standard's test vectors.
 */
#ifndef DBPOOL_MIGRATE_SHA256_H
#define DBPOOL_MIGRATE_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct sha256 {
    uint32_t h[8];
    uint8_t block[64];
    size_t used;        /* bytes in block */
    uint64_t total;     /* bytes hashed so far */
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t len);
void sha256_final(struct sha256 *s, uint8_t out[32]);
/* The digest of data[0..len) as 64 lower-case hex digits and a NUL. */
void sha256_hex(const void *data, size_t len, char out[65]);

#endif
