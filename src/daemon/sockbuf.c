/*
 * sockbuf.c — lazy, coalescing buffered socket I/O for client sessions (see
 * sockbuf.h). Reads go through a stack buffer into an input evbuffer that
 * is created on demand; queued output is written by a write event that is
 * activated (not polled) when the first bytes are queued, so everything a
 * callback chain produced leaves in one writev, and polled for writability
 * only when the socket's buffer is full. sockbuf_flush writes at once, for
 * the owner that knows its answer is complete (no wait for the rest of the
 * loop pass: a reply should not queue behind other sessions' callbacks).
 *
 * Every change of the buffers goes through charge_sync, which keeps the
 * bytes charged to the io_budget equal to max(input, admitted input) +
 * output. The budget's waiters are granted from an event (never from inside
 * the release that made room), so the owner's callbacks never nest.
 */
#include <errno.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "daemon/sockbuf.h"

#define READ_CHUNK 16384

/* ------------------------------------------------------------- budget */

static void on_budget_wake(evutil_socket_t fd, short what, void *arg)
{
    struct io_budget *b = arg;
    struct budget_waiter *w;

    while ((w = TAILQ_FIRST(&b->waiters)) && io_budget_fits(b, w->need)) {
        TAILQ_REMOVE(&b->waiters, w, link);
        w->queued = false;
        b->nwaiting--;
        w->granted(w->arg);   /* charges what it needs before the next one is tried */
    }
}

int io_budget_init(struct io_budget *b, struct event_base *base, size_t limit)
{
    b->limit = limit;
    b->used = b->peak = b->nwaiting = 0;
    TAILQ_INIT(&b->waiters);
    b->wake = event_new(base, -1, 0, on_budget_wake, b);
    return b->wake ? 0 : -1;
}

void io_budget_deinit(struct io_budget *b)
{
    if (b->wake)
        event_free(b->wake);
    b->wake = NULL;
}

bool io_budget_fits(const struct io_budget *b, size_t n)
{
    return b->used <= b->limit && n <= b->limit - b->used;
}

void io_budget_charge(struct io_budget *b, size_t n)
{
    b->used += n;
    if (b->used > b->peak)
        b->peak = b->used;
}

void io_budget_release(struct io_budget *b, size_t n)
{
    struct budget_waiter *w = TAILQ_FIRST(&b->waiters);

    b->used = n < b->used ? b->used - n : 0;
    if (w && b->wake && io_budget_fits(b, w->need))
        event_active(b->wake, EV_TIMEOUT, 0);
}

void io_budget_wait(struct io_budget *b, struct budget_waiter *w, size_t need,
                    void (*granted)(void *arg), void *arg)
{
    if (w->queued)
        return;
    w->need = need;
    w->granted = granted;
    w->arg = arg;
    w->queued = true;
    TAILQ_INSERT_TAIL(&b->waiters, w, link);
    b->nwaiting++;
    if (TAILQ_FIRST(&b->waiters) == w && io_budget_fits(b, need) && b->wake)
        event_active(b->wake, EV_TIMEOUT, 0);
}

void io_budget_cancel(struct io_budget *b, struct budget_waiter *w)
{
    if (!w->queued)
        return;
    TAILQ_REMOVE(&b->waiters, w, link);
    w->queued = false;
    b->nwaiting--;
    if ((w = TAILQ_FIRST(&b->waiters)) && io_budget_fits(b, w->need) && b->wake)
        event_active(b->wake, EV_TIMEOUT, 0);   /* the head may have been the one blocking */
}

/* ------------------------------------------------------------- sockbuf */

static size_t in_limit(const struct sockbuf *sb)
{
    return sb->in_reserve > sb->read_limit ? sb->in_reserve : sb->read_limit;
}

/* What the buffers should be charged: admitted input counts in full. */
static size_t charge_wanted(const struct sockbuf *sb, size_t in_reserve)
{
    size_t in = sockbuf_in_len(sb);

    return (in > in_reserve ? in : in_reserve) + sockbuf_out_len(sb);
}

