/*
 * test_config.c — unit tests of the configuration loader (src/daemon/config/):
 * loading, defaults, every kind of validation error, environment overrides,
 * durations, secrets and the password file read at load.
 *
 * Each test writes its configuration to a temporary file (mkstemp) and
 * removes it again. criterion runs every test in its own process, so tests
 * may setenv() freely.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/secret.h"
#include "backend/mysql/mysql_options.h"
#include "backend/pg/pg_options.h"
#include "backend/sqlite/sqlite_options.h"
#include "daemon/configuration.h"

/* ---- helpers ---- */

/* Writes len bytes to a new temporary file; path receives its name. */
static void write_temp_n(const char *data, size_t len, char *path, size_t size)
{
    int fd;

    snprintf(path, size, "/tmp/dbpoold-test-XXXXXX");
    fd = mkstemp(path);
    cr_assert(fd >= 0, "mkstemp failed");
    cr_assert_eq(write(fd, data, len), (ssize_t)len);
    cr_assert_eq(close(fd), 0);
}

static void write_temp(const char *text, char *path, size_t size)
{
    write_temp_n(text, strlen(text), path, size);
}

/* text with every "@PWFILE@" replaced by pwfile; the caller frees it. */
static char *with_pwfile(const char *text, const char *pwfile)
{
    static const char mark[] = "@PWFILE@";
    size_t cap = strlen(text) * 2 + 4096, pos = 0;
    char *out = malloc(cap);
    const char *at;

    cr_assert_not_null(out);
    while ((at = strstr(text, mark)) != NULL) {
        pos += (size_t)snprintf(out + pos, cap - pos, "%.*s%s", (int)(at - text), text, pwfile);
        text = at + strlen(mark);
    }
    snprintf(out + pos, cap - pos, "%s", text);
    return out;
}

/* Loads text as a configuration file; the file is removed afterwards. */
static struct config *load_text(const char *text, struct config_diag *diag)
{
    char path[64];
    struct config *cfg;

    write_temp(text, path, sizeof(path));
    cfg = config_load(path, diag);
    unlink(path);
    return cfg;
}

static bool any_contains(char **msgs, size_t n, const char *needle)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (strstr(msgs[i], needle))
            return true;
    return false;
}

static bool has_error(const struct config_diag *d, const char *needle)
{
    return any_contains(d->errors, d->nerrors, needle);
}

static bool has_warning(const struct config_diag *d, const char *needle)
{
    return any_contains(d->warnings, d->nwarnings, needle);
}

/* All errors, one per line, for assertion messages. */
static const char *dump(const struct config_diag *d)
{
    static char buf[8192];
    size_t pos = 0, i;

    buf[0] = '\0';
    for (i = 0; i < d->nerrors && pos < sizeof(buf); i++)
        pos += (size_t)snprintf(buf + pos, sizeof(buf) - pos, "\n  %s", d->errors[i]);
    return buf;
}

/* Expects loading to fail with an error containing each needle. */
static void expect_errors(const char *text, const char *const *needles)
{
    struct config_diag d;
    struct config *cfg = load_text(text, &d);

    cr_assert_null(cfg, "config loaded although it is invalid");
    cr_assert_gt(d.nerrors, 0);
    for (; *needles; needles++)
        cr_expect(has_error(&d, *needles), "no error contains '%s'; errors:%s", *needles, dump(&d));
    config_diag_free(&d);
}

#define EXPECT_ERRORS(text, ...) \
    expect_errors(text, (const char *const[]){ __VA_ARGS__, NULL })

/* Loads text and requires success. */
static struct config *load_ok(const char *text, struct config_diag *d)
{
    struct config *cfg = load_text(text, d);

    cr_assert_not_null(cfg, "load failed:%s", dump(d));
    cr_assert_eq(d->nerrors, 0);
    return cfg;
}

#define MINIMAL \
    "pools = ( { name = \"app\"; type = \"sqlite\"; sqlite = { filePath = \"/tmp/app.db\"; }; } );\n"

/* ---- valid configurations ---- */

Test(config, minimal_sqlite_gets_defaults)
{
    struct config_diag d;
    struct config *cfg = load_ok(MINIMAL, &d);
    const struct daemon_config *dm = &cfg->daemon;
    const struct pool_config *p = &cfg->pools[0];

    cr_expect_eq(d.nwarnings, 0);
    cr_expect(strstr(dm->socket, "/dbpoold/dbpoold.sock") != NULL);
    cr_expect(strstr(dm->status_socket, "/dbpoold/status.sock") != NULL);
    cr_expect_eq(dm->socket_mode, 0666);
    cr_expect_eq(dm->log_level, LOG_INFO);
    cr_expect_eq(dm->max_frame_size, 16777216);
    cr_expect_eq(dm->max_params, 1024);
    cr_expect_eq(dm->max_batch_statements, 1000);
    cr_expect_eq(dm->max_clients, 10000);
    cr_expect_eq(dm->listen_backlog, 4096);
    cr_expect_eq(dm->output_high_water, 262144);
    cr_expect_eq(dm->shutdown_timeout_ms, 30000);
    cr_expect_eq(dm->client_idle_timeout_ms, 0);
    cr_expect_eq(dm->idle_transaction_timeout_ms, 0);

    cr_assert_eq(cfg->npools, 1);
    cr_expect_str_eq(p->name, "app");
    cr_expect_eq(p->type, BACKEND_SQLITE);
    cr_expect_eq(p->line, 1);
    cr_expect_str_eq(sqlite_opts(p)->file_path, "/tmp/app.db");
    cr_expect_eq(p->max_open_conns, 1);
    cr_expect_eq(p->max_idle_conns, 1);
    cr_expect_eq(p->conn_max_lifetime_ms, 300000);
    cr_expect_eq(p->conn_max_idle_time_ms, 60000);
    cr_expect_eq(p->timeout_ms, 30000);
    cr_expect_eq(p->health_check_interval_ms, 30000);
    cr_expect_eq(p->acquire_timeout_ms, 10000);
    cr_expect_eq(p->statement_timeout_ms, 0);
    cr_expect_str_eq(sqlite_opts(p)->journal_mode, "WAL");
    cr_expect_str_eq(sqlite_opts(p)->sync_mode, "NORMAL");
    cr_expect_eq(sqlite_opts(p)->cache_size, 1000);
    cr_expect(sqlite_opts(p)->foreign_keys);
    cr_expect_str_eq(sqlite_opts(p)->auto_vacuum, "INCREMENTAL");
    cr_expect_null(p->host);
    cr_expect_null(p->password);
    config_free(cfg);
    config_diag_free(&d);
}

static const char full_example[] =
    "# every key set\n"
    "daemon = {\n"
    "  socket = \"/tmp/dbpoold-t/d.sock\";\n"
    "  statusSocket = \"\";\n"
    "  socketMode = \"0660\";\n"
    "  logLevel = \"DEBUG\";\n"
    "  maxFrameSize = 1048576;\n"
    "  maxParams = 100;\n"
    "  maxBatchStatements = 50;\n"
    "  maxClients = 20L; listenBacklog = 512;\n"   /* int64 literals are accepted */
    "  outputHighWater = 65536;\n"
    "  shutdownTimeout = \"1m30s\";\n"
    "  clientIdleTimeout = \"10m\";\n"
    "  idleTransactionTimeout = \"250ms\";\n"
    "};\n"
    "pools = (\n"
    "  { name = \"app\"; type = \"sqlite\";\n"
    "    sqlite = { filePath = \"/tmp/app.db\"; maxOpenConns = 4; maxIdleConns = 2;\n"
    "      connMaxLifetime = \"1h\"; connMaxIdleTime = \"0\"; timeout = \"5s\";\n"
    "      healthCheckInterval = \"0\"; acquireTimeout = \"2s\"; statementTimeout = \"1s\";\n"
    "      journalMode = \"delete\"; syncMode = \"full\"; cacheSize = -2000;\n"
    "      foreignKeys = false; autoVacuum = \"none\"; };\n"
    "  },\n"
    "  { name = \"main-db\"; type = \"postgres\";\n"
    "    postgres = { host = \"/run/postgresql\"; port = 5433; name = \"maindb\";\n"
    "      username = \"app\"; passwordFile = \"@PWFILE@\"; sslMode = \"Verify-Full\";\n"
    "      maxOpenConns = 10; maxIdleConns = 10; maxRetries = 0; retryDelay = \"500ms\"; retryMaxDelay = \"2s\"; };\n"
    "  },\n"
    "  { name = \"shop_1\"; type = \"mysql\";\n"
    "    mysql = { host = \"db.example\"; name = \"shop\"; username = \"shop\";\n"
    "      password = \"pw\"; charset = \"latin1\"; maxRetries = 5; };\n"
    "  }\n"
    ");\n";

