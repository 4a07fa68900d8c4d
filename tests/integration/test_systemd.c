/*
 * test_systemd.c — dbpoold as a systemd service, without a running systemd
 * (src/daemon/sd_service.c; doc/operations.md, "Running under systemd"):
 *
 *   - under systemd-socket-activate (the client and status sockets passed
 *     by name) it answers a client that connected before it even started,
 *     serves the status socket, and never unlinks the passed sockets;
 *   - with the test as the service manager (it holds the sockets and starts
 *     the daemon with LISTEN_FDS), a client that connects while the daemon
 *     restarts waits in the backlog and is served by the next one;
 *   - a datagram socket of the test as NOTIFY_SOCKET receives READY=1 once
 *     the socket answers, STATUS= lines when the figures change (not per
 *     request), WATCHDOG=1 at half of WATCHDOG_USEC, STOPPING=1 on SIGTERM;
 *   - a reload (SIGHUP) is RELOADING=1 with MONOTONIC_USEC, then READY=1,
 *     applied or not (an invalid file: the daemon keeps serving); a SIGHUP
 *     during the drain sends neither;
 *   - passed descriptors that are not listening Unix stream sockets, or
 *     that are named neither client nor status, stop the start with a clear
 *     error;
 *   - JOURNAL_STREAM naming stderr gives `<N>` priority prefixes;
 *   - without any of it, everything is as before.
 *
 * The daemon is started here (not by the harness's h_start) because the
 * environment and descriptors it inherits are the point of these tests; the
 * harness provides the clock, H_AWAIT and the raw protocol client.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "common/proto.h"

#define MAX_MSGS 4096
#define WAIT_MS 10000

static struct {
    char dir[128], conf[200], log[200], notify[200];
    char sock[200], status[200];          /* the passed (or configured) sockets */
    char cfg_sock[200], cfg_status[200];  /* what the config names */
    int notify_fd;
    char *msgs[MAX_MSGS];                 /* every datagram received, in order */
    size_t nmsgs;
    pid_t pid;
} S = { .notify_fd = -1 };

/* ------------------------------------------------------------ set-up */

static void write_conf(const char *extra_pools)
{
    FILE *f = fopen(S.conf, "w");

    cr_assert_not_null(f, "cannot write %s: %s", S.conf, strerror(errno));
    fprintf(f, "daemon = { socket = \"%s\"; statusSocket = \"%s\"; logLevel = \"debug\"; "
            "shutdownTimeout = \"5s\"; };\n"
            "pools = ( { name = \"app\"; type = \"sqlite\"; sqlite = { filePath = \"%s/app.db\"; }; }%s );\n",
            S.cfg_sock, S.cfg_status, S.dir, extra_pools ? extra_pools : "");
    cr_assert_eq(fclose(f), 0);
}