static void charge_sync(struct sockbuf *sb)
{
    size_t want = charge_wanted(sb, sb->in_reserve);

    if (want > sb->charged)
        io_budget_charge(sb->budget, want - sb->charged);
    else if (want < sb->charged)
        io_budget_release(sb->budget, sb->charged - want);
    sb->charged = want;
}

static void sockbuf_fail(struct sockbuf *sb)
{
    if (sb->failed)
        return;
    sb->failed = true;
    sockbuf_read_enable(sb, false);
    event_del(sb->wev);
    sb->cbs->closed(sb->arg);   /* the owner may deinit sb here */
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct sockbuf *sb = arg;
    char buf[READ_CHUNK];
    size_t have = sockbuf_in_len(sb), limit = in_limit(sb);

    if (have >= limit) {
        sockbuf_read_enable(sb, false);
        return;
    }
    /* Never read past the limit: unadmitted input stays in the socket. */
    ssize_t n = read(fd, buf, limit - have < sizeof(buf) ? limit - have : sizeof(buf));

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        sockbuf_fail(sb);
        return;
    }
    sb->bytes_in += (uint64_t)n;
    if (!sb->in && !(sb->in = evbuffer_new())) {
        sockbuf_fail(sb);
        return;
    }
    if (evbuffer_add(sb->in, buf, (size_t)n) != 0) {
        sockbuf_fail(sb);
        return;
    }
    charge_sync(sb);
    if (evbuffer_get_length(sb->in) >= in_limit(sb))
        sockbuf_read_enable(sb, false);
    sb->cbs->readable(sb->arg);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    struct sockbuf *sb = arg;

    sb->flush_pending = false;
    while (sb->out && evbuffer_get_length(sb->out) > 0) {
        int n = evbuffer_write(sb->out, fd);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            sb->flush_pending = true;
            event_add(sb->wev, NULL);   /* wait until the socket takes more */
            break;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            sockbuf_fail(sb);
            return;
        }
        sb->bytes_out += (uint64_t)n;
    }
    if (!sb->flush_pending && sb->out && evbuffer_get_length(sb->out) == 0) {
        evbuffer_free(sb->out);   /* idle sessions hold no buffers */
        sb->out = NULL;
    }
    charge_sync(sb);
    if ((sb->above_low && sockbuf_out_len(sb) <= sb->low_water) ||
        (sb->notify_empty && sockbuf_out_len(sb) == 0)) {
        sb->above_low = false;
        sb->cbs->drained(sb->arg);   /* may queue more, or deinit sb */
    }
}

int sockbuf_init(struct sockbuf *sb, struct event_base *base, int fd,
                 const struct sockbuf_cbs *cbs, void *arg, struct io_budget *budget,
                 size_t read_limit, size_t low_water)
{
    sb->fd = fd;
    sb->budget = budget;
    sb->in_reserve = sb->charged = 0;
    sb->in = sb->out = NULL;
    sb->cbs = cbs;
    sb->arg = arg;
    sb->read_limit = read_limit;
    sb->low_water = low_water;
    sb->reading = sb->flush_pending = sb->above_low = sb->failed = sb->notify_empty = false;
    sb->rev = event_new(base, fd, EV_READ | EV_PERSIST, on_readable, sb);
    sb->wev = event_new(base, fd, EV_WRITE, on_writable, sb);
    if (!sb->rev || !sb->wev) {
        if (sb->rev)
            event_free(sb->rev);
        if (sb->wev)
            event_free(sb->wev);
        sb->rev = sb->wev = NULL;
        return -1;
    }
    sockbuf_read_enable(sb, true);
    return 0;
}

