/*
 * log_limit.c — the per-event log volume bound (see log_limit.h).
 *
 * A small table of event names, scanned linearly (event names are few and
 * short; a log line costs far more than the scan).
 */
#include <stdio.h>
#include <string.h>

#include "daemon/log_limit.h"

/* Windows that are over start afresh; those that suppressed lines owe a
 * summary, handed out while there is room (else kept owed). */
static void close_windows(struct log_limit *l, uint64_t now_ms, struct log_limit_summary *out,
                          size_t max_out, size_t *nout)
{
    uint64_t window = l->window_ms ? l->window_ms : LOG_LIMIT_WINDOW_MS;

    for (size_t i = 0; i < LOG_LIMIT_EVENTS; i++) {
        struct log_limit_slot *s = &l->slot[i];
        if (!s->name[0] || now_ms - s->window_start_ms < window)
            continue;
        if (s->suppressed) {
            if (*nout >= max_out)
                continue;
            snprintf(out[*nout].name, sizeof(out[*nout].name), "%s", s->name);
            out[(*nout)++].suppressed = s->suppressed;
        }
        s->window_start_ms = now_ms;
        s->written = 0;
        s->suppressed = 0;
    }
}

static struct log_limit_slot *slot_for(struct log_limit *l, const char *event, uint64_t now_ms)
{
    for (size_t i = 0; i < LOG_LIMIT_EVENTS; i++) {
        struct log_limit_slot *s = &l->slot[i];
        if (!s->name[0]) {
            snprintf(s->name, sizeof(s->name), "%s", event);
            s->window_start_ms = now_ms;
            return s;
        }
        if (strncmp(s->name, event, sizeof(s->name) - 1) == 0)
            return s;
    }
    return &l->slot[LOG_LIMIT_EVENTS - 1];
}

bool log_limit_admit(struct log_limit *l, const char *event, uint64_t now_ms,
                     struct log_limit_summary *out, size_t max_out, size_t *nout)
{
    struct log_limit_slot *s;

    *nout = 0;
    close_windows(l, now_ms, out, max_out, nout);
    s = slot_for(l, event, now_ms);
    if (s->written < (l->per_window ? l->per_window : LOG_LIMIT_PER_WINDOW)) {
        s->written++;
        return true;
    }
    s->suppressed++;
    return false;
}