/* A fresh directory, a config, and our notify socket bound in it. */
static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    struct sockaddr_un sa = { .sun_family = AF_UNIX };

    signal(SIGPIPE, SIG_IGN);
    snprintf(S.dir, sizeof(S.dir), "%s/dbpoold-sd.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    cr_assert_not_null(mkdtemp(S.dir), "mkdtemp: %s", strerror(errno));
    snprintf(S.conf, sizeof(S.conf), "%s/dbpoold.conf", S.dir);
    snprintf(S.log, sizeof(S.log), "%s/dbpoold.log", S.dir);
    snprintf(S.notify, sizeof(S.notify), "%s/notify", S.dir);
    snprintf(S.sock, sizeof(S.sock), "%s/passed.sock", S.dir);
    snprintf(S.status, sizeof(S.status), "%s/passed-status.sock", S.dir);
    snprintf(S.cfg_sock, sizeof(S.cfg_sock), "%s/conf.sock", S.dir);
    snprintf(S.cfg_status, sizeof(S.cfg_status), "%s/conf-status.sock", S.dir);
    cr_assert_lt(strlen(S.cfg_status), sizeof(sa.sun_path), "TMPDIR too long for a socket path");
    write_conf(NULL);
    S.notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    cr_assert_geq(S.notify_fd, 0);
    memcpy(sa.sun_path, S.notify, strlen(S.notify) + 1);
    cr_assert_eq(bind(S.notify_fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "bind: %s", strerror(errno));
}

static void rm_dir(void)
{
    char cmd[300];

    if (!S.dir[0] || getenv("DBPOOL_TEST_KEEP"))
        return;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", S.dir);
    if (system(cmd) != 0)
        fprintf(stderr, "test_systemd: could not remove %s\n", S.dir);
}

static void teardown(void)
{
    if (S.pid > 0) {
        kill(S.pid, SIGKILL);
        waitpid(S.pid, NULL, 0);
        S.pid = 0;
    }
    for (size_t i = 0; i < S.nmsgs; i++)
        free(S.msgs[i]);
    S.nmsgs = 0;
    if (S.notify_fd >= 0)
        close(S.notify_fd);
    S.notify_fd = -1;
    rm_dir();
}

TestSuite(systemd, .init = setup, .fini = teardown, .timeout = 60);

/* ------------------------------------------------------------ the daemon */

struct spawn {
    const char *const *argv;       /* NULL: $DBPOOLD_BIN -c conf */
    const char *const *env;        /* "NAME=value" set in the child */
    const int *fds;                /* passed as 3, 4, ... */
    size_t nfds;
    const char *fdnames;           /* LISTEN_FDNAMES (with fds; NULL: unset) */
    const char *listen_pid;        /* LISTEN_PID: NULL = the daemon's own */
};

static const char *daemon_bin(void)
{
    const char *bin = getenv("DBPOOLD_BIN");

    cr_assert(bin && *bin, "DBPOOLD_BIN is not set (make check sets it; or export "
              "DBPOOLD_BIN=$PWD/build/dbpoold)");
    return bin;
}

/* In the child: the descriptors to pass at 3, 4, ... and the LISTEN_* variables. */
static void child_fds(const struct spawn *sp)
{
    char v[32];

    for (size_t i = 0; i < sp->nfds; i++)
        if (dup2(sp->fds[i], 100 + (int)i) < 0)
            _exit(126);
    for (size_t i = 0; i < sp->nfds; i++)
        if (dup2(100 + (int)i, 3 + (int)i) < 0)
            _exit(126);
    if (close_range(3 + (unsigned)sp->nfds, ~0U, 0) != 0)
        _exit(126);
    if (!sp->nfds)
        return;
    snprintf(v, sizeof(v), "%zu", sp->nfds);
    setenv("LISTEN_FDS", v, 1);
    snprintf(v, sizeof(v), "%ld", (long)getpid());
    setenv("LISTEN_PID", sp->listen_pid ? sp->listen_pid : v, 1);
    if (sp->fdnames)
        setenv("LISTEN_FDNAMES", sp->fdnames, 1);
}

static void spawn(const struct spawn *sp)
{
    const char *own[] = { daemon_bin(), "-c", S.conf, NULL };
    const char *const *argv = sp->argv ? sp->argv : own;
    int logfd = open(S.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

    cr_assert_geq(logfd, 0, "open %s: %s", S.log, strerror(errno));
    S.pid = fork();
    cr_assert_geq(S.pid, 0, "fork: %s", strerror(errno));
    if (S.pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0)
            _exit(126);
        unsetenv("NOTIFY_SOCKET");
        unsetenv("WATCHDOG_USEC");
        unsetenv("WATCHDOG_PID");
        unsetenv("JOURNAL_STREAM");
        for (const char *const *e = sp->env; e && *e; e++)
            putenv((char *)*e);
        child_fds(sp);
        signal(SIGPIPE, SIG_DFL);
        execvp(argv[0], (char *const *)argv);
        dprintf(2, "test_systemd: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(logfd);
}

static char *read_log(void)
{
    FILE *f = fopen(S.log, "r");
    char *buf = calloc(1, 1 << 20);

    cr_assert_not_null(buf);
    if (f) {
        size_t n = fread(buf, 1, (1 << 20) - 1, f);
        buf[n] = '\0';
        fclose(f);
    }
    return buf;
}

static bool log_has(const char *needle)
{
    char *log = read_log();
    bool hit = strstr(log, needle) != NULL;

    free(log);
    return hit;
}

/* The daemon's wait status after it exits by itself (-1: still running after timeout_ms). */
static int await_exit(int timeout_ms)
{
    int st = -1;
    bool done = H_AWAIT(waitpid(S.pid, &st, WNOHANG) == S.pid, timeout_ms);

    if (!done)
        return -1;
    S.pid = 0;
    return st;
}

static void stop_ok(void)
{
    char *log;

    cr_assert_eq(kill(S.pid, SIGTERM), 0);
    int st = await_exit(WAIT_MS);
    log = read_log();
    cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "dbpoold did not exit 0 after SIGTERM (wait status %d)\n%s", st, log);
    cr_assert_null(strstr(log, "ERROR: AddressSanitizer"), "sanitizer report:\n%s", log);
    cr_assert_null(strstr(log, "runtime error:"), "sanitizer report:\n%s", log);
    cr_assert_null(strstr(log, "ERROR: LeakSanitizer"), "sanitizer report:\n%s", log);
    free(log);
}

/* It must refuse to start: exit status 1 and why in the log. */
static void expect_start_error(const char *why)
{
    int st = await_exit(WAIT_MS);
    char *log = read_log();

    cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 1,
              "dbpoold should have refused to start (wait status %d)\n%s", st, log);
    cr_assert_not_null(strstr(log, why), "the log does not say \"%s\":\n%s", why, log);
    free(log);
}

/* ------------------------------------------------------------ notifications */

/* Take every datagram waiting on the notify socket; true (for H_AWAIT). */
static bool drain(void)
{
    char buf[4096];
    ssize_t n;

    while ((n = recv(S.notify_fd, buf, sizeof(buf) - 1, 0)) > 0) {
        cr_assert_lt(S.nmsgs, MAX_MSGS, "too many notify messages");
        buf[n] = '\0';
        S.msgs[S.nmsgs++] = strdup(buf);
    }
    return true;
}

/* Messages with a line equal to line (or starting with it, when it ends in '*'). */
static size_t count_line(const char *line)
{
    size_t len = strlen(line), n = 0;
    bool prefix = len && line[len - 1] == '*';

    drain();
    len -= prefix;
    for (size_t i = 0; i < S.nmsgs; i++) {
        for (const char *p = S.msgs[i]; p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
            size_t l = strcspn(p, "\n");
            if ((prefix ? l >= len : l == len) && memcmp(p, line, len) == 0) {
                n++;
                break;
            }
        }
    }
    return n;
}

static char *all_msgs(void)
{
    static char buf[16384];
    size_t o = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < S.nmsgs && o < sizeof(buf) - 4; i++)
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "[%s] ", S.msgs[i]);
    return buf;
}

