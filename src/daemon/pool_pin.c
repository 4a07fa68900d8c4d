/*
 * pool_pin.c — pinned sessions on the pool's side (contract: pool.h,
 * "pinned sessions"; the protocol's PIN / UNPIN in doc/protocol.md). A
 * session that pins keeps the server it holds across transactions; the
 * pool counts pins against maxPinned (config, resolved at load so that
 * pins never take every connection), and with them the PINs waiting for a
 * server (each holds a place until its wait ends: pool_acquire_pin, in
 * pool.c). When the pinned server comes back, pool_release (pool.c) ends
 * the pin: the driver resets the whole session
 * (locks, temporary tables, settings) before anyone else gets it, or the
 * connection is closed when the driver has no such reset or it is broken.
 */
#include "daemon/log.h"
#include "daemon/pool.h"
#include "daemon/pool_internal.h"

bool pool_pin_allowed(const struct pool *p)
{
    return p->pinned + p->pin_waiting < p->cfg->max_pinned;
}

bool pool_pin(struct pool *p, struct server *sv)
{
    if (sv->pinned)
        return true;
    if (p->pinned >= p->cfg->max_pinned)
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
