/*
 * peer_access.h — who is at the other end of a client socket and whether
 * that user may use a pool.
 *
 * The credentials (SO_PEERCRED: the uid, gid and pid the client had when
 * it connected) are read once, at accept, and kept in the session; they
 * count towards daemon.maxClientsPerUser and show in GET /clients. At
 * HELLO a pool with allowUsers / allowGroups is checked against them:
 * the uid, the primary gid, and — only if neither decided — the client's
 * supplementary groups as the kernel recorded them at connect
 * (SO_PEERGROUPS, Linux 4.13+). The status socket asks the same of
 * daemon.adminUsers / adminGroups before an admin action (status_admin.c).
 * Nothing here asks NSS (getpwnam,
 * getgrouplist): the lists hold numeric ids resolved at load (config/ids.c),
 * so a slow LDAP server cannot stall the event loop and a client cannot
 * claim groups it does not have.
 */
#ifndef DBPOOLD_PEER_ACCESS_H
#define DBPOOLD_PEER_ACCESS_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon/configuration.h"

struct log_limit;

struct peer_cred {
    uint32_t uid;
    uint32_t gid;
    int32_t pid;
    bool known;         /* false: SO_PEERCRED failed; no list admits the client */
};

/* SO_PEERCRED of an accepted Unix socket. */
void peer_cred_read(int fd, struct peer_cred *out);

/* Whether the peer on fd (credentials cr) is listed: its uid is in users,
 * or its primary or a supplementary group is in groups. */
bool peer_listed(int fd, const struct peer_cred *cr, const struct id_set *users,
                 const struct id_set *groups);

/* Whether the client on fd (credentials cr) may use the pool configured as
 * pc: yes when the pool lists no one; else peer_listed in allowUsers /
 * allowGroups. */
bool peer_may_use(int fd, const struct peer_cred *cr, const struct pool_config *pc);

/* Refusals are logged once per PEER_REFUSAL_LOG_MS per key (a uid and a
 * pool), so a client retrying in a loop cannot flood the log: set up a
 * limiter for that, and ask it before each refusal's line. The number of
 * refusals not logged is written when the key's window is over, before the
 * next refusal's line (event=client_refusals_suppressed). */
#define PEER_REFUSAL_LOG_MS 10000u
void peer_refusal_log_init(struct log_limit *l);
bool peer_refusal_log_admit(struct log_limit *l, const char *key);

#endif
