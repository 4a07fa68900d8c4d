/*
 * mysql_types.h — the MySQL driver's type mapping (mysql_types.c): what a
 * result column becomes in the protocol (doc/protocol.md, "MySQL and
 * MariaDB types"), its declared type as MySQL names it, the conversion of
 * one value from the text protocol (statements without parameters) and
 * from the binary protocol (server-side prepared statements), and the
 * MYSQL_BIND of one parameter. Knows nothing of connections or events:
 * pure functions over Connector/C's structs, used by results.c and stmt.c.
 *
 * The mapping, both protocols alike:
 *   TINYINT..BIGINT, YEAR           -> INT64
 *   BIGINT UNSIGNED above 2^63-1    -> TEXT (decimal digits, never wrapped)
 *   FLOAT, DOUBLE                   -> FLOAT64 (a FLOAT as its shortest
 *                                      decimal form, as the text protocol
 *                                      sends it: 1.1, not 1.10000002384)
 *   DECIMAL                         -> TEXT (exact, as the server prints it)
 *   DATE, DATETIME, TIMESTAMP, TIME -> TEXT in ISO form: YYYY-MM-DD,
 *                                      YYYY-MM-DD HH:MM:SS[.f], [-]HH:MM:SS[.f]
 *                                      with the column's fractional digits
 *   CHAR, VARCHAR, TEXT, ENUM, SET,
 *   JSON                            -> TEXT
 *   BINARY, VARBINARY, BLOB (binary
 *   charset 63), BIT, GEOMETRY      -> BLOB (BIT: its bytes, big-endian)
 *   NULL                            -> NULL
 */
#ifndef DBPOOLD_BACKEND_MYSQL_TYPES_H
#define DBPOOLD_BACKEND_MYSQL_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mysql.h>

#include "dbpool.h"

#pragma GCC visibility push(hidden)

/* How a column's values are converted. */
enum my_kind {
    MK_NULL = 0, MK_INT, MK_UINT, MK_FLOAT, MK_DOUBLE, MK_TEXT, MK_BLOB,
    MK_DATE, MK_DATETIME, MK_TIME
};

/* One result column, worked out once per result set. */
struct my_col {
    enum my_kind kind;
    unsigned decimals;     /* fractional digits of a temporal column (0..6; 31 = not fixed) */
};

enum { MY_NUMBUF = 48 };   /* room for any number or temporal value as text */

/* One result column's buffers for the binary protocol (bound with
 * my_bind_result): fixed-size values land in `fixed`, strings in `var`
 * (grown by the caller when a value is longer). */
struct my_cell {
    union {
        int64_t i;
        double d;
        float f;
        MYSQL_TIME t;
    } fixed;
    unsigned long length;
    my_bool is_null;
    my_bool error;         /* set by Connector/C when the value was truncated */
    char *var;             /* owned by the caller */
    size_t var_cap;
    char text[MY_NUMBUF];  /* a value converted to text (unsigned, temporal) */
};

/* The column's conversion and its declared type ("INT", "BIGINT UNSIGNED",
 * "VARCHAR", "LONGBLOB", "JSON", ...; a static string). */
void my_col_init(struct my_col *col, const MYSQL_FIELD *f);
const char *my_decl_type(const MYSQL_FIELD *f);

/* A value from the text protocol (p NULL: SQL NULL). The result may point
 * at p: valid as long as p is. */
void my_text_value(const struct my_col *col, const char *p, unsigned long len, dbpool_value *v);

/* Bind a result column for the binary protocol: b points into cell. */
void my_bind_result(const struct my_col *col, const MYSQL_FIELD *f, MYSQL_BIND *b,
                    struct my_cell *cell);
/* Does the column's bound buffer receive variable-length bytes (and may
 * therefore be truncated)? */
bool my_kind_is_var(enum my_kind kind);
/* The value fetched into cell (var holding the whole string). */
void my_cell_value(const struct my_col *col, struct my_cell *cell, dbpool_value *v);

/* Bind one parameter; the MYSQL_BIND points at the value's own storage
 * (which must stay valid until the statement was sent). The returned type
 * is what the statement cache keys on. */
enum enum_field_types my_bind_param(MYSQL_BIND *b, const dbpool_value *v);

/* Temporal value in ISO form into buf (MY_NUMBUF bytes); its length. */
size_t my_format_time(const MYSQL_TIME *t, enum my_kind kind, unsigned decimals, char *buf);
/* A FLOAT column's value as the double its shortest decimal form reads as. */
double my_float_value(float f);

#pragma GCC visibility pop

#endif
