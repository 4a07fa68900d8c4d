/*
 * dbpool-bench.h — what the benchmark client's parts share: the workload's
 * statement definitions, the target, and the two driver interfaces (blocking
 * and non-blocking). dbpool-bench.c holds the libpq and dbpoold drivers, the
 * runs and the report; bench-mysql.c the MariaDB Connector/C drivers and the
 * MySQL table loader (--init).
 */
#ifndef DBPOOL_BENCH_H
#define DBPOOL_BENCH_H

#include <stdbool.h>
#include <stdint.h>

#define ERRLEN 1024

/* The random variables of one transaction, drawn like pgbench does. */
enum var { V_AID, V_BID, V_TID, V_DELTA, NVARS };

/* One statement of a workload: parameters are the variables vars[0..n-1],
 * in placeholder order ($1, $2, ... for PostgreSQL; ? for MySQL). */
struct stmt_def {
    const char *sql;
    int nparams;
    enum var vars[5];
};

/* Return values of driver calls. */
enum { RC_OK = 0, RC_ERR = -1 /* request failed, connection usable */, RC_BROKEN = -2 /* reconnect */ };
enum { RC_PENDING = 1 };    /* non-blocking drivers: the answer is not complete yet */

enum target_kind { T_LIBPQ, T_DBPOOL, T_MYSQL };

struct mysql_target {
    char *host, *socket, *user, *password, *db;
    unsigned port;
};

struct target {
    enum target_kind kind;
    bool is_dbpool;
    char *conninfo;         /* libpq */
    char *socket, *pool;    /* dbpool */
    struct mysql_target my; /* MariaDB Connector/C */
};

/* Blocking driver: the thread-per-client model, idle mode, setup. */
struct driver {
    const char *name;
    void *(*connect)(const struct target *t, char *err);
    int (*exec)(void *conn, const struct stmt_def *s, const int64_t v[NVARS], char *err);
    int (*begin)(void *conn, char *err);
    int (*commit)(void *conn, char *err);
    void (*abort)(void *conn);                       /* roll back if in a transaction */
    int (*scalar)(void *conn, const char *sql, int64_t *out, char *err);
    void (*close)(void *conn);
};

/* Non-blocking driver (the async model). A request is queued with send(),
 * pushed out with flush() when the socket was full, and its answer collected
 * by readable() whenever the socket has data: RC_PENDING until the request is
 * complete, then RC_OK / RC_ERR / RC_BROKEN. complete() (may be NULL) is true
 * when the answer is already in: the driver finished the request inside
 * send() or flush() (Connector/C does that when the server answers quickly),
 * so no socket event will come for it; readable() then returns the result. */
enum step_kind { K_BEGIN, K_STMT, K_COMMIT, K_ROLLBACK };

struct adriver {
    const char *name;
    void *(*connect)(const struct target *t, char *err);
    int (*fd)(void *conn);
    int (*send)(void *conn, enum step_kind k, const struct stmt_def *s, const int64_t v[NVARS], char *err);
    bool (*want_write)(void *conn);
    int (*flush)(void *conn, char *err);
    int (*readable)(void *conn, char *err);
    bool (*in_tx)(void *conn);
    void (*close)(void *conn);
    bool (*complete)(void *conn);
};

/* ---- bench-mysql.c ---- */

extern const struct driver DRIVER_MY;
extern const struct adriver ADRIVER_MY;

/* "mysql:KEY=VALUE ..." (socket, host, port, user, password, db) into t;
 * -1 with a message on stderr when malformed. */
int my_parse_target(const char *spec, struct target *t);
void my_free_target(struct target *t);
/* Once, before any thread starts (mysql_library_init). */
int my_library_init(void);
void my_library_end(void);
/* The statements every new connection prepares as server-side prepared
 * statements (the binary protocol, like sysbench); n == 0: none, statements
 * are sent as text with their parameters written in (one round trip each,
 * the cheapest for a connection that runs one transaction). */
void my_set_prepared(const struct stmt_def *stmts, int n);
/* Creates and fills pgbench's four tables at scale (pgbench -i). */
int my_init_tables(const struct target *t, int64_t scale, bool quiet);

#endif
