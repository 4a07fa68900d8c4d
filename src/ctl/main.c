/*
 * main.c — dbpoolctl: the admin's command line for a running dbpoold,
 * through its status socket (doc/status.md; man page dbpoolctl(8)).
 *
 *   dbpoolctl [-s SOCKET] [--json] COMMAND [ARG]
 *
 * Reading commands GET a document and print it as a table (or as it came,
 * --json); actions POST and print the daemon's answer. The commands, their
 * endpoints and what is printed are the table `commands` below.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"
#include "ctl/http.h"

#ifdef RUNSTATEDIR
#define DEFAULT_STATUS_SOCKET RUNSTATEDIR "/dbpoold/status.sock"
#else
#define DEFAULT_STATUS_SOCKET "/run/dbpoold/status.sock"
#endif
#define DEFAULT_TIMEOUT_MS 10000

enum cmd_kind { READ, ACTION, HEALTH, STATUS, TOP };

struct command {
    const char *name;
    enum cmd_kind kind;
    const char *path;           /* READ: GET path; ACTION: POST path, %s = the argument */
    const char *arg;            /* the argument's name, or NULL */
    void (*render)(const struct json *doc);
    const char *help;
};

static const struct command commands[] = {
    { "status", STATUS, "/stats", NULL, NULL, "the daemon: version, uptime, clients, health" },
    { "pools", READ, "/pools", NULL, render_pools, "every pool: servers, clients, latency" },
    { "clients", READ, "/clients", NULL, render_clients, "every client session" },
    { "servers", READ, "/servers", NULL, render_servers, "every server connection" },
    { "config", READ, "/config", NULL, render_config, "the running configuration (secrets hidden)" },
    { "health", HEALTH, "/health", NULL, NULL, "exit 0 when healthy, 1 when not, 2 unreachable" },
    { "top", TOP, "/pools", NULL, NULL, "per-pool view refreshed every 2 s (q quits)" },
    { "pause", ACTION, "/pools/%s/pause", "POOL", NULL, "hand out no server; new requests wait" },
    { "resume", ACTION, "/pools/%s/resume", "POOL", NULL, "end a pause" },
    { "reconnect", ACTION, "/pools/%s/reconnect", "POOL", NULL,
      "recycle the pool's server connections gracefully" },
    { "kill", ACTION, "/clients/%s/kill", "ID", NULL,
      "end a client session (its transaction rolls back)" },
    { "reload", ACTION, "/reload", NULL, NULL, "reload the configuration (like SIGHUP)" },
    { "shutdown", ACTION, "/shutdown", NULL, NULL, "graceful shutdown (like SIGTERM)" },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
    fprintf(f, "usage: dbpoolctl [-s SOCKET] [--json] [-t SECONDS] COMMAND [ARG]\n\n"
            "  -s, --socket SOCKET  the status socket (default: $DBPOOL_STATUS_SOCKET, else %s)\n"
            "  -j, --json           print the daemon's JSON instead of a table\n"
            "  -t, --timeout SECS   give up on an answer after this long (default 10)\n"
            "  -i, --interval SECS  top: refresh period (default 2)\n"
            "  -n, --iterations N   top: stop after N screens\n"
            "  -h, --help           this text\n\ncommands:\n",
            DEFAULT_STATUS_SOCKET);
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-10s %-5s %s\n", commands[i].name, commands[i].arg ? commands[i].arg : "",
                commands[i].help);
    fprintf(f, "\nexit status: 0 done, 1 the daemon refused or is unhealthy, 2 it cannot be "
            "reached, 64 usage\n");
}

/* --json: the body as it came; the exit code. */
static int print_raw(const struct ctl *c, const char *method, const char *path, bool ok503)
{
    struct http_reply r;
    int rc = ctl_request(c, method, path, &r);

    if (rc >= 0)
        return rc;
    fputs(r.body, stdout);
    rc = (r.status >= 200 && r.status < 300) ? 0 : 1;
    if (rc && !ok503)
        fprintf(stderr, "dbpoolctl: HTTP %d\n", r.status);
    http_reply_free(&r);
    return rc;
}

static int run_read(const struct ctl *c, const struct command *cmd)
{
    int rc = 0;
    struct json *j;

    if (c->json)
        return print_raw(c, "GET", cmd->path, false);
    if (!(j = ctl_get(c, cmd->path, &rc)))
        return rc;
    cmd->render(j);
    json_free(j);
    return 0;
}

static int run_status(const struct ctl *c)
{
    int rc = 0;
    struct json *stats, *health;

    if (c->json)
        return print_raw(c, "GET", "/stats", false);
    if (!(stats = ctl_get(c, "/stats", &rc)))
        return rc;
    if (!(health = ctl_get(c, "/health", &rc))) {
        json_free(stats);
        return rc;
    }
    render_status(stats, health);
    json_free(stats);
    json_free(health);
    return 0;
}