/* The index of the first message from `from` on with a line equal to line; -1: none. */
static long msg_index(const char *line, size_t from)
{
    size_t len = strlen(line);

    drain();
    for (size_t i = from; i < S.nmsgs; i++)
        for (const char *p = S.msgs[i]; p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
            if (strcspn(p, "\n") == len && memcmp(p, line, len) == 0)
                return (long)i;
    return -1;
}

static void await_line(const char *line)
{
    cr_assert(H_AWAIT(count_line(line) > 0, WAIT_MS), "no notify message with \"%s\"; got: %s",
              line, all_msgs());
}

static const char *env_notify(char *buf, size_t len)
{
    snprintf(buf, len, "NOTIFY_SOCKET=%s", S.notify);
    return buf;
}

/* ------------------------------------------------------------ clients */

/* HELLO + PING on a fresh connection: true when answered. */
static bool ping(const char *path)
{
    struct h_frame f;
    int fd = h_raw_try_connect(path);
    bool ok = false;

    if (fd < 0)
        return false;
    h_raw_send_hello(fd, PROTO_VERSION, "app");
    if (h_raw_read_frame(fd, WAIT_MS, &f) == 1) {
        ok = f.type == PT_HELLO_OK;
        h_frame_free(&f);
    }
    struct pbuf b;
    pbuf_init(&b);
    proto_put_empty(&b, PT_PING);
    ok = ok && !b.oom && h_raw_send(fd, b.data, b.len) && h_raw_read_frame(fd, WAIT_MS, &f) == 1;
    pbuf_free(&b);
    if (ok) {
        ok = f.type == PT_READY;
        h_frame_free(&f);
    }
    close(fd);
    return ok;
}

static int64_t query_int(dbpool_conn *c, const char *sql)
{
    dbpool_result *r = NULL;

    cr_assert_eq(dbpool_query(c, sql, NULL, 0, &r), 0, "%s: %s", sql, dbpool_last_error(c)->message);
    cr_assert_eq(dbpool_result_nrows(r), 1);
    int64_t v = dbpool_result_value(r, 0, 0)->u.i;
    dbpool_result_free(r);
    return v;
}

/* GET path on the status socket: the HTTP status code (0: no answer). */
static int http_status(const char *sock, const char *path)
{
    char req[256], resp[512];
    int fd = h_raw_try_connect(sock), code = 0;

    if (fd < 0)
        return 0;
    snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\n\r\n", path);
    ssize_t n = h_raw_send(fd, req, strlen(req)) ? recv(fd, resp, sizeof(resp) - 1, MSG_WAITALL) : -1;
    if (n > 0) {
        resp[n] = '\0';
        sscanf(resp, "HTTP/1.%*d %d", &code);
    }
    close(fd);
    return code;
}

static bool exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}

