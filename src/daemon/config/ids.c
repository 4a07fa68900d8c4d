/*
 * ids.c — phase 4's conversion of allowUsers / allowGroups (kinds K_USERS,
 * K_GROUPS) into a struct id_set: a list of user or group names and
 * numeric ids, written as a libconfig list or array, a single value, or a
 * comma-separated string (the only form an environment variable has).
 *
 * Names are resolved here, when the configuration is loaded, with
 * getpwnam_r / getgrnam_r: those may block on NSS (LDAP, sssd, ...), which
 * must never happen on the event loop, so checking a client at HELLO only
 * compares numbers (daemon/peer_access.c). An unknown name is an error at
 * its file:line. A string of digits is a numeric id, which need not exist.
 * Also id_set_has(), the lookup the sessions use.
 */
#include "daemon/config/config_internal.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID_MAX 4294967294LL        /* (uid_t)-1 means "no id" */
#define NSS_BUF_MAX (1u << 20)     /* getpwnam_r buffer bound (a huge group) */

/* What a K_USERS or K_GROUPS value is made of. */
struct id_kind {
    const char *noun;              /* "user", "group" */
    const char *check;             /* command that lists the names */
    const char *id_name;           /* "uid", "gid" */
};

static const struct id_kind users = { "user", "getent passwd", "uid" };
static const struct id_kind groups = { "group", "getent group", "gid" };

/* The values collected so far (unsorted). */
struct id_acc {
    uint32_t *ids;
    size_t n, cap;
};

static bool acc_push(struct loader *ld, struct id_acc *a, uint32_t id)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 8;
        uint32_t *grown = realloc(a->ids, cap * sizeof(*grown));

        if (!grown) {
            ld->oom = true;
            return false;
        }
        a->ids = grown;
        a->cap = cap;
    }
    a->ids[a->n++] = id;
    return true;
}

/* getpwnam_r / getgrnam_r: 0 and *id when found, ENOENT when no such
 * name, else an error number. The buffer grows while NSS says ERANGE. */
static int lookup_name(const struct id_kind *kind, const char *name, uint32_t *id)
{
    size_t size = 4096;
    int rc = ERANGE;

    while (rc == ERANGE && size <= NSS_BUF_MAX) {
        char *buf = malloc(size);
        struct passwd pw, *pwp = NULL;
        struct group gr, *grp = NULL;

        if (!buf)
            return ENOMEM;
        if (kind == &users) {
            rc = getpwnam_r(name, &pw, buf, size, &pwp);
            if (rc == 0 && pwp)
                *id = (uint32_t)pw.pw_uid;
        } else {
            rc = getgrnam_r(name, &gr, buf, size, &grp);
            if (rc == 0 && grp)
                *id = (uint32_t)gr.gr_gid;
        }
        free(buf);
        if (rc == 0 && !pwp && !grp)
            rc = ENOENT;
        size *= 2;
    }
    return rc;
}

static bool all_digits(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return len > 0;
}

static bool add_number(struct loader *ld, const struct where *w, const struct id_kind *kind,
                       long long v, struct id_acc *a)
{
    if (v < 0 || v > ID_MAX) {
        cf_report(ld, w, "%lld is not a valid %s (numeric ids run from 0 to %lld)", v,
                  kind->id_name, ID_MAX);
        return false;
    }
    return acc_push(ld, a, (uint32_t)v);
}

/* One name or number (len bytes of s, already trimmed). */
static bool add_word(struct loader *ld, const struct where *w, const struct id_kind *kind,
                     const char *s, size_t len, struct id_acc *a)
{
    char name[256], q[300];
    uint32_t id = 0;
    int rc;

    if (len >= sizeof(name)) {
        cf_report(ld, w, "a %s name of %zu bytes is too long (at most %zu)", kind->noun, len,
                  sizeof(name) - 1);
        return false;
    }
    memcpy(name, s, len);
    name[len] = '\0';
    if (all_digits(name, len))
        return add_number(ld, w, kind, len > 10 ? ID_MAX + 1 : strtoll(name, NULL, 10), a);
    rc = lookup_name(kind, name, &id);
    if (rc == 0)
        return acc_push(ld, a, id);
    cf_quoted(name, q, sizeof(q));
    if (rc == ENOENT)
        cf_report(ld, w, "no %s named %s on this system (check it with %s %s, fix the name, or "
                  "give the numeric %s; names are looked up when the configuration is loaded)",
                  kind->noun, q, kind->check, name, kind->id_name);
    else
        cf_report(ld, w, "cannot look up the %s %s: %s (check the name service, or give the "
                  "numeric %s)", kind->noun, q, strerror(rc), kind->id_name);
    return false;
}

