/*
 * sd_service.c — the service manager's side channels (see sd_service.h):
 *
 *   notify     newline-separated VAR=value messages to $NOTIFY_SOCKET, sent
 *              from the event loop
 *   watchdog   WATCHDOG=1 from a loop timer at half of $WATCHDOG_USEC (when
 *              it is meant for this process), so a stuck loop stops the
 *              pings and the manager restarts the service
 *   status     STATUS= "N clients, M pools, K unhealthy": the figures are
 *              read once a second and sent only when the text changed —
 *              never per request
 *   sockets    $LISTEN_PID/$LISTEN_FDS/$LISTEN_FDNAMES: descriptors from 3
 *              on, each checked and put in its slot by name
 *   journal    $JOURNAL_STREAM "device:inode" of stderr
 *
 * Two variants of the calls that talk to the manager, chosen by configure
 * (--with-libsystemd, HAVE_LIBSYSTEMD): libsystemd's sd_notify,
 * sd_watchdog_enabled and sd_listen_fds_with_names; or, without it, the
 * same documented protocols spoken here (a non-blocking datagram to the
 * notify socket, the environment parsed as libsystemd does). Only the
 * section "the manager's interfaces" differs; everything around it (slots
 * and checks of passed sockets, STATUS= and its timer, the watchdog timer,
 * the journal check, which libsystemd has no call for) is shared.
 *
 * The object is owned by the daemon (daemon.c); no state lives outside it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "daemon/log.h"
#include "daemon/sd_service.h"

#define LISTEN_FDS_START 3               /* the protocol's first passed descriptor */
#define LISTEN_FDS_MAX 64                /* more is a mistake, not a service of ours */
#define STATUS_INTERVAL_MS 1000
#define STATUS_MAX 160

/* A whole decimal number (no sign, no trailing text). */
static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;

    if (!s || *s < '0' || *s > '9')
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = v;
    return true;
}

/* ------------------------------------------------------------------------
 * the manager's interfaces — each variant defines:
 *
 *   struct channel                  what stays open for notifications
 *   channel_open(ch, name)          0: ready to send to $NOTIFY_SOCKET (name);
 *                                   1: unusable (logged), no notifications;
 *                                   -1: error (errno)
 *   channel_send(ch, msg)           0, or -1 with errno
 *   channel_close(ch)
 *   manager_watchdog_usec()         $WATCHDOG_USEC when meant for this
 *                                   process, else 0
 *   manager_listen_fds(&names)      the number of descriptors passed from 3
 *                                   on (names: as many malloc'd strings,
 *                                   "unknown" when unnamed), 0 when none is
 *                                   for this process, or -errno; the
 *                                   LISTEN_* variables are unset
 * ---------------------------------------------------------------------- */
#ifdef HAVE_LIBSYSTEMD

/* sd_notify opens a socket per message: nothing stays open. */
struct channel {
    bool unused;
};

static int channel_open(struct channel *ch, const char *name)
{
    return 0;
}

static int channel_send(struct channel *ch, const char *msg)
{
    int r = sd_notify(0, msg);

    if (r < 0)
        errno = -r;
    return r < 0 ? -1 : 0;
}

static void channel_close(struct channel *ch)
{
}

static uint64_t manager_watchdog_usec(void)
{
    uint64_t usec = 0;

    return sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
}

static int manager_listen_fds(char ***names)
{
    *names = NULL;
    return sd_listen_fds_with_names(1, names);
}

#else /* the protocols spoken here */

struct channel {
    int fd;                              /* datagram socket, non-blocking */
    struct sockaddr_un addr;
    socklen_t addrlen;
};

/* The variable holds this process's id (LISTEN_PID, WATCHDOG_PID). */
static bool env_is_our_pid(const char *name)
{
    uint64_t pid;

    return parse_u64(getenv(name), &pid) && pid == (uint64_t)getpid();
}

/* A path, or "@name" in the abstract namespace. */
static int channel_open(struct channel *ch, const char *name)
{
    size_t len = strlen(name);
    char q[300];

    memset(&ch->addr, 0, sizeof(ch->addr));
    ch->addr.sun_family = AF_UNIX;
    ch->fd = -1;
    if ((name[0] != '/' && name[0] != '@') || len >= sizeof(ch->addr.sun_path)) {
        log_warn("notify_socket_unusable", "notify_socket=%s hint=\"dbpoold speaks the notify "
                 "protocol over AF_UNIX paths and abstract names only; it will not report readiness\"",
                 log_quote(q, sizeof(q), name, len));
        return 1;
    }
    memcpy(ch->addr.sun_path, name, len);
    if (name[0] == '@')
        ch->addr.sun_path[0] = '\0';
    ch->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (name[0] == '/'));
    ch->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    return ch->fd >= 0 ? 0 : -1;
}