/* A listening Unix stream socket at path, as a service manager makes it. */
static int manager_socket(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    cr_assert_geq(fd, 0);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "bind %s: %s", path, strerror(errno));
    cr_assert_eq(listen(fd, 128), 0);
    return fd;
}

/* ================================================================ tests */

/* systemd-socket-activate passes both sockets by name; the first client
 * connects before the daemon exists (the tool starts it on that connection)
 * and is served once it is ready. */
Test(systemd, socket_activate_serves_client_that_came_first)
{
    char notify[256], l1[256], l2[256];
    const char *argv[] = { "systemd-socket-activate", "-E", "NOTIFY_SOCKET", "-l", l1, "--fdname=client",
                           "-l", l2, "--fdname=status", daemon_bin(), "-c", S.conf, NULL };
    const char *env[] = { env_notify(notify, sizeof(notify)), NULL };
    dbpool_error err;

    if (system("command -v systemd-socket-activate >/dev/null 2>&1") != 0)
        cr_skip_test("systemd-socket-activate is not installed (Debian: package systemd)");
    snprintf(l1, sizeof(l1), "%s", S.sock);
    snprintf(l2, sizeof(l2), "%s", S.status);
    spawn(&(struct spawn){ .argv = argv, .env = env });
    cr_assert(H_AWAIT(exists(S.sock) && exists(S.status), WAIT_MS), "systemd-socket-activate never "
              "listened:\n%s", read_log());
    cr_assert_eq(count_line("READY=1"), 0, "READY=1 before the daemon was started");

    dbpool_conn *c = dbpool_connect(S.sock, "app", "sd-test", &err);
    cr_assert_not_null(c, "the client that connected first was not served: %s\n%s", err.message, read_log());
    cr_expect_eq(query_int(c, "select 40 + 2"), 42);
    await_line("READY=1");
    cr_expect_eq(http_status(S.status, "/health"), 200, "the passed status socket does not serve /health");
    cr_expect(log_has("event=socket_passed setting=daemon.socket"), "no log line says the passed "
              "socket replaces daemon.socket");
    cr_expect(!exists(S.cfg_sock) && !exists(S.cfg_status), "the daemon bound the configured paths too");
    dbpool_close(c);
    stop_ok();
    await_line("STOPPING=1");
    cr_expect(exists(S.sock) && exists(S.status), "a passed socket file was unlinked on exit");
}

/* The test as the service manager: it holds the sockets across a restart;
 * a client connecting while no daemon runs waits and is served by the next. */
Test(systemd, restart_keeps_waiting_clients)
{
    int fds[2] = { manager_socket(S.sock), manager_socket(S.status) };
    const struct spawn sp = { .fds = fds, .nfds = 2, .fdnames = "client:status" };
    struct h_frame f;

    spawn(&sp);
    cr_assert(H_AWAIT(ping(S.sock), WAIT_MS), "the passed client socket is not served:\n%s", read_log());
    stop_ok();
    cr_assert(exists(S.sock), "the daemon unlinked the passed socket");

    int fd = h_raw_try_connect(S.sock);
    cr_assert_geq(fd, 0, "connect while no daemon runs: %s (the socket should queue it)", strerror(errno));
    h_raw_send_hello(fd, PROTO_VERSION, "app");
    spawn(&sp);
    cr_assert_eq(h_raw_read_frame(fd, WAIT_MS, &f), 1, "the waiting client was not answered:\n%s", read_log());
    cr_expect_eq(f.type, PT_HELLO_OK);
    h_frame_free(&f);
    close(fd);
    cr_expect_eq(http_status(S.status, "/health"), 200);
    stop_ok();
    close(fds[0]);
    close(fds[1]);
}

