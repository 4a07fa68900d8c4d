/*
 * backend_sqlite.h — the SQLite driver (backend_sqlite.c), chosen by the
 * factory for pools of type "sqlite".
 */
#ifndef DBPOOLD_BACKEND_SQLITE_H
#define DBPOOLD_BACKEND_SQLITE_H

#include "backend/backend.h"

extern const struct backend_driver backend_sqlite_driver;

#endif