/* A full queue fails with EAGAIN rather than stall the loop. */
static int channel_send(struct channel *ch, const char *msg)
{
    ssize_t n = sendto(ch->fd, msg, strlen(msg), MSG_NOSIGNAL, (const struct sockaddr *)&ch->addr,
                       ch->addrlen);

    return n < 0 ? -1 : 0;
}

static void channel_close(struct channel *ch)
{
    if (ch->fd >= 0)
        close(ch->fd);
    ch->fd = -1;
}

static uint64_t manager_watchdog_usec(void)
{
    uint64_t usec;

    if (!parse_u64(getenv("WATCHDOG_USEC"), &usec))
        return 0;
    return getenv("WATCHDOG_PID") && !env_is_our_pid("WATCHDOG_PID") ? 0 : usec;
}

/* n names from the ':'-separated list (NULL: each "unknown"), as
 * libsystemd reads $LISTEN_FDNAMES: n or -errno (-EINVAL: another count). */
static int split_names(const char *list, size_t n, char ***out)
{
    char **names = calloc(n, sizeof(*names));
    const char *p = list;
    bool more = list && *list;           /* another name follows */
    int rc = (int)n;

    if (!names)
        return -ENOMEM;
    for (size_t i = 0; i < n && rc > 0; i++) {
        if (list && !more) {
            rc = -EINVAL;                /* fewer names than descriptors */
            break;
        }
        size_t len = list ? strcspn(p, ":") : 0;
        names[i] = list ? strndup(p, len) : strdup("unknown");
        more = list && p[len] == ':';
        p = list ? p + len + more : NULL;
        if (!names[i])
            rc = -ENOMEM;
    }
    if (rc > 0 && more)
        rc = -EINVAL;                    /* more names than descriptors */
    for (size_t i = 0; rc < 0 && i < n; i++)
        free(names[i]);
    if (rc < 0) {
        free(names);
        names = NULL;
    }
    *out = names;
    return rc;
}

static int manager_listen_fds(char ***names)
{
    const char *nfds = getenv("LISTEN_FDS");
    uint64_t n = 0;
    int rc = 0;

    *names = NULL;
    if (env_is_our_pid("LISTEN_PID") && nfds)
        rc = !parse_u64(nfds, &n) || n > LISTEN_FDS_MAX ? -EINVAL
             : n ? split_names(getenv("LISTEN_FDNAMES"), n, names) : 0;
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return rc;
}

#endif

struct service {
    struct service_view view;
    bool notify;                         /* a manager listens: send notifications */
    bool stopping;                       /* STOPPING=1 sent: no READY=1 or RELOADING=1 after it */
    struct channel ch;
    struct event *watchdog;              /* NULL without WATCHDOG_USEC */
    uint64_t watchdog_usec;
    struct event *status_timer;
    char status[STATUS_MAX];             /* the STATUS= text last sent */
};

/* ------------------------------------------------------------------------
 * the journal
 * ---------------------------------------------------------------------- */

bool service_stderr_is_journal(void)
{
    const char *e = getenv("JOURNAL_STREAM");
    const char *colon = e ? strchr(e, ':') : NULL;
    char dev_s[32];
    uint64_t dev, ino;
    struct stat st;

    if (!colon || (size_t)(colon - e) >= sizeof(dev_s))
        return false;
    memcpy(dev_s, e, (size_t)(colon - e));
    dev_s[colon - e] = '\0';
    if (!parse_u64(dev_s, &dev) || !parse_u64(colon + 1, &ino) || fstat(STDERR_FILENO, &st) != 0)
        return false;
    return (uint64_t)st.st_dev == dev && (uint64_t)st.st_ino == ino;
}

/* ------------------------------------------------------------------------
 * socket activation
 * ---------------------------------------------------------------------- */

static int sockopt_int(int fd, int opt)
{
    int v = -1;
    socklen_t len = sizeof(v);

    return getsockopt(fd, SOL_SOCKET, opt, &v, &len) == 0 ? v : -1;
}

