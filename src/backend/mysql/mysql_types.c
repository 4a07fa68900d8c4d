/*
 * mysql_types.c — the MySQL driver's type mapping (mysql_types.h has the
 * table): column kinds and declared type names from a MYSQL_FIELD, values
 * from the text and the binary protocol, parameters as MYSQL_BINDs.
 *
 * This is the per-value path: no allocation, no I/O. Text conversions
 * (strtod, "%.*g") assume the C numeric locale, which the daemon never
 * changes.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mysql.h>

#include "backend/mysql/mysql_types.h"

enum { BINARY_CHARSET = 63 };   /* the "binary" character set: bytes, not text */

/* ---------------------------------------------------------- column kinds */

static bool is_binary(const MYSQL_FIELD *f)
{
    return f->charsetnr == BINARY_CHARSET;
}

static bool is_json(const MYSQL_FIELD *f)
{
    MARIADB_CONST_STRING fmt = { NULL, 0 };

    if (f->type == MYSQL_TYPE_JSON)
        return true;   /* MySQL 5.7+ */
    /* MariaDB: JSON is LONGTEXT with the extended metadata format "json" */
    return f->type == MYSQL_TYPE_BLOB && mariadb_field_attr(&fmt, f, MARIADB_FIELD_ATTR_FORMAT_NAME) == 0 &&
           fmt.length == 4 && memcmp(fmt.str, "json", 4) == 0;
}

static enum my_kind kind_of(const MYSQL_FIELD *f)
{
    switch (f->type) {
    case MYSQL_TYPE_NULL: return MK_NULL;
    case MYSQL_TYPE_TINY: case MYSQL_TYPE_SHORT: case MYSQL_TYPE_INT24:
    case MYSQL_TYPE_LONG: case MYSQL_TYPE_LONGLONG: case MYSQL_TYPE_YEAR:
        return (f->flags & UNSIGNED_FLAG) && f->type == MYSQL_TYPE_LONGLONG ? MK_UINT : MK_INT;
    case MYSQL_TYPE_FLOAT: return MK_FLOAT;
    case MYSQL_TYPE_DOUBLE: return MK_DOUBLE;
    case MYSQL_TYPE_DATE: case MYSQL_TYPE_NEWDATE: return MK_DATE;
    case MYSQL_TYPE_DATETIME: case MYSQL_TYPE_TIMESTAMP:
    case MYSQL_TYPE_DATETIME2: case MYSQL_TYPE_TIMESTAMP2: return MK_DATETIME;
    case MYSQL_TYPE_TIME: case MYSQL_TYPE_TIME2: return MK_TIME;
    case MYSQL_TYPE_DECIMAL: case MYSQL_TYPE_NEWDECIMAL: case MYSQL_TYPE_JSON:
    case MYSQL_TYPE_ENUM: case MYSQL_TYPE_SET: return MK_TEXT;
    case MYSQL_TYPE_BIT: case MYSQL_TYPE_GEOMETRY: return MK_BLOB;
    default: return is_binary(f) ? MK_BLOB : MK_TEXT;
    }
}

void my_col_init(struct my_col *col, const MYSQL_FIELD *f)
{
    col->kind = kind_of(f);
    col->decimals = f->decimals;
}

/* ------------------------------------------------------- declared types */

static const char *int_name(const MYSQL_FIELD *f)
{
    bool u = (f->flags & UNSIGNED_FLAG) != 0;

    switch (f->type) {
    case MYSQL_TYPE_TINY: return u ? "TINYINT UNSIGNED" : "TINYINT";
    case MYSQL_TYPE_SHORT: return u ? "SMALLINT UNSIGNED" : "SMALLINT";
    case MYSQL_TYPE_INT24: return u ? "MEDIUMINT UNSIGNED" : "MEDIUMINT";
    case MYSQL_TYPE_LONG: return u ? "INT UNSIGNED" : "INT";
    default: return u ? "BIGINT UNSIGNED" : "BIGINT";
    }
}

