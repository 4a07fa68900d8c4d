/*
 * config.c — loads dbpoold's configuration (contract: configuration.h; reference:
 * doc/configuration.md).
 *
 * Every known key is described once, in a table of key_spec (name, kind,
 * field offset, range). Loading runs in phases so that all problems are
 * found in one run:
 *   1. libconfig reads the file (syntax errors stop here: nothing else can
 *      be trusted);
 *   2. the tree is walked; for each known key the setting that gives its
 *      value is remembered in a "slot", unknown keys are reported;
 *   3. environ is scanned: DBPOOLD_DAEMON_<KEY> and DBPOOLD_POOL_<NAME>_<KEY>
 *      replace the slot's source;
 *   4. each slot is converted into its struct field with type and range
 *      checks; then the checks that span keys run (required keys,
 *      maxIdleConns <= maxOpenConns, password vs passwordFile, ...), and
 *      passwordFile is read into password (backend/secret.c), so no file
 *      is read at connect time.
 * Defaults are written into the structs before phase 4, so a key without a
 * slot keeps its default.
 *
 * Messages go to the caller's struct config_diag, each prefixed with
 * "file:line: context: key: " or "environment VAR: ". The value of a secret
 * key (password) is never copied into a message.
 */
#include "daemon/configuration.h"
#include "daemon/backoff.h"
#include "backend/secret.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <libconfig.h>

extern char **environ;

#ifdef RUNSTATEDIR
#define DEFAULT_RUNDIR RUNSTATEDIR
#else
#define DEFAULT_RUNDIR "/run"
#endif
#define DEFAULT_SOCKET DEFAULT_RUNDIR "/dbpoold/dbpoold.sock"
#define DEFAULT_STATUS_SOCKET DEFAULT_RUNDIR "/dbpoold/status.sock"

#define ENV_DAEMON_PREFIX "DBPOOLD_DAEMON_"
#define ENV_POOL_PREFIX "DBPOOLD_POOL_"

#define MAX_KEYS 32                 /* keys per section (checked below) */
#define KEY_NAME_MAX 48             /* longest key name, camelCase or env form */
#define POOL_NAME_MAX 63
#define DURATION_MAX_MS (8760ULL * 3600 * 1000)     /* 8760h, one year */
#define SUN_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)
#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

#if defined(__GNUC__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define PRINTF_LIKE(f, a)
#endif

/* ---- key tables ---- */

enum kind {
    K_INT,          /* int field */
    K_U32,          /* uint32_t field */
    K_SIZE,         /* size_t field */
    K_DURATION,     /* uint64_t milliseconds, written as a string "30s" */
    K_BOOL,         /* bool field */
    K_STRING,       /* char * field */
    K_CHOICE,       /* char * field, one of choices (stored as spelled there) */
    K_LOG_LEVEL,    /* enum log_level field */
    K_MODE,         /* unsigned field, octal string "0660" */
};

enum {
    F_REQUIRED = 1u << 0,
    F_NONEMPTY = 1u << 1,
    F_SECRET = 1u << 2,     /* never show the value */
    F_SOCKPATH = 1u << 3,   /* must fit in sockaddr_un.sun_path */
};

struct key_spec {
    const char *name;               /* camelCase, as written in the file */
    enum kind kind;
    size_t offset;                  /* into struct daemon_config / pool_config */
    long long min, max;             /* integers: value range; durations: ms */
    const char *const *choices;     /* K_CHOICE, NULL-terminated */
    unsigned flags;
    const char *example;            /* F_REQUIRED: shown when missing */
};

static const char *const journal_modes[] =
    { "WAL", "DELETE", "TRUNCATE", "PERSIST", "MEMORY", "OFF", NULL };
static const char *const sync_modes[] = { "OFF", "NORMAL", "FULL", "EXTRA", NULL };
static const char *const auto_vacuum_modes[] = { "NONE", "FULL", "INCREMENTAL", NULL };
static const char *const ssl_modes[] = { "disable", "allow", "prefer", "require",
                                         "verify-ca", "verify-full", NULL };
/* Indexed by enum log_level. */
static const char *const log_levels[] = { "debug", "info", "warn", "error", NULL };

#define DOFF(f) offsetof(struct daemon_config, f)
#define POFF(f) offsetof(struct pool_config, f)

static const struct key_spec daemon_keys[] = {
    { "socket", K_STRING, DOFF(socket), 0, 0, NULL, F_NONEMPTY | F_SOCKPATH, NULL },
    { "statusSocket", K_STRING, DOFF(status_socket), 0, 0, NULL, F_SOCKPATH, NULL },
    { "socketMode", K_MODE, DOFF(socket_mode), 0, 0777, NULL, 0, NULL },
    { "logLevel", K_LOG_LEVEL, DOFF(log_level), 0, 0, log_levels, 0, NULL },
    { "maxFrameSize", K_U32, DOFF(max_frame_size), 1024, 1073741824, NULL, 0, NULL },
    { "maxParams", K_U32, DOFF(max_params), 1, 65535, NULL, 0, NULL },
    { "maxBatchStatements", K_U32, DOFF(max_batch_statements), 1, 65535, NULL, 0, NULL },
    { "maxClients", K_U32, DOFF(max_clients), 1, 1000000, NULL, 0, NULL },
    { "listenBacklog", K_U32, DOFF(listen_backlog), 1, 65535, NULL, 0, NULL },
    { "outputHighWater", K_SIZE, DOFF(output_high_water), 4096, 1073741824, NULL, 0, NULL },
    { "clientBufferBudget", K_SIZE, DOFF(client_buffer_budget), 2048, 1099511627776LL, NULL, 0, NULL },
    { "frameTimeout", K_DURATION, DOFF(frame_timeout_ms), 1, DURATION_MAX_MS, NULL, 0, NULL },
    { "writeStallTimeout", K_DURATION, DOFF(write_stall_timeout_ms), 0, DURATION_MAX_MS, NULL, 0, NULL },
    { "shutdownTimeout", K_DURATION, DOFF(shutdown_timeout_ms), 1, DURATION_MAX_MS, NULL, 0, NULL },
    { "clientIdleTimeout", K_DURATION, DOFF(client_idle_timeout_ms), 0, DURATION_MAX_MS, NULL, 0, NULL },
    { "idleTransactionTimeout", K_DURATION, DOFF(idle_transaction_timeout_ms), 0, DURATION_MAX_MS, NULL, 0, NULL },
};

/* Keys every pool type has, at the start of every type's table. */
#define COMMON_POOL_KEYS \
    { "maxOpenConns", K_INT, POFF(max_open_conns), 1, INT_MAX, NULL, 0, NULL }, \
    { "maxIdleConns", K_INT, POFF(max_idle_conns), 0, INT_MAX, NULL, 0, NULL }, \
    { "connMaxLifetime", K_DURATION, POFF(conn_max_lifetime_ms), 0, DURATION_MAX_MS, NULL, 0, NULL }, \
    { "connMaxIdleTime", K_DURATION, POFF(conn_max_idle_time_ms), 0, DURATION_MAX_MS, NULL, 0, NULL }, \
    { "timeout", K_DURATION, POFF(timeout_ms), 1, DURATION_MAX_MS, NULL, 0, NULL }, \
    { "healthCheckInterval", K_DURATION, POFF(health_check_interval_ms), 0, DURATION_MAX_MS, NULL, 0, NULL }, \
    { "acquireTimeout", K_DURATION, POFF(acquire_timeout_ms), 1, DURATION_MAX_MS, NULL, 0, NULL }, \
    { "statementTimeout", K_DURATION, POFF(statement_timeout_ms), 0, DURATION_MAX_MS, NULL, 0, NULL }

