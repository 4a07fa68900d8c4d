/*
 * fuzz_daemon.c — the daemon the event-loop fuzz targets run against (see
 * fuzz_daemon.h). Configuration: a small maxFrameSize, outputHighWater and
 * batch limits (cheap inputs reach every limit), short SQLite busy,
 * acquire and statement timeouts (no input can hold the loop for long), no
 * background timers that would make runs differ (health checks, lifetimes
 * off), and logLevel "error" (DBPOOLD_DAEMON_LOG_LEVEL=debug overrides it,
 * like for the real daemon).
 */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "daemon/configuration.h"
#include "daemon/daemon.h"
#include "fuzz_daemon.h"
#include "daemon/log.h"
#include "daemon/pool.h"

#define DB_SIZE_BOUND (32L * 1024 * 1024)
#define START_TIMEOUT_MS 10000

static struct daemon *the_daemon;
static char dir[256];
static char path_buf[512];

static const char *in_dir(const char *name)
{
    snprintf(path_buf, sizeof(path_buf), "%s/%s", dir, name);
    return path_buf;
}

const char *fuzz_daemon_status_path(void)
{
    return in_dir("status.sock");
}

static void write_config(const char *path)
{
    FILE *f = fopen(path, "w");

    if (!f)
        fuzz_fail("cannot write %s", path);
    fprintf(f,
            "daemon = {\n"
            "  socket = \"%s/dbpoold.sock\";\n"
            "  statusSocket = \"%s/status.sock\";\n"
            "  logLevel = \"error\";\n"
            "  maxFrameSize = 4096;\n"
            "  maxParams = 16;\n"
            "  maxBatchStatements = 8;\n"
            "  outputHighWater = 4096;\n"
            "  shutdownTimeout = \"1s\";\n"
            "};\n"
            "pools = ( {\n"
            "  name = \"app\"; type = \"sqlite\";\n"
            "  sqlite = {\n"
            "    filePath = \"%s/fuzz.db\";\n"
            "    maxOpenConns = 2; maxIdleConns = 2;\n"
            "    timeout = \"100ms\"; acquireTimeout = \"200ms\"; statementTimeout = \"100ms\";\n"
            "    healthCheckInterval = \"0\"; connMaxLifetime = \"0\"; connMaxIdleTime = \"0\";\n"
            "  };\n"
            "} );\n", dir, dir, dir);
    if (fclose(f) != 0)
        fuzz_fail("cannot write %s", path);
}

static void remove_dir(void)
{
    DIR *dp = opendir(dir);
    struct dirent *e;

    if (!dp)
        return;
    while ((e = readdir(dp)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            unlink(in_dir(e->d_name));
    closedir(dp);
    rmdir(dir);
}

static void stop(void)
{
    if (the_daemon)
        daemon_free(the_daemon);
    the_daemon = NULL;
    if (dir[0])
        remove_dir();
}

static bool pool_ready(void *arg)
{
    struct pool_stats st;

    pool_get_stats(the_daemon->pools[0], &st);
    return st.servers_open >= 1 && st.servers_connecting == 0;
}

static void start(void)
{
    const char *tmp = getenv("TMPDIR");
    struct config_diag diag = { 0 };
    char err[512];

    snprintf(dir, sizeof(dir), "%s/dbpoold-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        fuzz_fail("cannot create a directory %s", dir);
    write_config(in_dir("fuzz.conf"));
    struct config *cfg = config_load(in_dir("fuzz.conf"), &diag);
    if (!cfg)
        fuzz_fail("the fuzz config is invalid: %s", diag.nerrors ? diag.errors[0] : "out of memory");
    config_diag_free(&diag);
    log_set_level(cfg->daemon.log_level);
    the_daemon = daemon_new(cfg, err, sizeof(err));
    if (!the_daemon)
        fuzz_fail("daemon_new: %s", err);
    for (size_t i = 0; i < the_daemon->npools; i++)
        if (pool_start(the_daemon->pools[i], err, sizeof(err)) != 0)
            fuzz_fail("pool_start: %s", err);
    if (!fuzz_loop_until(pool_ready, NULL, START_TIMEOUT_MS))
        fuzz_fail("the SQLite pool did not open its first connection");
}

struct daemon *fuzz_daemon_get(void)
{
    static bool once;

    if (!once) {
        once = true;
        signal(SIGPIPE, SIG_IGN);
        if (evthread_use_pthreads() != 0)
            fuzz_fail("libevent has no pthreads support");
        atexit(stop);
    }
    if (!the_daemon)
        start();
    return the_daemon;
}

static long file_size(const char *name)
{
    struct stat st;

    return stat(in_dir(name), &st) == 0 ? (long)st.st_size : 0;
}

void fuzz_daemon_recycle(unsigned every)
{
    static unsigned calls;

    if (++calls % every != 0 || file_size("fuzz.db") + file_size("fuzz.db-wal") < DB_SIZE_BOUND)
        return;
    stop();
    dir[0] = '\0';
    start();
}

/* ------------------------------------------------------------- loop */

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    *(bool *)arg = true;
}

bool fuzz_loop_until(bool (*done)(void *arg), void *arg, unsigned ms)
{
    struct event_base *base = the_daemon->base;
    bool expired = false;
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
    struct event *timer = evtimer_new(base, on_deadline, &expired);

    if (!timer || evtimer_add(timer, &tv) != 0)
        fuzz_fail("cannot arm a timer");
    while (!done(arg) && !expired)
        if (event_base_loop(base, EVLOOP_ONCE) < 0)
            fuzz_fail("the event loop failed");
    event_free(timer);
    return !expired || done(arg);
}