/* TEXT and BLOB columns all have type MYSQL_TYPE_BLOB; the size tells
 * them apart. f->length is in bytes (characters times the character set's
 * longest character, at most 4), so the ranges do not overlap. */
static const char *blob_name(const MYSQL_FIELD *f)
{
    static const char *const text[] = { "TINYTEXT", "TEXT", "MEDIUMTEXT", "LONGTEXT" };
    static const char *const blob[] = { "TINYBLOB", "BLOB", "MEDIUMBLOB", "LONGBLOB" };
    int size;

    if (f->length <= 255ul * 4)
        size = 0;
    else if (f->length <= 65535ul * 4)
        size = 1;
    else if (f->length <= 16777215ul * 4)
        size = 2;
    else
        size = 3;
    return is_binary(f) ? blob[size] : text[size];
}

static const char *string_name(const MYSQL_FIELD *f)
{
    if (f->flags & ENUM_FLAG)
        return "ENUM";
    if (f->flags & SET_FLAG)
        return "SET";
    if (f->type == MYSQL_TYPE_STRING)
        return is_binary(f) ? "BINARY" : "CHAR";
    return is_binary(f) ? "VARBINARY" : "VARCHAR";
}

const char *my_decl_type(const MYSQL_FIELD *f)
{
    switch (f->type) {
    case MYSQL_TYPE_TINY: case MYSQL_TYPE_SHORT: case MYSQL_TYPE_INT24:
    case MYSQL_TYPE_LONG: case MYSQL_TYPE_LONGLONG:
        return int_name(f);
    case MYSQL_TYPE_YEAR: return "YEAR";
    case MYSQL_TYPE_FLOAT: return "FLOAT";
    case MYSQL_TYPE_DOUBLE: return "DOUBLE";
    case MYSQL_TYPE_DECIMAL: case MYSQL_TYPE_NEWDECIMAL: return "DECIMAL";
    case MYSQL_TYPE_DATE: case MYSQL_TYPE_NEWDATE: return "DATE";
    case MYSQL_TYPE_DATETIME: case MYSQL_TYPE_DATETIME2: return "DATETIME";
    case MYSQL_TYPE_TIMESTAMP: case MYSQL_TYPE_TIMESTAMP2: return "TIMESTAMP";
    case MYSQL_TYPE_TIME: case MYSQL_TYPE_TIME2: return "TIME";
    case MYSQL_TYPE_BIT: return "BIT";
    case MYSQL_TYPE_JSON: return "JSON";
    case MYSQL_TYPE_ENUM: return "ENUM";
    case MYSQL_TYPE_SET: return "SET";
    case MYSQL_TYPE_GEOMETRY: return "GEOMETRY";
    case MYSQL_TYPE_NULL: return "NULL";
    case MYSQL_TYPE_TINY_BLOB: case MYSQL_TYPE_MEDIUM_BLOB:
    case MYSQL_TYPE_LONG_BLOB: case MYSQL_TYPE_BLOB:
        return is_json(f) ? "JSON" : blob_name(f);
    case MYSQL_TYPE_VARCHAR: case MYSQL_TYPE_VAR_STRING: case MYSQL_TYPE_STRING:
        return string_name(f);
    default: return "";
    }
}

/* ------------------------------------------------- values: text protocol */

/* Decimal digits with an optional sign; false when they are not a number
 * that fits (then the caller keeps the text). */