Test(config, full_example)
{
    struct config_diag d;
    char pwfile[64], *text;
    struct config *cfg;

    write_temp("main-pw\n", pwfile, sizeof(pwfile));
    text = with_pwfile(full_example, pwfile);
    cfg = load_ok(text, &d);
    free(text);
    const struct daemon_config *dm = &cfg->daemon;
    const struct pool_config *s, *pg, *my;

    cr_expect_eq(d.nwarnings, 0);
    cr_expect_str_eq(dm->socket, "/tmp/dbpoold-t/d.sock");
    cr_expect_str_eq(dm->status_socket, "");
    cr_expect_eq(dm->socket_mode, 0660);
    cr_expect_eq(dm->log_level, LOG_DEBUG);
    cr_expect_eq(dm->max_frame_size, 1048576);
    cr_expect_eq(dm->max_params, 100);
    cr_expect_eq(dm->max_batch_statements, 50);
    cr_expect_eq(dm->max_clients, 20);
    cr_expect_eq(dm->listen_backlog, 512);
    cr_expect_eq(dm->output_high_water, 65536);
    cr_expect_eq(dm->shutdown_timeout_ms, 90000);
    cr_expect_eq(dm->client_idle_timeout_ms, 600000);
    cr_expect_eq(dm->idle_transaction_timeout_ms, 250);

    cr_assert_eq(cfg->npools, 3);
    s = config_find_pool(cfg, "app", 3);
    pg = config_find_pool(cfg, "main-db", 7);
    my = config_find_pool(cfg, "shop_1xyz", 6);
    cr_assert(s && pg && my);
    cr_expect_null(config_find_pool(cfg, "ap", 2));
    cr_expect_null(config_find_pool(cfg, "nope", 4));

    cr_expect_eq(s->max_open_conns, 4);
    cr_expect_eq(s->max_idle_conns, 2);
    cr_expect_eq(s->conn_max_lifetime_ms, 3600000);
    cr_expect_eq(s->conn_max_idle_time_ms, 0);
    cr_expect_eq(s->timeout_ms, 5000);
    cr_expect_eq(s->health_check_interval_ms, 0);
    cr_expect_eq(s->acquire_timeout_ms, 2000);
    cr_expect_eq(s->statement_timeout_ms, 1000);
    cr_expect_str_eq(sqlite_opts(s)->journal_mode, "DELETE");
    cr_expect_str_eq(sqlite_opts(s)->sync_mode, "FULL");
    cr_expect_eq(sqlite_opts(s)->cache_size, -2000);
    cr_expect_not(sqlite_opts(s)->foreign_keys);
    cr_expect_str_eq(sqlite_opts(s)->auto_vacuum, "NONE");

    cr_expect_eq(pg->type, BACKEND_POSTGRES);
    cr_expect_str_eq(pg->host, "/run/postgresql");
    cr_expect_eq(pg->port, 5433);
    cr_expect_str_eq(pg->dbname, "maindb");
    cr_expect_str_eq(pg->username, "app");
    cr_expect_str_eq(pg->password, "main-pw");     /* read at load */
    cr_expect_str_eq(pg->password_file, pwfile);
    cr_expect_str_eq(pg_opts(pg)->ssl_mode, "verify-full");
    cr_expect_eq(pg->max_open_conns, 10);
    cr_expect_eq(pg->max_idle_conns, 10);
    cr_expect_eq(pg->max_retries, 0);
    cr_expect_eq(pg->retry_delay_ms, 500);
    cr_expect_eq(pg->retry_max_delay_ms, 2000);
    cr_expect_eq(pg->line, 24);

    cr_expect_eq(my->type, BACKEND_MYSQL);
    cr_expect_eq(my->port, 3306);
    cr_expect_str_eq(my->password, "pw");
    cr_expect_str_eq(mysql_opts(my)->charset, "latin1");
    cr_expect_eq(my->max_retries, 5);
    cr_expect_eq(my->max_open_conns, 25);
    cr_expect_eq(my->max_idle_conns, 5);
    cr_expect_str_eq(mysql_opts(my)->ssl_mode, "DISABLED");
    config_free(cfg);
    config_diag_free(&d);
    unlink(pwfile);
}

Test(config, server_defaults_and_password_warning)
{
    struct config_diag d;
    struct config *cfg = load_ok(
        "pools = ( { name = \"pg\"; type = \"postgres\";\n"
        "  postgres = { host = \"localhost\"; name = \"db\"; username = \"u\"; }; } );\n", &d);
    const struct pool_config *p = &cfg->pools[0];

    cr_expect_eq(p->port, 5432);
    cr_expect_str_eq(pg_opts(p)->ssl_mode, "disable");
    cr_expect_eq(p->max_open_conns, 25);
    cr_expect_eq(p->max_idle_conns, 5);
    cr_expect_eq(p->max_retries, 3);
    cr_expect_eq(p->retry_delay_ms, 1000);
    cr_expect_eq(p->retry_max_delay_ms, 30000);
    cr_expect_eq(pg_opts(p)->statement_cache_size, 256);
    cr_expect_eq(d.nwarnings, 1);
    cr_expect(has_warning(&d, ":1: pools[0] \"pg\": no password or passwordFile set"),
              "%s", d.nwarnings ? d.warnings[0] : "(none)");
    config_free(cfg);
    config_diag_free(&d);
}

Test(config, default_idle_is_capped_by_max_open)
{
    struct config_diag d;
    struct config *cfg = load_ok(
        "pools = ( { name = \"pg\"; type = \"postgres\";\n"
        "  postgres = { host = \"h\"; name = \"db\"; username = \"u\"; password = \"pw\";\n"
        "    maxOpenConns = 2; }; } );\n", &d);

    cr_expect_eq(cfg->pools[0].max_idle_conns, 2);
    config_free(cfg);
    config_diag_free(&d);
}

/* etc/dbpoold.conf: under $TOP_SRCDIR (set by make check), else found from
 * this source file's path, else relative to tests/unit. */
static void shipped_config_path(char *path, size_t size)
{
    const char *top = getenv("TOP_SRCDIR");
    const char *slash = strrchr(__FILE__, '/');

    if (top) {
        snprintf(path, size, "%s/etc/dbpoold.conf", top);
        return;
    }
    if (slash) {
        snprintf(path, size, "%.*s/../../etc/dbpoold.conf", (int)(slash - __FILE__), __FILE__);
        if (access(path, R_OK) == 0)
            return;
    }
    snprintf(path, size, "../../etc/dbpoold.conf");
}

Test(config, shipped_example_config_parses)
{
    char path[4096];
    struct config_diag d;
    struct config *cfg;

    shipped_config_path(path, sizeof(path));
    cfg = config_load(path, &d);
    cr_assert_not_null(cfg, "%s:%s", path, dump(&d));
    cr_expect_eq(d.nwarnings, 0);
    cr_assert_eq(cfg->npools, 1);
    cr_expect_str_eq(cfg->pools[0].name, "app");
    cr_expect_eq(cfg->pools[0].type, BACKEND_SQLITE);
    cr_expect_str_eq(sqlite_opts(&cfg->pools[0])->file_path, "/var/lib/dbpoold/app.db");
    cr_expect_eq(cfg->pools[0].max_open_conns, 4);
    cr_expect_eq(cfg->pools[0].max_idle_conns, 4);
    cr_expect_str_eq(cfg->daemon.socket, "/run/dbpoold/dbpoold.sock");
    cr_expect_str_eq(cfg->daemon.status_socket, "/run/dbpoold/status.sock");
    config_free(cfg);
    config_diag_free(&d);
}

Test(config, names)
{
    cr_expect_str_eq(backend_type_name(BACKEND_SQLITE), "sqlite");
    cr_expect_str_eq(backend_type_name(BACKEND_POSTGRES), "postgres");
    cr_expect_str_eq(backend_type_name(BACKEND_MYSQL), "mysql");
    cr_expect_str_eq(log_level_name(LOG_DEBUG), "debug");
    cr_expect_str_eq(log_level_name(LOG_INFO), "info");
    cr_expect_str_eq(log_level_name(LOG_WARN), "warn");
    cr_expect_str_eq(log_level_name(LOG_ERROR), "error");
    cr_expect_null(config_find_pool(NULL, "x", 1));
}

Test(config, null_diag_is_allowed)
{
    struct config *cfg = load_text(MINIMAL, NULL);

    cr_expect_not_null(cfg);
    config_free(cfg);
    cr_expect_null(load_text("pools = 1;", NULL));
}

/* ---- one test per kind of error ---- */

Test(config_errors, unknown_key_suggests_closest)
{
    EXPECT_ERRORS(
        "pools = ( { name = \"app\"; type = \"sqlite\";\n"
        "  sqlite = { filePath = \"/tmp/a.db\";\n"
        "    maxOpenConn = 4; }; } );\n",
        ":3: pools[0] \"app\": sqlite: unknown key \"maxOpenConn\" (did you mean \"maxOpenConns\"?)");
}

Test(config_errors, unknown_keys_elsewhere)
{
    EXPECT_ERRORS(
        "daemon = { sockt = \"/x\"; };\n"
        "pool = ();\n"
        "pools = ( { name = \"app\"; type = \"sqlite\"; maxOpenConns = 2;\n"
        "  sqlite = { filePath = \"/tmp/a.db\"; host = \"h\"; zzzzzz = 1; }; } );\n",
        ":1: daemon: unknown key \"sockt\" (did you mean \"socket\"?)",
        ":2: unknown key \"pool\" (did you mean \"pools\"?)",
        ":3: pools[0] \"app\": unknown key \"maxOpenConns\" (settings of a sqlite pool go inside",
        ":4: pools[0] \"app\": sqlite: unknown key \"host\" (it is a postgres and mysql setting",
        "unknown key \"zzzzzz\" (valid keys here: maxOpenConns,");
}

