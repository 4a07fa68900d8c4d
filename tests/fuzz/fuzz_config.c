/*
 * fuzz_config.c — libFuzzer target: loading and validating the
 * configuration (src/daemon/config/: config_load, parse_duration_ms). libconfig
 * parses the syntax; the target is our walk of the tree, environment
 * overrides, conversions, range and cross-key checks, and messages.
 *
 * The input is the configuration file. Lines at its start of the form
 *     #!env NAME=VALUE      set DBPOOLD_NAME=VALUE while it loads
 *     #!secret POOLNAME     set DBPOOLD_POOL_POOLNAME_PASSWORD to a secret
 * are comments to libconfig and let the fuzzer reach the environment
 * override code. Inputs that use @include are skipped: libconfig would read
 * whatever file they name (our include-directory handling is exercised by
 * the unit tests). A passwordFile the input names is read (at most 4 KiB,
 * regular files only, so this cannot block); its contents never reach a
 * message.
 *
 * Oracle, beyond ASan/UBSan/LSan: config_load returns a config exactly when
 * it reports no error; every message is non-empty; a valid config holds
 * values within the documented ranges; and the messages do not depend on
 * the password: an input with #!secret lines is loaded twice, with two
 * different secrets, and both loads must give the very same messages
 * (secrets are never copied into messages). A differential check, because
 * a marker searched for in the messages can be legitimately built by the
 * input itself ("liteS" "x7-..." is one string to libconfig). parse_duration_ms also gets the input as a
 * string: when it succeeds, formatting the result as "<n>ms" parses back to
 * the same value.
 */
#include <ctype.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "backend/sqlite/sqlite_options.h"
#include "daemon/configuration.h"
#include "fuzz_util.h"

/* Two secrets of the same length: the messages must not tell them apart. */
static const char *const secrets[2] = { "Sx7-fuzz-secret-Qv2", "Rk4-other-value-Zp9" };
#define MAX_ENV 8

static char path[256];

static void remove_file(void)
{
    unlink(path);
}

static void make_file(void)
{
    const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    int fd;

    snprintf(path, sizeof(path), "%s/dbpoold-fuzz-config-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    fd = mkstemp(path);
    if (fd < 0)
        fuzz_fail("cannot create %s", path);
    close(fd);
    atexit(remove_file);
}

static void write_file(const uint8_t *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    size_t off = 0;

    if (fd < 0)
        fuzz_fail("cannot open %s", path);
    while (off < size) {
        ssize_t n = write(fd, data + off, size - off);
        if (n <= 0)
            fuzz_fail("cannot write %s", path);
        off += (size_t)n;
    }
    close(fd);
}

/* ------------------------------------------------------ environment */

struct env {
    char *names[MAX_ENV];
    size_t n;
    const char *secret;     /* value for #!secret lines */
    bool has_secret;        /* the input has at least one */
};

static void env_set(struct env *e, const char *name, size_t nlen, const char *val, size_t vlen)
{
    char *n = malloc(nlen + 1), *v = malloc(vlen + 1);

    if (!n || !v || e->n == MAX_ENV) {
        free(n);
        free(v);
        return;
    }
    memcpy(n, name, nlen);
    n[nlen] = '\0';
    memcpy(v, val, vlen);
    v[vlen] = '\0';
    if (strchr(n, '=') || setenv(n, v, 1) != 0)
        free(n);
    else
        e->names[e->n++] = n;
    free(v);
}

/* One "#!env K=V" or "#!secret POOL" line at p (length n). */
static void env_line(struct env *e, const char *p, size_t n)
{
    char name[160];

    if (n > 6 && memcmp(p, "#!env ", 6) == 0) {
        const char *eq = memchr(p + 6, '=', n - 6);
        size_t klen = eq ? (size_t)(eq - (p + 6)) : 0;
        if (!eq || klen == 0 || klen > 120 || memchr(p, 0, n))
            return;
        snprintf(name, sizeof(name), "DBPOOLD_%.*s", (int)klen, p + 6);
        env_set(e, name, strlen(name), eq + 1, n - 6 - klen - 1);
    } else if (n > 9 && memcmp(p, "#!secret ", 9) == 0 && n - 9 <= 100 && !memchr(p, 0, n)) {
        snprintf(name, sizeof(name), "DBPOOLD_POOL_%.*s_PASSWORD", (int)(n - 9), p + 9);
        env_set(e, name, strlen(name), e->secret, strlen(e->secret));
        e->has_secret = true;
    }
}

static void env_apply(struct env *e, const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;

    while (p < end && p[0] == '#' && end - p > 1 && p[1] == '!') {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = eol ? eol : end;
        env_line(e, p, (size_t)(le - p));
        p = le + 1;
    }
}

static void env_clear(struct env *e)
{
    for (size_t i = 0; i < e->n; i++) {
        unsetenv(e->names[i]);
        free(e->names[i]);
    }
    e->n = 0;
}

/* ------------------------------------------------------ checks */

static void check_ranges(const struct config *cfg)
{
    const struct daemon_config *d = &cfg->daemon;

    if (!d->socket || !d->socket[0] || strlen(d->socket) > 107 || !d->status_socket ||
        strlen(d->status_socket) > 107 || d->max_frame_size < 1024 ||
        d->max_frame_size > 1073741824 || d->max_params < 1 || d->max_params > 65535 ||
        d->max_batch_statements < 1 || d->max_batch_statements > 65535 ||
        d->output_high_water < 4096 || d->socket_mode > 0777 || d->shutdown_timeout_ms == 0)
        fuzz_fail("a valid config holds a daemon value outside its documented range");
    if (cfg->npools == 0)
        fuzz_fail("a valid config has no pool");
    for (size_t i = 0; i < cfg->npools; i++) {
        const struct pool_config *p = &cfg->pools[i];
        if (!p->name || !p->name[0] || p->max_open_conns < 1 || p->max_idle_conns < 0 ||
            p->max_idle_conns > p->max_open_conns || p->timeout_ms == 0 ||
            p->acquire_timeout_ms == 0 || config_find_pool(cfg, p->name, strlen(p->name)) != p)
            fuzz_fail("pool %zu of a valid config is inconsistent", i);
        if (p->type == BACKEND_SQLITE && (!p->driver_opts || !sqlite_opts(p)->file_path ||
                                          !sqlite_opts(p)->file_path[0]))
            fuzz_fail("a valid SQLite pool has no filePath");
        if (p->type != BACKEND_SQLITE && (!p->host || !p->dbname || !p->username ||
                                          p->port < 1 || p->port > 65535))
            fuzz_fail("a valid server pool lacks host, name, username or a port");
    }
}

static void check_messages(char **msgs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!msgs[i] || !msgs[i][0])
            fuzz_fail("an empty configuration message");
}

