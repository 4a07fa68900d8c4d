/*
 * pool_pin.c — pinned sessions on the pool's side (contract: pool.h,
 * "pinned sessions"; the protocol's PIN / UNPIN in doc/protocol.md). A
 * session that pins keeps the server it holds across transactions; the
 * pool counts pins against maxPinned (config, resolved at load so that
 * pins never take every connection), and when the pinned server comes back
 * through pool_release it has the driver reset the whole session (locks,
 * temporary tables, settings) before anyone else gets it — or closes it
 * when the driver has no such reset or the server is broken.
 */
#include "daemon/log.h"
#include "daemon/pool.h"
#include "daemon/pool_internal.h"

bool pool_pin_allowed(const struct pool *p)
{
    return p->pinned < p->cfg->max_pinned;
}

bool pool_pin(struct pool *p, struct server *sv)
{
    if (sv->pinned)
        return true;
    if (!pool_pin_allowed(p))
        return false;
    sv->pinned = true;
    p->pinned++;
    log_debug("server_pinned", "pool=%s server=%llu pinned=%d", p->cfg->name,
              (unsigned long long)sv->id, p->pinned);
    return true;
}

bool server_pinned(const struct server *sv)
{
    return sv->pinned;
}

bool pool_unpin_server(struct pool *p, struct server *sv)
{
    sv->pinned = false;
    p->pinned--;
    if (sv->broken)
        return false;   /* pool_release closes it */
    if (!p->drv->reset_session) {
        enum backend_role role = sv->role;
        server_close(sv, "pinned session ended (the driver has no session reset: a new "
                         "connection replaces it)");
        pool_maybe_connect(p, role);
        return true;
    }
    server_reset(p, sv, true);
    return true;
}
