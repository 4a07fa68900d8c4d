/*
 * test_man_config.c — the manual page man/dbpoold.conf.5 against the
 * configuration code, so the two cannot drift apart: every key the loader
 * (src/daemon/config/keys.c) and each driver (factory_config_spec) declare
 * is listed in its section of the page, with the default the loader really
 * sets, and the page lists no key that does not exist. doc/configuration.md
 * must at least name every key.
 *
 * Sections of the page: "DAEMON SETTINGS" (the daemon group), "POOL
 * SETTINGS" (the keys of every type, with the default of each type), and
 * one "<TYPE> POOLS" per driver (the network-server keys and the driver's
 * own). A key's entry is the text from its ".It Cm KEY" line to the next
 * ".It"; it says "Required" or "Default:" followed by the value.
 */
#include <criterion/criterion.h>

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/factory.h"
#include "common/duration.h"
#include "daemon/config/config_internal.h"
#include "daemon/configuration.h"

#ifndef RUNSTATEDIR
#define RUNSTATEDIR "/run"
#endif

/* ---- reading the documents ---- */

/* The file rel under $TOP_SRCDIR (make check), else next to this source. */
static char *read_source_file(const char *rel)
{
    const char *top = getenv("TOP_SRCDIR");
    const char *slash = strrchr(__FILE__, '/');
    char path[4096];

    if (top)
        snprintf(path, sizeof(path), "%s/%s", top, rel);
    else
        snprintf(path, sizeof(path), "%.*s/../../%s", slash ? (int)(slash - __FILE__) : 1,
                 slash ? __FILE__ : ".", rel);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s (run from make check, or set TOP_SRCDIR)", path);
    char *buf = malloc(1 << 20);
    cr_assert_not_null(buf);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* The body of section ".Sh TITLE" (to the next .Sh), as a new string. */
static char *man_section(const char *page, const char *title)
{
    char head[128];

    snprintf(head, sizeof(head), "\n.Sh %s\n", title);
    const char *start = strstr(page, head);
    cr_assert_not_null(start, "man/dbpoold.conf.5 has no section \"%s\": add it", title);
    start += strlen(head);
    const char *end = strstr(start, "\n.Sh ");
    size_t len = end ? (size_t)(end - start) : strlen(start);
    return strndup(start, len);
}

/* The entry of key in a section: its ".It Cm key" line up to the next
 * ".It" or ".El" line; NULL when the key has none. */
static char *man_entry(const char *section, const char *key)
{
    char head[128];
    const char *p = section;

    snprintf(head, sizeof(head), ".It Cm %s", key);
    while ((p = strstr(p, head)) != NULL) {
        char after = p[strlen(head)];
        if ((p == section || p[-1] == '\n') && (after == ' ' || after == '\n'))
            break;
        p += strlen(head);
    }
    if (!p)
        return NULL;
    const char *end = p + 1, *it = strstr(end, "\n.It "), *el = strstr(end, "\n.El");
    if (!it || (el && el < it))
        it = el;
    return strndup(p, it ? (size_t)(it - p) : strlen(p));
}

/* word occurs in text as a token of its own (mdoc punctuation around it). */
static bool has_token(const char *text, const char *word)
{
    size_t n = strlen(word);

    for (const char *p = text; (p = strstr(p, word)) != NULL; p++) {
        bool left = p == text || isspace((unsigned char)p[-1]);
        char r = p[n];
        bool right = r == '\0' || isspace((unsigned char)r) || strchr(",.;)", r);
        if (left && right)
            return true;
    }
    return false;
}

/* A duration token of text is ms long ("60s" and "1m" are the same). */
static bool has_duration(const char *text, uint64_t ms)
{
    char tok[64];
    int n;

    for (const char *p = text; sscanf(p, "%63s%n", tok, &n) == 1; p += n) {
        size_t len = strlen(tok);
        while (len && strchr(",.;)", tok[len - 1]))
            tok[--len] = '\0';
        uint64_t v;
        if (parse_duration_ms(tok, &v) && v == ms)
            return true;
    }
    return false;
}

/* ---- the loader's defaults ---- */

/* ms as the configuration writes it: "1h30m", "30s", "250ms", "0". */
static void format_duration(uint64_t ms, char *buf, size_t size)
{
    static const struct { const char *unit; uint64_t ms; } units[] = {
        { "h", 3600000 }, { "m", 60000 }, { "s", 1000 }, { "ms", 1 },
    };
    size_t pos = 0;

    buf[0] = '\0';
    if (ms == 0)
        snprintf(buf, size, "0");
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]) && ms; i++) {
        if (ms / units[i].ms == 0)
            continue;
        pos += (size_t)snprintf(buf + pos, size - pos, "%llu%s",
                                (unsigned long long)(ms / units[i].ms), units[i].unit);
        ms %= units[i].ms;
    }
}

