/*
 * status_admin.h — the status socket's admin actions (status_admin.c):
 *
 *   POST /pools/NAME/pause | /resume | /reconnect
 *   POST /clients/ID/kill
 *   POST /reload
 *   POST /shutdown
 *
 * Everyone the socket's file mode (statusSocketMode) admits may GET; an
 * action needs an admin peer (SO_PEERCRED of the HTTP connection): root,
 * dbpoold's own uid, or a user listed in daemon.adminUsers / adminGroups
 * (checked like a pool's allowUsers / allowGroups, peer_access.h).
 */
#ifndef DBPOOLD_STATUS_ADMIN_H
#define DBPOOLD_STATUS_ADMIN_H

#include <stdbool.h>

struct evhttp_request;
struct status_view;

/* Whether path names an admin action (whatever the method). */
bool status_admin_path(const char *path);
/* Serve the action at path: 405 (Allow: POST) for another method, 403 for
 * a peer that is not an admin, else the action's answer (404 for an
 * unknown pool or client, 409 where the action does not fit the state). */
void status_admin_handle(struct evhttp_request *req, const struct status_view *v,
                         const char *path, bool shutting_down);

#endif