/* NULL if fd is a listening AF_UNIX stream socket, else what it is not. */
static const char *not_usable(int fd)
{
    if (sockopt_int(fd, SO_TYPE) < 0)
        return "is not a socket";
    if (sockopt_int(fd, SO_DOMAIN) != AF_UNIX)
        return "is not a Unix socket (ListenStream= must be a file system path)";
    if (sockopt_int(fd, SO_TYPE) != SOCK_STREAM)
        return "is not a stream socket (use ListenStream=)";
    if (sockopt_int(fd, SO_ACCEPTCONN) != 1)
        return "is not listening (Accept= must be no)";
    return NULL;
}

static void socket_address(int fd, char *out, size_t len)
{
    struct sockaddr_un sa;
    socklen_t sl = sizeof(sa);

    memset(&sa, 0, sizeof(sa));
    snprintf(out, len, "?");
    if (getsockname(fd, (struct sockaddr *)&sa, &sl) != 0 || sl <= offsetof(struct sockaddr_un, sun_path))
        return;
    size_t n = sl - offsetof(struct sockaddr_un, sun_path);
    if (sa.sun_path[0] == '\0')
        snprintf(out, len, "@%.*s", (int)(n - 1), sa.sun_path + 1);
    else
        snprintf(out, len, "%.*s", (int)strnlen(sa.sun_path, n), sa.sun_path);
}

/* Which slot a passed socket fills: by name, or the client socket when it is the only one. */
static struct service_socket *slot_for(struct service_sockets *out, const char *name, uint64_t n)
{
    if (strcmp(name, "client") == 0)
        return &out->client;
    if (strcmp(name, "status") == 0)
        return &out->status;
    return n == 1 ? &out->client : NULL;
}

/* Adopt descriptor fd named name into its slot; -1 + message if it cannot be. */
static int adopt(struct service_sockets *out, int fd, const char *name, uint64_t n,
                 char *errbuf, size_t errlen)
{
    struct service_socket *slot = slot_for(out, name, n);
    const char *why = not_usable(fd);

    if (!slot) {
        snprintf(errbuf, errlen, "passed socket %d is named \"%s\": name the sockets "
                 "FileDescriptorName=client and FileDescriptorName=status in the .socket units", fd, name);
        return -1;
    }
    if (slot->fd >= 0) {
        snprintf(errbuf, errlen, "two passed sockets (%d and %d) are named \"%s\": pass one client "
                 "and at most one status socket", slot->fd, fd, name);
        return -1;
    }
    if (why) {
        snprintf(errbuf, errlen, "passed socket %d (\"%s\") %s", fd, name, why);
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
        snprintf(errbuf, errlen, "passed socket %d: fcntl: %s", fd, strerror(errno));
        return -1;
    }
    slot->fd = fd;
    socket_address(fd, slot->path, sizeof(slot->path));
    return 0;
}