Test(config_errors, wrong_types)
{
    EXPECT_ERRORS(
        "daemon = {\n"
        "  socket = 5;\n"
        "  maxClients = \"10\";\n"
        "  shutdownTimeout = 30;\n"
        "  socketMode = 660;\n"
        "  maxParams = 1.5;\n"
        "};\n"
        "pools = ( { name = \"app\"; type = \"sqlite\";\n"
        "  sqlite = { filePath = \"/tmp/a.db\"; foreignKeys = \"true\"; cacheSize = true; }; } );\n",
        ":2: daemon.socket: must be a string, not an integer (put the value in double quotes)",
        ":3: daemon.maxClients: must be an integer, not a string (remove the quotes)",
        ":4: daemon.shutdownTimeout: must be a duration string, not an integer "
        "(write durations as strings like \"30s\")",
        ":5: daemon.socketMode: must be an octal string like \"0660\", not an integer",
        ":6: daemon.maxParams: must be an integer, not a floating-point number (got 1.5",
        ":9: pools[0] \"app\": sqlite.foreignKeys: must be true or false, not a string",
        ":9: pools[0] \"app\": sqlite.cacheSize: must be an integer, not a boolean");
}

Test(config_errors, group_types)
{
    EXPECT_ERRORS(
        "daemon = 1;\n"
        "pools = ( { name = \"app\"; type = \"sqlite\"; sqlite = \"x\"; }, 7 );\n",
        ":1: daemon: must be a group, not an integer",
        ":2: pools[0] \"app\": sqlite: must be a group, not a string",
        ":2: pools[1]: must be a group, not an integer");
    EXPECT_ERRORS("pools = { a = 1; };\n", ":1: pools: must be a list of pool groups, not a group");
}

Test(config_errors, out_of_range)
{
    EXPECT_ERRORS(
        "daemon = { maxFrameSize = 100; maxClients = 2000000; outputHighWater = 10;\n"
        "  maxParams = 0; socketMode = \"1777\"; logLevel = \"verbose\"; shutdownTimeout = \"0\";\n"
        "  clientIdleTimeout = \"9000h\"; };\n"
        "pools = ( { name = \"app\"; type = \"sqlite\";\n"
        "  sqlite = { filePath = \"/tmp/a.db\";\n"
        "    maxOpenConns = 0;\n"
        "    maxIdleConns = -1; journalMode = \"fast\"; connMaxLifetime = \"5 m\"; }; },\n"
        "  { name = \"pg\"; type = \"postgres\"; postgres = { host = \"h\"; name = \"n\";\n"
        "    username = \"u\"; port = 70000; sslMode = \"on\"; maxRetries = -1; }; } );\n",
        ":1: daemon.maxFrameSize: must be at least 1024 (got 100)",
        ":1: daemon.maxClients: must be at most 1000000 (got 2000000)",
        ":1: daemon.outputHighWater: must be at least 4096 (got 10)",
        ":2: daemon.maxParams: must be at least 1 (got 0)",
        ":2: daemon.socketMode: must be an octal permission mode",
        ":2: daemon.logLevel: must be one of debug, info, warn, error (got \"verbose\")",
        ":2: daemon.shutdownTimeout: must be greater than 0",
        ":3: daemon.clientIdleTimeout: must be at most \"8760h\"",
        ":6: pools[0] \"app\": sqlite.maxOpenConns: must be at least 1 (got 0)",
        ":7: pools[0] \"app\": sqlite.maxIdleConns: must be at least 0 (got -1)",
        ":7: pools[0] \"app\": sqlite.journalMode: must be one of WAL, DELETE, TRUNCATE",
        ":7: pools[0] \"app\": sqlite.connMaxLifetime: must be a duration such as",
        ":9: pools[1] \"pg\": postgres.port: must be at most 65535 (got 70000)",
        ":9: pools[1] \"pg\": postgres.sslMode: must be one of disable, allow, prefer",
        ":9: pools[1] \"pg\": postgres.maxRetries: must be at least 0 (got -1)");
}

Test(config_errors, empty_strings_and_long_socket_path)
{
    char text[1024];
    char longpath[200];

    memset(longpath, 'x', sizeof(longpath) - 1);
    longpath[0] = '/';
    longpath[sizeof(longpath) - 1] = '\0';
    snprintf(text, sizeof(text),
             "daemon = { socket = \"%s\"; };\n"
             "pools = ( { name = \"app\"; type = \"sqlite\"; sqlite = { filePath = \"\"; }; } );\n",
             longpath);
    EXPECT_ERRORS(text,
                  ":1: daemon.socket: is 199 bytes long, but a Unix socket path can have at most",
                  ":2: pools[0] \"app\": sqlite.filePath: must not be empty");
}

Test(config_errors, same_path_for_both_sockets)
{
    EXPECT_ERRORS("daemon = { socket = \"/tmp/s\"; statusSocket = \"/tmp/s\"; };\n" MINIMAL,
                  ":1: daemon.statusSocket: socket and statusSocket are both \"/tmp/s\"");
}

Test(config_errors, unknown_type)
{
    EXPECT_ERRORS("pools = ( { name = \"app\"; type = \"oracle\"; } );\n",
                  ":1: pools[0] \"app\": type: unknown type \"oracle\" "
                  "(valid types: sqlite, postgres, mysql)");
    EXPECT_ERRORS("pools = ( { name = \"app\"; type = \"postgress\"; } );\n",
                  "unknown type \"postgress\" (did you mean \"postgres\"? "
                  "valid types: sqlite, postgres, mysql)");
}

Test(config_errors, duplicate_pool_name)
{
    EXPECT_ERRORS(
        "pools = (\n"
        "  { name = \"app\"; type = \"sqlite\"; sqlite = { filePath = \"/tmp/a.db\"; }; },\n"
        "  { name = \"app\"; type = \"sqlite\"; sqlite = { filePath = \"/tmp/b.db\"; }; }\n"
        ");\n",
        ":3: pools[1] \"app\": name: duplicate pool name \"app\" (pools[0] at line 2 has it too");
}

Test(config_errors, invalid_pool_names)
{
    EXPECT_ERRORS(
        "pools = (\n"
        "  { name = \"my app\"; type = \"sqlite\"; sqlite = { filePath = \"/tmp/a.db\"; }; },\n"
        "  { name = \"\"; type = \"sqlite\"; sqlite = { filePath = \"/tmp/a.db\"; }; },\n"
        "  { name = \"a234567890123456789012345678901234567890123456789012345678901234\";\n"
        "    type = \"sqlite\"; sqlite = { filePath = \"/tmp/a.db\"; }; },\n"
        "  { name = 5; type = \"sqlite\"; sqlite = { filePath = \"/tmp/a.db\"; }; }\n"
        ");\n",
        ":2: pools[0]: name: must be 1 to 63 characters from A-Z, a-z, 0-9, '_' and '-' (got \"my app\")",
        ":3: pools[1]: name: must be 1 to 63 characters",
        ":4: pools[2]: name: must be 1 to 63 characters",
        ":6: pools[3]: name: must be a string, not an integer");
}

Test(config_errors, missing_required_keys)
{
    EXPECT_ERRORS(
        "pools = (\n"
        "  { type = \"sqlite\"; sqlite = { filePath = \"/tmp/a.db\"; }; },\n"
        "  { name = \"a\"; sqlite = { filePath = \"/tmp/a.db\"; }; },\n"
        "  { name = \"b\"; type = \"sqlite\"; sqlite = { }; },\n"
        "  { name = \"c\"; type = \"postgres\";\n"
        "    postgres = { port = 5432; }; },\n"
        "  { name = \"d\"; type = \"mysql\"; }\n"
        ");\n",
        ":2: pools[0]: name: missing required key",
        ":3: pools[1] \"a\": type: missing required key (this pool has a sqlite group, "
        "so add type = \"sqlite\";)",
        ":4: pools[2] \"b\": sqlite.filePath: missing required key (add filePath = "
        "\"/var/lib/dbpoold/app.db\"; to the sqlite group, or set DBPOOLD_POOL_B_FILE_PATH)",
        ":6: pools[3] \"c\": postgres.host: missing required key",
        ":6: pools[3] \"c\": postgres.name: missing required key",
        ":6: pools[3] \"c\": postgres.username: missing required key",
        ":7: pools[4] \"d\": missing group \"mysql\"");
}

Test(config_errors, no_pools)
{
    EXPECT_ERRORS("daemon = { logLevel = \"warn\"; };\n", ": no pools defined (add at least one");
    EXPECT_ERRORS("pools = ();\n", ": no pools defined");
}

Test(config_errors, max_idle_above_max_open)
{
    EXPECT_ERRORS(
        "pools = ( { name = \"app\"; type = \"sqlite\";\n"
        "  sqlite = { filePath = \"/tmp/a.db\"; maxOpenConns = 2;\n"
        "    maxIdleConns = 3; }; } );\n",
        ":3: pools[0] \"app\": sqlite.maxIdleConns: must not exceed maxOpenConns (2) (got 3;");
}