void sockbuf_deinit(struct sockbuf *sb)
{
    if (sb->rev)
        event_free(sb->rev);
    if (sb->wev)
        event_free(sb->wev);
    if (sb->in)
        evbuffer_free(sb->in);
    if (sb->out)
        evbuffer_free(sb->out);
    if (sb->fd >= 0)
        close(sb->fd);
    if (sb->budget && sb->charged)
        io_budget_release(sb->budget, sb->charged);
    sb->charged = sb->in_reserve = 0;
    sb->rev = sb->wev = NULL;
    sb->in = sb->out = NULL;
    sb->fd = -1;
}

size_t sockbuf_in_len(const struct sockbuf *sb)
{
    return sb->in ? evbuffer_get_length(sb->in) : 0;
}

bool sockbuf_peek(const struct sockbuf *sb, void *dst, size_t n)
{
    return sockbuf_in_len(sb) >= n && evbuffer_copyout(sb->in, dst, n) == (ssize_t)n;
}

void sockbuf_take(struct sockbuf *sb, void *dst, size_t n)
{
    if (!sb->in)
        return;
    if (dst)
        evbuffer_remove(sb->in, dst, n);
    else
        evbuffer_drain(sb->in, n);
    sb->in_reserve -= n < sb->in_reserve ? n : sb->in_reserve;
    charge_sync(sb);
    if (!sb->reading && !sb->failed && evbuffer_get_length(sb->in) < in_limit(sb))
        sockbuf_read_enable(sb, true);
}

size_t sockbuf_admit_need(const struct sockbuf *sb, size_t n)
{
    size_t want = charge_wanted(sb, n);

    return want > sb->charged ? want - sb->charged : 0;
}

bool sockbuf_admit(struct sockbuf *sb, size_t n)
{
    if (n <= sb->in_reserve)
        return true;
    if (!io_budget_fits(sb->budget, sockbuf_admit_need(sb, n)))
        return false;
    sb->in_reserve = n;
    charge_sync(sb);
    if (!sb->failed && sockbuf_in_len(sb) < in_limit(sb))
        sockbuf_read_enable(sb, true);
    return true;
}

void sockbuf_read_enable(struct sockbuf *sb, bool on)
{
    if (on == sb->reading || !sb->rev)
        return;
    if (on && sb->failed)
        return;
    if (on ? event_add(sb->rev, NULL) == 0 : event_del(sb->rev) == 0)
        sb->reading = on;
}

bool sockbuf_write(struct sockbuf *sb, const void *p, size_t n)
{
    if (sb->failed)
        return true;   /* the peer is gone; the owner hears of it via closed() */
    if (!sb->out && !(sb->out = evbuffer_new()))
        return false;
    if (evbuffer_add(sb->out, p, n) != 0)
        return false;
    charge_sync(sb);
    if (evbuffer_get_length(sb->out) > sb->low_water)
        sb->above_low = true;
    if (!sb->flush_pending) {
        sb->flush_pending = true;
        event_active(sb->wev, EV_WRITE, 0);
    }
    return true;
}

void sockbuf_flush(struct sockbuf *sb)
{
    if (sb->failed || !sb->out || !sb->flush_pending)
        return;
    while (evbuffer_get_length(sb->out) > 0) {
        int n = evbuffer_write(sb->out, sb->fd);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            charge_sync(sb);
            return;   /* full socket or an error: the pending write event handles it */
        }
        sb->bytes_out += (uint64_t)n;
    }
    charge_sync(sb);
    if (sb->above_low || sb->notify_empty)
        return;       /* on_writable calls drained() from the loop */
    if (event_del(sb->wev) == 0) {
        sb->flush_pending = false;
        evbuffer_free(sb->out);
        sb->out = NULL;
    }
}

size_t sockbuf_out_len(const struct sockbuf *sb)
{
    return sb->out ? evbuffer_get_length(sb->out) : 0;
}

void sockbuf_trim(struct sockbuf *sb)
{
    if (sb->in && evbuffer_get_length(sb->in) == 0) {
        evbuffer_free(sb->in);
        sb->in = NULL;
    }
    if (sb->out && evbuffer_get_length(sb->out) == 0 && !sb->flush_pending) {
        evbuffer_free(sb->out);
        sb->out = NULL;
    }
}
