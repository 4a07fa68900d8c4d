/*
 * render.c — dbpoolctl's human output (contract: ctl.h): the status
 * socket's documents as aligned tables, one row per pool, client or
 * server connection. --json bypasses all of this.
 */
#include <stdio.h>
#include <string.h>

#include "ctl/ctl.h"

const char *fmt_ms(double ms, char *buf, size_t len)
{
    if (ms < 0)
        snprintf(buf, len, "-");
    else if (ms < 10)
        snprintf(buf, len, "%.1fms", ms);
    else if (ms < 10000)
        snprintf(buf, len, "%.0fms", ms);
    else if (ms < 600000)
        snprintf(buf, len, "%.1fs", ms / 1000);
    else
        snprintf(buf, len, "%.0fm", ms / 60000);
    return buf;
}

const char *fmt_latency(const struct json *p, const char *which, const char *q, char *buf,
                        size_t len)
{
    if (json_num(JSON_AT(p, "latency", which, "samples"), 0) <= 0)
        return fmt_ms(-1, buf, len);
    return fmt_ms(json_num(JSON_AT(p, "latency", which, q), -1), buf, len);
}

/* A JSON number as an integer cell; "-" when absent or null. */
static const char *fmt_int(const struct json *j, char *buf, size_t len)
{
    if (!j || j->type != J_NUM)
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, "%.0f", j->num);
    return buf;
}

static const char *pool_state(const struct json *p)
{
    const struct json *paused = json_get(p, "paused"), *down = json_get(p, "down"),
                      *healthy = json_get(p, "healthy");

    if (paused && paused->b)
        return "paused";
    if (down && down->b)
        return "down";
    return healthy && healthy->b ? "ok" : "unhealthy";
}

void render_pools(const struct json *pools)
{
    char a[5][32];

    printf("%-16s %-8s %-9s %7s %5s %5s %7s %6s %7s %8s %8s %8s\n", "POOL", "TYPE", "STATE",
           "SERVERS", "IDLE", "BUSY", "CLIENTS", "ACTIVE", "WAITING", "TX_P50", "TX_P99",
           "WAIT_P99");
    for (const struct json *p = pools ? pools->child : NULL; p; p = p->next) {
        snprintf(a[0], sizeof(a[0]), "%.0f/%.0f", json_num(JSON_AT(p, "servers", "open"), 0),
                 json_num(JSON_AT(p, "servers", "max"), 0));
        printf("%-16s %-8s %-9s %7s %5.0f %5.0f %7.0f %6.0f %7.0f %8s %8s %8s\n",
               json_str(json_get(p, "name"), "?"), json_str(json_get(p, "type"), "?"),
               pool_state(p), a[0], json_num(JSON_AT(p, "servers", "idle"), 0),
               json_num(JSON_AT(p, "servers", "busy"), 0),
               json_num(JSON_AT(p, "clients", "connected"), 0),
               json_num(JSON_AT(p, "clients", "active"), 0),
               json_num(JSON_AT(p, "clients", "waiting"), 0),
               fmt_latency(p, "transaction", "p50_ms", a[1], 32),
               fmt_latency(p, "transaction", "p99_ms", a[2], 32),
               fmt_latency(p, "wait", "p99_ms", a[3], 32));
        const char *err = json_str(json_get(p, "last_error"), NULL);
        if (err && strcmp(pool_state(p), "ok") != 0)
            printf("  last error: %s\n", err);
    }
}

void render_clients(const struct json *doc)
{
    char a[6][32];

    printf("%-6s %-16s %-20s %-2s %6s %7s %6s %8s %8s %8s %10s %10s  %s\n", "ID", "POOL", "STATE",
           "TX", "UID", "PID", "SERVER", "AGE", "REQUEST", "REQS", "BYTES_IN", "BYTES_OUT", "NAME");
    for (const struct json *c = JSON_AT(doc, "clients") ? JSON_AT(doc, "clients")->child : NULL;
         c; c = c->next) {
        printf("%-6s %-16s %-20s %-2s %6s %7s %6s %8s %8s %8.0f %10.0f %10.0f  %s\n",
               fmt_int(json_get(c, "id"), a[0], 32), json_str(json_get(c, "pool"), "-"),
               json_str(json_get(c, "state"), "?"), json_str(json_get(c, "tx"), "?"),
               fmt_int(json_get(c, "uid"), a[1], 32), fmt_int(json_get(c, "pid"), a[2], 32),
               fmt_int(json_get(c, "server"), a[3], 32),
               fmt_ms(json_num(json_get(c, "connected_ms"), -1), a[4], 32),
               fmt_ms(json_num(json_get(c, "request_ms"), -1), a[5], 32),
               json_num(json_get(c, "requests"), 0), json_num(json_get(c, "bytes_in"), 0),
               json_num(json_get(c, "bytes_out"), 0), json_str(json_get(c, "name"), "-"));
    }
}