/* clientBufferBudget, frameTimeout, writeStallTimeout: defaults, values, "0". */
Test(config, client_buffer_keys)
{
    struct config_diag d;
    struct config *cfg = load_ok(MINIMAL, &d);

    cr_expect_eq(cfg->daemon.client_buffer_budget, 268435456);
    cr_expect_eq(cfg->daemon.frame_timeout_ms, 30000);
    cr_expect_eq(cfg->daemon.write_stall_timeout_ms, 60000);
    config_free(cfg);
    config_diag_free(&d);

    cfg = load_ok("daemon = { clientBufferBudget = 4294967296L; frameTimeout = \"2s\";\n"
                  "  writeStallTimeout = \"0\"; };\n" MINIMAL, &d);
    cr_expect_eq(cfg->daemon.client_buffer_budget, 4294967296ULL);
    cr_expect_eq(cfg->daemon.frame_timeout_ms, 2000);
    cr_expect_eq(cfg->daemon.write_stall_timeout_ms, 0, "writeStallTimeout = \"0\" turns it off");
    config_free(cfg);
    config_diag_free(&d);
}

Test(config_errors, client_buffer_budget_below_twice_max_frame)
{
    EXPECT_ERRORS(
        "daemon = { maxFrameSize = 1048576;\n"
        "  clientBufferBudget = 2000000; frameTimeout = \"0\"; };\n" MINIMAL,
        ":2: daemon.clientBufferBudget: clientBufferBudget (2000000) must be at least twice "
        "maxFrameSize (1048576) (raise clientBufferBudget or lower maxFrameSize)",
        ":2: daemon.frameTimeout: must be greater than 0");
    /* Without a budget in the file, the maxFrameSize that outgrew the default is named. */
    EXPECT_ERRORS(
        "daemon = {\n  maxFrameSize = 200000000; };\n" MINIMAL,
        ":2: daemon.maxFrameSize: clientBufferBudget (268435456) must be at least twice "
        "maxFrameSize (200000000)");
}

Test(config_errors, group_for_wrong_type)
{
    EXPECT_ERRORS(
        "pools = ( { name = \"app\"; type = \"sqlite\";\n"
        "  sqlite = { filePath = \"/tmp/a.db\"; };\n"
        "  postgres = { host = \"h\"; }; } );\n",
        ":3: pools[0] \"app\": postgres: a sqlite pool cannot have a postgres group");
}

Test(config_errors, password_and_password_file)
{
    EXPECT_ERRORS(
        "pools = ( { name = \"pg\"; type = \"postgres\";\n"
        "  postgres = { host = \"h\"; name = \"n\"; username = \"u\";\n"
        "    password = \"pw\";\n"
        "    passwordFile = \"/f\"; }; } );\n",
        ":1: pools[0] \"pg\": password (line 3) and passwordFile (line 4) are both set; keep only one");
}

Test(config_errors, syntax_error_with_line)
{
    EXPECT_ERRORS("daemon = {\n  socket = \"/x\";\n  logLevel = ;\n};\n",
                  ":3: syntax error: ");
    EXPECT_ERRORS("a = 1;\na = 2;\n" MINIMAL, ":2: syntax error: duplicate setting name");
}

Test(config_errors, missing_file)
{
    struct config_diag d;
    struct config *cfg = config_load("/nonexistent/dbpoold.conf", &d);

    cr_assert_null(cfg);
    cr_assert_eq(d.nerrors, 1);
    cr_expect_str_eq(d.errors[0], "/nonexistent/dbpoold.conf: cannot open the configuration "
                     "file: No such file or directory (check the path and its permissions)");
    config_diag_free(&d);
    cr_expect_eq(d.nerrors, 0);
    cr_expect_null(d.errors);

    cfg = config_load("/tmp", &d);
    cr_assert_null(cfg);
    cr_expect(has_error(&d, "/tmp: is a directory"), "%s", dump(&d));
    config_diag_free(&d);
}

Test(config_errors, all_errors_in_one_run_in_file_order)
{
    struct config_diag d;
    struct config *cfg = load_text(
        "daemon = {\n"
        "  maxClients = 0;\n"
        "  logLevel = \"loud\";\n"
        "};\n"
        "pools = ( { name = \"app\"; type = \"sqlite\";\n"
        "  sqlite = {\n"
        "    filePath = \"/tmp/a.db\";\n"
        "    maxOpenConns = 0;\n"
        "    journalMod = \"WAL\";\n"
        "  }; } );\n", &d);
    size_t i;

    cr_assert_null(cfg);
    cr_assert_geq(d.nerrors, 4, "%s", dump(&d));
    cr_expect(has_error(&d, ":2: daemon.maxClients: must be at least 1 (got 0)"), "%s", dump(&d));
    cr_expect(has_error(&d, ":3: daemon.logLevel: "), "%s", dump(&d));
    cr_expect(has_error(&d, ":8: pools[0] \"app\": sqlite.maxOpenConns: must be at least 1 (got 0)"),
              "%s", dump(&d));
    cr_expect(has_error(&d, ":9: pools[0] \"app\": sqlite: unknown key \"journalMod\" "
                            "(did you mean \"journalMode\"?)"), "%s", dump(&d));
    for (i = 1; i < d.nerrors; i++) {
        int a = atoi(strchr(d.errors[i - 1], ':') + 1), b = atoi(strchr(d.errors[i], ':') + 1);

        cr_expect_leq(a, b, "errors out of line order:%s", dump(&d));
    }
    config_diag_free(&d);
}

/* ---- environment overrides ---- */

Test(config_env, daemon_and_pool_overrides)
{
    struct config_diag d;
    struct config *cfg;

    setenv("DBPOOLD_DAEMON_SOCKET", "/tmp/t/dbpoold.sock", 1);
    setenv("DBPOOLD_DAEMON_STATUS_SOCKET", "", 1);
    setenv("DBPOOLD_DAEMON_SOCKET_MODE", "0600", 1);
    setenv("DBPOOLD_DAEMON_LOG_LEVEL", "error", 1);
    setenv("DBPOOLD_DAEMON_MAX_FRAME_SIZE", "65536", 1);
    setenv("DBPOOLD_DAEMON_SHUTDOWN_TIMEOUT", "2s", 1);
    setenv("DBPOOLD_POOL_APP_FILE_PATH", "/tmp/t/app.db", 1);
    setenv("DBPOOLD_POOL_APP_MAX_OPEN_CONNS", "8", 1);
    setenv("DBPOOLD_POOL_APP_FOREIGN_KEYS", "off", 1);
    setenv("DBPOOLD_POOL_APP_JOURNAL_MODE", "memory", 1);
    setenv("DBPOOLD_POOL_MY_DB_PASSWORD", "from-env", 1);
    setenv("DBPOOLD_POOL_MY_DB_PORT", "3307", 1);
    setenv("DBPOOLD_BIN", "/not/a/config/key", 1);  /* other DBPOOLD_ variables are ignored */
    cfg = load_ok(
        "daemon = { socket = \"/tmp/file.sock\"; logLevel = \"debug\"; };\n"
        "pools = ( { name = \"app\"; type = \"sqlite\";\n"
        "            sqlite = { filePath = \"/tmp/file.db\"; maxOpenConns = 0; }; },\n"
        "          { name = \"my-db\"; type = \"mysql\";\n"
        "            mysql = { host = \"h\"; name = \"n\"; username = \"u\"; }; } );\n", &d);
    cr_expect_str_eq(cfg->daemon.socket, "/tmp/t/dbpoold.sock");
    cr_expect_str_eq(cfg->daemon.status_socket, "");
    cr_expect_eq(cfg->daemon.socket_mode, 0600);
    cr_expect_eq(cfg->daemon.log_level, LOG_ERROR);
    cr_expect_eq(cfg->daemon.max_frame_size, 65536);
    cr_expect_eq(cfg->daemon.shutdown_timeout_ms, 2000);
    cr_expect_str_eq(sqlite_opts(&cfg->pools[0])->file_path, "/tmp/t/app.db");
    cr_expect_eq(cfg->pools[0].max_open_conns, 8);  /* the file's invalid 0 is overridden */
    cr_expect_not(sqlite_opts(&cfg->pools[0])->foreign_keys);
    cr_expect_str_eq(sqlite_opts(&cfg->pools[0])->journal_mode, "MEMORY");
    cr_expect_str_eq(cfg->pools[1].password, "from-env");
    cr_expect_eq(cfg->pools[1].port, 3307);
    cr_expect_eq(d.nwarnings, 0);   /* the env password counts */
    config_free(cfg);
    config_diag_free(&d);
}

Test(config_errors, listen_backlog_range)
{
    EXPECT_ERRORS("daemon = { listenBacklog = 0; };\n" MINIMAL,
                  ":1: daemon.listenBacklog: must be at least 1 (got 0)");
    EXPECT_ERRORS("daemon = {\n  listenBacklog = 65536; };\n" MINIMAL,
                  ":2: daemon.listenBacklog: must be at most 65535 (got 65536)");
    EXPECT_ERRORS("daemon = { listenBacklog = \"4096\"; };\n" MINIMAL,
                  ":1: daemon.listenBacklog: must be an integer, not a string (remove the quotes)");
}

