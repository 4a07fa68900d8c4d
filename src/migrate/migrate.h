/*
 * migrate.h — what the parts of dbpool-migrate share: the session with
 * dbpoold (one pinned libdbpool connection), the backend's dialect, the
 * options of the run, and the small query helpers of db.c.
 *
 * Every function that can fail returns -1 and leaves a message (without
 * the "error: " golang-migrate puts in front) in m->err; main.c prints it.
 */
#ifndef DBPOOL_MIGRATE_MIGRATE_H
#define DBPOOL_MIGRATE_MIGRATE_H

#include "dbpool.h"
#include "migrate/source.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MIG_NIL_VERSION (-1)            /* golang-migrate's NilVersion */
#define MIG_TABLE "schema_migrations"
#define MIG_HISTORY "schema_migrations_history"

enum mig_backend { MB_SQLITE, MB_POSTGRES, MB_MYSQL };

struct mig {
    dbpool_conn *conn;
    enum mig_backend backend;
    unsigned split_flags;       /* sqlsplit dialect */
    char dbname[256];           /* current_database() / DATABASE(); "" on SQLite */
    char schema[256];           /* current_schema() on PostgreSQL */
    char table[600];            /* schema_migrations, quoted for the backend */
    char history[600];          /* schema_migrations_history, quoted */
    int64_t lock_timeout_ms;
    bool locked;
    bool verbose;
    bool dry_run;
    const struct mig_source *src;
    volatile sig_atomic_t *stop;    /* set by SIGINT/SIGTERM (main.c) */
    char err[2048];
};

/* ---- db.c ---- */
/* Formats m->err like printf; returns -1. */
int mig_fail(struct mig *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* m->err from the connection's last error, after "what: ". Returns -1. */
int mig_fail_db(struct mig *m, const char *what);
/* Runs sql with params, discarding rows (out NULL) or keeping them. */
int mig_query(struct mig *m, const char *sql, const dbpool_value *p, size_t np, dbpool_result **out);
/* A placeholder for parameter i (1-based): "$i" on PostgreSQL, else "?". */
const char *mig_ph(const struct mig *m, int i);
/* Value helpers that accept what each backend sends for an integer/bool. */
bool mig_value_int(const dbpool_value *v, int64_t *out);
bool mig_value_bool(const dbpool_value *v, bool *out);
/* Logging on stderr, golang-migrate style: with a timestamp when verbose. */
void mig_log(const struct mig *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mig_vlog(const struct mig *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int64_t mig_now_ns(void);
/* Quotes an identifier for the backend into out. */
void mig_quote_ident(const struct mig *m, const char *name, char *out, size_t cap);
/* Reads the backend, database and schema names after connecting. */
int mig_describe(struct mig *m);

/* ---- lock.c ---- */
/* golang-migrate's GenerateAdvisoryLockId: CRC-32 (IEEE) of the names
 * joined by NUL bytes, times 1486364155, modulo 2^32. */
uint32_t mig_lock_key(const char *const *names, size_t n);
uint32_t mig_crc32(const void *data, size_t len);
/* Pins the session and takes the migration lock within m->lock_timeout_ms. */
int mig_lock(struct mig *m);
void mig_unlock(struct mig *m);

/* ---- version.c ---- */
int version_ensure_table(struct mig *m);
int version_read(struct mig *m, int64_t *version, bool *dirty);
/* golang-migrate's SetVersion: in a transaction (a savepoint when one is
 * open), delete the row and insert (version, dirty) when version >= 0 or
 * (version == -1 and dirty). */
int version_set(struct mig *m, int64_t version, bool dirty);

/* ---- history.c ---- */
struct hist_row {
    int64_t version;
    char direction[8];          /* "up", "down", "force" */
    char checksum[65];
    char applied_at[40];
    int64_t duration_ms;
    char applied_by[128];
    char name[256];
};
int history_ensure_table(struct mig *m);
int history_add(struct mig *m, int64_t version, const char *name, const char *direction,
                const char *checksum, int64_t duration_ms);
/* All rows, oldest first; *rows owned by the caller (free). */
int history_read(struct mig *m, struct hist_row **rows, size_t *n);

/* ---- runner.c ---- */
/* limit -1: all. Returns 0, 1 for "no change" (printed), or -1. */
int run_up(struct mig *m, long limit);
int run_down(struct mig *m, long limit);
int run_goto(struct mig *m, int64_t target);

/* ---- drop.c ---- */
int drop_all(struct mig *m);

/* ---- status.c ---- */
/* Prints the report on stdout; returns 0 (clean), 3 (a problem found:
 * changed, skipped or missing migration, dirty) or -1 (error). */
int status_report(struct mig *m);

/* ---- create.c ---- */
struct create_opts {
    const char *ext, *dir, *format, *tz, *name;
    bool seq;
    long digits;
};
/* Returns 0, or -1 with the message in err. */
int create_files(const struct create_opts *o, char *err, size_t errcap);

#endif