/* Keys of the network servers (postgres, mysql). */
#define SERVER_POOL_KEYS \
    { "host", K_STRING, POFF(host), 0, 0, NULL, F_REQUIRED | F_NONEMPTY, "host = \"localhost\";" }, \
    { "port", K_INT, POFF(port), 1, 65535, NULL, 0, NULL }, \
    { "name", K_STRING, POFF(dbname), 0, 0, NULL, F_REQUIRED | F_NONEMPTY, "name = \"appdb\";" }, \
    { "username", K_STRING, POFF(username), 0, 0, NULL, F_REQUIRED | F_NONEMPTY, "username = \"app\";" }, \
    { "password", K_STRING, POFF(password), 0, 0, NULL, F_SECRET, NULL }, \
    { "passwordFile", K_STRING, POFF(password_file), 0, 0, NULL, F_NONEMPTY, NULL }, \
    { "maxRetries", K_INT, POFF(max_retries), 0, INT_MAX, NULL, 0, NULL }, \
    { "retryDelay", K_DURATION, POFF(retry_delay_ms), 0, DURATION_MAX_MS, NULL, 0, NULL }, \
    { "retryMaxDelay", K_DURATION, POFF(retry_max_delay_ms), 1, DURATION_MAX_MS, NULL, 0, NULL }

static const struct key_spec sqlite_keys[] = {
    COMMON_POOL_KEYS,
    { "filePath", K_STRING, POFF(file_path), 0, 0, NULL, F_REQUIRED | F_NONEMPTY,
      "filePath = \"/var/lib/dbpoold/app.db\";" },
    { "journalMode", K_CHOICE, POFF(journal_mode), 0, 0, journal_modes, 0, NULL },
    { "syncMode", K_CHOICE, POFF(sync_mode), 0, 0, sync_modes, 0, NULL },
    { "cacheSize", K_INT, POFF(cache_size), INT_MIN, INT_MAX, NULL, 0, NULL },
    { "foreignKeys", K_BOOL, POFF(foreign_keys), 0, 0, NULL, 0, NULL },
    { "autoVacuum", K_CHOICE, POFF(auto_vacuum), 0, 0, auto_vacuum_modes, 0, NULL },
};

static const struct key_spec postgres_keys[] = {
    COMMON_POOL_KEYS,
    SERVER_POOL_KEYS,
    { "sslMode", K_CHOICE, POFF(ssl_mode), 0, 0, ssl_modes, 0, NULL },
    { "statementCacheSize", K_INT, POFF(statement_cache_size), 0, 65536, NULL, 0, NULL },
};

static const struct key_spec mysql_keys[] = {
    COMMON_POOL_KEYS,
    SERVER_POOL_KEYS,
    { "charset", K_STRING, POFF(charset), 0, 0, NULL, F_NONEMPTY, NULL },
};

_Static_assert(NELEMS(daemon_keys) <= MAX_KEYS, "raise MAX_KEYS");
_Static_assert(NELEMS(sqlite_keys) <= MAX_KEYS, "raise MAX_KEYS");
_Static_assert(NELEMS(postgres_keys) <= MAX_KEYS, "raise MAX_KEYS");
_Static_assert(NELEMS(mysql_keys) <= MAX_KEYS, "raise MAX_KEYS");

struct type_info {
    const char *name;               /* value of "type" and name of the group */
    enum backend_type type;
    const struct key_spec *keys;
    size_t nkeys;
};

static const struct type_info types[] = {
    { "sqlite", BACKEND_SQLITE, sqlite_keys, NELEMS(sqlite_keys) },
    { "postgres", BACKEND_POSTGRES, postgres_keys, NELEMS(postgres_keys) },
    { "mysql", BACKEND_MYSQL, mysql_keys, NELEMS(mysql_keys) },
};

static const char *const type_names[] = { "sqlite", "postgres", "mysql", NULL };
static const char *const root_keys[] = { "daemon", "pools", NULL };
static const char *const entry_keys[] = { "name", "type", "sqlite", "postgres", "mysql", NULL };

/* Pseudo-specs for the pool entry's own keys, used in type errors. */
static const struct key_spec name_spec = { "name", K_STRING, 0, 0, 0, NULL, 0, NULL };
static const struct key_spec type_spec = { "type", K_STRING, 0, 0, 0, NULL, 0, NULL };

/* ---- load state ---- */

/* Where a key's value comes from: a file setting, or an environment
 * variable (which wins). Pointers into the libconfig tree and environ. */
struct slot {
    const config_setting_t *setting;
    const char *env;                /* "NAME=value"; env_len is NAME's length */
    size_t env_len;
    const char *env_val;
};

/* The daemon group or one pool: its keys and their slots. */
struct section {
    const struct key_spec *keys;
    size_t nkeys;
    void *base;                     /* struct daemon_config or pool_config */
    const char *ctx;                /* NULL or "pools[0] \"app\"" */
    const char *group;              /* "daemon", "sqlite", ... */
    const config_setting_t *anchor; /* group (or entry) for missing-key messages */
    char env_prefix[96];            /* "DBPOOLD_POOL_APP_"; "" if the pool has no valid name */
    bool skip_required;             /* group missing: already reported */
    struct slot slots[MAX_KEYS];
    bool failed[MAX_KEYS];          /* conversion failed: field kept its default */
};

struct pool_work {
    struct section sec;
    char ctx[96];
    char env_name[POOL_NAME_MAX + 1];   /* <NAME> in DBPOOLD_POOL_<NAME>_<KEY> */
    const config_setting_t *entry;
    const struct type_info *type;       /* NULL: missing or unknown type */
    bool named;                         /* has a valid name */
};

struct loader {
    const char *path;
    struct config_diag *diag;
    unsigned *order[2];             /* sort key (line) of each error / warning */
    bool oom;
    bool pools_bad;                 /* "pools" present but not a list */
    struct config *cfg;
    struct section daemon;
    struct pool_work *pools;        /* cfg->npools entries */
};

/* The location a message is about. */
struct where {
    const char *file;               /* NULL when about an environment variable */
    unsigned line;
    const char *ctx;
    const char *group;
    const char *key;
    const char *env;
    size_t env_len;
};

/* ---- diagnostics ---- */

static void appendf(char *buf, size_t size, size_t *pos, const char *fmt, ...) PRINTF_LIKE(4, 5);
static void report(struct loader *ld, const struct where *w, const char *fmt, ...) PRINTF_LIKE(3, 4);
static void warn(struct loader *ld, const struct where *w, const char *fmt, ...) PRINTF_LIKE(3, 4);

static void appendf(char *buf, size_t size, size_t *pos, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (*pos >= size)
        return;
    va_start(ap, fmt);
    n = vsnprintf(buf + *pos, size - *pos, fmt, ap);
    va_end(ap);
    if (n > 0)
        *pos = (size_t)n >= size - *pos ? size - 1 : *pos + (size_t)n;
}

static void build_prefix(const struct where *w, char *buf, size_t size)
{
    size_t pos = 0;

    buf[0] = '\0';
    if (w->env) {
        appendf(buf, size, &pos, "environment %.*s: ", (int)w->env_len, w->env);
        return;
    }
    appendf(buf, size, &pos, "%s", w->file);
    if (w->line)
        appendf(buf, size, &pos, ":%u", w->line);
    appendf(buf, size, &pos, ": ");
    if (w->ctx)
        appendf(buf, size, &pos, "%s: ", w->ctx);
    if (w->group && w->key)
        appendf(buf, size, &pos, "%s.%s: ", w->group, w->key);
    else if (w->group || w->key)
        appendf(buf, size, &pos, "%s: ", w->group ? w->group : w->key);
}

static bool list_push(char ***list, size_t *n, char *msg)
{
    char **grown = realloc(*list, (*n + 1) * sizeof(**list));

    if (!grown)
        return false;
    grown[(*n)++] = msg;
    *list = grown;
    return true;
}

/* Remembers the line of message number n, so messages can be put in file
 * order at the end (environment messages last). */
static void push_order(struct loader *ld, bool warning, unsigned line, size_t n)
{
    unsigned *grown = realloc(ld->order[warning], n * sizeof(*grown));

    if (!grown) {
        ld->oom = true;
        return;
    }
    grown[n - 1] = line;
    ld->order[warning] = grown;
}

/* Stable insertion sort of msgs by line. */
static void sort_by_line(char **msgs, unsigned *lines, size_t n)
{
    size_t i, j;

    for (i = 1; i < n; i++) {
        char *m = msgs[i];
        unsigned l = lines[i];

        for (j = i; j > 0 && lines[j - 1] > l; j--) {
            msgs[j] = msgs[j - 1];
            lines[j] = lines[j - 1];
        }
        msgs[j] = m;
        lines[j] = l;
    }
}