Test(config_env, listen_backlog_override)
{
    struct config_diag d;
    struct config *cfg;

    setenv("DBPOOLD_DAEMON_LISTEN_BACKLOG", "65535", 1);
    cfg = load_ok("daemon = { listenBacklog = 100; };\n" MINIMAL, &d);
    cr_expect_eq(cfg->daemon.listen_backlog, 65535);
    config_free(cfg);
    config_diag_free(&d);
    setenv("DBPOOLD_DAEMON_LISTEN_BACKLOG", "0", 1);
    EXPECT_ERRORS(MINIMAL, "environment DBPOOLD_DAEMON_LISTEN_BACKLOG: must be at least 1 (got 0)");
}

Test(config_env, env_can_supply_required_key)
{
    struct config_diag d;
    struct config *cfg;

    setenv("DBPOOLD_POOL_APP_FILE_PATH", "/tmp/t/app.db", 1);
    cfg = load_ok("pools = ( { name = \"app\"; type = \"sqlite\"; sqlite = { }; } );\n", &d);
    cr_expect_str_eq(sqlite_opts(&cfg->pools[0])->file_path, "/tmp/t/app.db");
    config_free(cfg);
    config_diag_free(&d);
}

Test(config_env, bad_values)
{
    setenv("DBPOOLD_POOL_APP_MAX_OPEN_CONNS", "x", 1);
    setenv("DBPOOLD_POOL_APP_CACHE_SIZE", "12abc", 1);
    setenv("DBPOOLD_POOL_APP_TIMEOUT", "30", 1);
    setenv("DBPOOLD_POOL_APP_FOREIGN_KEYS", "maybe", 1);
    setenv("DBPOOLD_DAEMON_MAX_CLIENTS", "99999999999999999999", 1);
    setenv("DBPOOLD_DAEMON_MAX_PARAMS", "0", 1);
    EXPECT_ERRORS(MINIMAL,
                  "environment DBPOOLD_POOL_APP_MAX_OPEN_CONNS: must be an integer (got \"x\")",
                  "environment DBPOOLD_POOL_APP_CACHE_SIZE: must be an integer (got \"12abc\")",
                  "environment DBPOOLD_POOL_APP_TIMEOUT: must be a duration such as",
                  "environment DBPOOLD_POOL_APP_FOREIGN_KEYS: must be true or false",
                  "environment DBPOOLD_DAEMON_MAX_CLIENTS: must be an integer",
                  "environment DBPOOLD_DAEMON_MAX_PARAMS: must be at least 1 (got 0)");
}

Test(config_env, unknown_keys_and_pools)
{
    setenv("DBPOOLD_POOL_APP_FILEPATHX", "/x", 1);
    setenv("DBPOOLD_POOL_APP_HOST", "h", 1);
    setenv("DBPOOLD_POOL_NOPE_MAX_OPEN_CONNS", "2", 1);
    setenv("DBPOOLD_DAEMON_SOCKT", "/x", 1);
    EXPECT_ERRORS(MINIMAL,
                  "environment DBPOOLD_POOL_APP_FILEPATHX: no setting of sqlite pool \"app\" is "
                  "called FILEPATHX (did you mean DBPOOLD_POOL_APP_FILE_PATH?)",
                  "environment DBPOOLD_POOL_APP_HOST: no setting of sqlite pool \"app\" is called HOST",
                  "environment DBPOOLD_POOL_NOPE_MAX_OPEN_CONNS: does not name a configured pool "
                  "(expected one of: DBPOOLD_POOL_APP_<KEY>",
                  "environment DBPOOLD_DAEMON_SOCKT: no daemon setting is called SOCKT "
                  "(did you mean DBPOOLD_DAEMON_SOCKET?)");
}

Test(config_env, ambiguous_variable)
{
    setenv("DBPOOLD_POOL_A_STATEMENT_TIMEOUT", "1s", 1);
    EXPECT_ERRORS(
        "pools = ( { name = \"a\"; type = \"sqlite\"; sqlite = { filePath = \"/tmp/a\"; }; },\n"
        "  { name = \"a_statement\"; type = \"sqlite\"; sqlite = { filePath = \"/tmp/b\"; }; } );\n",
        "environment DBPOOLD_POOL_A_STATEMENT_TIMEOUT: is ambiguous");
}

/* ---- durations ---- */

Test(duration, valid)
{
    static const struct { const char *s; uint64_t ms; } cases[] = {
        { "0", 0 }, { "0s", 0 }, { "250ms", 250 }, { "30s", 30000 }, { "5m", 300000 },
        { "1h", 3600000 }, { "1h30m", 5400000 }, { "1h0m5s10ms", 3605010 },
        { "2m500ms", 120500 }, { "90s", 90000 }, { "007s", 7000 },
        { "5124095576030h", 5124095576030ULL * 3600000 },
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t ms = 12345;

        cr_expect(parse_duration_ms(cases[i].s, &ms), "\"%s\" rejected", cases[i].s);
        cr_expect_eq(ms, cases[i].ms, "\"%s\" gave %llu", cases[i].s, (unsigned long long)ms);
    }
}

Test(duration, invalid)
{
    static const char *const cases[] = {
        "", "5", "1x", "-1s", "+1s", "1.5s", "30s5m", "1m1m", "1ms5s", "s", "ms", " 1s", "1s ",
        "1 s", "1S", "1d", "1us", "00", "1h30", "18446744073709551616ms",
        "5124095576031h", "99999999999999999999999s",
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t ms = 12345;

        cr_expect_not(parse_duration_ms(cases[i], &ms), "\"%s\" accepted", cases[i]);
        cr_expect_eq(ms, 12345, "\"%s\" changed the output", cases[i]);
    }
    cr_expect_not(parse_duration_ms(NULL, NULL));
}

/* ---- secrets ---- */

#define SECRET "Hunter2-s3cret-PW"

static void expect_no_secret(const struct config_diag *d)
{
    size_t i;

    for (i = 0; i < d->nerrors; i++)
        cr_expect_null(strstr(d->errors[i], SECRET), "secret in: %s", d->errors[i]);
    for (i = 0; i < d->nwarnings; i++)
        cr_expect_null(strstr(d->warnings[i], SECRET), "secret in: %s", d->warnings[i]);
}

Test(secrets, password_never_in_messages)
{
    struct config_diag d;
    struct config *cfg;

    setenv("DBPOOLD_POOL_NOPE_PASSWORD", SECRET, 1);
    setenv("DBPOOLD_POOL_PG_PASSWORDX", SECRET, 1);
    setenv("DBPOOLD_POOL_PG2_PASSWORD", SECRET, 1);
    cfg = load_text(
        "pools = (\n"
        "  { name = \"pg\"; type = \"postgres\"; postgres = { host = \"h\"; name = \"n\";\n"
        "    username = \"u\"; password = \"" SECRET "\"; passwordFile = \"/f\";\n"
        "    pasword = \"" SECRET "\"; }; },\n"
        "  { name = \"pg2\"; type = \"postgres\"; postgres = { host = \"h\"; name = \"n\";\n"
        "    username = \"u\"; passwordFile = \"/f\"; }; },\n"
        "  { name = \"pg3\"; type = \"postgres\"; postgres = { host = \"h\"; name = \"n\";\n"
        "    username = \"u\"; password = 12345.5; }; }\n"
        ");\n", &d);
    cr_assert_null(cfg);
    cr_expect_geq(d.nerrors, 6, "%s", dump(&d));
    cr_expect(has_error(&d, "password (line 3) and passwordFile (line 3) are both set"), "%s", dump(&d));
    cr_expect(has_error(&d, "unknown key \"pasword\""), "%s", dump(&d));
    cr_expect(has_error(&d, "password (environment DBPOOLD_POOL_PG2_PASSWORD) and passwordFile"),
              "%s", dump(&d));
    cr_expect(has_error(&d, "pools[2] \"pg3\": postgres.password: must be a string, not a "
                            "floating-point number (put"), "%s", dump(&d));
    cr_expect_not(has_error(&d, "12345"), "%s", dump(&d));
    expect_no_secret(&d);
    config_diag_free(&d);
}

/* ---- passwordFile: read once, at load ---- */

/* A postgres pool "pg" whose passwordFile (line 3) is @PWFILE@. */
#define PG_PWFILE \
    "pools = ( { name = \"pg\"; type = \"postgres\";\n" \
    "  postgres = { host = \"h\"; name = \"n\"; username = \"u\";\n" \
    "    passwordFile = \"@PWFILE@\"; }; } );\n"

static struct config *load_pwfile(const char *pwfile, struct config_diag *d)
{
    char *text = with_pwfile(PG_PWFILE, pwfile);
    struct config *cfg = load_text(text, d);

    free(text);
    return cfg;
}

static struct config *load_pwfile_ok(const char *pwfile, struct config_diag *d)
{
    struct config *cfg = load_pwfile(pwfile, d);