/* READY=1 only once the socket answers; STATUS= follows the figures, not
 * the requests; WATCHDOG=1 every 100 ms for WATCHDOG_USEC=200000;
 * STOPPING=1 on SIGTERM. */
Test(systemd, notify_ready_status_watchdog_stopping)
{
    char notify[256];
    const char *env[] = { env_notify(notify, sizeof(notify)), "WATCHDOG_USEC=200000", NULL };
    dbpool_error err;

    spawn(&(struct spawn){ .env = env });
    await_line("READY=1");
    cr_assert(ping(S.cfg_sock), "READY=1 came before the client socket answered");
    cr_expect_eq(count_line("STATUS=0 clients, 1 pool, 0 unhealthy"), 1, "got: %s", all_msgs());

    dbpool_conn *c = dbpool_connect(S.cfg_sock, "app", "sd-test", &err);
    cr_assert_not_null(c, "%s", err.message);
    await_line("STATUS=1 client, 1 pool, 0 unhealthy");
    size_t before = count_line("STATUS=*");
    for (int i = 0; i < 300; i++)
        cr_assert_eq(query_int(c, "select 1"), 1);
    /* 300 requests within at most a few status ticks: a line per request would be 300. */
    cr_expect_leq(count_line("STATUS=*") - before, 3, "STATUS= was sent per request: %s", all_msgs());
    cr_assert(H_AWAIT(count_line("WATCHDOG=1") >= 5, WAIT_MS), "WATCHDOG=1 did not keep coming: %s",
              all_msgs());
    dbpool_close(c);
    await_line("STATUS=0 clients, 1 pool, 0 unhealthy");
    stop_ok();
    await_line("STOPPING=1");
    cr_expect_eq(count_line("READY=1"), 1);
}

/* SIGHUP: RELOADING=1 with a MONOTONIC_USEC= of now, then READY=1 once the
 * reload is done; the check that the configuration was applied is the
 * pool it adds. */
static void reload_and_await(long *reloading, long *ready)
{
    size_t from = S.nmsgs;
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned long long before = (unsigned long long)ts.tv_sec * 1000000u + (unsigned long long)ts.tv_nsec / 1000u;
    cr_assert_eq(kill(S.pid, SIGHUP), 0);
    cr_assert(H_AWAIT((*ready = msg_index("READY=1", from)) >= 0, WAIT_MS), "no READY=1 after the "
              "reload; got: %s\n%s", all_msgs(), read_log());
    *reloading = msg_index("RELOADING=1", from);
    cr_assert(*reloading >= 0 && *reloading < *ready, "READY=1 without RELOADING=1 before it: %s",
              all_msgs());
    const char *mono = strstr(S.msgs[*reloading], "\nMONOTONIC_USEC=");
    unsigned long long at = 0;
    cr_assert(mono && sscanf(mono, "\nMONOTONIC_USEC=%llu", &at) == 1, "RELOADING=1 without "
              "MONOTONIC_USEC=: [%s]", S.msgs[*reloading]);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned long long after = (unsigned long long)ts.tv_sec * 1000000u + (unsigned long long)ts.tv_nsec / 1000u;
    cr_expect(at >= before && at <= after, "MONOTONIC_USEC=%llu is not the time of the reload "
              "(%llu..%llu)", at, before, after);
}

Test(systemd, reload_is_reloading_then_ready)
{
    char notify[256], extra[300];
    const char *env[] = { env_notify(notify, sizeof(notify)), NULL };
    long reloading, ready;
    dbpool_error err;

    spawn(&(struct spawn){ .env = env });
    await_line("READY=1");
    snprintf(extra, sizeof(extra), ", { name = \"added\"; type = \"sqlite\"; sqlite = { filePath = "
             "\"%s/added.db\"; }; }", S.dir);
    write_conf(extra);
    reload_and_await(&reloading, &ready);
    cr_expect(log_has("event=reload_done pools=2 added=1"), "the reload was not applied:\n%s", read_log());
    dbpool_conn *c = dbpool_connect(S.cfg_sock, "added", "sd-test", &err);
    cr_assert_not_null(c, "the added pool does not serve after READY=1: %s", err.message);
    cr_expect_eq(query_int(c, "select 7"), 7);
    dbpool_close(c);
    stop_ok();
}

