/*
 * sockbuf.h — buffered non-blocking I/O on one client socket, built for
 * many mostly-idle sessions: the input and output evbuffers exist only while
 * they hold data, and output is flushed once per loop iteration (all frames
 * queued by one callback chain go out in one write), not once per frame.
 *
 * The owner (client.c) embeds a struct sockbuf, reads complete frames from
 * the input, queues frames on the output, and gets callbacks for readable
 * data, drained output and a closed or failed socket. sockbuf_deinit closes
 * the descriptor.
 */
#ifndef DBPOOLD_SOCKBUF_H
#define DBPOOLD_SOCKBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct event;
struct event_base;
struct evbuffer;

struct sockbuf_cbs {
    void (*readable)(void *arg);        /* new input arrived */
    void (*drained)(void *arg);         /* output fell to low_water or below */
    void (*closed)(void *arg);          /* EOF or socket error: the peer is gone */
};

struct sockbuf {
    int fd;
    struct event *rev, *wev;            /* owned */
    struct evbuffer *in, *out;          /* owned; NULL while empty */
    const struct sockbuf_cbs *cbs;
    void *arg;
    size_t read_limit;                  /* stop reading while this much input is unread */
    size_t low_water;                   /* call drained() at or below this */
    bool reading;                       /* read event added */
    bool flush_pending;                 /* wev is active or added */
    bool above_low;                     /* output went above low_water since drained() */
    bool notify_empty;                  /* also call drained() when output is empty */
    bool failed;
};

/* Returns 0, or -1 when libevent could not create the events. */
int sockbuf_init(struct sockbuf *sb, struct event_base *base, int fd,
                 const struct sockbuf_cbs *cbs, void *arg, size_t read_limit, size_t low_water);
void sockbuf_deinit(struct sockbuf *sb);

/* Input. */
size_t sockbuf_in_len(const struct sockbuf *sb);
/* Copy the first n input bytes without consuming; false if fewer are there. */
bool sockbuf_peek(const struct sockbuf *sb, void *dst, size_t n);
/* Consume n bytes into dst (dst may be NULL to discard). */
void sockbuf_take(struct sockbuf *sb, void *dst, size_t n);
void sockbuf_read_enable(struct sockbuf *sb, bool on);

/* Output: queue bytes; the flush happens after the current callbacks. */
bool sockbuf_write(struct sockbuf *sb, const void *p, size_t n);
/* Write the queued output now (the owner's answer is complete). Never
 * calls back: a full socket or an error is left to the write event. */
void sockbuf_flush(struct sockbuf *sb);
size_t sockbuf_out_len(const struct sockbuf *sb);

/* Free empty buffers (called when the session goes idle). */
void sockbuf_trim(struct sockbuf *sb);

#endif
