/*
 * lock.c — the migration lock, the same one golang-migrate takes, so that
 * dbpool-migrate and migrate exclude each other:
 *   PostgreSQL  pg_advisory_lock(key), key = the CRC-32 of
 *               "schema\0schema_migrations\0database" × 1486364155 mod 2^32
 *               (golang-migrate's GenerateAdvisoryLockId: the extra names first,
 *               the database last);
 *   MySQL       GET_LOCK(name, 10), name = that key of "database:schema_migrations"
 *               in decimal (asked again while -lock-timeout lasts);
 *   SQLite      the pool's one writer, which the pinned session holds.
 * Session locks need one server connection for the whole run, so the
 * session is pinned (dbpool_pin) first; -lock-timeout bounds the pin and the
 * lock together.
 */
#include "migrate/migrate.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define LOCK_SALT 1486364155u
#define MYSQL_LOCK_WAIT_S 10    /* golang-migrate's GET_LOCK timeout */
#define PIN_RETRY_NS 50000000L  /* a PIN refused for maxPinned is asked again after 50 ms */

uint32_t mig_crc32(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint32_t c = 0xFFFFFFFFu;

    for (size_t i = 0; i < len; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return c ^ 0xFFFFFFFFu;
}

uint32_t mig_lock_key(const char *const *names, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    static const unsigned char nul = 0;

    /* The CRC of the concatenation, computed piece by piece. */
    for (size_t i = 0; i < n; i++) {
        const unsigned char *p = (const unsigned char *)names[i];
        size_t len = strlen(names[i]);
        for (size_t j = (i > 0 ? 0 : 1); j <= len; j++) {
            const unsigned char *b = j == 0 ? &nul : &p[j - 1];
            c ^= *b;
            for (int k = 0; k < 8; k++)
                c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
        }
    }
    return (c ^ 0xFFFFFFFFu) * LOCK_SALT;
}

static int64_t remaining_ms(int64_t deadline_ns)
{
    int64_t left = (deadline_ns - mig_now_ns()) / 1000000;
    return left > 0 ? left : 0;
}

static int lock_timeout(struct mig *m)
{
    return mig_fail(m, "timeout: can't acquire database lock (another migration holds it; "
                    "wait for it, or raise -lock-timeout, now %llds)",
                    (long long)(m->lock_timeout_ms / 1000));
}

/* PIN, asked again after a pool timeout or a full maxPinned until the
 * deadline: on SQLite the one writer is the one pin, so a second migrator
 * waits here until the first one is done. */
static int pin(struct mig *m, int64_t deadline_ns)
{
    bool limited = false;

    for (;;) {
        int64_t left = remaining_ms(deadline_ns);
        if (left == 0 && limited && m->backend != MB_SQLITE)
            return mig_fail(m, "dbpoold cannot pin this session: the pool has maxPinned pinned "
                            "sessions (raise maxPinned for the pool, or retry later)");
        if (left == 0)
            return lock_timeout(m);
        dbpool_set_timeout(m->conn, left);
        if (dbpool_pin(m->conn) == 0)
            break;
        int code = dbpool_last_error(m->conn)->code;
        if (code == DBPOOL_E_TIMEOUT || code == DBPOOL_E_CANCELED)
            return lock_timeout(m);
        if (code == DBPOOL_E_LIMIT && dbpool_is_open(m->conn)) {
            struct timespec pause = { 0, PIN_RETRY_NS };
            limited = true;
            nanosleep(&pause, NULL);
            continue;
        }
        if (code != DBPOOL_E_POOL_TIMEOUT || !dbpool_is_open(m->conn))
            return mig_fail_db(m, "pinning the session to one server connection");
    }
    dbpool_set_timeout(m->conn, 0);
    return 0;
}

static void key_names(const struct mig *m, char *buf, size_t cap, uint32_t *key)
{
    if (m->backend == MB_POSTGRES) {
        const char *names[] = { m->schema, MIG_TABLE, m->dbname };
        *key = mig_lock_key(names, 3);
    } else {
        char joined[600];
        snprintf(joined, sizeof joined, "%s:%s", m->dbname, MIG_TABLE);
        const char *names[] = { joined };
        *key = mig_lock_key(names, 1);
    }
    snprintf(buf, cap, "%u", *key);
}

static int lock_pg(struct mig *m, int64_t deadline_ns)
{
    char name[16];
    uint32_t key;
    dbpool_value p;

    key_names(m, name, sizeof name, &key);
    p = dbpool_int(key);
    dbpool_set_timeout(m->conn, remaining_ms(deadline_ns) > 0 ? remaining_ms(deadline_ns) : 1);
    if (dbpool_query(m->conn, "SELECT pg_advisory_lock($1)", &p, 1, NULL) != 0) {
        int code = dbpool_last_error(m->conn)->code;
        if (code == DBPOOL_E_TIMEOUT || code == DBPOOL_E_CANCELED)
            return lock_timeout(m);
        return mig_fail_db(m, "try lock failed: SELECT pg_advisory_lock($1)");
    }
    dbpool_set_timeout(m->conn, 0);
    return 0;
}

static int lock_mysql(struct mig *m, int64_t deadline_ns)
{
    char name[16];
    uint32_t key;

    key_names(m, name, sizeof name, &key);
    for (;;) {
        int64_t left_s = remaining_ms(deadline_ns) / 1000;
        int64_t wait = left_s < MYSQL_LOCK_WAIT_S ? left_s : MYSQL_LOCK_WAIT_S;
        dbpool_value p[2] = { dbpool_text(name), dbpool_int(wait > 0 ? wait : 0) };
        dbpool_result *r = NULL;
        int64_t got = 0;
        if (mig_query(m, "SELECT GET_LOCK(?, ?)", p, 2, &r) != 0)
            return -1;
        bool known = dbpool_result_nrows(r) > 0 && mig_value_int(dbpool_result_value(r, 0, 0), &got);
        dbpool_result_free(r);
        if (known && got == 1)
            return 0;
        if (remaining_ms(deadline_ns) == 0)
            return lock_timeout(m);
    }
}

int mig_lock(struct mig *m)
{
    int64_t deadline = mig_now_ns() + m->lock_timeout_ms * 1000000;

    if (pin(m, deadline) != 0)
        return -1;
    int rc = m->backend == MB_POSTGRES ? lock_pg(m, deadline)
           : m->backend == MB_MYSQL ? lock_mysql(m, deadline) : 0;
    if (rc == 0)
        m->locked = true;
    return rc;
}

void mig_unlock(struct mig *m)
{
    char name[16];
    uint32_t key;

    if (!dbpool_is_open(m->conn))
        return;
    if (m->locked && m->backend != MB_SQLITE) {
        key_names(m, name, sizeof name, &key);
        dbpool_value p = m->backend == MB_POSTGRES ? dbpool_int(key) : dbpool_text(name);
        const char *sql = m->backend == MB_POSTGRES ? "SELECT pg_advisory_unlock($1)"
                                                    : "SELECT RELEASE_LOCK(?)";
        if (dbpool_txstate_of(m->conn) != DBPOOL_TX_IDLE)
            dbpool_rollback(m->conn);
        if (dbpool_query(m->conn, sql, &p, 1, NULL) != 0)
            mig_vlog(m, "unlock: %s (dbpoold resets the connection on unpin)",
                     dbpool_last_error(m->conn)->message);
    }
    m->locked = false;
    if (dbpool_unpin(m->conn) != 0)
        mig_vlog(m, "unpin: %s", dbpool_last_error(m->conn)->message);
}