    cr_assert_not_null(cfg, "load failed:%s", dump(d));
    return cfg;
}

/* Loading with a password file holding len bytes of data must fail with an
 * error at the passwordFile line containing needle (and not the contents). */
static void expect_pwfile_error(const char *data, size_t len, const char *needle)
{
    char pwfile[64];
    struct config_diag d;

    write_temp_n(data, len, pwfile, sizeof(pwfile));
    cr_expect_null(load_pwfile(pwfile, &d));
    cr_expect(has_error(&d, ":3: pools[0] \"pg\": postgres.passwordFile: "), "%s", dump(&d));
    cr_expect(has_error(&d, needle), "no error contains '%s':%s", needle, dump(&d));
    expect_no_secret(&d);
    config_diag_free(&d);
    unlink(pwfile);
}

Test(password_file, read_at_load_newlines_stripped)
{
    char pwfile[64];
    struct config_diag d;
    struct config *cfg;

    write_temp(SECRET "\r\n\n", pwfile, sizeof(pwfile));
    cfg = load_pwfile_ok(pwfile, &d);
    unlink(pwfile);     /* the daemon keeps the secret, not the file */
    cr_expect_str_eq(cfg->pools[0].password, SECRET);
    cr_expect_str_eq(cfg->pools[0].password_file, pwfile);
    cr_expect_eq(d.nwarnings, 0);
    config_free(cfg);
    config_diag_free(&d);
}

Test(password_file, unusable_file_is_a_load_error)
{
    char big[SECRET_MAX + 2];

    expect_pwfile_error("", 0, " is empty (write the password into it)");
    expect_pwfile_error("\n\n", 2, " is empty");
    expect_pwfile_error(SECRET "\0tail\n", sizeof(SECRET "\0tail\n") - 1, " contains a NUL byte");
    memset(big, 'x', sizeof(big));
    memcpy(big, SECRET, strlen(SECRET));
    expect_pwfile_error(big, SECRET_MAX + 1, " is larger than 4096 bytes");
}

Test(password_file, largest_secret_is_accepted)
{
    char big[SECRET_MAX + 1], pwfile[64];
    struct config_diag d;
    struct config *cfg;

    memset(big, 'y', SECRET_MAX);
    big[SECRET_MAX] = '\0';
    write_temp(big, pwfile, sizeof(pwfile));
    cfg = load_pwfile_ok(pwfile, &d);
    cr_expect_eq(strlen(cfg->pools[0].password), SECRET_MAX);
    config_free(cfg);
    config_diag_free(&d);
    unlink(pwfile);
}

/* A missing file, a directory and a FIFO (which must not block the load:
 * nobody ever writes to it) are errors naming the file, with a hint. */
Test(password_file, missing_directory_and_fifo, .timeout = 20)
{
    char dir[] = "/tmp/dbpoold-pwf-XXXXXX", path[96];
    struct config_diag d;

    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/missing.pw", dir);
    cr_expect_null(load_pwfile(path, &d));
    cr_expect(has_error(&d, ":3: pools[0] \"pg\": postgres.passwordFile: cannot open "), "%s", dump(&d));
    cr_expect(has_error(&d, "missing.pw: No such file or directory (the file must hold the "
                            "password, readable by the user dbpoold runs as"), "%s", dump(&d));
    config_diag_free(&d);

    cr_expect_null(load_pwfile(dir, &d));
    cr_expect(has_error(&d, " is not a regular file"), "%s", dump(&d));
    config_diag_free(&d);

    snprintf(path, sizeof(path), "%s/fifo.pw", dir);
    cr_assert_eq(mkfifo(path, 0600), 0);
    cr_expect_null(load_pwfile(path, &d));
    cr_expect(has_error(&d, "fifo.pw is not a regular file"), "%s", dump(&d));
    config_diag_free(&d);
    unlink(path);
    rmdir(dir);
}

/* The environment form is read at load too, and its errors name the variable. */
Test(password_file, environment_override)
{
    char pwfile[64];
    struct config_diag d;
    struct config *cfg;

    write_temp("from-env-file\n", pwfile, sizeof(pwfile));
    setenv("DBPOOLD_POOL_PG_PASSWORD_FILE", pwfile, 1);
    cfg = load_pwfile_ok("/not/there", &d);
    cr_expect_str_eq(cfg->pools[0].password, "from-env-file");
    config_free(cfg);
    config_diag_free(&d);
    unlink(pwfile);
    setenv("DBPOOLD_POOL_PG_PASSWORD_FILE", "/not/there/either", 1);
    cr_expect_null(load_pwfile(pwfile, &d));
    cr_expect(has_error(&d, "environment DBPOOLD_POOL_PG_PASSWORD_FILE: cannot open "
                            "/not/there/either: No such file"), "%s", dump(&d));
    config_diag_free(&d);
}

/* Both keys set: that error alone, the file is not read (it does not exist). */
Test(password_file, not_read_when_password_is_set_too)
{
    struct config_diag d;

    setenv("DBPOOLD_POOL_PG_PASSWORD", SECRET, 1);
    cr_expect_null(load_pwfile("/not/there", &d));
    cr_expect_eq(d.nerrors, 1, "%s", dump(&d));
    cr_expect(has_error(&d, "are both set; keep only one"), "%s", dump(&d));
    config_diag_free(&d);
}

/* ---- secrets are wiped before their memory is freed ---- */

/* test_config links with -Wl,--wrap=free: every free() in this program's
 * own code (the configuration loader included) comes here first, so a
 * watched buffer can be checked at the moment it is freed. */
void __real_free(void *p);
void __wrap_free(void *p);

static const char *watched;         /* buffer to check when freed */
static size_t watched_len;
static int watched_frees, watched_dirty;

void __wrap_free(void *p)
{
    if (p && p == watched) {
        watched_frees++;
        for (size_t i = 0; i < watched_len; i++)
            watched_dirty += watched[i] != '\0';
        watched = NULL;
    }
    __real_free(p);
}

static void watch(const char *p)
{
    watched = p;
    watched_len = strlen(p);
    watched_frees = watched_dirty = 0;
}

Test(secrets, secret_free_wipes)
{
    char *s = strdup(SECRET);

    cr_assert_not_null(s);
    watch(s);
    secret_free(s);
    cr_expect_eq(watched_frees, 1);
    cr_expect_eq(watched_dirty, 0, "%d bytes of the secret were left in freed memory", watched_dirty);
    secret_free(NULL);
}

Test(secrets, config_free_wipes_the_password_read_from_the_file)
{
    char pwfile[64];
    struct config_diag d;
    struct config *cfg;

    write_temp(SECRET "\n", pwfile, sizeof(pwfile));
    cfg = load_pwfile_ok(pwfile, &d);
    unlink(pwfile);
    cr_assert_not_null(cfg->pools[0].password);
    watch(cfg->pools[0].password);
    config_free(cfg);
    cr_expect_eq(watched_frees, 1, "the password was not freed by config_free");
    cr_expect_eq(watched_dirty, 0, "%d bytes of the password were left in freed memory",
                 watched_dirty);
    config_diag_free(&d);
}

/* ---- @include ---- */

Test(config, include_is_relative_to_the_config_file)
{
    char dir[] = "/tmp/dbpoold-inc-XXXXXX", main_path[128], inc_path[128];
    struct config_diag d;
    struct config *cfg;
    FILE *f;

    cr_assert_not_null(mkdtemp(dir));
    snprintf(main_path, sizeof(main_path), "%s/main.conf", dir);
    snprintf(inc_path, sizeof(inc_path), "%s/pools.conf", dir);
    f = fopen(inc_path, "w");
    cr_assert_not_null(f);
    fputs("pools = ( { name = \"app\"; type = \"sqlite\";\n"
          "  sqlite = { filePath = \"/tmp/a.db\"; maxOpenConns = 0; }; } );\n", f);
    cr_assert_eq(fclose(f), 0);
    f = fopen(main_path, "w");
    cr_assert_not_null(f);
    fputs("daemon = { logLevel = \"warn\"; };\n@include \"pools.conf\"\n", f);
    cr_assert_eq(fclose(f), 0);

    cfg = config_load(main_path, &d);
    cr_expect_null(cfg);
    cr_expect(has_error(&d, "pools.conf:2: pools[0] \"app\": sqlite.maxOpenConns: must be at least 1"),
              "%s", dump(&d));
    config_diag_free(&d);
    unlink(inc_path);
    unlink(main_path);
    rmdir(dir);
}

/* ---- each driver declares its own keys: the mysql group ---- */

#define MYSQL_POOL(settings) \
    "pools = ( { name = \"my\"; type = \"mysql\";\n" \
    "  mysql = { host = \"db.example\"; name = \"app\"; username = \"u\"; password = \"pw\";\n" \
    "            " settings " }; } );\n"