/* The value of key k in the struct at base, as the man page writes it. */
static void format_default(const struct key_spec *k, const void *base, char *buf, size_t size)
{
    const char *f = (const char *)base + k->offset;

    switch (k->kind) {
    case K_INT: snprintf(buf, size, "%d", *(const int *)f); break;
    case K_U32: snprintf(buf, size, "%u", (unsigned)*(const uint32_t *)f); break;
    case K_SIZE: snprintf(buf, size, "%zu", *(const size_t *)f); break;
    case K_DURATION: format_duration(*(const uint64_t *)f, buf, size); break;
    case K_BOOL: snprintf(buf, size, "%s", *(const bool *)f ? "true" : "false"); break;
    case K_LOG_LEVEL: snprintf(buf, size, "%s", log_level_name(*(const enum log_level *)f)); break;
    case K_MODE: snprintf(buf, size, "%04o", *(const unsigned *)f); break;
    case K_STRING:
    case K_CHOICE: {
        const char *s = *(char *const *)f;
        size_t rl = strlen(RUNSTATEDIR);
        /* The page shows run-state paths with the Debian /run. */
        if (s && strncmp(s, RUNSTATEDIR, rl) == 0 && s[rl] == '/')
            snprintf(buf, size, "/run%s", s + rl);
        else
            snprintf(buf, size, "%s", s ? s : "none");
        break;
    }
    case K_USERS:
    case K_GROUPS: {
        /* An empty list: everyone may use the pool; the page says "none". */
        const struct id_set *ids = (const struct id_set *)f;
        size_t pos = (size_t)snprintf(buf, size, "%s", ids->n ? "" : "none");
        for (size_t i = 0; i < ids->n && pos < size; i++)
            pos += (size_t)snprintf(buf + pos, size - pos, "%s%u", i ? "," : "", ids->ids[i]);
        break;
    }
    }
}

/* A configuration with one pool of every type, each with only its
 * required keys, loaded: every other value is the loader's default. */
static struct config *load_defaults(void)
{
    char text[8192], path[] = "/tmp/dbpoold-man-XXXXXX";
    size_t pos = (size_t)snprintf(text, sizeof(text), "pools = (\n");
    const struct driver_config_spec *spec;

    for (size_t i = 0; (spec = factory_config_spec(i)); i++) {
        pos += (size_t)snprintf(text + pos, sizeof(text) - pos,
                                "%s{ name = \"p%zu\"; type = \"%s\"; %s = {", i ? ",\n" : "", i,
                                spec->name, spec->name);
        for (size_t j = 0; j < spec->nkeys; j++)
            if (spec->keys[j].flags & F_REQUIRED)
                pos += (size_t)snprintf(text + pos, sizeof(text) - pos, " %s = \"/tmp/x\";",
                                        spec->keys[j].name);
        for (size_t j = 0; spec->server && j < cf_nserver_pool_keys; j++)
            if (cf_server_pool_keys[j].flags & F_REQUIRED)
                pos += (size_t)snprintf(text + pos, sizeof(text) - pos, " %s = \"x\";",
                                        cf_server_pool_keys[j].name);
        pos += (size_t)snprintf(text + pos, sizeof(text) - pos, " }; }");
    }
    snprintf(text + pos, sizeof(text) - pos, "\n);\n");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    struct config_diag d = { 0 };
    struct config *cfg = config_load(path, &d);
    unlink(path);
    cr_assert_not_null(cfg, "the defaults configuration does not load: %s\n%s",
                       d.nerrors ? d.errors[0] : "?", text);
    config_diag_free(&d);
    return cfg;
}

