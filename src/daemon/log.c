/*
 * log.c — structured key=value logging to stderr (see log.h). One write(2)
 * per line so lines from a worker thread never interleave mid-line. Lines
 * at info level and above pass the per-event volume bound (log_limit.h);
 * its state is guarded by a mutex, as worker threads log too. When stderr
 * is the journal (log_set_journal) a line starts with its syslog priority,
 * `<3>` to `<7>`, instead of a timestamp of our own.
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
/* stderr is the journal: set once at start, before any thread runs. */
static bool journal;

void log_set_level(enum log_level level)
{
    threshold = level;
}

void log_set_journal(bool on)
{
    journal = on;
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

/* syslog priorities: err, warning, info, debug. */
static int syslog_priority(enum log_level level)
{
    switch (level) {
    case LOG_ERROR: return 3;
    case LOG_WARN: return 4;
    case LOG_INFO: return 6;
    default: return 7;
    }
}

/* The start of a line: `ts=... ` or, for the journal (which stamps lines
 * itself), `<N>`; then the level. */
static size_t line_start(char *buf, size_t len, enum log_level level, const char *ts)
{
    int n = journal ? snprintf(buf, len, "<%d>level=%s ", syslog_priority(level), log_level_name(level))
                    : snprintf(buf, len, "ts=%s level=%s ", ts, log_level_name(level));
    return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
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
        size_t h = line_start(line, sizeof(line), LOG_WARN, ts);
        int m = snprintf(line + h, sizeof(line) - h, "event=log_suppressed "
                         "suppressed_event=%s lines=%llu window_ms=%d\n", sum[i].name,
                         (unsigned long long)sum[i].suppressed, LOG_LIMIT_WINDOW_MS);
        if (m > 0)
            write_line(line, h + (size_t)m < sizeof(line) ? h + (size_t)m : sizeof(line) - 1);
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
    ts[0] = '\0';
    if (!journal)
        format_time(ts, sizeof(ts));
    if (!admit(level, event, ts))
        return;
    size_t h = line_start(line, sizeof(line), level, ts);
    int n = snprintf(line + h, sizeof(line) - h, "event=%s ", event);
    if (n < 0)
        return;
    size_t used = h + (size_t)n < sizeof(line) ? h + (size_t)n : sizeof(line) - 1;
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