static void vadd(struct loader *ld, bool warning, const struct where *w,
                 const char *fmt, va_list ap) PRINTF_LIKE(4, 0);

static void vadd(struct loader *ld, bool warning, const struct where *w,
                 const char *fmt, va_list ap)
{
    char prefix[512];
    char *msg;
    size_t plen;
    va_list ap2;
    int n;

    build_prefix(w, prefix, sizeof(prefix));
    plen = strlen(prefix);
    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    msg = n < 0 ? NULL : malloc(plen + (size_t)n + 1);
    if (!msg) {
        ld->oom = true;
        return;
    }
    memcpy(msg, prefix, plen);
    vsnprintf(msg + plen, (size_t)n + 1, fmt, ap);
    if (warning ? !list_push(&ld->diag->warnings, &ld->diag->nwarnings, msg)
                : !list_push(&ld->diag->errors, &ld->diag->nerrors, msg)) {
        free(msg);
        ld->oom = true;
        return;
    }
    push_order(ld, warning, w->env ? UINT_MAX : w->line,
               warning ? ld->diag->nwarnings : ld->diag->nerrors);
}

static void report(struct loader *ld, const struct where *w, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vadd(ld, false, w, fmt, ap);
    va_end(ap);
}

static void warn(struct loader *ld, const struct where *w, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vadd(ld, true, w, fmt, ap);
    va_end(ap);
}

/* s as a double-quoted string safe to print: non-printable bytes become '?',
 * long values are cut with "...". Returns buf. */
