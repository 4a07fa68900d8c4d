/*
 * mysql_config.c — the mysql group's own keys, their defaults and ranges,
 * and the checks across them (daemon/config_spec.h; doc/configuration.md
 * lists them): a charset name the server can take, a loc the driver can
 * set as time_zone, TLS files that fit the sslMode, a socket path that
 * fits sun_path.
 */
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "backend/mysql/mysql_options.h"

#define MO(f) offsetof(struct mysql_options, f)

static const char *const ssl_modes[] = { "DISABLED", "PREFERRED", "REQUIRED", "VERIFY_CA",
                                         "VERIFY_IDENTITY", NULL };

static const struct key_spec mysql_keys[] = {
    { "charset", K_STRING, MO(charset), 0, 0, NULL, F_NONEMPTY, NULL },
    { "parseTime", K_BOOL, MO(parse_time), 0, 0, NULL, 0, NULL },
    { "loc", K_STRING, MO(loc), 0, 0, NULL, F_NONEMPTY, NULL },
    { "sslMode", K_CHOICE, MO(ssl_mode), 0, 0, ssl_modes, 0, NULL },
    { "sslCa", K_STRING, MO(ssl_ca), 0, 0, NULL, F_NONEMPTY, NULL },
    { "sslCert", K_STRING, MO(ssl_cert), 0, 0, NULL, F_NONEMPTY, NULL },
    { "sslKey", K_STRING, MO(ssl_key), 0, 0, NULL, F_NONEMPTY, NULL },
    { "statementCacheSize", K_INT, MO(statement_cache_size), 0, 65536, NULL, 0, NULL },
};

const struct mysql_options mysql_default_options = {
    .charset = "utf8mb4",
    .parse_time = true,
    .loc = "Local",
    .ssl_mode = "DISABLED",
    .statement_cache_size = 256,
};

static bool is_alnum(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool valid_charset(const char *s)
{
    for (; *s; s++)
        if (!is_alnum(*s) && *s != '_')
            return false;
    return true;
}

/* "+HH:MM" or "-HH:MM", hours 00-14, minutes 00-59 (the server's range). */
static bool valid_offset(const char *s)
{
    if ((s[0] != '+' && s[0] != '-') || strlen(s) != 6 || s[3] != ':')
        return false;
    for (int i = 1; i < 6; i++)
        if (i != 3 && (s[i] < '0' || s[i] > '9'))
            return false;
    return (s[1] - '0') * 10 + (s[2] - '0') <= 14 && s[4] <= '5';
}

/* An IANA zone name as the tz database spells them: "Europe/Paris",
 * "America/Argentina/Buenos_Aires", "Etc/GMT+3": letters first, then
 * letters, digits, '_', '-', '+' and '/', no empty part, no "..". */
static bool valid_zone_name(const char *s)
{
    const char *p;

    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')) || strstr(s, "//") ||
        strstr(s, "..") || s[strlen(s) - 1] == '/' || strlen(s) > 64)
        return false;
    for (p = s; *p; p++)
        if (!is_alnum(*p) && !strchr("_-+/", *p))
            return false;
    return true;
}

static bool valid_loc(const char *s)
{
    return strcmp(s, "Local") == 0 || strcmp(s, "UTC") == 0 || valid_offset(s) ||
           valid_zone_name(s);
}

static const char *check_tls(const struct mysql_options *o, char *msg, size_t size)
{
    bool verify = strncmp(o->ssl_mode, "VERIFY_", 7) == 0;

    if (verify && !o->ssl_ca) {
        snprintf(msg, size, "%s needs sslCa (set sslCa to the CA certificate file the server's "
                 "certificate must chain to, or use sslMode = \"REQUIRED\";)", o->ssl_mode);
        return "sslMode";
    }
    if (!o->ssl_cert != !o->ssl_key) {
        snprintf(msg, size, "sslCert and sslKey go together (set both: the client certificate "
                 "file and its private key file, or neither)");
        return o->ssl_cert ? "sslCert" : "sslKey";
    }
    if (strcmp(o->ssl_mode, "DISABLED") == 0 && (o->ssl_ca || o->ssl_cert)) {
        snprintf(msg, size, "is DISABLED, but TLS files are set (set sslMode = \"VERIFY_CA\"; "
                 "or \"REQUIRED\"; to use them, or remove sslCa/sslCert/sslKey)");
        return "sslMode";
    }
    return NULL;
}

static const char *mysql_check(const struct pool_config *p, const void *opts, char *msg,
                               size_t size)
{
    const struct mysql_options *o = opts;

    if (!valid_charset(o->charset)) {
        snprintf(msg, size, "must be a character set name of letters, digits and '_', such as "
                 "\"utf8mb4\" (got \"%.64s\")", o->charset);
        return "charset";
    }
    if (!valid_loc(o->loc)) {
        snprintf(msg, size, "must be \"Local\", \"UTC\", a time zone name such as "
                 "\"Europe/Paris\" or an offset such as \"+02:00\" (got \"%.64s\")", o->loc);
        return "loc";
    }
    if (mysql_host_is_socket(p->host) &&
        strlen(p->host) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        snprintf(msg, size, "is a Unix socket path of %zu bytes, but at most %zu fit (choose a "
                 "shorter path, or connect over TCP)", strlen(p->host),
                 sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
        return "host";
    }
    return check_tls(o, msg, size);
}

const struct driver_config_spec mysql_config_spec = {
    .name = "mysql",
    .type = BACKEND_MYSQL,
    .server = true,
    .default_port = 3306,
    .keys = mysql_keys,
    .nkeys = sizeof(mysql_keys) / sizeof(mysql_keys[0]),
    .opts_size = sizeof(struct mysql_options),
    .defaults = &mysql_default_options,
    .check = mysql_check,
};