Test(driver_config, mysql_defaults)
{
    struct config_diag d;
    struct config *cfg = load_ok(MYSQL_POOL(""), &d);
    const struct pool_config *p = &cfg->pools[0];
    const struct mysql_options *o = p->driver_opts;

    cr_assert_not_null(o, "a mysql pool got no options of its own");
    cr_expect_eq(p->port, 3306);
    cr_expect_str_eq(o->charset, "utf8mb4");
    cr_expect(o->parse_time);
    cr_expect_str_eq(o->loc, "Local");
    cr_expect_str_eq(o->ssl_mode, "DISABLED");
    cr_expect_null(o->ssl_ca);
    cr_expect_null(o->ssl_cert);
    cr_expect_null(o->ssl_key);
    cr_expect_eq(o->statement_cache_size, 256);
    cr_expect_eq(p->max_open_conns, 25);
    cr_expect_eq(p->max_idle_conns, 5);
    cr_expect_eq(p->conn_max_lifetime_ms, 300000);
    cr_expect_eq(p->conn_max_idle_time_ms, 60000);
    cr_expect_eq(p->timeout_ms, 30000);
    cr_expect_eq(p->max_retries, 3);
    cr_expect_eq(p->retry_delay_ms, 1000);
    cr_expect_eq(p->health_check_interval_ms, 30000);
    cr_expect_neq((const void *)o, (const void *)&mysql_default_options,
                  "the pool must own a copy, not the defaults");
    config_free(cfg);
    config_diag_free(&d);
}

Test(driver_config, mysql_every_key)
{
    struct config_diag d;
    struct config *cfg = load_ok(MYSQL_POOL(
        "charset = \"latin1\"; parseTime = false; loc = \"America/Argentina/Buenos_Aires\";\n"
        "sslMode = \"verify_ca\"; sslCa = \"/etc/ssl/ca.pem\"; sslCert = \"/etc/ssl/c.pem\";\n"
        "sslKey = \"/etc/ssl/c.key\"; statementCacheSize = 0; port = 3307;"), &d);
    const struct mysql_options *o = mysql_opts(&cfg->pools[0]);

    cr_expect_eq(cfg->pools[0].port, 3307);
    cr_expect_str_eq(o->charset, "latin1");
    cr_expect_not(o->parse_time);
    cr_expect_str_eq(o->loc, "America/Argentina/Buenos_Aires");
    cr_expect_str_eq(o->ssl_mode, "VERIFY_CA", "choices are stored as the table spells them");
    cr_expect_str_eq(o->ssl_ca, "/etc/ssl/ca.pem");
    cr_expect_str_eq(o->ssl_cert, "/etc/ssl/c.pem");
    cr_expect_str_eq(o->ssl_key, "/etc/ssl/c.key");
    cr_expect_eq(o->statement_cache_size, 0);
    config_free(cfg);
    config_diag_free(&d);

    static const char *const locs[] = { "UTC", "Local", "+05:30", "-12:00", "+14:00",
                                        "Etc/GMT+3", "Europe/Paris", NULL };
    for (const char *const *l = locs; *l; l++) {
        char text[512];

        snprintf(text, sizeof(text), MYSQL_POOL("loc = \"%s\"; sslMode = \"REQUIRED\";"), *l);
        cfg = load_ok(text, &d);
        cr_expect_str_eq(mysql_opts(&cfg->pools[0])->loc, *l);
        config_free(cfg);
        config_diag_free(&d);
    }
}

Test(driver_config, mysql_values_are_checked)
{
    EXPECT_ERRORS(MYSQL_POOL("charset = \"utf8; SET x=1\";"),
                  ":3: pools[0] \"my\": mysql.charset: must be a character set name of letters, "
                  "digits and '_', such as \"utf8mb4\" (got \"utf8; SET x=1\")");
    EXPECT_ERRORS(MYSQL_POOL("loc = \"+25:00\";"),
                  ":3: pools[0] \"my\": mysql.loc: must be \"Local\", \"UTC\", a time zone name "
                  "such as \"Europe/Paris\" or an offset such as \"+02:00\" (got \"+25:00\")");
    EXPECT_ERRORS(MYSQL_POOL("loc = \"../../etc/passwd\";"), "mysql.loc: must be \"Local\"");
    EXPECT_ERRORS(MYSQL_POOL("loc = \"Europe//Paris\";"), "mysql.loc: must be \"Local\"");
    EXPECT_ERRORS(MYSQL_POOL("sslMode = \"VERIFY_IDENTITY\";"),
                  ":3: pools[0] \"my\": mysql.sslMode: VERIFY_IDENTITY needs sslCa (set sslCa");
    EXPECT_ERRORS(MYSQL_POOL("sslMode = \"REQUIRED\"; sslCert = \"/c.pem\";"),
                  "mysql.sslCert: sslCert and sslKey go together");
    EXPECT_ERRORS(MYSQL_POOL("sslCa = \"/ca.pem\";"),
                  "mysql.sslMode: is DISABLED, but TLS files are set");
    EXPECT_ERRORS(MYSQL_POOL("sslMode = \"on\";"),
                  "mysql.sslMode: must be one of DISABLED, PREFERRED, REQUIRED, VERIFY_CA, "
                  "VERIFY_IDENTITY (got \"on\")");
    EXPECT_ERRORS(MYSQL_POOL("statementCacheSize = -1; parseTime = \"yes\";"),
                  "mysql.statementCacheSize: must be at least 0 (got -1)",
                  "mysql.parseTime: must be true or false, not a string (remove the quotes)");
    EXPECT_ERRORS(MYSQL_POOL("charset = \"\";"), "mysql.charset: must not be empty");
}

Test(driver_config, mysql_socket_host_must_fit)
{
    char text[1024], host[200];

    memset(host, 'x', sizeof(host) - 1);
    host[0] = '/';
    host[sizeof(host) - 1] = '\0';
    snprintf(text, sizeof(text),
             "pools = ( { name = \"my\"; type = \"mysql\";\n"
             "  mysql = { host = \"%s\"; name = \"app\"; username = \"u\"; password = \"p\"; }; } );\n",
             host);
    EXPECT_ERRORS(text, ":2: pools[0] \"my\": mysql.host: is a Unix socket path of 199 bytes");
}

/* The driver's keys belong to its group only, and the hints say whose. */
Test(driver_config, driver_keys_in_the_wrong_group)
{
    EXPECT_ERRORS(
        "pools = (\n"
        "  { name = \"pg\"; type = \"postgres\";\n"
        "    postgres = { host = \"h\"; name = \"d\"; username = \"u\"; password = \"p\";\n"
        "      parseTime = true; }; },\n"
        "  { name = \"s\"; type = \"sqlite\";\n"
        "    sqlite = { filePath = \"/tmp/s.db\"; statementCacheSize = 8; }; },\n"
        "  { name = \"my\"; type = \"mysql\";\n"
        "    mysql = { host = \"h\"; name = \"d\"; username = \"u\"; password = \"p\";\n"
        "      journalMode = \"WAL\"; }; }\n"
        ");\n",
        ":4: pools[0] \"pg\": postgres: unknown key \"parseTime\" (it is a mysql setting, not a "
        "postgres one)",
        ":6: pools[1] \"s\": sqlite: unknown key \"statementCacheSize\" (it is a postgres and mysql "
        "setting, not a sqlite one)",
        ":9: pools[2] \"my\": mysql: unknown key \"journalMode\" (it is a sqlite setting, not a "
        "mysql one)");
}

Test(driver_config, mysql_environment_overrides)
{
    struct config_diag d;
    struct config *cfg;

    setenv("DBPOOLD_POOL_MY_LOC", "UTC", 1);
    setenv("DBPOOLD_POOL_MY_PARSE_TIME", "off", 1);
    setenv("DBPOOLD_POOL_MY_STATEMENT_CACHE_SIZE", "16", 1);
    cfg = load_ok(MYSQL_POOL("loc = \"Europe/Paris\";"), &d);
    cr_expect_str_eq(mysql_opts(&cfg->pools[0])->loc, "UTC");
    cr_expect_not(mysql_opts(&cfg->pools[0])->parse_time);
    cr_expect_eq(mysql_opts(&cfg->pools[0])->statement_cache_size, 16);
    config_free(cfg);
    config_diag_free(&d);

    setenv("DBPOOLD_POOL_MY_CHARSET", "utf-8", 1);
    EXPECT_ERRORS(MYSQL_POOL(""), "environment DBPOOLD_POOL_MY_CHARSET: must be a character set "
                                  "name of letters, digits and '_'");
    unsetenv("DBPOOLD_POOL_MY_CHARSET");
    setenv("DBPOOLD_POOL_MY_SSL_MOD", "REQUIRED", 1);
    EXPECT_ERRORS(MYSQL_POOL(""), "DBPOOLD_POOL_MY_SSL_MOD", "DBPOOLD_POOL_MY_SSL_MODE");
}