static const struct pool_config *pool_of(const struct config *cfg, const char *type)
{
    for (size_t i = 0; i < cfg->npools; i++)
        if (strcmp(backend_type_name(cfg->pools[i].type), type) == 0)
            return &cfg->pools[i];
    cr_assert_fail("no pool of type %s", type);
    return NULL;
}

/* ---- the checks ---- */

/* key k is in section, and its entry gives the default (or says Required). */
static void expect_key(const char *section, const char *title, const struct key_spec *k,
                       const char *const *defaults, size_t ndefaults)
{
    char *entry = man_entry(section, k->name);

    cr_expect_not_null(entry, "man/dbpoold.conf.5, %s: key %s is missing (add an \".It Cm %s\" "
                       "entry with its type and default)", title, k->name, k->name);
    if (!entry)
        return;
    if (k->flags & F_REQUIRED) {
        cr_expect(strstr(entry, "Required") != NULL, "man/dbpoold.conf.5, %s: %s is required: "
                  "say \"Required.\"", title, k->name);
    } else {
        cr_expect(strstr(entry, "Default:") != NULL, "man/dbpoold.conf.5, %s: %s has no "
                  "\"Default:\"", title, k->name);
        for (size_t i = 0; i < ndefaults; i++) {
            uint64_t ms;
            bool ok = k->kind == K_DURATION && parse_duration_ms(defaults[i], &ms)
                          ? has_duration(entry, ms) : has_token(entry, defaults[i]);
            cr_expect(ok, "man/dbpoold.conf.5, %s: the default of %s "
                      "is %s, which its entry does not give:\n%s", title, k->name, defaults[i],
                      entry);
        }
    }
    free(entry);
}

/* Every ".It Cm NAME" of the section names one of the keys. */
static void expect_no_stray_keys(const char *section, const char *title,
                                 const struct key_spec *const *tables, const size_t *sizes,
                                 size_t ntables)
{
    for (const char *p = section; (p = strstr(p, ".It Cm ")) != NULL; p++) {
        if (p != section && p[-1] != '\n')
            continue;
        char name[64];
        if (sscanf(p, ".It Cm %63s", name) != 1)
            continue;
        bool known = false;
        for (size_t t = 0; t < ntables && !known; t++)
            known = cf_find_key(tables[t], sizes[t], name) >= 0;
        cr_expect(known, "man/dbpoold.conf.5, %s: \"%s\" is not a configuration key here "
                  "(remove it, or fix its name)", title, name);
    }
}

/* Each of the keys is in the section with its default in every struct of
 * bases (the daemon's, each pool's, or a driver's options). */
static void check_keys(const char *sec, const char *title, const struct key_spec *keys,
                       size_t nkeys, const void *const *bases, size_t nbases)
{
    for (size_t i = 0; i < nkeys; i++) {
        char defs[8][256];
        const char *distinct[8];
        size_t n = 0;
        for (size_t b = 0; b < nbases && n < 8; b++) {
            format_default(&keys[i], bases[b], defs[n], sizeof(defs[n]));
            bool seen = false;
            for (size_t j = 0; j < n; j++)
                seen = seen || strcmp(distinct[j], defs[n]) == 0;
            if (!seen) {
                distinct[n] = defs[n];
                n++;
            }
        }
        expect_key(sec, title, &keys[i], distinct, n);
    }
}

/* A section of the loader's own keys: each with its defaults in bases,
 * and nothing else. */
static void check_loader_section(const char *page, const char *title, const struct key_spec *keys,
                                 size_t nkeys, const void *const *bases, size_t nbases)
{
    char *sec = man_section(page, title);
    const struct key_spec *tables[] = { keys };
    const size_t sizes[] = { nkeys };

    check_keys(sec, title, keys, nkeys, bases, nbases);
    expect_no_stray_keys(sec, title, tables, sizes, 1);
    free(sec);
}

Test(man_config, daemon_keys_with_their_defaults)
{
    char *page = read_source_file("man/dbpoold.conf.5");
    struct config *cfg = load_defaults();
    const void *bases[] = { &cfg->daemon };

    check_loader_section(page, "DAEMON SETTINGS", cf_daemon_keys, cf_ndaemon_keys, bases, 1);
    config_free(cfg);
    free(page);
}