/* An invalid file changes nothing, and systemd still sees READY=1 (else the
 * unit would stay "reloading"); the daemon keeps serving. */
Test(systemd, failed_reload_ends_ready_and_keeps_serving)
{
    char notify[256];
    const char *env[] = { env_notify(notify, sizeof(notify)), NULL };
    long reloading, ready;
    FILE *f;

    spawn(&(struct spawn){ .env = env });
    await_line("READY=1");
    f = fopen(S.conf, "w");
    cr_assert_not_null(f);
    fputs("pools = ( { name = \"app\"; type = \"sqlite\"; sqlite = { noSuchKey = 1; }; } );\n", f);
    cr_assert_eq(fclose(f), 0);
    reload_and_await(&reloading, &ready);
    cr_expect(log_has("event=reload_failed"), "the invalid file was not refused:\n%s", read_log());
    cr_expect(ping(S.cfg_sock), "the daemon stopped serving after a failed reload:\n%s", read_log());
    cr_expect_eq(count_line("STOPPING=1"), 0);
    stop_ok();
}

/* A SIGHUP while a shutdown drains is refused, and says nothing to systemd:
 * READY=1 after STOPPING=1 would tell it the service runs again. */
Test(systemd, reload_during_drain_is_silent)
{
    char notify[256];
    const char *env[] = { env_notify(notify, sizeof(notify)), NULL };
    dbpool_error err;

    spawn(&(struct spawn){ .env = env });
    await_line("READY=1");
    dbpool_conn *c = dbpool_connect(S.cfg_sock, "app", "sd-test", &err);
    cr_assert_not_null(c, "%s", err.message);
    cr_assert_eq(dbpool_begin(c, 0), 0, "%s", dbpool_last_error(c)->message);
    cr_assert_eq(query_int(c, "select 1"), 1);   /* the transaction holds the drain open */
    cr_assert_eq(kill(S.pid, SIGTERM), 0);
    await_line("STOPPING=1");
    size_t from = S.nmsgs;
    cr_assert_eq(kill(S.pid, SIGHUP), 0);
    cr_assert(H_AWAIT(log_has("event=reload_failed"), WAIT_MS), "the reload was not refused:\n%s",
              read_log());
    cr_expect_eq(msg_index("RELOADING=1", from), -1, "RELOADING=1 during the drain: %s", all_msgs());
    cr_expect_eq(msg_index("READY=1", from), -1, "READY=1 after STOPPING=1: %s", all_msgs());
    cr_expect_eq(dbpool_commit(c), 0, "%s", dbpool_last_error(c)->message);
    dbpool_close(c);
    int st = await_exit(WAIT_MS);
    cr_expect(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "wait status %d\n%s", st, read_log());
}

/* K unhealthy counts pools whose server cannot be reached. */
Test(systemd, status_counts_unhealthy_pools)
{
    char notify[256], extra[400];
    const char *env[] = { env_notify(notify, sizeof(notify)), NULL };

    snprintf(extra, sizeof(extra), ", { name = \"gone\"; type = \"postgres\"; postgres = { host = "
             "\"%s/no-server\"; name = \"x\"; username = \"x\"; }; }", S.dir);
    write_conf(extra);
    spawn(&(struct spawn){ .env = env });
    await_line("READY=1");
    await_line("STATUS=0 clients, 2 pools, 1 unhealthy");
    stop_ok();
}

/* WATCHDOG_PID names another process: the pings are not ours to send. A
 * STATUS= change takes a status tick (1 s), ten watchdog intervals. */
