/*
 * test_sd_service.c — the notification API of src/daemon/sd_service.c on
 * its own, in whichever variant the build has (libsystemd or the built-in
 * protocols): RELOADING=1 with MONOTONIC_USEC and READY=1 around a reload,
 * the abstract notify socket names ("@name"), and the journal check. The daemon-level
 * behaviour (READY, STATUS, WATCHDOG, STOPPING, socket activation) is in
 * tests/integration/test_systemd.c.
 */
#include <criterion/criterion.h>

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

#include "daemon/sd_service.h"

static struct event_base *base;
static int rx = -1;

static void figures(const void *arg, struct service_figures *out)
{
    out->clients = 3;
    out->pools = 2;
    out->unhealthy = 1;
    out->stopping = false;
}

static const struct service_view view = { figures, NULL };

/* A datagram socket at name (a path, or "@x" abstract), as NOTIFY_SOCKET. */
static void listen_notify(const char *name)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    size_t len = strlen(name);

    rx = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(rx, 0);
    memcpy(sa.sun_path, name, len);
    if (name[0] == '@')
        sa.sun_path[0] = '\0';
    socklen_t sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (name[0] == '/'));
    cr_assert_eq(bind(rx, (struct sockaddr *)&sa, sl), 0, "bind %s: %s", name, strerror(errno));
    cr_assert_eq(setenv("NOTIFY_SOCKET", name, 1), 0);
    struct timeval tv = { 5, 0 };
    setsockopt(rx, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

static void next_msg(char *buf, size_t len)
{
    ssize_t n = recv(rx, buf, len - 1, 0);

    cr_assert_gt(n, 0, "no notify message: %s", n < 0 ? strerror(errno) : "empty");
    buf[n] = '\0';
}

static uint64_t mono_usec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void setup(void)
{
    base = event_base_new();
    cr_assert_not_null(base);
    unsetenv("WATCHDOG_USEC");
}

static void teardown(void)
{
    if (rx >= 0)
        close(rx);
    rx = -1;
    event_base_free(base);
}

TestSuite(sd_service, .init = setup, .fini = teardown, .timeout = 30);

Test(sd_service, reloading_then_ready)
{
    char path[] = "/tmp/sd-service-test.XXXXXX", sock[64], msg[512], err[128];
    uint64_t at = 0;

    cr_assert_not_null(mkdtemp(path));
    snprintf(sock, sizeof(sock), "%s/notify", path);
    listen_notify(sock);
    struct service *s = service_new(base, &view, err, sizeof(err));
    cr_assert_not_null(s, "%s", err);

    uint64_t before = mono_usec();
    service_notify_reloading(s);
    uint64_t after = mono_usec();
    next_msg(msg, sizeof(msg));
    cr_assert_eq(strncmp(msg, "RELOADING=1\nMONOTONIC_USEC=", 27), 0, "got \"%s\"", msg);
    cr_assert_eq(sscanf(msg + 27, "%" SCNu64, &at), 1, "got \"%s\"", msg);
    cr_expect(at >= before && at <= after, "MONOTONIC_USEC=%" PRIu64 " not within [%" PRIu64 ", %"
              PRIu64 "]", at, before, after);

    service_notify_ready(s);
    next_msg(msg, sizeof(msg));
    cr_expect_str_eq(msg, "READY=1\nSTATUS=3 clients, 2 pools, 1 unhealthy");
    service_free(s);
    unlink(sock);
    rmdir(path);
}

Test(sd_service, abstract_notify_socket)
{
    char name[64], msg[256], err[128];

    snprintf(name, sizeof(name), "@dbpoold-sd-test-%ld", (long)getpid());
    listen_notify(name);
    struct service *s = service_new(base, &view, err, sizeof(err));
    cr_assert_not_null(s, "%s", err);
    service_notify_stopping(s);
    next_msg(msg, sizeof(msg));
    cr_expect_str_eq(msg, "STOPPING=1\nSTATUS=3 clients, 2 pools, 1 unhealthy");
    service_free(s);
}

/* Without NOTIFY_SOCKET every notification is a no-op (and does not crash). */
Test(sd_service, no_manager_no_messages)
{
    char err[128];

    unsetenv("NOTIFY_SOCKET");
    struct service *s = service_new(base, &view, err, sizeof(err));
    cr_assert_not_null(s, "%s", err);
    service_notify_ready(s);
    service_notify_reloading(s);
    service_notify_stopping(s);
    service_free(s);
    service_notify_ready(NULL);
}

Test(sd_service, journal_is_stderr_only)
{
    char path[] = "/tmp/sd-service-journal.XXXXXX", v[64];
    struct stat st;
    int fd = mkstemp(path);

    cr_assert_geq(fd, 0);
    cr_assert_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    cr_assert_eq(fstat(fd, &st), 0);
    snprintf(v, sizeof(v), "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
    setenv("JOURNAL_STREAM", v, 1);
    cr_expect(service_stderr_is_journal());
    snprintf(v, sizeof(v), "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino + 1);
    setenv("JOURNAL_STREAM", v, 1);
    cr_expect(!service_stderr_is_journal(), "another inode is not stderr");
    setenv("JOURNAL_STREAM", "junk", 1);
    cr_expect(!service_stderr_is_journal());
    unsetenv("JOURNAL_STREAM");
    cr_expect(!service_stderr_is_journal());
    close(fd);
    unlink(path);
}
