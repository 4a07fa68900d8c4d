/*
 * create.c — `create [-ext E] [-dir D] [-seq] [-digits N] [-format F]
 * [-tz TZ] NAME`: an empty up/down pair, named as golang-migrate names it:
 * VERSION_NAME.up.E and VERSION_NAME.down.E in D, VERSION either the next
 * sequence number (-seq, N digits, after the last *E file by name) or the
 * time formatted by F, a Go layout ("20060102150405" by default; "unix",
 * "unixNano"), in TZ (UTC by default). The absolute path of each file goes
 * to stderr. Go layouts are translated element by element (2006 01 02 15 04
 * 05, Jan, Mon, PM, MST, -0700, .000...); other characters are kept.
 */
#include "migrate/migrate.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_FORMAT "20060102150405"

struct layout_elem { const char *go, *strf; };

/* Longest first, so "January" wins over "Jan" and "2006" over "2". */
static const struct layout_elem ELEMS[] = {
    { "January", "%B" }, { "Monday", "%A" }, { "-07:00", "%z" }, { "-0700", "%z" },
    { "2006", "%Y" }, { "Jan", "%b" }, { "Mon", "%a" }, { "MST", "%Z" },
    { "01", "%m" }, { "02", "%d" }, { "06", "%y" }, { "15", "%H" }, { "03", "%I" },
    { "04", "%M" }, { "05", "%S" }, { "PM", "%p" }, { "pm", "%P" }, { "_2", "%e" },
    { "002", "%j" },
};

/* Go layout -> strftime format, fractions (".000", ".999") as "\1N". */
static void go_layout(const char *go, char *out, size_t cap)
{
    size_t o = 0;

    while (*go && o + 8 < cap) {
        size_t i, k;
        if (go[0] == '.' && (go[1] == '0' || go[1] == '9')) {
            for (k = 1; go[k] == go[1]; k++)
                ;
            out[o++] = '\1';
            out[o++] = (char)('0' + (k - 1 > 9 ? 9 : k - 1));
            go += k;
            continue;
        }
        for (i = 0; i < sizeof ELEMS / sizeof ELEMS[0]; i++)
            if (strncmp(go, ELEMS[i].go, strlen(ELEMS[i].go)) == 0)
                break;
        if (i < sizeof ELEMS / sizeof ELEMS[0]) {
            o += (size_t)snprintf(out + o, cap - o, "%s", ELEMS[i].strf);
            go += strlen(ELEMS[i].go);
        } else {
            if (*go == '%')
                out[o++] = '%';
            out[o++] = *go++;
        }
    }
    out[o] = '\0';
}

static void format_time(const struct timespec *ts, const char *layout, char *out, size_t cap)
{
    char fmt[256];
    struct tm tm;
    size_t o = 0;

    localtime_r(&ts->tv_sec, &tm);
    go_layout(layout, fmt, sizeof fmt);
    for (char *p = fmt; *p && o < cap - 1;) {
        char *frac = strchr(p, '\1');
        if (frac != NULL)
            *frac = '\0';
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        if (*p)
            o += strftime(out + o, cap - o, p, &tm);     /* the translated Go layout */
#pragma GCC diagnostic pop
        if (frac == NULL)
            break;
        int digits = frac[1] - '0';
        char ns[16];
        snprintf(ns, sizeof ns, "%09ld", ts->tv_nsec);
        o += (size_t)snprintf(out + o, cap - o, ".%.*s", digits, ns);
        p = frac + 2;
    }
}

static int set_tz(const char *tz, char *err, size_t errcap)
{
    char path[512];

    if (strcmp(tz, "Local") == 0)
        return 0;
    if (strcmp(tz, "UTC") != 0 && strcmp(tz, "") != 0) {
        snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", tz);
        if (strstr(tz, "..") != NULL || access(path, R_OK) != 0) {
            snprintf(err, errcap, "unknown time zone %s (use UTC, Local or an IANA name such as "
                     "Europe/Berlin)", tz);
            return -1;
        }
    }
    setenv("TZ", strcmp(tz, "") == 0 ? "UTC" : tz, 1);
    tzset();
    return 0;
}

/* nextSeqVersion: one more than the number before the '_' of the last
 * *ext file (by name), with digits digits. */
