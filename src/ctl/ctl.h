/*
 * ctl.h — what dbpoolctl's files share: the options, fetching a JSON
 * document from the status socket (fetch.c), the human tables (render.c)
 * and the refreshing view (top.c).
 *
 * Exit codes: 0 done (health: healthy); 1 the daemon answered with an
 * error or is unhealthy; 2 the daemon could not be reached; 64 usage.
 */
#ifndef DBPOOLCTL_CTL_H
#define DBPOOLCTL_CTL_H

#include <stdbool.h>
#include <stddef.h>

#include "ctl/json.h"

#define EXIT_UNHEALTHY 1
#define EXIT_UNREACHABLE 2
#define EXIT_USAGE 64

struct ctl {
    const char *socket;         /* -s, DBPOOL_STATUS_SOCKET, or the default */
    bool json;                  /* --json: the daemon's JSON as it came */
    int timeout_ms;             /* per request */
    double interval_s;          /* top: refresh period */
    int iterations;             /* top: 0 = until q */
};

struct http_reply;

/* fetch.c: one request; the reply in *r. When it could not be made, the
 * message is printed and the exit code returned (EXIT_UNREACHABLE); -1
 * otherwise. */
int ctl_request(const struct ctl *c, const char *method, const char *path, struct http_reply *r);
/* The daemon's {"error": ...} (or the body) and the HTTP status, on stderr. */
void ctl_print_error(const struct http_reply *r);
/* GET path as a parsed document; NULL after printing why, with *exit_code
 * set (EXIT_UNREACHABLE, or 1 for an error answer). */
struct json *ctl_get(const struct ctl *c, const char *path, int *exit_code);

/* render.c: human tables on stdout */
void render_pools(const struct json *pools);
void render_clients(const struct json *doc);
void render_servers(const struct json *doc);
void render_status(const struct json *stats, const struct json *health);
void render_config(const struct json *doc);
/* A cell of a duration in milliseconds: "0.4ms", "12ms", "3.2s", "5m". */
const char *fmt_ms(double ms, char *buf, size_t len);

/* A latency cell of pool p: which ("transaction", "wait"), q ("p50_ms");
 * "-" while the window holds no sample. */
const char *fmt_latency(const struct json *p, const char *which, const char *q, char *buf,
                        size_t len);

/* top.c */
int ctl_top(const struct ctl *c);

#endif
