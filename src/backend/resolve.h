/*
 * resolve.h — host-name resolution off the event loop, for drivers whose
 * client library would otherwise call a blocking getaddrinfo() on the loop.
 *
 * A host list is comma-separated, as libpq reads it. An entry is a name to
 * resolve unless it is empty (the library's default), a socket directory
 * ("/..."), an abstract socket ("@...") or an IPv4 or IPv6 literal
 * (inet_pton). resolve_start() copies the list and resolves every name on a
 * helper thread (helper.h): getaddrinfo(AF_UNSPEC, SOCK_STREAM), keeping
 * the first address, numeric. When it is done it activates the caller's
 * event (the wake-up rules of struct helper_wake apply); the caller then
 * reads the entries on the loop thread, and lets go of the job with
 * resolve_abandon() in every case (answer used, timeout, close), which also
 * withdraws a wake-up already posted.
 */
#ifndef DBPOOLD_BACKEND_RESOLVE_H
#define DBPOOLD_BACKEND_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>

struct event;
struct resolve_job;

#define RESOLVE_ADDR_MAX 64   /* numeric address + "%" + interface name + NUL */

struct resolve_entry {
    const char *name;            /* the entry as configured */
    bool lookup;                 /* a name: the helper resolves it */
    int gai;                     /* getaddrinfo's (or getnameinfo's) result, 0: ok */
    int sys_errno;               /* errno when gai is EAI_SYSTEM */
    char addr[RESOLVE_ADDR_MAX]; /* the first address, numeric; "" if none */
};

/* Whether the host list has at least one name to resolve. */
bool resolve_needed(const char *hosts);
/* Resolve the names of hosts on a helper; wake is activated when done.
 * 0 (and *out), or an error number. */
int resolve_start(const char *hosts, struct event *wake, struct resolve_job **out);
/* On the loop: whether the answer is in (the entries may be read). */
bool resolve_finished(struct resolve_job *job);
size_t resolve_count(const struct resolve_job *job);
const struct resolve_entry *resolve_entry(const struct resolve_job *job, size_t i);
/* "cannot resolve host NAME: <reason>" for an entry that did not resolve. */
void resolve_entry_error(const struct resolve_entry *e, char *dst, size_t size);
/* The caller lets go of the job (see above). */
void resolve_abandon(struct resolve_job *job);

#endif