Test(systemd, watchdog_of_another_process_is_ignored)
{
    char notify[256];
    const char *env[] = { env_notify(notify, sizeof(notify)), "WATCHDOG_USEC=200000", "WATCHDOG_PID=1", NULL };
    dbpool_error err;

    spawn(&(struct spawn){ .env = env });
    await_line("READY=1");
    dbpool_conn *c = dbpool_connect(S.cfg_sock, "app", "sd-test", &err);
    cr_assert_not_null(c, "%s", err.message);
    await_line("STATUS=1 client, 1 pool, 0 unhealthy");
    cr_expect_eq(count_line("WATCHDOG=1"), 0, "got: %s", all_msgs());
    dbpool_close(c);
    stop_ok();
}

/* Descriptors that are not what the daemon serves stop the start. */
Test(systemd, refuses_unusable_passed_sockets)
{
    int sp[2];

    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
    spawn(&(struct spawn){ .fds = sp, .nfds = 1, .fdnames = "client" });
    expect_start_error("passed socket 3 (\"client\") is not listening");
    close(sp[0]);
    close(sp[1]);
}

Test(systemd, refuses_unnamed_sockets)
{
    int fds[2] = { manager_socket(S.sock), manager_socket(S.status) };

    spawn(&(struct spawn){ .fds = fds, .nfds = 2, .fdnames = "dbpoold.socket:dbpoold.socket" });
    expect_start_error("FileDescriptorName=client");
    cr_expect(exists(S.sock), "a passed socket was unlinked");
    close(fds[0]);
    close(fds[1]);
}

/* One name for each socket, or none (as libsystemd reads LISTEN_FDNAMES):
 * two sockets and one name stop the start, naming what was passed. */
Test(systemd, refuses_names_that_do_not_match_the_sockets)
{
    int fds[2] = { manager_socket(S.sock), manager_socket(S.status) };

    spawn(&(struct spawn){ .fds = fds, .nfds = 2, .fdnames = "client" });
    expect_start_error("cannot take the sockets the service manager passed (LISTEN_FDS=2 "
                       "LISTEN_FDNAMES=client)");
    close(fds[0]);
    close(fds[1]);
}

/* stderr is the journal: priority prefixes, no timestamps of our own. */
Test(systemd, journal_stream_gets_priority_prefixes)
{
    struct stat st;
    char js[96];
    const char *env[] = { js, NULL };

    int fd = open(S.log, O_WRONLY | O_CREAT, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(fstat(fd, &st), 0);
    close(fd);
    snprintf(js, sizeof(js), "JOURNAL_STREAM=%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    spawn(&(struct spawn){ .env = env });
    cr_assert(H_AWAIT(log_has("<6>level=info event=ready "), WAIT_MS), "no `<6>` ready line:\n%s", read_log());
    stop_ok();
    char *log = read_log();
    cr_expect(strstr(log, "<6>level=info event=stopped") != NULL, "%s", log);
    cr_expect(strncmp(log, "ts=", 3) != 0 && !strstr(log, "\nts="), "a journal line has a timestamp:\n%s", log);
    cr_expect(strstr(log, "\nlevel=") == NULL, "a journal line lacks its priority:\n%s", log);
    free(log);
}

/* Without the journal, a socket activation meant for another process, or a
 * notify socket: as before — own sockets, timestamps, unlinked on exit. */
Test(systemd, without_systemd_nothing_changes)
{
    struct stat st;
    char js[96];
    const char *env[] = { js, NULL };
    int fds[1] = { manager_socket(S.sock) };

    cr_assert_eq(stat(S.dir, &st), 0);   /* a JOURNAL_STREAM that is not our stderr */
    snprintf(js, sizeof(js), "JOURNAL_STREAM=%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    spawn(&(struct spawn){ .env = env, .fds = fds, .nfds = 1, .fdnames = "client", .listen_pid = "1" });
    cr_assert(H_AWAIT(ping(S.cfg_sock), WAIT_MS), "the configured socket is not served:\n%s", read_log());
    cr_expect(log_has("level=info event=ready socket="), "%s", read_log());
    stop_ok();
    char *log = read_log();
    cr_expect_eq(strncmp(log, "ts=", 3), 0, "lines lost their timestamps:\n%s", log);
    cr_expect_null(strstr(log, "<6>"), "%s", log);
    free(log);
    cr_expect(!exists(S.cfg_sock) && !exists(S.cfg_status), "the daemon's own sockets were not removed");
    cr_expect_eq(count_line("READY=1"), 0, "a notification without NOTIFY_SOCKET");
    close(fds[0]);
}
