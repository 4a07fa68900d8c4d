/*
 * log.c — structured key=value logging to stderr (see log.h). One write(2)
 * per line so lines from a worker thread never interleave mid-line. Lines
 * at info level and above pass the per-event volume bound (log_limit.h);
 * its state is guarded by a mutex, as worker threads log too.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "daemon/log.h"
#include "daemon/log_limit.h"

/* The threshold mirrors the running config's logLevel (set on load/reload). */
static enum log_level threshold = LOG_INFO;
/* The volume bound: state of the log itself, like the threshold. */
static struct log_limit limiter;
static pthread_mutex_t limiter_mu = PTHREAD_MUTEX_INITIALIZER;

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

static void write_line(const char *line, size_t len)
{
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;   /* nothing sensible to do if stderr is gone */
}

static uint64_t monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Whether the line may be written; first writes the summaries of events
 * whose lines were suppressed in a window that is now over. */
static bool admit(enum log_level level, const char *event, const char *ts)
{
    struct log_limit_summary sum[4];
    size_t n = 0;
    bool ok;
    char line[256];

    if (level == LOG_DEBUG)
        return true;
    pthread_mutex_lock(&limiter_mu);
    ok = log_limit_admit(&limiter, event, monotonic_ms(), sum, sizeof(sum) / sizeof(sum[0]), &n);
    pthread_mutex_unlock(&limiter_mu);
    for (size_t i = 0; i < n; i++) {
        int m = snprintf(line, sizeof(line), "ts=%s level=warn event=log_suppressed "
                         "suppressed_event=%s lines=%llu window_ms=%d\n", ts, sum[i].name,
                         (unsigned long long)sum[i].suppressed, LOG_LIMIT_WINDOW_MS);
        if (m > 0)
            write_line(line, (size_t)m < sizeof(line) ? (size_t)m : sizeof(line) - 1);
    }
    return ok;
}

void log_msg(enum log_level level, const char *event, const char *fmt, ...)
{
    char line[2048];
    char ts[40];
    va_list ap;

    if (!log_enabled(level))
        return;
    format_time(ts, sizeof(ts));
    if (!admit(level, event, ts))
        return;
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
    write_line(line, used);
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
