/*
 * describe.h — \dt and \d NAME of the interactive dbpool: the catalog
 * queries of each backend (SQLite sqlite_master / pragma_table_info,
 * PostgreSQL and MySQL information_schema), and the table names that tab
 * completion offers.
 */
#ifndef DBPOOL_CLI_DESCRIBE_H
#define DBPOOL_CLI_DESCRIBE_H

#include "dbpool.h"
#include "cli/output.h"

#include <stddef.h>

/* \dt: prints the tables. Returns 0, or -1 (error printed by the caller). */
int describe_tables(dbpool_conn *c, enum format format);
/* \d NAME: prints the columns of the table NAME (name, type, nullable,
 * default). Returns 0, 1 when there is no such table (message printed), or
 * -1 (error printed by the caller). */
int describe_table(dbpool_conn *c, const char *name, enum format format);
/* The table names into *names, malloc'd (free each and the array), and
 * their count into *n. Returns 0, or -1 on an error (nothing printed). */
int describe_table_names(dbpool_conn *c, char ***names, size_t *n);

#endif