static bool same_messages(char **a, size_t na, char **b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i]) != 0)
            return false;
    return true;
}

/* Loads the file with the environment of the input's #!env / #!secret
 * lines (the secret given); returns whether it had #!secret lines. */
static bool load(const uint8_t *data, size_t size, const char *secret, struct config **cfg,
                 struct config_diag *diag)
{
    struct env env = { .n = 0, .secret = secret };

    env_apply(&env, data, size);
    *cfg = config_load(path, diag);
    env_clear(&env);
    if ((*cfg != NULL) != (diag->nerrors == 0))
        fuzz_fail("config_load returned %s with %zu errors", *cfg ? "a config" : "NULL",
                  diag->nerrors);
    check_messages(diag->errors, diag->nerrors);
    check_messages(diag->warnings, diag->nwarnings);
    return env.has_secret;
}

/* The same input with the other secret: the same messages. */
static void check_secret(const uint8_t *data, size_t size, const struct config_diag *first)
{
    struct config_diag diag;
    struct config *cfg;

    load(data, size, secrets[1], &cfg, &diag);
    if (!same_messages(first->errors, first->nerrors, diag.errors, diag.nerrors) ||
        !same_messages(first->warnings, first->nwarnings, diag.warnings, diag.nwarnings))
        fuzz_fail("the messages depend on the password: it was copied into one (%zu/%zu "
                  "errors, %zu/%zu warnings)", first->nerrors, diag.nerrors, first->nwarnings,
                  diag.nwarnings);
    config_diag_free(&diag);
    config_free(cfg);
}

static void check_duration(const uint8_t *data, size_t size)
{
    char s[64], back[48];
    uint64_t ms, again;

    if (size >= sizeof(s))
        return;
    memcpy(s, data, size);
    s[size] = '\0';
    if (!parse_duration_ms(s, &ms))
        return;
    snprintf(back, sizeof(back), "%" PRIu64 "ms", ms);
    if (!parse_duration_ms(back, &again) || again != ms)
        fuzz_fail("duration \"%s\" = %" PRIu64 " ms, but \"%s\" does not parse back", s, ms, back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config_diag diag;
    struct config *cfg;

    if (!path[0])
        make_file();
    check_duration(data, size);
    for (size_t i = 0; i + 8 <= size; i++)
        if (data[i] == '@' && strncasecmp((const char *)data + i + 1, "include", 7) == 0)
            return -1;   /* never read files the input names */
    write_file(data, size);
    if (load(data, size, secrets[0], &cfg, &diag))
        check_secret(data, size, &diag);
    if (cfg)
        check_ranges(cfg);
    config_diag_free(&diag);
    config_free(cfg);
    return 0;
}
