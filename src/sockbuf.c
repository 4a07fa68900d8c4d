/*
 * sockbuf.c — lazy, coalescing buffered socket I/O for client sessions (see
 * sockbuf.h). Reads go through a stack buffer into an input evbuffer that
 * is created on demand; queued output is written by a write event that is
 * activated (not polled) when the first bytes are queued, so everything a
 * callback chain produced leaves in one writev, and polled for writability
 * only when the socket's buffer is full. sockbuf_flush writes at once, for
 * the owner that knows its answer is complete (no wait for the rest of the
 * loop pass: a reply should not queue behind other sessions' callbacks).
 */
#include <errno.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "sockbuf.h"

#define READ_CHUNK 16384

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
    ssize_t n = read(fd, buf, sizeof(buf));

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        sockbuf_fail(sb);
        return;
    }
    if (!sb->in && !(sb->in = evbuffer_new())) {
        sockbuf_fail(sb);
        return;
    }
    if (evbuffer_add(sb->in, buf, (size_t)n) != 0) {
        sockbuf_fail(sb);
        return;
    }
    if (evbuffer_get_length(sb->in) >= sb->read_limit)
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
    }
    if (!sb->flush_pending && sb->out && evbuffer_get_length(sb->out) == 0) {
        evbuffer_free(sb->out);   /* idle sessions hold no buffers */
        sb->out = NULL;
    }
    if ((sb->above_low && sockbuf_out_len(sb) <= sb->low_water) ||
        (sb->notify_empty && sockbuf_out_len(sb) == 0)) {
        sb->above_low = false;
        sb->cbs->drained(sb->arg);   /* may queue more, or deinit sb */
    }
}

int sockbuf_init(struct sockbuf *sb, struct event_base *base, int fd,
                 const struct sockbuf_cbs *cbs, void *arg, size_t read_limit, size_t low_water)
{
    sb->fd = fd;
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
    if (!sb->reading && !sb->failed && evbuffer_get_length(sb->in) < sb->read_limit)
        sockbuf_read_enable(sb, true);
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
        if (n <= 0)
            return;   /* full socket or an error: the pending write event handles it */
    }
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
