/*
 * mysql_options.h — a mysql pool's own settings (the mysql group's keys
 * beyond the common and server ones: host, port, name, username, password
 * / passwordFile and the retries are in struct pool_config), declared and
 * checked in mysql_config.c and read by the driver through mysql_opts().
 *
 * host is a Unix socket file when it starts with '/', else a TCP host name
 * or address (struct pool_config.host; port defaults to 3306).
 */
#ifndef DBPOOLD_MYSQL_OPTIONS_H
#define DBPOOLD_MYSQL_OPTIONS_H

#include <stdbool.h>

#include "daemon/config_spec.h"
#include "daemon/configuration.h"

struct mysql_options {
    char *charset;                  /* default "utf8mb4"; [A-Za-z0-9_]+ */
    bool parse_time;                /* default true: DATE/DATETIME/TIMESTAMP as ISO text read
                                       in loc's zone (false: as the server sends them) */
    char *loc;                      /* default "Local": "Local" (the daemon's zone), "UTC",
                                       an IANA zone name or a "+HH:MM"/"-HH:MM" offset; the
                                       driver sets it as the session time_zone */
    char *ssl_mode;                 /* default "DISABLED"; PREFERRED, REQUIRED, VERIFY_CA,
                                       VERIFY_IDENTITY (VERIFY_* need ssl_ca) */
    char *ssl_ca;                   /* CA certificate file, or NULL */
    char *ssl_cert;                 /* client certificate file, or NULL (with ssl_key) */
    char *ssl_key;                  /* client key file, or NULL (with ssl_cert) */
    int statement_cache_size;       /* server-side prepared statements per connection,
                                       default 256; 0 = off */
};

extern const struct driver_config_spec mysql_config_spec;
extern const struct mysql_options mysql_default_options;

/* The pool's mysql settings (the defaults when the config has none, as
 * for a pool_config a test builds by hand). */
static inline const struct mysql_options *mysql_opts(const struct pool_config *cfg)
{
    return cfg->driver_opts ? (const struct mysql_options *)cfg->driver_opts
                            : &mysql_default_options;
}

/* Whether host names a Unix socket file rather than a TCP host. */
static inline bool mysql_host_is_socket(const char *host)
{
    return host && host[0] == '/';
}

#endif
