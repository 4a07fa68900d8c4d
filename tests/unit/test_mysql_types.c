/*
 * test_mysql_types.c — the MySQL driver's type mapping (src/backend/mysql/
 * mysql_types.c) on values and column descriptions built here: the cases a
 * MariaDB server does not produce on demand (MySQL's own JSON type, TIME
 * values of more than a day from the binary protocol, every fractional
 * precision), the edges of the integer and FLOAT conversions, and the
 * MYSQL_BIND of each parameter type. The same mapping against a real
 * server, in both protocols, is tests/integration/test_mysql_types.c.
 */
#include <criterion/criterion.h>

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <mysql.h>

#include "backend/mysql/mysql_types.h"

static MYSQL_FIELD field(enum enum_field_types type, unsigned flags, unsigned charsetnr,
                         unsigned long length)
{
    MYSQL_FIELD f;

    memset(&f, 0, sizeof(f));
    f.type = type;
    f.flags = flags;
    f.charsetnr = charsetnr;
    f.length = length;
    return f;
}

Test(mysql_types, declared_types_as_mysql_names_them)
{
    MYSQL_FIELD f = field(MYSQL_TYPE_LONGLONG, UNSIGNED_FLAG, 63, 20);
    cr_assert_str_eq(my_decl_type(&f), "BIGINT UNSIGNED");
    f = field(MYSQL_TYPE_JSON, 0, 45, 4294967295ul);      /* MySQL 5.7+ */
    cr_assert_str_eq(my_decl_type(&f), "JSON");
    f = field(MYSQL_TYPE_BLOB, BLOB_FLAG, 45, 65535ul * 4);   /* utf8mb4 TEXT */
    cr_assert_str_eq(my_decl_type(&f), "TEXT");
    f = field(MYSQL_TYPE_BLOB, BLOB_FLAG, 8, 16777215ul);     /* latin1 MEDIUMTEXT */
    cr_assert_str_eq(my_decl_type(&f), "MEDIUMTEXT");
    f = field(MYSQL_TYPE_BLOB, BLOB_FLAG | BINARY_FLAG, 63, 255);
    cr_assert_str_eq(my_decl_type(&f), "TINYBLOB");
    f = field(MYSQL_TYPE_STRING, ENUM_FLAG, 45, 4);
    cr_assert_str_eq(my_decl_type(&f), "ENUM");
    f = field(MYSQL_TYPE_VAR_STRING, BINARY_FLAG, 63, 10);
    cr_assert_str_eq(my_decl_type(&f), "VARBINARY");
}

Test(mysql_types, text_protocol_integers_never_wrap)
{
    struct my_col col;
    dbpool_value v;
    MYSQL_FIELD f = field(MYSQL_TYPE_LONGLONG, UNSIGNED_FLAG, 63, 20);

    my_col_init(&col, &f);
    my_text_value(&col, "9223372036854775807", 19, &v);
    cr_assert_eq(v.type, DBPOOL_INT64);
    cr_assert_eq(v.u.i, INT64_MAX);
    my_text_value(&col, "9223372036854775808", 19, &v);
    cr_assert_eq(v.type, DBPOOL_TEXT, "2^63 became %d", (int)v.type);
    my_text_value(&col, "18446744073709551615", 20, &v);
    cr_assert_eq(v.type, DBPOOL_TEXT);
    cr_assert_eq(v.u.s.len, 20u);
    f = field(MYSQL_TYPE_LONGLONG, 0, 63, 20);
    my_col_init(&col, &f);
    my_text_value(&col, "-9223372036854775808", 20, &v);
    cr_assert_eq(v.type, DBPOOL_INT64);
    cr_assert_eq(v.u.i, INT64_MIN);
    my_text_value(&col, NULL, 0, &v);
    cr_assert_eq(v.type, DBPOOL_NULL);
}

Test(mysql_types, binary_protocol_unsigned_above_int64_is_text)
{
    struct my_col col;
    struct my_cell cell;
    dbpool_value v;
    MYSQL_FIELD f = field(MYSQL_TYPE_LONGLONG, UNSIGNED_FLAG, 63, 20);

    memset(&cell, 0, sizeof(cell));
    my_col_init(&col, &f);
    cell.fixed.i = (int64_t)UINT64_MAX;   /* what Connector/C stores for 18446744073709551615 */
    my_cell_value(&col, &cell, &v);
    cr_assert_eq(v.type, DBPOOL_TEXT);
    cr_assert_eq(v.u.s.len, 20u);
    cr_assert(memcmp(v.u.s.ptr, "18446744073709551615", 20) == 0);
    f = field(MYSQL_TYPE_LONGLONG, 0, 63, 20);   /* signed: the same bits are -1 */
    my_col_init(&col, &f);
    my_cell_value(&col, &cell, &v);
    cr_assert_eq(v.type, DBPOOL_INT64);
    cr_assert_eq(v.u.i, -1);
}