static bool parse_u64(const char *p, unsigned long len, uint64_t *out)
{
    uint64_t v = 0;

    if (len == 0 || len > 20)
        return false;
    for (unsigned long i = 0; i < len; i++) {
        unsigned d = (unsigned)(p[i] - '0');
        if (d > 9 || v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static bool parse_i64(const char *p, unsigned long len, int64_t *out)
{
    bool neg = len > 0 && p[0] == '-';
    uint64_t u;

    if (!parse_u64(p + neg, len - neg, &u))
        return false;
    if (neg ? u > (uint64_t)INT64_MAX + 1 : u > (uint64_t)INT64_MAX)
        return false;
    *out = neg ? (int64_t)(0 - u) : (int64_t)u;
    return true;
}

static bool parse_double(const char *p, unsigned long len, double *out)
{
    char buf[MY_NUMBUF];
    char *end;

    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, p, len);
    buf[len] = '\0';
    *out = strtod(buf, &end);
    return *end == '\0';
}

void my_text_value(const struct my_col *col, const char *p, unsigned long len, dbpool_value *v)
{
    int64_t i;
    double d;

    if (!p) {
        *v = dbpool_null();
        return;
    }
    switch (col->kind) {
    case MK_INT:
    case MK_UINT:   /* an unsigned value above 2^63-1 fails parse_i64: TEXT */
        if (parse_i64(p, len, &i)) {
            *v = dbpool_int(i);
            return;
        }
        break;
    case MK_FLOAT:
    case MK_DOUBLE:
        if (parse_double(p, len, &d)) {
            *v = dbpool_float(d);
            return;
        }
        break;
    case MK_BLOB:
        *v = dbpool_blob(p, len);
        return;
    default:
        break;
    }
    *v = dbpool_textn(p, len);
}

/* ----------------------------------------------- values: binary protocol */

bool my_kind_is_var(enum my_kind kind)
{
    return kind == MK_TEXT || kind == MK_BLOB || kind == MK_NULL;
}

void my_bind_result(const struct my_col *col, const MYSQL_FIELD *f, MYSQL_BIND *b,
                    struct my_cell *cell)
{
    memset(b, 0, sizeof(*b));
    b->length = &cell->length;
    b->is_null = &cell->is_null;
    b->error = &cell->error;
    switch (col->kind) {
    case MK_INT:
    case MK_UINT:
        b->buffer_type = MYSQL_TYPE_LONGLONG;
        b->is_unsigned = (f->flags & UNSIGNED_FLAG) != 0;
        b->buffer = &cell->fixed.i;
        b->buffer_length = sizeof(cell->fixed.i);
        return;
    case MK_FLOAT:
        b->buffer_type = MYSQL_TYPE_FLOAT;
        b->buffer = &cell->fixed.f;
        b->buffer_length = sizeof(cell->fixed.f);
        return;
    case MK_DOUBLE:
        b->buffer_type = MYSQL_TYPE_DOUBLE;
        b->buffer = &cell->fixed.d;
        b->buffer_length = sizeof(cell->fixed.d);
        return;
    case MK_DATE:
    case MK_DATETIME:
    case MK_TIME:
        b->buffer_type = col->kind == MK_DATE ? MYSQL_TYPE_DATE
                         : col->kind == MK_TIME ? MYSQL_TYPE_TIME : MYSQL_TYPE_DATETIME;
        b->buffer = &cell->fixed.t;
        b->buffer_length = sizeof(cell->fixed.t);
        return;
    default:
        b->buffer_type = MYSQL_TYPE_BLOB;   /* the bytes as sent: no conversion */
        b->buffer = cell->var;
        b->buffer_length = cell->var_cap;
        return;
    }
}

double my_float_value(float f)
{
    char buf[MY_NUMBUF];

    /* the fewest digits that read back as the same float */
    for (int prec = 6; prec < 9; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, (double)f);
        if (strtof(buf, NULL) == f)
            return strtod(buf, NULL);
    }
    snprintf(buf, sizeof(buf), "%.9g", (double)f);
    return strtod(buf, NULL);
}

static size_t format_frac(unsigned long usec, unsigned decimals, char *buf)
{
    unsigned long scale = 1;

    if (decimals > 6) {   /* not fixed (an expression): all six digits when there is a fraction */
        if (usec == 0)
            return 0;
        decimals = 6;
    }
    if (decimals == 0)
        return 0;
    for (unsigned k = decimals; k < 6; k++)
        scale *= 10;
    return (size_t)snprintf(buf, MY_NUMBUF, ".%0*lu", (int)decimals, (usec % 1000000ul) / scale);
}

size_t my_format_time(const MYSQL_TIME *t, enum my_kind kind, unsigned decimals, char *buf)
{
    int n;

    if (kind == MK_TIME) {
        unsigned long hours = (unsigned long)t->day * 24ul + t->hour;
        n = snprintf(buf, MY_NUMBUF, "%s%02lu:%02u:%02u", t->neg ? "-" : "", hours, t->minute,
                     t->second);
    } else if (kind == MK_DATE) {
        return (size_t)snprintf(buf, MY_NUMBUF, "%04u-%02u-%02u", t->year, t->month, t->day);
    } else {
        n = snprintf(buf, MY_NUMBUF, "%04u-%02u-%02u %02u:%02u:%02u", t->year, t->month, t->day,
                     t->hour, t->minute, t->second);
    }
    if (n < 0 || n >= MY_NUMBUF - 8)
        return n < 0 ? 0 : (size_t)MY_NUMBUF - 1;
    return (size_t)n + format_frac(t->second_part, decimals, buf + n);
}

void my_cell_value(const struct my_col *col, struct my_cell *cell, dbpool_value *v)
{
    size_t n;

    if (cell->is_null || col->kind == MK_NULL) {
        *v = dbpool_null();
        return;
    }
    switch (col->kind) {
    case MK_INT:
        *v = dbpool_int(cell->fixed.i);
        return;
    case MK_UINT:
        if (cell->fixed.i >= 0) {
            *v = dbpool_int(cell->fixed.i);
            return;
        }
        n = (size_t)snprintf(cell->text, sizeof(cell->text), "%llu",
                             (unsigned long long)(uint64_t)cell->fixed.i);
        *v = dbpool_textn(cell->text, n);
        return;
    case MK_FLOAT:
        *v = dbpool_float(my_float_value(cell->fixed.f));
        return;
    case MK_DOUBLE:
        *v = dbpool_float(cell->fixed.d);
        return;
    case MK_DATE:
    case MK_DATETIME:
    case MK_TIME:
        n = my_format_time(&cell->fixed.t, col->kind, col->decimals, cell->text);
        *v = dbpool_textn(cell->text, n);
        return;
    case MK_BLOB:
        *v = dbpool_blob(cell->length ? cell->var : "", cell->length);
        return;
    default:
        *v = dbpool_textn(cell->length ? cell->var : "", cell->length);
        return;
    }
}

/* ----------------------------------------------------------- parameters */

enum enum_field_types my_bind_param(MYSQL_BIND *b, const dbpool_value *v)
{
    memset(b, 0, sizeof(*b));
    switch (v->type) {
    case DBPOOL_INT64:
        b->buffer_type = MYSQL_TYPE_LONGLONG;
        b->buffer = (void *)&v->u.i;
        b->buffer_length = sizeof(v->u.i);
        break;
    case DBPOOL_FLOAT64:
        b->buffer_type = MYSQL_TYPE_DOUBLE;
        b->buffer = (void *)&v->u.f;
        b->buffer_length = sizeof(v->u.f);
        break;
    case DBPOOL_BOOL:   /* MySQL's BOOLEAN is TINYINT(1): 0 or 1 */
        b->buffer_type = MYSQL_TYPE_LONG;
        b->buffer = (void *)&v->u.b;
        b->buffer_length = sizeof(v->u.b);
        break;
    case DBPOOL_TEXT:
    case DBPOOL_BLOB:
        b->buffer_type = v->type == DBPOOL_TEXT ? MYSQL_TYPE_STRING : MYSQL_TYPE_BLOB;
        b->buffer = (void *)(v->u.s.len ? v->u.s.ptr : "");
        b->buffer_length = (unsigned long)v->u.s.len;
        break;
    default:
        b->buffer_type = MYSQL_TYPE_NULL;
        break;
    }
    return b->buffer_type;
}
