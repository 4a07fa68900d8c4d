/*
 * log.h — one line per event on stderr: `ts=... level=... event=... k=v ...`.
 *
 * The level threshold is part of the running config; log_set_level() is
 * called by the daemon when the config is (re)loaded. Messages are formatted
 * by the caller as key=value pairs; log_quote() helps with values that may
 * contain spaces. Secrets must never be passed here.
 */
#ifndef DBPOOLD_LOG_H
#define DBPOOLD_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "daemon/configuration.h"

void log_set_level(enum log_level level);
/* stderr is the journal (sd_service.c tells): lines start with a syslog
 * priority `<N>` and carry no timestamp (the journal has its own). */
void log_set_journal(bool on);
int log_enabled(enum log_level level);
void log_msg(enum log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Quote a value for a key=value field: returns buf ("..." with \" and \\
 * escaped, control characters as spaces) — truncated to the buffer. */
const char *log_quote(char *buf, size_t buflen, const char *s, size_t len);

#define log_debug(ev, ...) do { if (log_enabled(LOG_DEBUG)) log_msg(LOG_DEBUG, ev, __VA_ARGS__); } while (0)
#define log_info(ev, ...) log_msg(LOG_INFO, ev, __VA_ARGS__)
#define log_warn(ev, ...) log_msg(LOG_WARN, ev, __VA_ARGS__)
#define log_error(ev, ...) log_msg(LOG_ERROR, ev, __VA_ARGS__)

#endif