/* The keys every type has: the entry gives each type's default. */
Test(man_config, common_pool_keys_with_every_types_default)
{
    char *page = read_source_file("man/dbpoold.conf.5");
    struct config *cfg = load_defaults();
    const void *bases[8];
    size_t nbases = 0;

    for (size_t p = 0; p < cfg->npools && nbases < 8; p++)
        bases[nbases++] = &cfg->pools[p];
    check_loader_section(page, "POOL SETTINGS", cf_common_pool_keys, cf_ncommon_pool_keys, bases,
                         nbases);
    config_free(cfg);
    free(page);
}

/* One section per driver: the server keys (network servers) and its own. */
Test(man_config, every_types_keys_with_their_defaults)
{
    char *page = read_source_file("man/dbpoold.conf.5");
    struct config *cfg = load_defaults();
    const struct driver_config_spec *spec;

    for (size_t i = 0; (spec = factory_config_spec(i)); i++) {
        char title[64];
        size_t n = (size_t)snprintf(title, sizeof(title), "%s", spec->name);
        for (size_t j = 0; j < n; j++)
            title[j] = (char)toupper((unsigned char)title[j]);
        snprintf(title + n, sizeof(title) - n, " POOLS");
        char *sec = man_section(page, title);
        const struct pool_config *pc = pool_of(cfg, spec->name);
        const void *pool_base[] = { pc }, *opts_base[] = { pc->driver_opts };
        size_t nserver = spec->server ? cf_nserver_pool_keys : 0;
        const struct key_spec *tables[] = { spec->keys, cf_server_pool_keys };
        const size_t sizes[] = { spec->nkeys, nserver };

        check_keys(sec, title, cf_server_pool_keys, nserver, pool_base, 1);
        check_keys(sec, title, spec->keys, spec->nkeys, opts_base, 1);
        expect_no_stray_keys(sec, title, tables, sizes, 2);
        free(sec);
    }
    config_free(cfg);
    free(page);
}

/* doc/configuration.md, the full reference, names every key too. */
static void expect_named_in_reference(const char *doc, const struct key_spec *keys, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char quoted[80];
        snprintf(quoted, sizeof(quoted), "`%s`", keys[i].name);
        cr_expect(strstr(doc, quoted) != NULL, "doc/configuration.md does not mention key %s: "
                  "document it there too", keys[i].name);
    }
}

Test(man_config, reference_names_every_key)
{
    char *doc = read_source_file("doc/configuration.md");
    const struct driver_config_spec *spec;

    expect_named_in_reference(doc, cf_daemon_keys, cf_ndaemon_keys);
    expect_named_in_reference(doc, cf_common_pool_keys, cf_ncommon_pool_keys);
    expect_named_in_reference(doc, cf_server_pool_keys, cf_nserver_pool_keys);
    for (size_t i = 0; (spec = factory_config_spec(i)); i++)
        expect_named_in_reference(doc, spec->keys, spec->nkeys);
    free(doc);
}

/* The checks above find what they look for: a made-up page. */
Test(man_config, the_checks_see_a_wrong_default)
{
    const char *sec = ".Bl -tag -width Ds\n.It Cm frameTimeout Pq duration\nDefault:\n.Ql 30s .\n"
                      ".It Cm other Pq integer\nDefault:\n.Ql 7 .\n.El\n";
    char *entry = man_entry(sec, "frameTimeout");

    cr_assert_not_null(entry);
    cr_expect(has_token(entry, "30s"));
    cr_expect_not(has_token(entry, "3s"));
    cr_expect_not(has_token(entry, "7"), "an entry ends at the next .It");
    cr_expect_null(man_entry(sec, "frame"));
    cr_expect(has_duration(entry, 30000));
    cr_expect(has_duration(".Ql 1m .", 60000), "60s and 1m are the same duration");
    cr_expect_not(has_duration(entry, 3000));
    free(entry);

    char buf[32];
    format_duration(90 * 60000 + 500, buf, sizeof(buf));
    cr_expect_str_eq(buf, "1h30m500ms");
    format_duration(0, buf, sizeof(buf));
    cr_expect_str_eq(buf, "0");
}
