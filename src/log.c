/*
 * log.c — structured key=value logging to stderr (see log.h). One write(2)
 * per line so lines from a worker thread never interleave mid-line.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* The threshold mirrors the running config's logLevel (set on load/reload). */
static enum log_level threshold = LOG_INFO;

void log_set_level(enum log_level level)
{
    threshold = level;
}

int log_enabled(enum log_level level)
{
    return level >= threshold;
}

static size_t format_time(char *buf, size_t len)
{
    struct timeval tv;
    struct tm tm;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    int m = snprintf(buf + n, len - n, ".%03ldZ", (long)(tv.tv_usec / 1000));
    return n + (m > 0 ? (size_t)m : 0);
}

void log_msg(enum log_level level, const char *event, const char *fmt, ...)
{
    char line[2048];
    char ts[40];
    va_list ap;

    if (!log_enabled(level))
        return;
    format_time(ts, sizeof(ts));
    int n = snprintf(line, sizeof(line), "ts=%s level=%s event=%s ", ts,
                     log_level_name(level), event);
    if (n < 0)
        return;
    size_t used = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
    va_start(ap, fmt);
    int m = vsnprintf(line + used, sizeof(line) - used, fmt, ap);
    va_end(ap);
    if (m > 0)
        used += (size_t)m < sizeof(line) - used ? (size_t)m : sizeof(line) - used - 1;
    while (used > 0 && line[used - 1] == ' ')
        used--;
    line[used++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, used);
    (void)w;   /* nothing sensible to do if stderr is gone */
}

const char *log_quote(char *buf, size_t buflen, const char *s, size_t len)
{
    size_t o = 0;

    if (buflen < 3)
        return "\"\"";
    buf[o++] = '"';
    for (size_t i = 0; i < len && o + 3 < buflen; i++) {
        char c = s[i];
        if (c == '"' || c == '\\')
            buf[o++] = '\\';
        buf[o++] = ((unsigned char)c < 0x20) ? ' ' : c;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}