Test(mysql_types, temporal_values_in_iso_form)
{
    char buf[MY_NUMBUF];
    MYSQL_TIME t;

    memset(&t, 0, sizeof(t));
    t.year = 2024, t.month = 2, t.day = 29, t.hour = 7, t.minute = 5, t.second = 9;
    t.second_part = 120000;
    cr_assert_eq(my_format_time(&t, MK_DATE, 0, buf), 10u);
    cr_assert_str_eq(buf, "2024-02-29");
    my_format_time(&t, MK_DATETIME, 0, buf);
    cr_assert_str_eq(buf, "2024-02-29 07:05:09");
    my_format_time(&t, MK_DATETIME, 3, buf);
    cr_assert_str_eq(buf, "2024-02-29 07:05:09.120");
    my_format_time(&t, MK_DATETIME, 6, buf);
    cr_assert_str_eq(buf, "2024-02-29 07:05:09.120000");
    my_format_time(&t, MK_DATETIME, 31, buf);   /* an expression: not fixed */
    cr_assert_str_eq(buf, "2024-02-29 07:05:09.120000");
    /* TIME: days count as hours; negative */
    memset(&t, 0, sizeof(t));
    t.day = 34, t.hour = 22, t.minute = 59, t.second = 59, t.neg = 1;
    my_format_time(&t, MK_TIME, 0, buf);
    cr_assert_str_eq(buf, "-838:59:59");
    memset(&t, 0, sizeof(t));
    t.hour = 1, t.second_part = 5;
    my_format_time(&t, MK_TIME, 6, buf);
    cr_assert_str_eq(buf, "01:00:00.000005");
    memset(&t, 0, sizeof(t));   /* the zero date */
    my_format_time(&t, MK_DATE, 0, buf);
    cr_assert_str_eq(buf, "0000-00-00");
}

Test(mysql_types, float_columns_read_as_their_shortest_decimal_form)
{
    cr_assert_eq(my_float_value(1.1f), 1.1);
    cr_assert_eq(my_float_value(0.1f), 0.1);
    cr_assert_eq(my_float_value(-3.4028235e38f), -3.4028235e38);
    cr_assert_eq(my_float_value(FLT_MAX), 3.4028235e38);   /* 8 digits round-trip */
    cr_assert_eq(my_float_value(123456.7f), 123456.7);
    cr_assert_eq((float)my_float_value(FLT_TRUE_MIN), FLT_TRUE_MIN);   /* denormal round trip */
    cr_assert_eq(my_float_value(16777216.0f), 16777216.0);
    cr_assert_eq(my_float_value(0.0f), 0.0);
}

Test(mysql_types, parameters_bind_with_their_own_storage)
{
    MYSQL_BIND b;
    dbpool_value v = dbpool_int(-5);

    cr_assert_eq(my_bind_param(&b, &v), MYSQL_TYPE_LONGLONG);
    cr_assert_eq(b.buffer, (void *)&v.u.i);
    v = dbpool_float(2.5);
    cr_assert_eq(my_bind_param(&b, &v), MYSQL_TYPE_DOUBLE);
    v = dbpool_bool(1);
    cr_assert_eq(my_bind_param(&b, &v), MYSQL_TYPE_LONG);
    cr_assert_eq(*(int *)b.buffer, 1);
    v = dbpool_textn("ab\0c", 4);   /* MySQL strings may hold NUL */
    cr_assert_eq(my_bind_param(&b, &v), MYSQL_TYPE_STRING);
    cr_assert_eq(b.buffer_length, 4u);
    v = dbpool_blob("", 0);
    cr_assert_eq(my_bind_param(&b, &v), MYSQL_TYPE_BLOB);
    cr_assert_not_null(b.buffer, "an empty BLOB must not be sent as NULL");
    v = dbpool_null();
    cr_assert_eq(my_bind_param(&b, &v), MYSQL_TYPE_NULL);
}
