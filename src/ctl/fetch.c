/*
 * fetch.c — dbpoolctl's requests to the status socket (contract: ctl.h):
 * one HTTP exchange (http.c), its failures turned into a message on
 * stderr and an exit code, and GET answers parsed as JSON (json.c).
 */
#include <stdio.h>

#include "ctl/ctl.h"
#include "ctl/http.h"

/* The daemon's {"error": ...} message, or the body itself. */
void ctl_print_error(const struct http_reply *r)
{
    char err[200];
    struct json *j = json_parse(r->body, err, sizeof(err));
    const char *msg = json_str(json_get(j, "error"), NULL);

    fprintf(stderr, "dbpoolctl: %s (HTTP %d)\n", msg ? msg : r->body, r->status);
    json_free(j);
}

/* One request; the reply in *r. The exit code when it failed, else -1. */
int ctl_request(const struct ctl *c, const char *method, const char *path,
                struct http_reply *r)
{
    char err[512];

    if (http_request(c->socket, method, path, c->timeout_ms, r, err, sizeof(err)) != 0) {
        fprintf(stderr, "dbpoolctl: %s\n", err);
        return EXIT_UNREACHABLE;
    }
    return -1;
}

struct json *ctl_get(const struct ctl *c, const char *path, int *exit_code)
{
    struct http_reply r;
    struct json *j;
    char err[200];
    int rc = ctl_request(c, "GET", path, &r);

    if (rc >= 0) {
        *exit_code = rc;
        return NULL;
    }
    if (r.status != 200 && r.status != 503) {
        ctl_print_error(&r);
        http_reply_free(&r);
        *exit_code = 1;
        return NULL;
    }
    if (!(j = json_parse(r.body, err, sizeof(err)))) {
        fprintf(stderr, "dbpoolctl: %s\n", err);
        *exit_code = 1;
    }
    http_reply_free(&r);
    return j;
}