static int next_seq(const char *dir, const char *ext, long digits, char *out, size_t cap,
                    char *err, size_t errcap)
{
    char pat[PATH_MAX + 300];
    glob_t g;
    unsigned long long next = 1;

    if (digits <= 0) {
        snprintf(err, errcap, "Digits must be positive");
        return -1;
    }
    snprintf(pat, sizeof pat, "%s/*%s", dir, ext);
    if (glob(pat, 0, NULL, &g) == 0 && g.gl_pathc > 0) {
        const char *last = g.gl_pathv[g.gl_pathc - 1];
        const char *base = strrchr(last, '/') ? strrchr(last, '/') + 1 : last;
        const char *us = strchr(base, '_');
        char *end;
        if (us == NULL || us == base) {
            snprintf(err, errcap, "Malformed migration filename: %s", last);
            globfree(&g);
            return -1;
        }
        next = strtoull(base, &end, 10) + 1;
        if (end != us) {
            snprintf(err, errcap, "strconv.ParseUint: parsing \"%.*s\": invalid syntax", (int)(us - base), base);
            globfree(&g);
            return -1;
        }
    }
    globfree(&g);
    snprintf(out, cap, "%0*llu", (int)digits, next);
    if ((long)strlen(out) > digits) {
        snprintf(err, errcap, "Next sequence number %s too large. At most %ld digits are allowed",
                 out, digits);
        return -1;
    }
    return 0;
}

static int make_dirs(const char *dir)
{
    char p[PATH_MAX];

    snprintf(p, sizeof p, "%s", dir);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            if (mkdir(p, 0777) != 0 && errno != EEXIST)
                return -1;
            *s = '/';
        }
    return mkdir(p, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

static int version_string(const struct create_opts *o, const char *dir, const char *ext,
                          char *out, size_t cap, char *err, size_t errcap)
{
    struct timespec now;

    if (o->seq)
        return next_seq(dir, ext, o->digits, out, cap, err, errcap);
    clock_gettime(CLOCK_REALTIME, &now);
    if (o->format[0] == '\0') {
        snprintf(err, errcap, "Time format may not be empty");
        return -1;
    }
    if (strcmp(o->format, "unix") == 0)
        snprintf(out, cap, "%lld", (long long)now.tv_sec);
    else if (strcmp(o->format, "unixNano") == 0)
        snprintf(out, cap, "%lld%09ld", (long long)now.tv_sec, now.tv_nsec);
    else
        format_time(&now, o->format, out, cap);
    return 0;
}

static int create_one(const char *dir, const char *version, const char *name, const char *dirn,
                      const char *ext, char *err, size_t errcap)
{
    char path[PATH_MAX + 600], abs[PATH_MAX];
    int fd;

    snprintf(path, sizeof path, "%s/%s_%s.%s%s", dir, version, name, dirn, ext);
    fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0666);
    if (fd < 0) {
        snprintf(err, errcap, "open %s: %s", path, strerror(errno));
        return -1;
    }
    close(fd);
    fprintf(stderr, "%s\n", realpath(path, abs) ? abs : path);
    return 0;
}

int create_files(const struct create_opts *o, char *err, size_t errcap)
{
    char ext[256], dir[PATH_MAX], version[128], pat[PATH_MAX + 400];
    glob_t g;
    bool dup;

    if (o->seq && strcmp(o->format, DEFAULT_FORMAT) != 0) {
        snprintf(err, errcap, "The seq and format options are mutually exclusive");
        return -1;
    }
    if (set_tz(o->tz, err, errcap) != 0)
        return -1;
    snprintf(ext, sizeof ext, ".%s", o->ext[0] == '.' ? o->ext + 1 : o->ext);
    snprintf(dir, sizeof dir, "%s", o->dir[0] ? o->dir : ".");
    while (strlen(dir) > 1 && dir[strlen(dir) - 1] == '/')
        dir[strlen(dir) - 1] = '\0';
    if (version_string(o, dir, ext, version, sizeof version, err, errcap) != 0)
        return -1;
    snprintf(pat, sizeof pat, "%s/%s_*%s", dir, version, ext);
    dup = glob(pat, 0, NULL, &g) == 0 && g.gl_pathc > 0;
    globfree(&g);
    if (dup) {
        snprintf(err, errcap, "duplicate migration version: %s", version);
        return -1;
    }
    if (make_dirs(dir) != 0) {
        snprintf(err, errcap, "mkdir %s: %s", dir, strerror(errno));
        return -1;
    }
    if (create_one(dir, version, o->name, "up", ext, err, errcap) != 0
        || create_one(dir, version, o->name, "down", ext, err, errcap) != 0)
        return -1;
    return 0;
}
