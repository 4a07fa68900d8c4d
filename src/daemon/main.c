/*
 * main.c — dbpoold's entry point: command line, config check (-t), and the
 * daemon's lifetime. Runs in the foreground; systemd supervises it
 * (sd_service.h: notifications, socket activation, journal logging).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/thread.h>

#include "daemon/configuration.h"
#include "daemon/daemon.h"
#include "backend/factory.h"
#include "daemon/log.h"
#include "daemon/sd_service.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif

static void usage(FILE *to)
{
    fprintf(to,
            "usage: dbpoold [-c FILE] [-t] [-V] [-h]\n"
            "  -c FILE  configuration file (default " SYSCONFDIR "/dbpoold/dbpoold.conf)\n"
            "  -t       check the configuration and exit (0 valid, 1 invalid)\n"
            "  -V       print the version and exit\n"
            "  -h       this help\n"
            "Environment: DBPOOLD_DAEMON_<KEY> and DBPOOLD_POOL_<NAME>_<KEY> override the file\n"
            "(see doc/configuration.md).\n");
}

/* Print diagnostics; true when the config is usable (drivers included). */
static bool report(const char *path, const struct config *cfg, const struct config_diag *diag)
{
    bool ok = cfg != NULL;

    for (size_t i = 0; i < diag->nwarnings; i++)
        fprintf(stderr, "dbpoold: warning: %s\n", diag->warnings[i]);
    for (size_t i = 0; i < diag->nerrors; i++)
        fprintf(stderr, "dbpoold: error: %s\n", diag->errors[i]);
    for (size_t i = 0; cfg && i < cfg->npools; i++) {
        char why[256];
        if (!factory_driver(cfg->pools[i].type, why, sizeof(why))) {
            fprintf(stderr, "dbpoold: error: %s:%d: pool \"%s\": %s\n", path,
                    cfg->pools[i].line, cfg->pools[i].name, why);
            ok = false;
        }
    }
    if (!ok)
        fprintf(stderr, "dbpoold: %s: configuration is invalid (%zu error%s)\n", path,
                diag->nerrors ? diag->nerrors : 1, diag->nerrors == 1 ? "" : "s");
    return ok;
}

/* Descriptors beyond sessions and server connections: stdio, the event
 * loop and its notification and signal pipes, both listening sockets,
 * status requests and transient files (SQLite journals, passwordFile). */
#define OWN_FDS 32

/* Descriptors a pool can hold: one socket per server connection, or per
 * SQLite connection its database and -wal files (the -shm once per pool). */
static rlim_t pool_fds(const struct pool_config *pc)
{
    if (pc->type == BACKEND_SQLITE)
        return 2 * (rlim_t)pc->max_open_conns + 1;
    return (rlim_t)pc->max_open_conns;
}

/* Descriptors for everything but the client sessions. */
static rlim_t fds_besides_clients(const struct config *cfg)
{
    rlim_t n = OWN_FDS;

    for (size_t i = 0; i < cfg->npools; i++)
        n += pool_fds(&cfg->pools[i]);
    return n;
}

/* The soft limit up to the hard one (ours to take; systemd sets the soft
 * limit low for select()'s sake, which dbpoold does not use). */
static void nofile_to_hard(struct rlimit *rl)
{
    struct rlimit up = { rl->rlim_max, rl->rlim_max };

    if (rl->rlim_cur == rl->rlim_max)
        return;
    if (setrlimit(RLIMIT_NOFILE, &up) == 0) {
        rl->rlim_cur = rl->rlim_max;
        return;
    }
    log_warn("nofile_raise_failed", "soft=%llu hard=%llu error=\"%s\" hint=\"set LimitNOFILE= "
             "(systemd) or ulimit -n instead\"", (unsigned long long)rl->rlim_cur,
             (unsigned long long)rl->rlim_max, strerror(errno));
}

/* Raise the soft RLIMIT_NOFILE to the hard limit, log it, and warn when
 * maxClients sessions plus the pools' connections cannot fit: past the
 * limit accepting pauses (listener.c) instead of serving maxClients. */
static void raise_nofile(const struct config *cfg)
{
    struct rlimit rl;
    rlim_t other = fds_besides_clients(cfg), need = other + cfg->daemon.max_clients;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        log_warn("nofile_limit_unknown", "error=\"%s\"", strerror(errno));
        return;
    }
    rlim_t was = rl.rlim_cur;
    nofile_to_hard(&rl);
    log_info("nofile_limit", "soft=%llu hard=%llu was=%llu needed=%llu", (unsigned long long)rl.rlim_cur,
             (unsigned long long)rl.rlim_max, (unsigned long long)was, (unsigned long long)need);
    if (rl.rlim_cur >= need)
        return;
    rlim_t fit = rl.rlim_cur > other ? rl.rlim_cur - other : 0;
    log_warn("nofile_limit_low", "limit=%llu needed=%llu max_clients=%u clients_fit=%llu "
             "hint=\"raise LimitNOFILE= (systemd) or ulimit -n to at least %llu, or lower maxClients "
             "to %llu; past the limit new sessions wait in the backlog\"",
             (unsigned long long)rl.rlim_cur, (unsigned long long)need, cfg->daemon.max_clients,
             (unsigned long long)fit, (unsigned long long)need, (unsigned long long)fit);
}

int main(int argc, char **argv)
{
    const char *path = SYSCONFDIR "/dbpoold/dbpoold.conf";
    bool check_only = false;
    int opt;

    while ((opt = getopt(argc, argv, "c:tVh")) != -1) {
        switch (opt) {
        case 'c': path = optarg; break;
        case 't': check_only = true; break;
        case 'V': printf("dbpoold %s\n", PACKAGE_VERSION_STR); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }

    struct config_diag diag = { 0 };
    struct config *cfg = config_load(path, &diag);
    bool ok = report(path, cfg, &diag);
    config_diag_free(&diag);
    if (!ok || check_only) {
        if (ok)
            printf("dbpoold: %s: configuration is valid (%zu pool%s)\n", path, cfg->npools,
                   cfg->npools == 1 ? "" : "s");
        config_free(cfg);
        return ok ? 0 : 1;
    }

    log_set_level(cfg->daemon.log_level);
    log_set_journal(service_stderr_is_journal());
    raise_nofile(cfg);
    signal(SIGPIPE, SIG_IGN);
    if (evthread_use_pthreads() != 0) {
        fprintf(stderr, "dbpoold: libevent has no pthreads support\n");
        config_free(cfg);
        return 1;
    }
    char err[512];
    struct daemon *d = daemon_new(cfg, err, sizeof(err));
    if (!d) {
        fprintf(stderr, "dbpoold: %s\n", err);
        return 1;
    }
    int rc = daemon_run(d);
    daemon_free(d);
    return rc;
}
