/*
 * resolve.c — host-name resolution on a helper thread; see resolve.h.
 * The helper works on its own copy of the names and reaches its caller
 * only through the struct helper_wake (helper.h).
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "backend/helper.h"
#include "backend/resolve.h"

/* Shared by the caller and the helper (wake.refs). The helper writes the
 * entries before it calls helper_wake_done(); the loop reads them only
 * after resolve_finished(). */
struct resolve_job {
    struct helper_wake wake;
    char *names;             /* copy of the host list, commas replaced by NULs */
    size_t n;
    struct resolve_entry e[];
};

static bool entry_needs_lookup(const char *p, size_t len)
{
    char lit[RESOLVE_ADDR_MAX];
    unsigned char bin[sizeof(struct in6_addr)];

    if (len == 0 || p[0] == '/' || p[0] == '@')
        return false;
    if (len >= sizeof(lit))
        return true;   /* longer than any literal */
    memcpy(lit, p, len);
    lit[len] = '\0';
    return inet_pton(AF_INET, lit, bin) != 1 && inet_pton(AF_INET6, lit, bin) != 1;
}

bool resolve_needed(const char *hosts)
{
    for (const char *p = hosts;; ) {
        size_t len = strcspn(p, ",");
        if (entry_needs_lookup(p, len))
            return true;
        if (!p[len])
            return false;
        p += len + 1;
    }
}

static void job_release(struct helper_wake *w)
{
    struct resolve_job *job = (struct resolve_job *)w;   /* wake is the first member */

    free(job->names);
    free(job);
}

static void resolve_one(struct resolve_entry *e)
{
    struct addrinfo hints, *ai = NULL;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    errno = 0;
    e->gai = getaddrinfo(e->name, NULL, &hints, &ai);
    if (e->gai == 0 && !ai)
        e->gai = EAI_NONAME;
    if (e->gai == 0)
        e->gai = getnameinfo(ai->ai_addr, ai->ai_addrlen, e->addr, sizeof(e->addr), NULL, 0,
                             NI_NUMERICHOST);
    if (e->gai == EAI_SYSTEM)
        e->sys_errno = errno ? errno : EIO;
    if (e->gai != 0)
        e->addr[0] = '\0';
    if (ai)
        freeaddrinfo(ai);
}

/* The helper: resolve every name, then tell the loop unless abandoned. */
static void *resolve_main(void *arg)
{
    struct resolve_job *job = arg;

    for (size_t i = 0; i < job->n; i++)
        if (job->e[i].lookup)
            resolve_one(&job->e[i]);
    helper_wake_done(&job->wake);
    helper_exit();
    return NULL;
}

/* A job for the host list, with its own copy of the names; NULL when out
 * of memory. */
static struct resolve_job *job_new(const char *hosts)
{
    struct resolve_job *job;
    size_t n = 1;
    char *p;

    for (const char *q = hosts; *q; q++)
        n += *q == ',';
    job = calloc(1, sizeof(*job) + n * sizeof(job->e[0]));
    if (!job)
        return NULL;
    if (!(job->names = strdup(hosts))) {
        free(job);
        return NULL;
    }
    job->n = n;
    p = job->names;
    for (size_t i = 0; i < n; i++) {
        size_t len = strcspn(p, ",");
        bool last = !p[len];

        job->e[i].name = p;
        job->e[i].lookup = entry_needs_lookup(p, len);
        p[len] = '\0';
        if (!last)
            p += len + 1;
    }
    return job;
}

int resolve_start(const char *hosts, struct event *wake, struct resolve_job **out)
{
    struct resolve_job *job = job_new(hosts);
    int rc;

    if (!job)
        return ENOMEM;
    rc = helper_wake_init(&job->wake, wake, job_release);
    if (rc != 0) {
        job_release(&job->wake);
        return rc;
    }
    rc = helper_start(resolve_main, job);
    if (rc != 0) {
        helper_wake_unref(&job->wake);   /* the helper's, which never ran */
        helper_wake_abandon(&job->wake);
        return rc;
    }
    *out = job;
    return 0;
}

bool resolve_finished(struct resolve_job *job)
{
    return helper_wake_finished(&job->wake);
}

size_t resolve_count(const struct resolve_job *job)
{
    return job->n;
}

const struct resolve_entry *resolve_entry(const struct resolve_job *job, size_t i)
{
    return &job->e[i];
}

void resolve_entry_error(const struct resolve_entry *e, char *dst, size_t size)
{
    snprintf(dst, size, "cannot resolve host %s: %s", e->name,
             e->gai == EAI_SYSTEM ? strerror(e->sys_errno) : gai_strerror(e->gai));
}

void resolve_abandon(struct resolve_job *job)
{
    if (job)
        helper_wake_abandon(&job->wake);
}