/* Every pool type's settings hang on the pool; a postgres pool's own. */
Test(driver_config, each_pool_owns_its_driver_options)
{
    struct config_diag d;
    struct config *cfg = load_ok(
        "pools = (\n"
        "  { name = \"s\"; type = \"sqlite\"; sqlite = { filePath = \"/tmp/s.db\"; }; },\n"
        "  { name = \"pg\"; type = \"postgres\";\n"
        "    postgres = { host = \"h\"; name = \"d\"; username = \"u\"; password = \"p\";\n"
        "      statementCacheSize = 7; sslMode = \"REQUIRE\"; }; }\n"
        ");\n", &d);

    cr_assert_not_null(cfg->pools[0].driver_opts);
    cr_assert_not_null(cfg->pools[1].driver_opts);
    cr_expect_str_eq(sqlite_opts(&cfg->pools[0])->file_path, "/tmp/s.db");
    cr_expect_eq(pg_opts(&cfg->pools[1])->statement_cache_size, 7);
    cr_expect_str_eq(pg_opts(&cfg->pools[1])->ssl_mode, "require");
    cr_expect_eq(cfg->pools[1].port, 5432);
    cr_expect_eq(cfg->pools[0].port, 0, "a sqlite pool has no port");
    config_free(cfg);
    config_diag_free(&d);
}

/* ---- who may use a pool: allowUsers, allowGroups, client limits ---- */

#define ACCESS_POOL(settings) \
    "pools = ( { name = \"app\"; type = \"sqlite\";\n" \
    "  sqlite = { filePath = \"/tmp/app.db\";\n" \
    "    " settings " }; } );\n"

static void expect_ids(const struct id_set *s, const uint32_t *want, size_t n, const char *key)
{
    cr_assert_eq(s->n, n, "%s holds %zu ids, expected %zu", key, s->n, n);
    for (size_t i = 0; i < n; i++)
        cr_expect_eq(s->ids[i], want[i], "%s[%zu] = %u, expected %u", key, i, s->ids[i], want[i]);
}

/* Names are resolved at load into sorted numeric sets; numbers (quoted or
 * not) need not exist; duplicates collapse. */
Test(access_config, names_and_ids_become_sorted_id_sets)
{
    struct config_diag d;
    struct config *cfg = load_ok(ACCESS_POOL(
        "allowUsers = (\"daemon\", 4001, \"root\", \"4001\", \"nobody\");\n"
        "    allowGroups = [\"adm\", \"daemon\"]; maxClientsPerPool = 50;"), &d);
    const struct pool_config *p = &cfg->pools[0];

    expect_ids(&p->allow_users, (const uint32_t[]){ 0, 1, 4001, 65534 }, 4, "allowUsers");
    expect_ids(&p->allow_groups, (const uint32_t[]){ 1, 4 }, 2, "allowGroups");
    cr_expect(id_set_has(&p->allow_users, 4001));
    cr_expect_not(id_set_has(&p->allow_users, 4002));
    cr_expect_not(id_set_has(&p->allow_groups, 0));
    cr_expect_eq(p->max_clients_per_pool, 50);
    config_free(cfg);
    config_diag_free(&d);
}

Test(access_config, defaults_let_everyone_in_with_a_per_user_bound)
{
    struct config_diag d;
    struct config *cfg = load_ok(MINIMAL, &d);

    cr_expect_eq(cfg->pools[0].allow_users.n, 0);
    cr_expect_eq(cfg->pools[0].allow_groups.n, 0);
    cr_expect_eq(cfg->pools[0].max_clients_per_pool, 0, "no per-pool limit by default");
    cr_expect_eq(cfg->daemon.max_clients_per_user, 1000);
    config_free(cfg);
    config_diag_free(&d);
}

/* A single value, and the comma-separated string an environment variable is. */
Test(access_config, single_value_and_environment_list)
{
    struct config_diag d;
    struct config *cfg;

    setenv("DBPOOLD_POOL_APP_ALLOW_GROUPS", " daemon, 7 ,adm", 1);
    setenv("DBPOOLD_DAEMON_MAX_CLIENTS_PER_USER", "0", 1);
    cfg = load_ok(ACCESS_POOL("allowUsers = \"root\"; allowGroups = (\"root\");"), &d);
    expect_ids(&cfg->pools[0].allow_users, (const uint32_t[]){ 0 }, 1, "allowUsers");
    expect_ids(&cfg->pools[0].allow_groups, (const uint32_t[]){ 1, 4, 7 }, 3, "allowGroups");
    cr_expect_eq(cfg->daemon.max_clients_per_user, 0);
    config_free(cfg);
    config_diag_free(&d);
}

/* Every unknown name is an error at its own line; an empty list too (it
 * would lock everyone out); wrong types and ranges say how to write it. */
Test(access_config, unknown_names_and_bad_values_are_errors_with_their_line)
{
    EXPECT_ERRORS(ACCESS_POOL("allowUsers = (\"root\",\n"
                              "      \"no_such_user_dbpt\");\n"
                              "    allowGroups = (\"no_such_group_dbpt\");"),
                  ":4: pools[0] \"app\": sqlite.allowUsers: no user named \"no_such_user_dbpt\" on "
                  "this system (check it with getent passwd no_such_user_dbpt",
                  ":5: pools[0] \"app\": sqlite.allowGroups: no group named \"no_such_group_dbpt\"");
    EXPECT_ERRORS(ACCESS_POOL("allowUsers = ();"),
                  "sqlite.allowUsers: lists no user (an empty list would refuse every client");
    EXPECT_ERRORS(ACCESS_POOL("allowGroups = (1.5);"),
                  "each group must be a name in double quotes or a numeric gid, not a floating-point");
    EXPECT_ERRORS(ACCESS_POOL("allowUsers = (-1, 4294967295L);"),
                  "-1 is not a valid uid", "4294967295 is not a valid uid");
    EXPECT_ERRORS(ACCESS_POOL("maxClientsPerPool = -1;"), "maxClientsPerPool: must be at least 0");
    setenv("DBPOOLD_POOL_APP_ALLOW_USERS", "root,,no_such_user_dbpt", 1);
    EXPECT_ERRORS(MINIMAL, "environment DBPOOLD_POOL_APP_ALLOW_USERS: no user named \"no_such_user_dbpt\"");
}

/* ---- the status socket's admin keys (status.md, "Who may do what") ---- */

Test(admin_config, admin_lists_and_status_socket_mode)
{
    struct config_diag d = { 0 };
    struct config *cfg = load_ok("daemon = { statusSocketMode = \"0600\";\n"
                                 "  adminUsers = (\"root\", 1234); adminGroups = (\"0\"); };\n"
                                 MINIMAL, &d);

    cr_assert_eq(cfg->daemon.status_socket_mode, 0600);
    cr_assert_eq(cfg->daemon.admin_users.n, 2);
    cr_assert(id_set_has(&cfg->daemon.admin_users, 0) && id_set_has(&cfg->daemon.admin_users, 1234));
    cr_assert(id_set_has(&cfg->daemon.admin_groups, 0));
    config_free(cfg);
    config_diag_free(&d);
    cfg = load_ok(MINIMAL, &d);
    cr_assert_eq(cfg->daemon.status_socket_mode, 0660, "the default mode");
    cr_assert_eq(cfg->daemon.admin_users.n, 0);
    config_free(cfg);
    config_diag_free(&d);
    EXPECT_ERRORS("daemon = { adminUsers = (); };\n" MINIMAL,
                  "daemon.adminUsers: lists no user (remove the key: root and dbpoold's own user");
    EXPECT_ERRORS("daemon = { adminGroups = (\"no_such_group_dbpt\"); };\n" MINIMAL,
                  ":1: daemon.adminGroups: no group named \"no_such_group_dbpt\"");
}

/* ---- maxPinned: pinned sessions never take every connection ---- */

#define PG_POOL(settings) \
    "pools = ( { name = \"pg\"; type = \"postgres\";\n" \
    "  postgres = { host = \"h\"; name = \"db\"; username = \"u\"; password = \"pw\"; " settings " }; } );\n"

static int loaded_max_pinned(const char *text)
{
    struct config_diag d;
    struct config *cfg = load_ok(text, &d);
    int n = cfg->pools[0].max_pinned;

    config_free(cfg);
    config_diag_free(&d);
    return n;
}

Test(pin_config, default_is_a_quarter_of_the_connections_and_never_all)
{
    cr_expect_eq(loaded_max_pinned(PG_POOL("")), 6, "maxOpenConns 25 -> 6");
    cr_expect_eq(loaded_max_pinned(PG_POOL("maxOpenConns = 4;")), 1);
    cr_expect_eq(loaded_max_pinned(PG_POOL("maxOpenConns = 2;")), 1);
    cr_expect_eq(loaded_max_pinned(PG_POOL("maxOpenConns = 1;")), 0,
                 "the one connection of a pool is never pinned");
    cr_expect_eq(loaded_max_pinned(PG_POOL("maxOpenConns = 10; maxPinned = 9;")), 9);
    cr_expect_eq(loaded_max_pinned(MINIMAL), 1, "sqlite pins its one writer");
    cr_expect_eq(loaded_max_pinned(ACCESS_POOL("maxPinned = 0;")), 0);
}

Test(pin_config, pins_that_could_take_every_connection_are_refused)
{
    EXPECT_ERRORS(PG_POOL("maxOpenConns = 4; maxPinned = 4;"),
                  "maxPinned", "must be below maxOpenConns (4) (got 4)");
    EXPECT_ERRORS(ACCESS_POOL("maxPinned = 2;"), "must be 0 or 1 (got 2)");
    EXPECT_ERRORS(PG_POOL("maxPinned = -1;"), "maxPinned");
}