/* A comma-separated list of names and numbers; spaces around them are
 * ignored. Every entry is tried, so every bad one is reported. */
static bool add_words(struct loader *ld, const struct where *w, const struct id_kind *kind,
                      const char *s, struct id_acc *a)
{
    bool ok = true;

    while (*s) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        size_t skip = strspn(s, " \t");

        while (len > skip && (s[len - 1] == ' ' || s[len - 1] == '\t'))
            len--;
        if (len > skip)
            ok &= add_word(ld, w, kind, s + skip, len - skip, a);
        s = end ? end + 1 : s + strlen(s);
    }
    return ok;
}

/* One libconfig element: an integer or a string of names. */
static bool add_setting(struct loader *ld, const struct where *at, const struct id_kind *kind,
                        const config_setting_t *e, struct id_acc *a)
{
    struct where w = *at;
    int t = config_setting_type(e);

    w.line = config_setting_source_line(e);
    if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64)
        return add_number(ld, &w, kind, config_setting_get_int64(e), a);
    if (t == CONFIG_TYPE_STRING)
        return add_words(ld, &w, kind, config_setting_get_string(e), a);
    cf_report(ld, &w, "each %s must be a name in double quotes or a numeric %s, not %s "
              "(write (\"alice\", 1001))", kind->noun, kind->id_name, cf_type_noun(t));
    return false;
}

static bool collect(struct loader *ld, const struct where *w, const struct id_kind *kind,
                    const struct slot *sl, struct id_acc *a)
{
    const config_setting_t *s = sl->setting;
    int t;
    bool ok = true;

    if (sl->env)
        return add_words(ld, w, kind, sl->env_val, a);
    t = config_setting_type(s);
    if (t != CONFIG_TYPE_LIST && t != CONFIG_TYPE_ARRAY)
        return add_setting(ld, w, kind, s, a);
    for (int i = 0; i < config_setting_length(s); i++)
        ok &= add_setting(ld, w, kind, config_setting_get_elem(s, (unsigned)i), a);
    return ok;
}

static int cmp_id(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;

    return (a > b) - (a < b);
}

/* Sorted, duplicates dropped: the set id_set_has() searches. */
static void into_set(struct id_acc *a, struct id_set *out)
{
    size_t n = 0;

    qsort(a->ids, a->n, sizeof(*a->ids), cmp_id);
    for (size_t i = 0; i < a->n; i++)
        if (n == 0 || a->ids[i] != a->ids[n - 1])
            a->ids[n++] = a->ids[i];
    free(out->ids);
    out->ids = a->ids;
    out->n = n;
}

bool cf_apply_ids(struct loader *ld, const struct section *sec, const struct key_spec *k,
                  const struct slot *sl)
{
    const struct id_kind *kind = k->kind == K_USERS ? &users : &groups;
    struct where at = cf_where_slot(ld, sec, k, sl);
    const struct where *w = &at;
    struct id_acc a = { 0 };

    if (!collect(ld, w, kind, sl, &a)) {
        free(a.ids);
        return false;
    }
    if (a.n == 0) {
        free(a.ids);
        if (sec->base == &ld->cfg->daemon)
            cf_report(ld, w, "lists no %s (remove the key: root and dbpoold's own user may use "
                      "the admin actions anyway)", kind->noun);
        else
            cf_report(ld, w, "lists no %s (an empty list would refuse every client; remove the "
                      "key to let every user who can open the socket use the pool)", kind->noun);
        return false;
    }
    into_set(&a, (struct id_set *)((char *)sec->base + k->offset));   /* a loader key: no F_OPTS */
    return true;
}

bool id_set_has(const struct id_set *s, uint32_t id)
{
    size_t lo = 0, hi = s->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (s->ids[mid] == id)
            return true;
        if (s->ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}