static const char *quoted(const char *s, char *buf, size_t size)
{
    size_t len = strlen(s), i, o = 0;
    bool cut = len + 3 > size;

    buf[o++] = '"';
    for (i = 0; i < len && o + (cut ? 5 : 2) < size; i++)
        buf[o++] = isprint((unsigned char)s[i]) ? s[i] : '?';
    if (cut) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

static struct where where_setting(const struct loader *ld, const struct section *sec,
                                  const config_setting_t *s, const char *key)
{
    const char *file = config_setting_source_file(s);
    struct where w = { 0 };

    w.file = file ? file : ld->path;
    w.line = config_setting_source_line(s);
    w.ctx = sec ? sec->ctx : NULL;
    w.group = sec ? sec->group : NULL;
    w.key = key;
    return w;
}

static struct where where_env(const char *env, size_t env_len)
{
    struct where w = { 0 };

    w.env = env;
    w.env_len = env_len;
    return w;
}

static struct where where_slot(const struct loader *ld, const struct section *sec,
                               const struct key_spec *k, const struct slot *sl)
{
    if (sl->env)
        return where_env(sl->env, sl->env_len);
    return where_setting(ld, sec, sl->setting, k->name);
}

/* ---- names and suggestions ---- */

/* Optimal string alignment distance, ignoring case; SIZE_MAX if too long. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), i, j;
    size_t d[KEY_NAME_MAX + 1][KEY_NAME_MAX + 1];

    if (la > KEY_NAME_MAX || lb > KEY_NAME_MAX)
        return SIZE_MAX;
    for (i = 0; i <= la; i++)
        d[i][0] = i;
    for (j = 0; j <= lb; j++)
        d[0][j] = j;
    for (i = 1; i <= la; i++) {
        for (j = 1; j <= lb; j++) {
            int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
            size_t best = d[i - 1][j - 1] + (ca != cb);

            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2])
                && tolower((unsigned char)a[i - 2]) == cb && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

/* The candidate closest to name (at most 2 edits, and fewer edits than name
 * has characters), or NULL. */
static const char *closest(const char *name, const char *const *cands, size_t n)
{
    const char *best = NULL;
    size_t best_d = 3, i;

    for (i = 0; i < n; i++) {
        size_t d = edit_distance(name, cands[i]);

        if (d < best_d && d < strlen(name)) {
            best = cands[i];
            best_d = d;
        }
    }
    return best;
}

static size_t strv_len(const char *const *v)
{
    size_t n = 0;

    while (v[n])
        n++;
    return n;
}

static size_t key_names(const struct key_spec *keys, size_t nkeys, const char **out)
{
    size_t i;

    for (i = 0; i < nkeys; i++)
        out[i] = keys[i].name;
    return nkeys;
}

/* "maxOpenConns" -> "MAX_OPEN_CONNS". */
static void env_key(const char *name, char *buf, size_t size)
{
    size_t o = 0;

    for (; *name && o + 2 < size; name++) {
        if (isupper((unsigned char)*name) && o > 0)
            buf[o++] = '_';
        buf[o++] = (char)toupper((unsigned char)*name);
    }
    buf[o] = '\0';
}

/* "my-app" -> "MY_APP". */
static void env_pool_name(const char *name, char *buf, size_t size)
{
    size_t o = 0;

    for (; *name && o + 1 < size; name++)
        buf[o++] = *name == '-' ? '_' : (char)toupper((unsigned char)*name);
    buf[o] = '\0';
}

static int find_key(const struct key_spec *keys, size_t nkeys, const char *name)
{
    size_t i;

    for (i = 0; i < nkeys; i++)
        if (strcmp(keys[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* Index of the key whose env form is key[0..len), or -1. */
static int find_env_key(const struct key_spec *keys, size_t nkeys, const char *key, size_t len)
{
    char buf[KEY_NAME_MAX];
    size_t i;

    for (i = 0; i < nkeys; i++) {
        env_key(keys[i].name, buf, sizeof(buf));
        if (strlen(buf) == len && memcmp(buf, key, len) == 0)
            return (int)i;
    }
    return -1;
}

static const struct type_info *find_type(const char *name)
{
    size_t i;

    for (i = 0; i < NELEMS(types); i++)
        if (strcmp(types[i].name, name) == 0)
            return &types[i];
    return NULL;
}

/* ", " separated list of v, e.g. "sqlite, postgres, mysql". */
static const char *join(const char *const *v, char *buf, size_t size)
{
    size_t pos = 0;

    buf[0] = '\0';
    for (; *v; v++)
        appendf(buf, size, &pos, "%s%s", pos ? ", " : "", *v);
    return buf;
}

/* ---- values ---- */

/* Whole-string base-10 integer. */
static bool parse_int(const char *s, long long *out)
{
    char *end;
    long long v;

    if (!*s || isspace((unsigned char)*s))
        return false;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

static bool parse_bool_word(const char *s, bool *out)
{
    static const char *const yes[] = { "true", "1", "yes", "on" };
    static const char *const no[] = { "false", "0", "no", "off" };
    size_t i;

    for (i = 0; i < NELEMS(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0 || strcasecmp(s, no[i]) == 0) {
            *out = strcasecmp(s, yes[i]) == 0;
            return true;
        }
    }
    return false;
}

/* "0660" or "660": 1 to 4 octal digits, at most 0777. */
static bool parse_mode(const char *s, unsigned *out)
{
    unsigned v = 0;
    size_t n = 0;

    for (; *s; s++, n++) {
        if (*s < '0' || *s > '7' || n >= 4)
            return false;
        v = v * 8 + (unsigned)(*s - '0');
    }
    if (n == 0 || v > 0777)
        return false;
    *out = v;
    return true;
}

/* Index of s in choices, ignoring case, or -1. */
static int find_choice(const char *const *choices, const char *s)
{
    int i;

    for (i = 0; choices[i]; i++)
        if (strcasecmp(choices[i], s) == 0)
            return i;
    return -1;
}

/* ---- storing into the structs ---- */

static void *field(void *base, const struct key_spec *k)
{
    return (char *)base + k->offset;
}

static void set_str(struct loader *ld, char **dst, const char *s)
{
    char *copy = strdup(s);

    if (!copy) {
        ld->oom = true;
        return;
    }
    free(*dst);
    *dst = copy;
}

static void store_int(void *base, const struct key_spec *k, long long v)
{
    if (k->kind == K_INT)
        *(int *)field(base, k) = (int)v;
    else if (k->kind == K_U32)
        *(uint32_t *)field(base, k) = (uint32_t)v;
    else
        *(size_t *)field(base, k) = (size_t)v;
}

/* ---- reading one value (from a setting or an environment variable) ---- */

static const char *type_noun(int type)
{
    switch (type) {
    case CONFIG_TYPE_GROUP: return "a group";
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64: return "an integer";
    case CONFIG_TYPE_FLOAT: return "a floating-point number";
    case CONFIG_TYPE_STRING: return "a string";
    case CONFIG_TYPE_BOOL: return "a boolean";
    case CONFIG_TYPE_ARRAY: return "an array";
    case CONFIG_TYPE_LIST: return "a list";
    default: return "an unknown type";
    }
}

static const char *kind_noun(enum kind kind)
{
    switch (kind) {
    case K_INT:
    case K_U32:
    case K_SIZE: return "an integer";
    case K_DURATION: return "a duration string";
    case K_BOOL: return "true or false";
    case K_MODE: return "an octal string like \"0660\"";
    default: return "a string";
    }
}

static const char *type_hint(enum kind kind, int got)
{
    if (got == CONFIG_TYPE_GROUP || got == CONFIG_TYPE_LIST || got == CONFIG_TYPE_ARRAY)
        return "a single value is expected here";
    switch (kind) {
    case K_INT:
    case K_U32:
    case K_SIZE:
        return got == CONFIG_TYPE_STRING ? "remove the quotes" : "use a whole number";
    case K_DURATION:
        return "write durations as strings like \"30s\"";
    case K_BOOL:
        return got == CONFIG_TYPE_STRING ? "remove the quotes" : "write true or false";
    case K_MODE:
        return "quote it: an unquoted 0660 would be read as the decimal number 660";
    default:
        return "put the value in double quotes";
    }
}

static void type_error(struct loader *ld, const struct where *w, const struct key_spec *k,
                       const config_setting_t *s)
{
    int got = config_setting_type(s);

    if (got == CONFIG_TYPE_FLOAT && !(k->flags & F_SECRET))
        report(ld, w, "must be %s, not %s (got %g; %s)", kind_noun(k->kind),
               type_noun(got), config_setting_get_float(s), type_hint(k->kind, got));
    else
        report(ld, w, "must be %s, not %s (%s)", kind_noun(k->kind), type_noun(got),
               type_hint(k->kind, got));
}

/* The value as a string; false (reported) when the setting is no string. */
static bool slot_string(struct loader *ld, const struct where *w, const struct key_spec *k,
                        const struct slot *sl, const char **out)
{
    if (sl->env) {
        *out = sl->env_val;
        return true;
    }
    if (config_setting_type(sl->setting) != CONFIG_TYPE_STRING) {
        type_error(ld, w, k, sl->setting);
        return false;
    }
    *out = config_setting_get_string(sl->setting);
    return true;
}

static bool slot_int(struct loader *ld, const struct where *w, const struct key_spec *k,
                     const struct slot *sl, long long *out)
{
    char q[96];
    int t;

    if (sl->env) {
        if (parse_int(sl->env_val, out))
            return true;
        report(ld, w, "must be an integer (got %s)", quoted(sl->env_val, q, sizeof(q)));
        return false;
    }
    t = config_setting_type(sl->setting);
    if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) {
        type_error(ld, w, k, sl->setting);
        return false;
    }
    *out = config_setting_get_int64(sl->setting);
    return true;
}

static bool apply_int(struct loader *ld, const struct where *w, const struct key_spec *k,
                      const struct slot *sl, void *base)
{
    long long v;

    if (!slot_int(ld, w, k, sl, &v))
        return false;
    if (v < k->min) {
        report(ld, w, "must be at least %lld (got %lld)", k->min, v);
        return false;
    }
    if (v > k->max) {
        report(ld, w, "must be at most %lld (got %lld)", k->max, v);
        return false;
    }
    store_int(base, k, v);
    return true;
}

static bool apply_duration(struct loader *ld, const struct where *w, const struct key_spec *k,
                           const struct slot *sl, void *base)
{
    const char *s;
    char q[96];
    uint64_t ms;

    if (!slot_string(ld, w, k, sl, &s))
        return false;
    if (!parse_duration_ms(s, &ms)) {
        report(ld, w, "must be a duration such as \"250ms\", \"30s\", \"5m\" or \"1h30m\" "
               "(got %s; units are ms, s, m and h, largest first, whole numbers only)",
               quoted(s, q, sizeof(q)));
        return false;
    }
    if (ms < (uint64_t)k->min) {
        report(ld, w, "must be greater than 0 (got %s)", quoted(s, q, sizeof(q)));
        return false;
    }
    if (ms > (uint64_t)k->max) {
        report(ld, w, "must be at most \"8760h\" (one year) (got %s)", quoted(s, q, sizeof(q)));
        return false;
    }
    *(uint64_t *)field(base, k) = ms;
    return true;
}

static bool apply_bool(struct loader *ld, const struct where *w, const struct key_spec *k,
                       const struct slot *sl, void *base)
{
    char q[96];
    bool v;

    if (sl->env) {
        if (!parse_bool_word(sl->env_val, &v)) {
            report(ld, w, "must be true or false (also accepted: 1/0, yes/no, on/off) (got %s)",
                   quoted(sl->env_val, q, sizeof(q)));
            return false;
        }
    } else if (config_setting_type(sl->setting) == CONFIG_TYPE_BOOL) {
        v = config_setting_get_bool(sl->setting) != 0;
    } else {
        type_error(ld, w, k, sl->setting);
        return false;
    }
    *(bool *)field(base, k) = v;
    return true;
}

/* Checks a string value against the key's kind and stores it. */
static bool store_string_value(struct loader *ld, const struct where *w,
                               const struct key_spec *k, const char *s, void *base)
{
    char q[96], list[128];
    int choice;

    if (k->kind == K_CHOICE || k->kind == K_LOG_LEVEL) {
        choice = find_choice(k->choices, s);
        if (choice < 0) {
            report(ld, w, "must be one of %s (got %s)", join(k->choices, list, sizeof(list)),
                   quoted(s, q, sizeof(q)));
            return false;
        }
        if (k->kind == K_LOG_LEVEL)
            *(enum log_level *)field(base, k) = (enum log_level)choice;
        else
            set_str(ld, field(base, k), k->choices[choice]);
        return true;
    }
    if (k->kind == K_MODE) {
        if (!parse_mode(s, field(base, k))) {
            report(ld, w, "must be an octal permission mode from \"0000\" to \"0777\", "
                   "such as \"0660\" (got %s)", quoted(s, q, sizeof(q)));
            return false;
        }
        return true;
    }
    set_str(ld, field(base, k), s);
    return true;
}

static bool apply_string(struct loader *ld, const struct where *w, const struct key_spec *k,
                         const struct slot *sl, void *base)
{
    const char *s;

    if (!slot_string(ld, w, k, sl, &s))
        return false;
    if ((k->flags & F_NONEMPTY) && !*s) {
        report(ld, w, "must not be empty");
        return false;
    }
    if ((k->flags & F_SOCKPATH) && strlen(s) > SUN_PATH_MAX) {
        report(ld, w, "is %zu bytes long, but a Unix socket path can have at most %zu "
               "(choose a shorter path)", strlen(s), (size_t)SUN_PATH_MAX);
        return false;
    }
    return store_string_value(ld, w, k, s, base);
}

static bool apply_slot(struct loader *ld, const struct section *sec, const struct key_spec *k,
                       const struct slot *sl)
{
    struct where w = where_slot(ld, sec, k, sl);

    switch (k->kind) {
    case K_INT:
    case K_U32:
    case K_SIZE:
        return apply_int(ld, &w, k, sl, sec->base);
    case K_DURATION:
        return apply_duration(ld, &w, k, sl, sec->base);
    case K_BOOL:
        return apply_bool(ld, &w, k, sl, sec->base);
    default:
        return apply_string(ld, &w, k, sl, sec->base);
    }
}

/* ---- defaults ---- */

static void daemon_defaults(struct loader *ld, struct daemon_config *d)
{
    set_str(ld, &d->socket, DEFAULT_SOCKET);
    set_str(ld, &d->status_socket, DEFAULT_STATUS_SOCKET);
    d->socket_mode = 0666;
    d->log_level = LOG_INFO;
    d->max_frame_size = 16777216;
    d->max_params = 1024;
    d->max_batch_statements = 1000;
    d->max_clients = 10000;
    d->listen_backlog = 4096;
    d->output_high_water = 262144;
    d->client_buffer_budget = 268435456;
    d->frame_timeout_ms = 30000;
    d->write_stall_timeout_ms = 60000;
    d->shutdown_timeout_ms = 30000;
    d->client_idle_timeout_ms = 0;
    d->idle_transaction_timeout_ms = 0;
}

/* Type-specific strings are set only for their type; the others stay NULL. */
static void pool_defaults(struct loader *ld, struct pool_config *p)
{
    bool sqlite = p->type == BACKEND_SQLITE;

    p->max_open_conns = sqlite ? 1 : 25;
    p->max_idle_conns = sqlite ? 1 : 5;
    p->conn_max_lifetime_ms = 5 * 60000;
    p->conn_max_idle_time_ms = 60000;
    p->timeout_ms = 30000;
    p->health_check_interval_ms = 30000;
    p->acquire_timeout_ms = 10000;
    p->max_retries = 3;
    p->retry_delay_ms = 1000;
    p->retry_max_delay_ms = BACKOFF_CAP_MS;
    p->statement_timeout_ms = 0;
    if (sqlite) {
        set_str(ld, &p->journal_mode, "WAL");
        set_str(ld, &p->sync_mode, "NORMAL");
        p->cache_size = 1000;
        p->foreign_keys = true;
        set_str(ld, &p->auto_vacuum, "INCREMENTAL");
    } else if (p->type == BACKEND_POSTGRES) {
        p->port = 5432;
        set_str(ld, &p->ssl_mode, "disable");
        p->statement_cache_size = 256;
    } else {
        p->port = 3306;
        set_str(ld, &p->charset, "utf8mb4");
    }
}

/* ---- phase 2: walking the file ---- */

/* "it is a postgres and mysql setting, not a sqlite one", or NULL. */
static const char *other_type_hint(const struct type_info *t, const char *name,
                                   char *buf, size_t size)
{
    size_t pos = 0, i, n = 0;

    buf[0] = '\0';
    for (i = 0; i < NELEMS(types); i++) {
        if (&types[i] == t || find_key(types[i].keys, types[i].nkeys, name) < 0)
            continue;
        appendf(buf, size, &pos, "%s%s", n++ ? " and " : "it is a ", types[i].name);
    }
    if (!n)
        return NULL;
    appendf(buf, size, &pos, " setting, not a %s one", t->name);
    return buf;
}

static void report_unknown(struct loader *ld, const struct where *w, const char *name,
                           const char *const *cands, size_t n, const char *hint)
{
    const char *best = closest(name, cands, n);
    char q[96], list[512];
    size_t pos = 0, i;

    quoted(name, q, sizeof(q));
    if (hint) {
        report(ld, w, "unknown key %s (%s)", q, hint);
    } else if (best) {
        report(ld, w, "unknown key %s (did you mean \"%s\"?)", q, best);
    } else {
        list[0] = '\0';
        for (i = 0; i < n; i++)
            appendf(list, sizeof(list), &pos, "%s%s", i ? ", " : "", cands[i]);
        report(ld, w, "unknown key %s (valid keys here: %s)", q, list);
    }
}

/* Unknown key inside the daemon group or a pool's type group. */
static void unknown_in_section(struct loader *ld, const struct section *sec,
                               const struct type_info *t, const config_setting_t *s)
{
    const char *names[MAX_KEYS];
    const char *name = config_setting_name(s);
    const char *hint = NULL;
    struct where w = where_setting(ld, sec, s, NULL);
    size_t n = key_names(sec->keys, sec->nkeys, names);
    char hbuf[128];

    if (t && !closest(name, names, n))
        hint = other_type_hint(t, name, hbuf, sizeof(hbuf));
    report_unknown(ld, &w, name, names, n, hint);
}

static void collect(struct loader *ld, struct section *sec, const struct type_info *t,
                    const config_setting_t *group)
{
    int i, n = config_setting_length(group);

    sec->anchor = group;
    for (i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
        int idx = find_key(sec->keys, sec->nkeys, config_setting_name(s));

        if (idx >= 0)
            sec->slots[idx].setting = s;
        else
            unknown_in_section(ld, sec, t, s);
    }
}

static bool valid_pool_name(const char *s)
{
    size_t n = strlen(s), i;

    if (n < 1 || n > POOL_NAME_MAX)
        return false;
    for (i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
            return false;
    return true;
}

static struct where where_entry(const struct loader *ld, const struct pool_work *pw,
                                const config_setting_t *s, const char *key)
{
    struct where w = where_setting(ld, NULL, s, key);

    w.ctx = pw->ctx;
    return w;
}

static void read_pool_name(struct loader *ld, struct pool_work *pw, struct pool_config *pc,
                           size_t i)
{
    const config_setting_t *s = config_setting_get_member(pw->entry, "name");
    struct where w = where_entry(ld, pw, s ? s : pw->entry, "name");
    const char *name;
    char q[96];

    if (!s) {
        report(ld, &w, "missing required key (add name = \"app\"; using letters, digits, '_' and '-')");
        return;
    }
    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        type_error(ld, &w, &name_spec, s);
        return;
    }
    name = config_setting_get_string(s);
    if (!valid_pool_name(name)) {
        report(ld, &w, "must be 1 to %d characters from A-Z, a-z, 0-9, '_' and '-' (got %s)",
               POOL_NAME_MAX, quoted(name, q, sizeof(q)));
        return;
    }
    set_str(ld, &pc->name, name);
    pw->named = pc->name != NULL;
    snprintf(pw->ctx, sizeof(pw->ctx), "pools[%zu] \"%s\"", i, name);
    env_pool_name(name, pw->env_name, sizeof(pw->env_name));
}

/* Name of the first type group the entry has, for hints; NULL if none. */
static const char *present_type_group(const config_setting_t *entry)
{
    size_t i;

    for (i = 0; i < NELEMS(types); i++)
        if (config_setting_get_member(entry, types[i].name))
            return types[i].name;
    return NULL;
}

static void read_pool_type(struct loader *ld, struct pool_work *pw)
{
    const config_setting_t *s = config_setting_get_member(pw->entry, "type");
    struct where w = where_entry(ld, pw, s ? s : pw->entry, "type");
    const char *t, *best, *group;
    char q[96], list[64];

    join(type_names, list, sizeof(list));
    if (!s) {
        group = present_type_group(pw->entry);
        if (group)
            report(ld, &w, "missing required key (this pool has a %s group, so add type = \"%s\";)",
                   group, group);
        else
            report(ld, &w, "missing required key (add type = \"sqlite\"; valid types: %s)", list);
        return;
    }
    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        type_error(ld, &w, &type_spec, s);
        return;
    }
    t = config_setting_get_string(s);
    pw->type = find_type(t);
    if (pw->type)
        return;
    best = closest(t, type_names, NELEMS(types));
    if (best)
        report(ld, &w, "unknown type %s (did you mean \"%s\"? valid types: %s)",
               quoted(t, q, sizeof(q)), best, list);
    else
        report(ld, &w, "unknown type %s (valid types: %s)", quoted(t, q, sizeof(q)), list);
}

static void init_pool_section(struct loader *ld, struct pool_work *pw, struct pool_config *pc)
{
    struct section *sec = &pw->sec;

    pc->type = pw->type->type;
    pool_defaults(ld, pc);
    sec->keys = pw->type->keys;
    sec->nkeys = pw->type->nkeys;
    sec->base = pc;
    sec->ctx = pw->ctx;
    sec->group = pw->type->name;
    sec->anchor = pw->entry;
    if (pw->named)
        snprintf(sec->env_prefix, sizeof(sec->env_prefix), ENV_POOL_PREFIX "%s_", pw->env_name);
}

/* A "sqlite"/"postgres"/"mysql" member of a pool entry. Returns true when
 * it is the pool's settings group. */
static bool entry_type_group(struct loader *ld, struct pool_work *pw,
                             const struct type_info *ti, const config_setting_t *c)
{
    struct where w = where_entry(ld, pw, c, ti->name);

    if (!pw->type)
        return false;           /* the type problem is already reported */
    if (ti != pw->type) {
        report(ld, &w, "a %s pool cannot have a %s group (move these settings into "
               "%s = { ... }; or change type to \"%s\")",
               pw->type->name, ti->name, pw->type->name, ti->name);
        return false;
    }
    if (config_setting_type(c) != CONFIG_TYPE_GROUP) {
        report(ld, &w, "must be a group, not %s (write %s = { key = value; ... };)",
               type_noun(config_setting_type(c)), ti->name);
        return false;
    }
    collect(ld, &pw->sec, pw->type, c);
    return true;
}

static void walk_entry_members(struct loader *ld, struct pool_work *pw)
{
    int i, n = config_setting_length(pw->entry);
    bool have_group = false, misplaced;
    char hint[128];

    for (i = 0; i < n; i++) {
        const config_setting_t *c = config_setting_get_elem(pw->entry, (unsigned)i);
        const char *nm = config_setting_name(c);
        const struct type_info *ti = find_type(nm);
        struct where w = where_entry(ld, pw, c, NULL);

        if (strcmp(nm, "name") == 0 || strcmp(nm, "type") == 0)
            continue;
        if (ti) {
            have_group |= entry_type_group(ld, pw, ti, c);
            continue;
        }
        misplaced = pw->type && find_key(pw->type->keys, pw->type->nkeys, nm) >= 0;
        if (misplaced)
            snprintf(hint, sizeof(hint), "settings of a %s pool go inside %s = { ... };",
                     pw->type->name, pw->type->name);
        report_unknown(ld, &w, nm, entry_keys, strv_len(entry_keys), misplaced ? hint : NULL);
    }
    if (pw->type && !have_group) {
        struct where w = where_entry(ld, pw, pw->entry, NULL);

        if (!config_setting_get_member(pw->entry, pw->type->name))
            report(ld, &w, "missing group \"%s\" (a %s pool keeps its settings in %s = { ... };)",
                   pw->type->name, pw->type->name, pw->type->name);
        pw->sec.skip_required = true;
    }
}

static void walk_pool(struct loader *ld, size_t i, const config_setting_t *entry)
{
    struct pool_work *pw = &ld->pools[i];
    struct pool_config *pc = &ld->cfg->pools[i];

    pw->entry = entry;
    pc->line = (int)config_setting_source_line(entry);
    snprintf(pw->ctx, sizeof(pw->ctx), "pools[%zu]", i);
    if (config_setting_type(entry) != CONFIG_TYPE_GROUP) {
        struct where w = where_entry(ld, pw, entry, NULL);

        report(ld, &w, "must be a group, not %s (write { name = \"app\"; type = \"sqlite\"; ... })",
               type_noun(config_setting_type(entry)));
        return;
    }
    read_pool_name(ld, pw, pc, i);
    read_pool_type(ld, pw);
    if (pw->type)
        init_pool_section(ld, pw, pc);
    walk_entry_members(ld, pw);
}

static void walk_pools(struct loader *ld, const config_setting_t *list)
{
    int type = config_setting_type(list);
    size_t n = (size_t)config_setting_length(list), i;

    if (type != CONFIG_TYPE_LIST && !(type == CONFIG_TYPE_ARRAY && n == 0)) {
        struct where w = where_setting(ld, NULL, list, "pools");

        report(ld, &w, "must be a list of pool groups, not %s "
               "(write pools = ( { name = \"app\"; ... }, { ... } );)", type_noun(type));
        ld->pools_bad = true;
        return;
    }
    if (n == 0)
        return;
    ld->pools = calloc(n, sizeof(*ld->pools));
    ld->cfg->pools = calloc(n, sizeof(*ld->cfg->pools));
    if (!ld->pools || !ld->cfg->pools) {
        ld->oom = true;
        return;
    }
    ld->cfg->npools = n;
    for (i = 0; i < n; i++)
        walk_pool(ld, i, config_setting_get_elem(list, (unsigned)i));
}

static void walk_root(struct loader *ld, const config_setting_t *root)
{
    int i, n = config_setting_length(root);

    for (i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
        const char *nm = config_setting_name(s);
        struct where w = where_setting(ld, NULL, s, NULL);

        if (strcmp(nm, "daemon") == 0 && config_setting_type(s) == CONFIG_TYPE_GROUP) {
            collect(ld, &ld->daemon, NULL, s);
        } else if (strcmp(nm, "daemon") == 0) {
            w.key = "daemon";
            report(ld, &w, "must be a group, not %s (write daemon = { socket = \"...\"; ... };)",
                   type_noun(config_setting_type(s)));
        } else if (strcmp(nm, "pools") == 0) {
            walk_pools(ld, s);
        } else {
            report_unknown(ld, &w, nm, root_keys, strv_len(root_keys),
                           find_key(daemon_keys, NELEMS(daemon_keys), nm) >= 0
                               ? "daemon settings go inside daemon = { ... };" : NULL);
        }
    }
}

/* ---- phase 3: environment overrides ---- */

static void set_env_slot(struct slot *sl, const char *var, size_t name_len)
{
    sl->env = var;
    sl->env_len = name_len;
    sl->env_val = var + name_len + 1;
}

/* key[0..len) names no key of keys: report it, suggesting the closest. */
static void unknown_env(struct loader *ld, const struct where *w, const char *prefix,
                        const char *key, size_t len, const struct key_spec *keys, size_t nkeys,
                        const char *what)
{
    char forms[MAX_KEYS][KEY_NAME_MAX], kbuf[KEY_NAME_MAX + 1], list[768];
    const char *cands[MAX_KEYS], *best = NULL;
    size_t i, pos = 0;

    list[0] = '\0';
    for (i = 0; i < nkeys; i++) {
        env_key(keys[i].name, forms[i], sizeof(forms[i]));
        cands[i] = forms[i];
        appendf(list, sizeof(list), &pos, "%s%s", i ? ", " : "", forms[i]);
    }
    if (len > 0 && len <= KEY_NAME_MAX) {
        memcpy(kbuf, key, len);
        kbuf[len] = '\0';
        best = closest(kbuf, cands, nkeys);
    }
    if (best)
        report(ld, w, "no %s is called %.*s (did you mean %s%s?)", what, (int)len, key, prefix, best);
    else
        report(ld, w, "no %s is called %.*s (valid: %s)", what, (int)len, key, list);
}

static void env_daemon(struct loader *ld, const char *var, size_t name_len)
{
    const char *key = var + strlen(ENV_DAEMON_PREFIX);
    size_t len = name_len - strlen(ENV_DAEMON_PREFIX);
    int idx = find_env_key(daemon_keys, NELEMS(daemon_keys), key, len);
    struct where w = where_env(var, name_len);

    if (idx >= 0)
        set_env_slot(&ld->daemon.slots[idx], var, name_len);
    else
        unknown_env(ld, &w, ENV_DAEMON_PREFIX, key, len, daemon_keys, NELEMS(daemon_keys),
                    "daemon setting");
}

/* No pool takes this variable: explain which prefixes exist. */
static void env_no_pool(struct loader *ld, const struct where *w)
{
    char list[512];
    size_t pos = 0, i;

    list[0] = '\0';
    for (i = 0; i < ld->cfg->npools; i++)
        if (ld->pools[i].named)
            appendf(list, sizeof(list), &pos, "%s" ENV_POOL_PREFIX "%s_<KEY>",
                    pos ? ", " : "", ld->pools[i].env_name);
    if (pos)
        report(ld, w, "does not name a configured pool (expected one of: %s; a pool's name "
               "is written upper-case with '-' as '_')", list);
    else
        report(ld, w, "does not name a configured pool (no pools are defined)");
}

/* Which pools DBPOOLD_POOL_<rest> can belong to. */
struct env_match {
    struct pool_work *hit, *other;  /* pools where <rest> is NAME_KEY */
    int idx;                        /* key index in hit */
    size_t nhits;
    struct pool_work *near;         /* longest NAME_ prefix, for messages */
    bool ignored;                   /* a pool with a bad type matched */
};

static void match_pools(struct loader *ld, const char *rest, size_t rlen, struct env_match *m)
{
    size_t i;

    for (i = 0; i < ld->cfg->npools; i++) {
        struct pool_work *pw = &ld->pools[i];
        size_t plen = strlen(pw->env_name);
        int idx;

        if (!pw->named || rlen <= plen + 1 || memcmp(rest, pw->env_name, plen) != 0
            || rest[plen] != '_')
            continue;
        if (!m->near || plen > strlen(m->near->env_name))
            m->near = pw;
        if (!pw->type) {
            m->ignored = true;      /* its type error is already reported */
            continue;
        }
        idx = find_env_key(pw->type->keys, pw->type->nkeys, rest + plen + 1, rlen - plen - 1);
        if (idx < 0)
            continue;
        if (m->nhits++ == 0) {
            m->hit = pw;
            m->idx = idx;
        } else {
            m->other = pw;
        }
    }
}

static void env_pool(struct loader *ld, const char *var, size_t name_len)
{
    const char *rest = var + strlen(ENV_POOL_PREFIX);
    size_t rlen = name_len - strlen(ENV_POOL_PREFIX);
    struct where w = where_env(var, name_len);
    struct env_match m = { 0 };

    match_pools(ld, rest, rlen, &m);
    if (m.nhits == 1) {
        set_env_slot(&m.hit->sec.slots[m.idx], var, name_len);
    } else if (m.nhits > 1) {
        report(ld, &w, "is ambiguous: it can set a key of pool \"%s\" or of pool \"%s\" "
               "(rename one of the pools)", ld->cfg->pools[m.hit - ld->pools].name,
               ld->cfg->pools[m.other - ld->pools].name);
    } else if (m.near && m.near->type) {
        size_t plen = strlen(m.near->env_name);
        char what[128];

        snprintf(what, sizeof(what), "setting of %s pool \"%s\"", m.near->type->name,
                 ld->cfg->pools[m.near - ld->pools].name);
        unknown_env(ld, &w, m.near->sec.env_prefix, rest + plen + 1, rlen - plen - 1,
                    m.near->type->keys, m.near->type->nkeys, what);
    } else if (!m.ignored) {
        env_no_pool(ld, &w);
    }
}

static void apply_env(struct loader *ld)
{
    char **e;

    for (e = environ; e && *e; e++) {
        const char *eq = strchr(*e, '=');

        if (!eq)
            continue;
        if (strncmp(*e, ENV_DAEMON_PREFIX, strlen(ENV_DAEMON_PREFIX)) == 0)
            env_daemon(ld, *e, (size_t)(eq - *e));
        else if (strncmp(*e, ENV_POOL_PREFIX, strlen(ENV_POOL_PREFIX)) == 0)
            env_pool(ld, *e, (size_t)(eq - *e));
    }
}

/* ---- phase 4: conversion and checks across keys ---- */

static void report_missing(struct loader *ld, const struct section *sec, const struct key_spec *k)
{
    struct where w = where_setting(ld, sec, sec->anchor, k->name);
    char env[KEY_NAME_MAX];

    env_key(k->name, env, sizeof(env));
    if (sec->env_prefix[0])
        report(ld, &w, "missing required key (add %s to the %s group, or set %s%s)",
               k->example, sec->group, sec->env_prefix, env);
    else
        report(ld, &w, "missing required key (add %s to the %s group)", k->example, sec->group);
}

static void finish_section(struct loader *ld, struct section *sec)
{
    size_t i;

    for (i = 0; i < sec->nkeys; i++) {
        const struct slot *sl = &sec->slots[i];

        if (sl->setting || sl->env)
            sec->failed[i] = !apply_slot(ld, sec, &sec->keys[i], sl);
        else if ((sec->keys[i].flags & F_REQUIRED) && !sec->skip_required)
            report_missing(ld, sec, &sec->keys[i]);
    }
}

static bool slot_set(const struct slot *sl)
{
    return sl->setting || sl->env;
}

static void check_daemon(struct loader *ld)
{
    const struct daemon_config *d = &ld->cfg->daemon;
    struct section *sec = &ld->daemon;
    int is = find_key(daemon_keys, NELEMS(daemon_keys), "socket");
    int iss = find_key(daemon_keys, NELEMS(daemon_keys), "statusSocket");
    const struct slot *sl = slot_set(&sec->slots[iss]) ? &sec->slots[iss] : &sec->slots[is];
    struct where w;
    char q[96];

    if (!d->socket || !d->status_socket || !d->status_socket[0]
        || strcmp(d->socket, d->status_socket) != 0 || !slot_set(sl))
        return;
    w = where_slot(ld, sec, &daemon_keys[sl == &sec->slots[iss] ? iss : is], sl);
    report(ld, &w, "socket and statusSocket are both %s (give the status socket its own path, "
           "or set statusSocket = \"\"; to disable it)", quoted(d->socket, q, sizeof(q)));
}

/* The budget must hold a frame being received while the one before it is
 * processed, or a maximum-size frame could wait for budget for ever. */
static void check_budget(struct loader *ld)
{
    const struct daemon_config *d = &ld->cfg->daemon;
    struct section *sec = &ld->daemon;
    int ib = find_key(daemon_keys, NELEMS(daemon_keys), "clientBufferBudget");
    int ifs = find_key(daemon_keys, NELEMS(daemon_keys), "maxFrameSize");
    const struct slot *sl = slot_set(&sec->slots[ib]) ? &sec->slots[ib] : &sec->slots[ifs];
    struct where w;

    if (sec->failed[ib] || sec->failed[ifs] || d->client_buffer_budget / 2 >= d->max_frame_size)
        return;
    w = where_slot(ld, sec, &daemon_keys[sl == &sec->slots[ib] ? ib : ifs], sl);
    report(ld, &w, "clientBufferBudget (%zu) must be at least twice maxFrameSize (%u) (raise "
           "clientBufferBudget or lower maxFrameSize)", d->client_buffer_budget, d->max_frame_size);
}

static void check_idle(struct loader *ld, struct pool_work *pw, struct pool_config *pc)
{
    struct section *sec = &pw->sec;
    int io = find_key(sec->keys, sec->nkeys, "maxOpenConns");
    int ii = find_key(sec->keys, sec->nkeys, "maxIdleConns");
    struct where w;

    if (sec->failed[io] || sec->failed[ii] || pc->max_idle_conns <= pc->max_open_conns)
        return;
    if (!slot_set(&sec->slots[ii])) {
        pc->max_idle_conns = pc->max_open_conns;    /* a default never conflicts */
        return;
    }
    w = where_slot(ld, sec, &sec->keys[ii], &sec->slots[ii]);
    report(ld, &w, "must not exceed maxOpenConns (%d) (got %d; lower maxIdleConns or raise "
           "maxOpenConns)", pc->max_open_conns, pc->max_idle_conns);
}

/* "line 9" or "environment DBPOOLD_POOL_DB_PASSWORD". */
static const char *slot_source(const struct slot *sl, char *buf, size_t size)
{
    if (sl->env)
        snprintf(buf, size, "environment %.*s", (int)sl->env_len, sl->env);
    else
        snprintf(buf, size, "line %u", config_setting_source_line(sl->setting));
    return buf;
}

static void check_password(struct loader *ld, struct pool_work *pw)
{
    struct section *sec = &pw->sec;
    int ip = find_key(sec->keys, sec->nkeys, "password");
    int ipf = find_key(sec->keys, sec->nkeys, "passwordFile");
    bool has_p = slot_set(&sec->slots[ip]), has_pf = slot_set(&sec->slots[ipf]);
    struct where w = where_entry(ld, pw, pw->entry, NULL);
    char s1[128], s2[128];

    if (has_p && has_pf)
        report(ld, &w, "password (%s) and passwordFile (%s) are both set; keep only one "
               "(passwordFile is preferred: it keeps the secret out of the configuration)",
               slot_source(&sec->slots[ip], s1, sizeof(s1)),
               slot_source(&sec->slots[ipf], s2, sizeof(s2)));
    else if (!has_p && !has_pf)
        warn(ld, &w, "no password or passwordFile set (fine if the server trusts this user, "
             "e.g. peer authentication; otherwise set passwordFile)");
}

/* Reads passwordFile now, at load, into the pool's password: connecting
 * then reads no file on the event loop, and a file that cannot be used is
 * a configuration error here rather than a connect error later. */
static void read_password_file(struct loader *ld, struct pool_work *pw, struct pool_config *pc)
{
    struct section *sec = &pw->sec;
    int ipf = find_key(sec->keys, sec->nkeys, "passwordFile");
    int ip = find_key(sec->keys, sec->nkeys, "password");
    struct where w;
    char err[512];

    if (!pc->password_file || sec->failed[ipf] || slot_set(&sec->slots[ip]))
        return;     /* none, already reported, or both set (reported) */
    if (secret_read_file(pc->password_file, &pc->password, err, sizeof(err)) == 0)
        return;
    w = where_slot(ld, sec, &sec->keys[ipf], &sec->slots[ipf]);
    report(ld, &w, "%s (the file must hold the password, readable by the user dbpoold "
           "runs as; it is read when the configuration is loaded)", err);
}

static void finish_pools(struct loader *ld)
{
    size_t i;

    for (i = 0; i < ld->cfg->npools; i++) {
        struct pool_work *pw = &ld->pools[i];

        if (!pw->type)
            continue;
        finish_section(ld, &pw->sec);
        check_idle(ld, pw, &ld->cfg->pools[i]);
        if (pw->type->type == BACKEND_SQLITE)
            continue;
        check_password(ld, pw);
        read_password_file(ld, pw, &ld->cfg->pools[i]);
    }
}

static void check_pool_set(struct loader *ld)
{
    struct where w = { 0 };
    size_t i, j;

    w.file = ld->path;
    if (ld->cfg->npools == 0 && !ld->pools_bad)
        report(ld, &w, "no pools defined (add at least one, e.g. pools = ( { name = \"app\"; "
               "type = \"sqlite\"; sqlite = { filePath = \"/var/lib/dbpoold/app.db\"; }; } );)");
    for (j = 0; j < ld->cfg->npools; j++) {
        const struct pool_config *pj = &ld->cfg->pools[j];

        for (i = 0; i < j && ld->pools[j].named; i++) {
            if (!ld->pools[i].named || strcmp(ld->cfg->pools[i].name, pj->name) != 0)
                continue;
            w = where_entry(ld, &ld->pools[j],
                            config_setting_get_member(ld->pools[j].entry, "name"), "name");
            report(ld, &w, "duplicate pool name \"%s\" (pools[%zu] at line %d has it too; "
                   "pool names must be unique)", pj->name, i, ld->cfg->pools[i].line);
            break;
        }
    }
}

/* ---- loading ---- */

static void report_syntax(struct loader *ld, const config_t *lc)
{
    struct where w = { 0 };
    const char *text = config_error_text(lc);

    w.file = config_error_file(lc) ? config_error_file(lc) : ld->path;
    w.line = config_error_line(lc) > 0 ? (unsigned)config_error_line(lc) : 0;
    if (!text || strcmp(text, "syntax error") == 0)
        report(ld, &w, "syntax error: unexpected input (look for a missing ';', '=', quote or "
               "brace on this line or the one before)");
    else
        report(ld, &w, "syntax error: %s", text);
}

/* Makes @include paths relative to the configuration file's directory. */
static void set_include_dir(struct loader *ld, config_t *lc)
{
    char *dir = strdup(ld->path), *slash;

    if (!dir) {
        ld->oom = true;
        return;
    }
    slash = strrchr(dir, '/');
    if (slash) {
        slash[slash == dir] = '\0';
        config_set_include_dir(lc, dir);
    }
    free(dir);
}

static bool read_file(struct loader *ld, config_t *lc)
{
    struct where w = { 0 };
    struct stat st;
    FILE *fp;
    bool ok;

    w.file = ld->path;
    fp = fopen(ld->path, "r");
    if (!fp) {
        report(ld, &w, "cannot open the configuration file: %s (check the path and its "
               "permissions)", strerror(errno));
        return false;
    }
    if (fstat(fileno(fp), &st) == 0 && S_ISDIR(st.st_mode)) {
        report(ld, &w, "is a directory, not a configuration file");
        fclose(fp);
        return false;
    }
    set_include_dir(ld, lc);
    ok = config_read(lc, fp) == CONFIG_TRUE;
    fclose(fp);
    if (!ok)
        report_syntax(ld, lc);
    return ok;
}

static void init_daemon_section(struct loader *ld)
{
    struct section *sec = &ld->daemon;

    sec->keys = daemon_keys;
    sec->nkeys = NELEMS(daemon_keys);
    sec->base = &ld->cfg->daemon;
    sec->group = "daemon";
    snprintf(sec->env_prefix, sizeof(sec->env_prefix), "%s", ENV_DAEMON_PREFIX);
}

/* Phases 2-4 on a parsed file. Returns the config, or NULL on any error. */
static struct config *build(struct loader *ld, const config_t *lc)
{
    struct config *cfg = calloc(1, sizeof(*cfg));

    if (!cfg) {
        ld->oom = true;
        return NULL;
    }
    ld->cfg = cfg;
    set_str(ld, &cfg->path, ld->path);
    daemon_defaults(ld, &cfg->daemon);
    init_daemon_section(ld);
    walk_root(ld, config_root_setting(lc));
    apply_env(ld);
    finish_section(ld, &ld->daemon);
    check_daemon(ld);
    check_budget(ld);
    finish_pools(ld);
    check_pool_set(ld);
    free(ld->pools);
    ld->pools = NULL;
    if (ld->diag->nerrors == 0 && !ld->oom)
        return cfg;
    config_free(cfg);
    return NULL;
}

/* On failure diag holds every error found; if it holds none, memory ran out. */
struct config *config_load(const char *path, struct config_diag *diag)
{
    struct config_diag scratch;
    struct loader ld = { 0 };
    struct config *cfg = NULL;
    config_t lc;

    ld.diag = diag ? diag : &scratch;
    memset(ld.diag, 0, sizeof(*ld.diag));
    ld.path = path ? path : "(none)";
    if (!path) {
        struct where w = { .file = "dbpoold" };

        report(&ld, &w, "no configuration file given");
    } else {
        config_init(&lc);
        if (read_file(&ld, &lc))
            cfg = build(&ld, &lc);
        config_destroy(&lc);
    }
    if (ld.oom) {
        struct where w = { .file = ld.path };

        report(&ld, &w, "out of memory while loading the configuration");
    }
    if (!ld.oom) {
        sort_by_line(ld.diag->errors, ld.order[0], ld.diag->nerrors);
        sort_by_line(ld.diag->warnings, ld.order[1], ld.diag->nwarnings);
    }
    free(ld.order[0]);
    free(ld.order[1]);
    if (!diag)
        config_diag_free(&scratch);
    return cfg;
}

/* ---- freeing and small lookups ---- */

static void free_pool(struct pool_config *p)
{
    free(p->name);
    free(p->file_path);
    free(p->journal_mode);
    free(p->sync_mode);
    free(p->auto_vacuum);
    free(p->host);
    free(p->dbname);
    free(p->username);
    secret_free(p->password);    /* wiped: it does not linger in the heap */
    free(p->password_file);
    free(p->ssl_mode);
    free(p->charset);
}

void config_free(struct config *cfg)
{
    size_t i;

    if (!cfg)
        return;
    for (i = 0; i < cfg->npools; i++)
        free_pool(&cfg->pools[i]);
    free(cfg->pools);
    free(cfg->daemon.socket);
    free(cfg->daemon.status_socket);
    free(cfg->path);
    free(cfg);
}

static void free_strings(char **v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void config_diag_free(struct config_diag *diag)
{
    if (!diag)
        return;
    free_strings(diag->errors, diag->nerrors);
    free_strings(diag->warnings, diag->nwarnings);
    memset(diag, 0, sizeof(*diag));
}

const struct pool_config *config_find_pool(const struct config *cfg,
                                           const char *name, size_t name_len)
{
    size_t i;

    if (!cfg || !name)
        return NULL;
    for (i = 0; i < cfg->npools; i++) {
        const char *n = cfg->pools[i].name;

        if (strlen(n) == name_len && memcmp(n, name, name_len) == 0)
            return &cfg->pools[i];
    }
    return NULL;
}

const char *backend_type_name(enum backend_type t)
{
    switch (t) {
    case BACKEND_SQLITE: return "sqlite";
    case BACKEND_POSTGRES: return "postgres";
    case BACKEND_MYSQL: return "mysql";
    }
    return "unknown";
}

const char *log_level_name(enum log_level l)
{
    if ((unsigned)l < NELEMS(log_levels) - 1)
        return log_levels[l];
    return "unknown";
}