static int run_health(const struct ctl *c)
{
    struct http_reply r;
    int rc = ctl_request(c, "GET", "/health", &r);
    char err[200];

    if (rc >= 0)
        return rc;
    if (c->json) {
        fputs(r.body, stdout);
    } else {
        struct json *j = json_parse(r.body, err, sizeof(err));
        printf("%s\n", json_str(json_get(j, "status"), "unknown"));
        json_free(j);
    }
    rc = r.status == 200 ? 0 : EXIT_UNHEALTHY;
    http_reply_free(&r);
    return rc;
}

/* Percent-encode what a path segment cannot hold as is. */
static void encode_segment(const char *in, char *out, size_t len)
{
    size_t o = 0;

    for (; *in && o + 4 < len; in++) {
        unsigned char ch = (unsigned char)*in;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            strchr("-._~", ch))
            out[o++] = (char)ch;
        else
            o += (size_t)snprintf(out + o, len - o, "%%%02X", ch);
    }
    out[o] = '\0';
}

static int run_action(const struct ctl *c, const struct command *cmd, const char *arg)
{
    char seg[400], path[512];
    struct http_reply r;
    int rc;

    encode_segment(arg ? arg : "", seg, sizeof(seg));
    const char *hole = strstr(cmd->path, "%s");
    if (hole)
        snprintf(path, sizeof(path), "%.*s%s%s", (int)(hole - cmd->path), cmd->path, seg, hole + 2);
    else
        snprintf(path, sizeof(path), "%s", cmd->path);
    if ((rc = ctl_request(c, "POST", path, &r)) >= 0)
        return rc;
    rc = (r.status >= 200 && r.status < 300) ? 0 : 1;
    if (c->json)
        fputs(r.body, stdout);
    else if (rc)
        ctl_print_error(&r);
    else if (arg)
        printf("%s %s: done\n", cmd->name, arg);
    else
        printf("%s: %s\n", cmd->name, r.status == 202 ? "started" : "done");
    if (rc == 0 && !c->json && strcmp(cmd->name, "reload") == 0)
        fputs(r.body, stdout);
    http_reply_free(&r);
    return rc;
}

static int parse_options(int argc, char **argv, struct ctl *c)
{
    static const struct option opts[] = {
        { "socket", required_argument, NULL, 's' }, { "json", no_argument, NULL, 'j' },
        { "timeout", required_argument, NULL, 't' }, { "interval", required_argument, NULL, 'i' },
        { "iterations", required_argument, NULL, 'n' }, { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int o;

    while ((o = getopt_long(argc, argv, "s:jt:i:n:h", opts, NULL)) != -1) {
        switch (o) {
        case 's': c->socket = optarg; break;
        case 'j': c->json = true; break;
        case 't': c->timeout_ms = (int)(atof(optarg) * 1000); break;
        case 'i': c->interval_s = atof(optarg); break;
        case 'n': c->iterations = atoi(optarg); break;
        case 'h': usage(stdout); exit(0);
        default: return -1;
        }
    }
    if (c->timeout_ms <= 0 || c->interval_s <= 0 || c->iterations < 0) {
        fprintf(stderr, "dbpoolctl: -t and -i take a positive number of seconds, -n a count\n");
        return -1;
    }
    return 0;
}

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

int main(int argc, char **argv)
{
    const char *env = getenv("DBPOOL_STATUS_SOCKET");
    struct ctl c = { env && *env ? env : DEFAULT_STATUS_SOCKET, false, DEFAULT_TIMEOUT_MS, 2.0, 0 };
    const struct command *cmd;

    if (parse_options(argc, argv, &c) != 0 || optind >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!(cmd = find_command(argv[optind]))) {
        fprintf(stderr, "dbpoolctl: unknown command \"%s\" (dbpoolctl --help lists them)\n",
                argv[optind]);
        return EXIT_USAGE;
    }
    if (argc - optind - 1 != (cmd->arg ? 1 : 0)) {
        fprintf(stderr, "dbpoolctl: usage: dbpoolctl %s%s%s\n", cmd->name, cmd->arg ? " " : "",
                cmd->arg ? cmd->arg : "");
        return EXIT_USAGE;
    }
    switch (cmd->kind) {
    case READ: return run_read(&c, cmd);
    case STATUS: return run_status(&c);
    case HEALTH: return run_health(&c);
    case TOP: return ctl_top(&c);
    case ACTION: return run_action(&c, cmd, cmd->arg ? argv[optind + 1] : NULL);
    }
    return EXIT_USAGE;
}
