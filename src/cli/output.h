/*
 * output.h — how the dbpool CLI prints a result set: an aligned table, CSV
 * (RFC 4180) or JSON (one array of objects per result set). main.c runs the
 * statements; output.c turns their rows into text on stdout.
 */
#ifndef DBPOOL_CLI_OUTPUT_H
#define DBPOOL_CLI_OUTPUT_H

#include "dbpool.h"

/* FMT_EXPANDED: one "name | value" line per column, a record at a time (\x). */
enum format { FMT_TABLE, FMT_CSV, FMT_JSON, FMT_EXPANDED };

/* Streams the rows of the statement c has just started (it returned a
 * result set) to stdout in the format. Returns dbpool_next_row's last
 * result: 0 when every row came, -1 on an error (not printed here). */
int output_rows(dbpool_conn *c, enum format format);

#endif
