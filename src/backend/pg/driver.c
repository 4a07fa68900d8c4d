/*
 * driver.c — the PostgreSQL driver ("postgres") as a struct backend_driver
 * (backend.h), and its pool-level calls. The connection and its operations
 * are in conn.c, connect.c, exec.c, results.c and cancel.c; what they share
 * is pg_internal.h, whose top comment describes the whole driver.
 */
#include <stdbool.h>
#include <stddef.h>

#include "backend/backend.h"
#include "backend/helper.h"
#include "backend/pg/backend_pg.h"
#include "backend/pg/pg_internal.h"
#include "backend/pg/pg_stmtcache.h"

/* Wait (bounded) for every helper: one stuck connecting to an unreachable
 * server, or in a slow DNS lookup, must not hold up shutdown forever. */
static void pg_quiesce(void)
{
    helper_quiesce(QUIESCE_WAIT_MS);
}

/* DDL ran on the pool (see note_schema_change): every cached plan may be
 * stale. The statements are deallocated before the next PREPARE. */
static void pg_schema_changed(struct backend_conn *c)
{
    if (c->sc)
        stmt_cache_forget_all(c->sc);
}

static char pg_txstate(const struct backend_conn *c)
{
    return c->txstate;
}

/* ---------------------------------------------------- pool-level calls */

static void pg_pool_limits(const struct pool_config *cfg, int *max_writers, int *max_readers)
{
    *max_writers = cfg->max_open_conns;
    *max_readers = 0;
}

static const char *pg_begin_sql(bool read_only, enum backend_role role)
{
    (void)role;
    return read_only ? "BEGIN READ ONLY" : "BEGIN";
}

static enum backend_role pg_route(const char *sql, size_t len)
{
    (void)sql;
    (void)len;
    return ROLE_WRITER;
}

static const char *pg_server_info(const struct backend_conn *c)
{
    return c->server_info;
}

const struct backend_driver backend_pg_driver = {
    .name = "postgres",
    .pool_limits = pg_pool_limits,
    .conn_new = pg_conn_new,
    .connect = pg_connect,
    .exec = pg_exec,
    .ping = pg_ping,
    .cancel = pg_cancel,
    .resume = pg_resume,
    .txstate = pg_txstate,
    .close = pg_close,
    .begin_with = true,
    .begin_sql = pg_begin_sql,
    .route = pg_route,
    .server_info = pg_server_info,
    .watch_idle = pg_watch_idle,
    .unwatch_idle = pg_unwatch_idle,
    .schema_changed = pg_schema_changed,
    .quiesce = pg_quiesce,
};
