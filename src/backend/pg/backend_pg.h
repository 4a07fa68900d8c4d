/*
 * backend_pg.h — the PostgreSQL driver (src/backend/pg/), chosen by the
 * factory for pools of type "postgres". It drives libpq's non-blocking API
 * from the daemon's event loop; see the top of pg_internal.h.
 */
#ifndef DBPOOLD_BACKEND_PG_H
#define DBPOOLD_BACKEND_PG_H

#include "backend/backend.h"

extern const struct backend_driver backend_pg_driver;

#endif
