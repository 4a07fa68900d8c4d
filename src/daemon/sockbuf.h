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
 *
 * Memory: every sockbuf charges the bytes it buffers to the daemon's
 * struct io_budget (clientBufferBudget). Input is read ahead only up to
 * read_limit bytes; a frame larger than that must first be admitted
 * (sockbuf_admit), which reserves its whole length in the budget at once or
 * fails — the owner then queues for budget (io_budget_wait) and is called
 * back, in FIFO order, when enough has been released.
 */
#ifndef DBPOOLD_SOCKBUF_H
#define DBPOOLD_SOCKBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

struct event;
struct event_base;
struct evbuffer;

/* A session waiting for budget (see io_budget_wait). */
struct budget_waiter {
    TAILQ_ENTRY(budget_waiter) link;
    size_t need;                        /* bytes it must be able to charge */
    void (*granted)(void *arg);         /* called from the loop once they fit */
    void *arg;
    bool queued;
};
TAILQ_HEAD(budget_waiters, budget_waiter);

/* The daemon-wide budget of buffered client bytes (owned by the daemon). */
struct io_budget {
    size_t limit;                       /* clientBufferBudget */
    size_t used;                        /* charged now: input, output, request frames */
    size_t peak;                        /* highest used since start */
    size_t nwaiting;
    struct budget_waiters waiters;      /* FIFO */
    struct event *wake;                 /* grants to waiters from the loop (owned) */
};

int io_budget_init(struct io_budget *b, struct event_base *base, size_t limit);
void io_budget_deinit(struct io_budget *b);
bool io_budget_fits(const struct io_budget *b, size_t n);
/* Charge unconditionally (bytes already held); release wakes waiters that fit. */
void io_budget_charge(struct io_budget *b, size_t n);
void io_budget_release(struct io_budget *b, size_t n);
/* Queue w until `need` more bytes fit; granted(arg) is then called from the
 * loop (w no longer queued). A waiter already queued is left in place. */
void io_budget_wait(struct io_budget *b, struct budget_waiter *w, size_t need,
                    void (*granted)(void *arg), void *arg);
void io_budget_cancel(struct io_budget *b, struct budget_waiter *w);

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
    struct io_budget *budget;           /* charged for in and out (not owned) */
    size_t read_limit;                  /* read ahead at most this much unadmitted input */
    size_t in_reserve;                  /* input admitted for the frame at the head (bytes) */
    size_t charged;                     /* bytes charged to budget now */
    size_t low_water;                   /* call drained() at or below this */
    uint64_t bytes_in, bytes_out;       /* read from / written to the socket (GET /clients) */
    bool reading;                       /* read event added */
    bool flush_pending;                 /* wev is active or added */
    bool above_low;                     /* output went above low_water since drained() */
    bool notify_empty;                  /* also call drained() when output is empty */
    bool failed;
};

/* Returns 0, or -1 when libevent could not create the events. */
int sockbuf_init(struct sockbuf *sb, struct event_base *base, int fd,
                 const struct sockbuf_cbs *cbs, void *arg, struct io_budget *budget,
                 size_t read_limit, size_t low_water);
void sockbuf_deinit(struct sockbuf *sb);

/* Input. */
size_t sockbuf_in_len(const struct sockbuf *sb);
/* Copy the first n input bytes without consuming; false if fewer are there. */
bool sockbuf_peek(const struct sockbuf *sb, void *dst, size_t n);
/* Consume n bytes into dst (dst may be NULL to discard). */
void sockbuf_take(struct sockbuf *sb, void *dst, size_t n);
void sockbuf_read_enable(struct sockbuf *sb, bool on);
/* Let the input grow to n bytes (the whole frame at its head), charging the
 * budget for them now. False, with nothing changed, when the budget has no
 * room; the reservation shrinks as the bytes are taken. */
bool sockbuf_admit(struct sockbuf *sb, size_t n);
/* The extra budget sockbuf_admit(sb, n) would need to charge now. */
size_t sockbuf_admit_need(const struct sockbuf *sb, size_t n);

/* Output: queue bytes; the flush happens after the current callbacks. */
bool sockbuf_write(struct sockbuf *sb, const void *p, size_t n);
/* Write the queued output now (the owner's answer is complete). Never
 * calls back: a full socket or an error is left to the write event. */
void sockbuf_flush(struct sockbuf *sb);
size_t sockbuf_out_len(const struct sockbuf *sb);

/* Free empty buffers (called when the session goes idle). */
void sockbuf_trim(struct sockbuf *sb);

#endif
