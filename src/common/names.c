/*
 * names.c — the names of error codes and value types, and dbpool_text():
 * public libdbpool functions (include/dbpool.h) that the daemon uses too
 * (its logs name codes the way clients see them), so they live here, in
 * the code both link.
 */
#include <string.h>

#include "dbpool.h"

dbpool_value dbpool_text(const char *s)
{
    return s != NULL ? dbpool_textn(s, strlen(s)) : dbpool_null();
}

const char *dbpool_code_name(int code)
{
    switch (code) {
    case DBPOOL_OK: return "OK";
    case DBPOOL_E_PROTOCOL: return "PROTOCOL";
    case DBPOOL_E_VERSION: return "VERSION";
    case DBPOOL_E_UNKNOWN_POOL: return "UNKNOWN_POOL";
    case DBPOOL_E_NOT_ALLOWED: return "NOT_ALLOWED";
    case DBPOOL_E_SQL: return "SQL";
    case DBPOOL_E_POOL_TIMEOUT: return "POOL_TIMEOUT";
    case DBPOOL_E_UNAVAILABLE: return "UNAVAILABLE";
    case DBPOOL_E_TX_TIMEOUT: return "TX_TIMEOUT";
    case DBPOOL_E_LIMIT: return "LIMIT";
    case DBPOOL_E_CANCELED: return "CANCELED";
    case DBPOOL_E_CONN_LOST: return "CONN_LOST";
    case DBPOOL_E_SHUTDOWN: return "SHUTDOWN";
    case DBPOOL_E_TX_STATE: return "TX_STATE";
    case DBPOOL_E_INTERNAL: return "INTERNAL";
    case DBPOOL_E_IO: return "IO";
    case DBPOOL_E_USAGE: return "USAGE";
    case DBPOOL_E_TIMEOUT: return "TIMEOUT";
    default: return "UNKNOWN";
    }
}

const char *dbpool_type_name(dbpool_type t)
{
    switch (t) {
    case DBPOOL_NULL: return "null";
    case DBPOOL_INT64: return "int64";
    case DBPOOL_FLOAT64: return "float64";
    case DBPOOL_TEXT: return "text";
    case DBPOOL_BLOB: return "blob";
    case DBPOOL_BOOL: return "bool";
    }
    return "unknown";
}
