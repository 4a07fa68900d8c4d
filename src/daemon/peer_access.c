/*
 * peer_access.c — peer credentials and the allowUsers / allowGroups check
 * (see peer_access.h), and the limiter for refusal log lines.
 *
 * SO_PEERGROUPS is read at HELLO, only for a pool with allowGroups whose
 * primary-gid check failed: one getsockopt on a stack buffer (a heap one
 * only for a client in more than STACK_GROUPS groups). A kernel without
 * it (ENOPROTOOPT) leaves the primary gid as the only group that counts.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "daemon/clock.h"
#include "daemon/log.h"
#include "daemon/log_limit.h"
#include "daemon/peer_access.h"

#define STACK_GROUPS 64

void peer_cred_read(int fd, struct peer_cred *out)
{
    struct ucred uc;
    socklen_t len = sizeof(uc);

    memset(out, 0, sizeof(*out));
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) != 0 || len != sizeof(uc))
        return;
    out->uid = (uint32_t)uc.uid;
    out->gid = (uint32_t)uc.gid;
    out->pid = (int32_t)uc.pid;
    out->known = true;
}

static bool any_in(const gid_t *g, size_t n, const struct id_set *set)
{
    for (size_t i = 0; i < n; i++)
        if (id_set_has(set, (uint32_t)g[i]))
            return true;
    return false;
}

/* Whether one of the client's supplementary groups is in set. */
static bool supplementary_in(int fd, const struct id_set *set)
{
    gid_t stack[STACK_GROUPS], *g = stack;
    socklen_t len = sizeof(stack);
    bool found;

#ifdef SO_PEERGROUPS
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &len) != 0) {
        if (errno != ERANGE || !(g = malloc(len)))
            return false;   /* no SO_PEERGROUPS, or out of memory: the client is refused */
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &len) != 0)
            len = 0;
    }
    found = any_in(g, len / sizeof(gid_t), set);
#else
    found = false;
#endif
    if (g != stack)
        free(g);
    return found;
}

bool peer_listed(int fd, const struct peer_cred *cr, const struct id_set *users,
                 const struct id_set *groups)
{
    if (!cr->known)
        return false;
    if (id_set_has(users, cr->uid) || id_set_has(groups, cr->gid))
        return true;
    return groups->n > 0 && supplementary_in(fd, groups);
}

bool peer_may_use(int fd, const struct peer_cred *cr, const struct pool_config *pc)
{
    if (pc->allow_users.n == 0 && pc->allow_groups.n == 0)
        return true;
    return peer_listed(fd, cr, &pc->allow_users, &pc->allow_groups);
}

void peer_refusal_log_init(struct log_limit *l)
{
    memset(l, 0, sizeof(*l));
    l->window_ms = PEER_REFUSAL_LOG_MS;
    l->per_window = 1;
}

bool peer_refusal_log_admit(struct log_limit *l, const char *key)
{
    struct log_limit_summary sum[4];
    size_t n = 0;
    bool ok = log_limit_admit(l, key, now_us() / 1000, sum, sizeof(sum) / sizeof(sum[0]), &n);

    for (size_t i = 0; i < n; i++)
        log_info("client_refusals_suppressed", "key=\"%s\" refusals=%llu window_ms=%u",
                 sum[i].name, (unsigned long long)sum[i].suppressed, PEER_REFUSAL_LOG_MS);
    return ok;
}
