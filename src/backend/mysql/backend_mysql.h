/*
 * backend_mysql.h — the MySQL/MariaDB driver ("mysql"), for the factory.
 * Everything else about it is in mysql_internal.h.
 */
#ifndef DBPOOLD_BACKEND_MYSQL_H
#define DBPOOLD_BACKEND_MYSQL_H

#include "backend/backend.h"

extern const struct backend_driver backend_mysql_driver;

#endif