int service_take_sockets(struct service_sockets *out, char *errbuf, size_t errlen)
{
    char env[160];
    const char *nfds = getenv("LISTEN_FDS"), *names_env = getenv("LISTEN_FDNAMES");
    char **names = NULL;
    int rc = 0;

    out->client = (struct service_socket){ .fd = -1 };
    out->status = (struct service_socket){ .fd = -1 };
    snprintf(env, sizeof(env), "LISTEN_FDS=%.20s LISTEN_FDNAMES=%.100s", nfds ? nfds : "",
             names_env ? names_env : "");
    int n = manager_listen_fds(&names);
    if (n < 0 || n > LISTEN_FDS_MAX) {
        snprintf(errbuf, errlen, "cannot take the sockets the service manager passed (%s): %s; "
                 "pass at most %d, with one name each", env, n < 0 ? strerror(-n) : "too many",
                 LISTEN_FDS_MAX);
        rc = -1;
    }
    for (int i = 0; i < n && rc == 0; i++)
        rc = adopt(out, LISTEN_FDS_START + i, names[i], (uint64_t)n, errbuf, errlen);
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

const char *service_socket_path(const struct service_socket *passed, const char *configured,
                                const char *key)
{
    char q1[300], q2[300];

    if (passed->fd < 0)
        return configured;
    if (strcmp(passed->path, configured) != 0)
        log_info("socket_passed", "setting=%s path=%s configured=%s hint=\"serving the socket the "
                 "service manager passed (socket activation); %s is not used\"", key,
                 log_quote(q1, sizeof(q1), passed->path, strlen(passed->path)),
                 log_quote(q2, sizeof(q2), configured, strlen(configured)), key);
    return passed->path;
}

void service_close_socket(struct service_socket *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}

/* ------------------------------------------------------------------------
 * notifications
 * ---------------------------------------------------------------------- */

static void send_message(struct service *s, const char *msg)
{
    if (!s || !s->notify || channel_send(&s->ch, msg) == 0)
        return;
    char q[200];
    log_warn("notify_failed", "message=%s error=\"%s\" hint=\"the service manager's notify socket "
             "(NOTIFY_SOCKET) refused it; systemd may consider dbpoold unresponsive\"",
             log_quote(q, sizeof(q), msg, strcspn(msg, "\n")), strerror(errno));
}

static void status_text(const struct service *s, char *buf, size_t len)
{
    struct service_figures f = { 0 };

    s->view.figures(s->view.arg, &f);
    snprintf(buf, len, "%s%zu client%s, %zu pool%s, %zu unhealthy", f.stopping ? "stopping: " : "",
             f.clients, f.clients == 1 ? "" : "s", f.pools, f.pools == 1 ? "" : "s", f.unhealthy);
}

/* Send head (may be "") with a STATUS= line when forced or the text changed. */
static void send_with_status(struct service *s, const char *head, bool force)
{
    char text[STATUS_MAX], msg[STATUS_MAX + 80];

    status_text(s, text, sizeof(text));
    if (!force && strcmp(text, s->status) == 0)
        return;
    snprintf(s->status, sizeof(s->status), "%s", text);
    snprintf(msg, sizeof(msg), "%sSTATUS=%s", head, text);
    send_message(s, msg);
}

static void on_status_timer(evutil_socket_t fd, short what, void *arg)
{
    send_with_status(arg, "", false);
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    send_message(arg, "WATCHDOG=1");
}

static void start_timer(struct event *ev, uint64_t usec, const char *what)
{
    struct timeval tv = { (time_t)(usec / 1000000), (suseconds_t)(usec % 1000000) };

    if (ev && !evtimer_pending(ev, NULL) && evtimer_add(ev, &tv) != 0)
        log_error("notify_timer_failed", "timer=%s hint=\"cannot arm the timer (out of memory?); "
                  "restart dbpoold\"", what);
}

void service_notify_ready(struct service *s)
{
    if (!s || !s->notify || s->stopping)
        return;
    send_with_status(s, "READY=1\n", true);
    start_timer(s->status_timer, STATUS_INTERVAL_MS * 1000ull, "status");
    start_timer(s->watchdog, s->watchdog_usec / 2, "watchdog");
}

void service_notify_reloading(struct service *s)
{
    struct timespec ts;
    char msg[128];

    if (!s || !s->notify || s->stopping)   /* a reload during the drain is refused */
        return;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%" PRIu64 "\nSTATUS=reloading the configuration",
             (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u);
    snprintf(s->status, sizeof(s->status), "reloading the configuration");
    send_message(s, msg);
}

void service_notify_stopping(struct service *s)
{
    if (!s || !s->notify)
        return;
    s->stopping = true;
    send_with_status(s, "STOPPING=1\n", true);
}

/* ------------------------------------------------------------------------
 * set-up
 * ---------------------------------------------------------------------- */

/* Arm the watchdog pings when the manager asked for them (for this process). */
static bool watchdog_setup(struct service *s, struct event_base *base)
{
    uint64_t usec = manager_watchdog_usec();

    if (usec == 0)
        return true;
    s->watchdog_usec = usec;
    s->watchdog = event_new(base, -1, EV_PERSIST, on_watchdog, s);
    log_info("watchdog", "interval_ms=%" PRIu64 " timeout_ms=%" PRIu64, usec / 2000, usec / 1000);
    return s->watchdog != NULL;
}

struct service *service_new(struct event_base *base, const struct service_view *view,
                            char *errbuf, size_t errlen)
{
    struct service *s = calloc(1, sizeof(*s));
    const char *e = getenv("NOTIFY_SOCKET");
    int rc;

    if (!s) {
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    s->view = *view;
    if (!e || !*e || (rc = channel_open(&s->ch, e)) == 1)
        return s;
    s->notify = true;
    s->status_timer = event_new(base, -1, EV_PERSIST, on_status_timer, s);
    if (rc < 0 || !s->status_timer || !watchdog_setup(s, base)) {
        snprintf(errbuf, errlen, "cannot set up the notify socket: %s",
                 rc < 0 ? strerror(errno) : "out of memory");
        service_free(s);
        return NULL;
    }
    return s;
}

void service_free(struct service *s)
{
    if (!s)
        return;
    if (s->watchdog)
        event_free(s->watchdog);
    if (s->status_timer)
        event_free(s->status_timer);
    if (s->notify)
        channel_close(&s->ch);
    free(s);
}