void render_servers(const struct json *doc)
{
    char a[3][32];

    printf("%-6s %-16s %-10s %-6s %8s %8s %-5s  %s\n", "ID", "POOL", "STATE", "ROLE", "OPEN",
           "IN_STATE", "STALE", "SERVER");
    for (const struct json *s = JSON_AT(doc, "servers") ? JSON_AT(doc, "servers")->child : NULL;
         s; s = s->next) {
        const struct json *stale = json_get(s, "stale");
        printf("%-6s %-16s %-10s %-6s %8s %8s %-5s  %s\n", fmt_int(json_get(s, "id"), a[0], 32),
               json_str(json_get(s, "pool"), "?"), json_str(json_get(s, "state"), "?"),
               json_str(json_get(s, "role"), "?"),
               fmt_ms(json_num(json_get(s, "open_ms"), -1), a[1], 32),
               fmt_ms(json_num(json_get(s, "state_ms"), -1), a[2], 32),
               stale && stale->b ? "yes" : "no", json_str(json_get(s, "server"), "-"));
    }
}

void render_status(const struct json *stats, const struct json *health)
{
    const struct json *lr = json_get(stats, "last_reload");

    printf("dbpoold %s, up %.0f s, %s\n", json_str(json_get(stats, "version"), "?"),
           json_num(json_get(stats, "uptime_s"), 0), json_str(json_get(health, "status"), "?"));
    printf("clients: %.0f connected, %.0f accepted since start\n",
           json_num(JSON_AT(stats, "clients", "connected"), 0),
           json_num(JSON_AT(stats, "clients", "total_accepted"), 0));
    printf("pools: %.0f, %.0f healthy, %.0f draining\n", json_num(json_get(stats, "pools"), 0),
           json_num(json_get(stats, "pools_healthy"), 0),
           json_num(json_get(stats, "pools_draining"), 0));
    printf("transactions: %.0f, statements: %.0f, errors: %.0f\n",
           json_num(JSON_AT(stats, "totals", "transactions"), 0),
           json_num(JSON_AT(stats, "totals", "statements"), 0),
           json_num(JSON_AT(stats, "totals", "errors"), 0));
    if (lr && lr->type == J_OBJ) {
        const struct json *ok = json_get(lr, "ok");
        printf("last reload: %s, %s\n", json_str(json_get(lr, "time"), "?"),
               ok && ok->b ? "applied" : "FAILED (the previous configuration runs)");
        for (const struct json *e = JSON_AT(lr, "errors") ? JSON_AT(lr, "errors")->child : NULL;
             e; e = e->next)
            printf("  %s\n", json_str(e, "?"));
    }
    for (const struct json *p = JSON_AT(health, "pools") ? JSON_AT(health, "pools")->child : NULL;
         p; p = p->next) {
        const struct json *h = json_get(p, "healthy");
        if (!h || !h->b)
            printf("unhealthy pool %s: %s\n", json_str(json_get(p, "name"), "?"),
                   json_str(json_get(p, "error"), "(no error recorded)"));
    }
}

static void print_value(const struct json *v)
{
    switch (v->type) {
    case J_NULL: printf("(not set)"); break;
    case J_BOOL: printf("%s", v->b ? "true" : "false"); break;
    case J_NUM: printf("%.15g", v->num); break;
    case J_STR: printf("\"%s\"", v->str); break;
    case J_ARR:
        printf("[");
        for (const struct json *e = v->child; e; e = e->next) {
            print_value(e);
            printf("%s", e->next ? ", " : "");
        }
        printf("]");
        break;
    case J_OBJ: printf("{...}"); break;
    }
}

void render_config(const struct json *doc)
{
    const struct json *pools = json_get(doc, "pools");

    printf("# %s\n", json_str(json_get(doc, "path"), "?"));
    for (const struct json *k = JSON_AT(doc, "daemon") ? JSON_AT(doc, "daemon")->child : NULL;
         k; k = k->next) {
        printf("daemon.%s = ", k->key);
        print_value(k);
        printf("\n");
    }
    for (const struct json *p = pools ? pools->child : NULL; p; p = p->next) {
        const char *name = json_str(json_get(p, "name"), "?");
        for (const struct json *k = p->child; k; k = k->next) {
            if (strcmp(k->key, "name") == 0)
                continue;
            printf("pools[%s].%s = ", name, k->key);
            print_value(k);
            printf("\n");
        }
    }
}
