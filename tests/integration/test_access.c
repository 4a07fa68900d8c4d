/*
 * test_access.c — who may use a pool (doc/configuration.md, "Who may use a
 * pool"): allowUsers / allowGroups checked against the client's peer
 * credentials, maxClientsPerPool, daemon.maxClientsPerUser, and the
 * refusals' log lines. SQLite pools: no server is needed.
 *
 * The clients run under other uids: each test creates its own throwaway
 * system users and group (useradd / groupadd, names with the test
 * process's pid, removed again by the suite's .fini) and runs an "agent" —
 * a child process that drops to such a user (initgroups or no
 * supplementary groups, setresgid, setresuid) and then connects, queries
 * and closes on the parent's command, reporting each outcome through a
 * pipe. All assertions stay in the test's own process. Needs root (to
 * create users and switch to them): skipped with a message otherwise.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define LOCKED "locked"          /* the extra pool with an allow list */
#define AGENT_CONNS 16

/* ------------------------------------------------------------ throwaway users */

static struct {
    char alice[32], bob[32], team[32];   /* alice: in team (supplementary); bob: not */
    uid_t alice_uid, bob_uid;
    gid_t alice_gid, bob_gid, team_gid;
    char dbdir[256];                     /* the extra pools' databases */
    bool created;
    pid_t agents[8];                     /* started and not yet reaped (a failed test's) */
} U;

/* Run a shell command (the user tools); serialised across the tests
 * running in parallel, since they lock /etc/passwd and /etc/group. */
static int run_locked(const char *cmd)
{
    int lock = open("/tmp/dbpoold-test-users.lock", O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    int rc;

    cr_assert_geq(lock, 0, "cannot open the user-tools lock: %s", strerror(errno));
    flock(lock, LOCK_EX);
    rc = system(cmd);
    close(lock);
    return rc;
}

/* A failed test leaves its agents running, and userdel refuses a user
 * who has processes: they are ended first (by their pids). */
static void reap_agents(void)
{
    for (size_t i = 0; i < sizeof(U.agents) / sizeof(U.agents[0]); i++) {
        if (U.agents[i] > 0) {
            kill(U.agents[i], SIGKILL);
            waitpid(U.agents[i], NULL, 0);
            U.agents[i] = 0;
        }
    }
}

static void remember_agent(pid_t pid, bool running)
{
    for (size_t i = 0; i < sizeof(U.agents) / sizeof(U.agents[0]); i++) {
        if (running ? U.agents[i] == 0 : U.agents[i] == pid) {
            U.agents[i] = running ? pid : 0;
            return;
        }
    }
    cr_assert(!running, "more agents than U.agents holds");
}

static void remove_users(void)
{
    char cmd[600];

    reap_agents();
    if (U.created) {
        snprintf(cmd, sizeof(cmd), "userdel %s 2>/dev/null; userdel %s 2>/dev/null; "
                 "groupdel %s 2>/dev/null", U.alice, U.bob, U.team);
        run_locked(cmd);
        U.created = false;
    }
    if (U.dbdir[0]) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", U.dbdir);
        cr_expect_eq(system(cmd), 0);
        U.dbdir[0] = '\0';
    }
}

/* A directory for the extra pools' databases (removed by the fini). */
static void need_dbdir(void)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(U.dbdir, sizeof(U.dbdir), "%s/dbpt-access.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    cr_assert_not_null(mkdtemp(U.dbdir), "mkdtemp: %s", strerror(errno));
}

static void access_fini(void)
{
    h_fini();
    remove_users();
}

/* Creates alice (private group, supplementary group team) and bob
 * (private group only); skips the test when that is not possible. */
static void need_users(void)
{
    char cmd[512];
    struct passwd *pw;
    struct group *gr;

    if (geteuid() != 0)
        cr_skip_test("needs root: it creates throwaway users and runs clients under them");
    if (access("/usr/sbin/useradd", X_OK) != 0)
        cr_skip_test("useradd (package passwd) is not installed");
    snprintf(U.alice, sizeof(U.alice), "dbpt%da", (int)getpid());
    snprintf(U.bob, sizeof(U.bob), "dbpt%db", (int)getpid());
    snprintf(U.team, sizeof(U.team), "dbpt%dt", (int)getpid());
    U.created = true;
    snprintf(cmd, sizeof(cmd), "groupadd --system %s && "
             "useradd --system --no-create-home --user-group --groups %s %s && "
             "useradd --system --no-create-home --user-group %s", U.team, U.team, U.alice, U.bob);
    cr_assert_eq(run_locked(cmd), 0, "could not create the test users: %s", cmd);
    cr_assert_not_null(pw = getpwnam(U.alice));
    U.alice_uid = pw->pw_uid;
    U.alice_gid = pw->pw_gid;
    cr_assert_not_null(pw = getpwnam(U.bob));
    U.bob_uid = pw->pw_uid;
    U.bob_gid = pw->pw_gid;
    cr_assert_not_null(gr = getgrnam(U.team));
    U.team_gid = gr->gr_gid;
    need_dbdir();
}

/* The other users must reach the client socket: its directory and the
 * run's root directory above it become traversable (0711). */
static void open_socket_dir(void)
{
    char dir[300];

    snprintf(dir, sizeof(dir), "%s", h_paths()->dir);
    cr_assert_eq(chmod(dir, 0711), 0, "chmod %s: %s", dir, strerror(errno));
    cr_assert_eq(chmod(dirname(dir), 0711), 0, "chmod %s: %s", dir, strerror(errno));
}

/* An extra SQLite pool entry for h_opts.extra_pools. */
static const char *extra_pool(char *buf, size_t len, const char *name, const char *settings)
{
    snprintf(buf, len, ", { name = \"%s\"; type = \"sqlite\"; sqlite = { filePath = \"%s/%s.db\"; "
             "%s }; }", name, U.dbdir, name, settings);
    return buf;
}

/* ------------------------------------------------------------ agents */

/* A client process running as another user, driven through pipes. */
struct agent {
    pid_t pid;
    int to, from;
};

struct agent_cmd {
    char op;                 /* 'c' connect to pool, 'q' SELECT 1 on conn, 'x' close conn, 'e' exit */
    int conn;
    char pool[64];
};

struct agent_reply {
    int code;                /* 0: done; else the dbpool error code */
    int conn;                /* 'c': the new connection's slot */
    char sqlstate[6];
    char message[512];
};

static void agent_do(struct agent_cmd *cmd, dbpool_conn **conns, const char *sock,
                     struct agent_reply *r)
{
    dbpool_error err;

    memset(r, 0, sizeof(*r));
    memset(&err, 0, sizeof(err));
    if (cmd->op == 'c') {
        int i = 0;

        while (i < AGENT_CONNS && conns[i])
            i++;
        r->conn = i;
        if (i == AGENT_CONNS) {
            err.code = DBPOOL_E_USAGE;
            snprintf(err.message, sizeof(err.message), "the agent holds %d connections", i);
        } else {
            conns[i] = dbpool_connect(sock, cmd->pool, "agent", &err);
        }
    } else if (cmd->op == 'q') {
        if (dbpool_exec(conns[cmd->conn], "SELECT 1") != 0)
            err = *dbpool_last_error(conns[cmd->conn]);
    } else if (cmd->op == 'x') {
        dbpool_close(conns[cmd->conn]);
        conns[cmd->conn] = NULL;
    }
    r->code = err.code;
    memcpy(r->sqlstate, err.sqlstate, sizeof(r->sqlstate));
    memcpy(r->message, err.message, sizeof(r->message));
}

/* In the child: become the user (with its supplementary groups from the
 * group database, like setpriv --init-groups, or none), then serve. */
static void agent_main(const char *user, bool supplementary, int in, int out, const char *sock)
{
    struct passwd *pw = getpwnam(user);
    dbpool_conn *conns[AGENT_CONNS] = { 0 };
    struct agent_cmd cmd;
    struct agent_reply r;

    if (!pw || (supplementary ? initgroups(user, pw->pw_gid) : setgroups(0, NULL)) != 0 ||
        setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) != 0 ||
        setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) != 0)
        _exit(3);
    while (read(in, &cmd, sizeof(cmd)) == (ssize_t)sizeof(cmd) && cmd.op != 'e') {
        agent_do(&cmd, conns, sock, &r);
        if (write(out, &r, sizeof(r)) != (ssize_t)sizeof(r))
            _exit(4);
    }
    _exit(0);
}

static void agent_start(struct agent *a, const char *user, bool supplementary)
{
    int down[2], up[2];

    cr_assert_eq(pipe(down), 0);
    cr_assert_eq(pipe(up), 0);
    a->pid = fork();
    cr_assert_geq(a->pid, 0, "fork: %s", strerror(errno));
    if (a->pid == 0) {
        close(down[1]);
        close(up[0]);
        agent_main(user, supplementary, down[0], up[1], h_paths()->sock);
    }
    remember_agent(a->pid, true);
    close(down[0]);
    close(up[1]);
    a->to = down[1];
    a->from = up[0];
}

static struct agent_reply agent_ask(struct agent *a, char op, int conn, const char *pool)
{
    struct agent_cmd cmd = { .op = op, .conn = conn };
    struct agent_reply r;

    snprintf(cmd.pool, sizeof(cmd.pool), "%s", pool ? pool : "");
    cr_assert_eq(write(a->to, &cmd, sizeof(cmd)), (ssize_t)sizeof(cmd), "the agent is gone");
    cr_assert_eq(read(a->from, &r, sizeof(r)), (ssize_t)sizeof(r),
                 "the agent did not answer (it could not switch users?)");
    return r;
}

static void agent_stop(struct agent *a)
{
    struct agent_cmd cmd = { .op = 'e' };
    int st;

    cr_assert_eq(write(a->to, &cmd, sizeof(cmd)), (ssize_t)sizeof(cmd));
    cr_assert_eq(waitpid(a->pid, &st, 0), a->pid);
    remember_agent(a->pid, false);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "agent exit status %d", st);
    close(a->to);
    close(a->from);
}

/* Connects the agent to pool and runs SELECT 1; asserts both worked. */
static int agent_use(struct agent *a, const char *pool, const char *who)
{
    struct agent_reply r = agent_ask(a, 'c', 0, pool);

    cr_assert_eq(r.code, 0, "%s could not connect to pool %s: %s: %s", who, pool,
                 dbpool_code_name(r.code), r.message);
    int conn = r.conn;
    r = agent_ask(a, 'q', conn, NULL);
    cr_assert_eq(r.code, 0, "%s: SELECT 1 on pool %s failed: %s", who, pool, r.message);
    return conn;
}

/* Connecting the agent to pool fails with code; returns the reply. */
static struct agent_reply agent_refused(struct agent *a, const char *pool, int code, const char *who)
{
    struct agent_reply r = agent_ask(a, 'c', 0, pool);

    cr_assert_eq(r.code, code, "%s on pool %s: got %s (%s), expected %s", who, pool,
                 dbpool_code_name(r.code), r.message, dbpool_code_name(code));
    return r;
}

/* ------------------------------------------------------------ the log */

static int log_lines_with(const char *a, const char *b, const char *c)
{
    char *log = h_read_log();
    int n = 0;

    for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n"))
        n += strstr(line, a) && (!b || strstr(line, b)) && (!c || strstr(line, c));
    free(log);
    return n;
}

static double clients_total(void)
{
    return H_STATUS_NUM("/stats", "clients", "connected");
}

/* ------------------------------------------------------------ tests */

TestSuite(access, .fini = access_fini, .timeout = 60);

/* allowUsers admits the listed user (by name) and refuses others with
 * NOT_ALLOWED naming the uid and what to change; the refused user still
 * uses the unrestricted pool; the refusal is logged with uid and pool. */
Test(access, allow_users_admits_the_listed_user_only)
{
    char extra[600], settings[128], want[128], uidkv[32];

    need_users();
    snprintf(settings, sizeof(settings), "allowUsers = (\"%s\");", U.alice);
    struct h_opts o = { .extra_pools = extra_pool(extra, sizeof(extra), LOCKED, settings) };
    h_start(&o);
    open_socket_dir();
    struct agent alice, bob;
    agent_start(&alice, U.alice, true);
    agent_start(&bob, U.bob, true);

    agent_use(&alice, LOCKED, "alice (in allowUsers)");
    struct agent_reply r = agent_refused(&bob, LOCKED, DBPOOL_E_NOT_ALLOWED, "bob (not listed)");
    snprintf(want, sizeof(want), "user %u (group %u) may not use pool \"" LOCKED "\"",
             (unsigned)U.bob_uid, (unsigned)U.bob_gid);
    cr_expect(strstr(r.message, want) && strstr(r.message, "allowUsers"), "message: %s", r.message);
    cr_expect_str_eq(r.sqlstate, "28000");
    agent_use(&bob, H_POOL, "bob on the pool without a list");
    dbpool_error err;
    cr_assert_null(h_try_connect(LOCKED, &err), "root is not in allowUsers either");
    cr_expect_eq(err.code, DBPOOL_E_NOT_ALLOWED);

    snprintf(uidkv, sizeof(uidkv), "uid=%u ", (unsigned)U.bob_uid);
    cr_expect(H_AWAIT(log_lines_with("reason=not_allowed", uidkv, "pool=" LOCKED) == 1, 2000),
              "no client_refused line naming bob's uid and the pool");
    agent_stop(&alice);
    agent_stop(&bob);
    h_stop_ok();
}

/* allowGroups: the primary group counts (bob), and so does a
 * supplementary group (alice in team) — but only one the client really
 * has: alice started without supplementary groups is refused, and so is
 * root. */
Test(access, allow_groups_primary_and_supplementary)
{
    char extra[600], settings[160];

    need_users();
    snprintf(settings, sizeof(settings), "allowGroups = (\"%s\", %u);", U.team, (unsigned)U.bob_gid);
    struct h_opts o = { .extra_pools = extra_pool(extra, sizeof(extra), LOCKED, settings) };
    h_start(&o);
    open_socket_dir();
    struct agent bob, alice, alice_bare;
    agent_start(&bob, U.bob, true);
    agent_start(&alice, U.alice, true);
    agent_start(&alice_bare, U.alice, false);

    agent_use(&bob, LOCKED, "bob (primary group listed)");
    agent_use(&alice, LOCKED, "alice (supplementary group listed)");
    struct agent_reply r = agent_refused(&alice_bare, LOCKED, DBPOOL_E_NOT_ALLOWED,
                                         "alice without her supplementary groups");
    cr_expect(strstr(r.message, "allowGroups"), "message: %s", r.message);
    dbpool_error err;
    cr_assert_null(h_try_connect(LOCKED, &err), "root's groups are not listed");
    cr_expect_eq(err.code, DBPOOL_E_NOT_ALLOWED, "%s", err.message);
    agent_stop(&bob);
    agent_stop(&alice);
    agent_stop(&alice_bare);
    h_stop_ok();
}

/* maxClientsPerUser: the N+1th session of one uid is refused (LIMIT,
 * 53300, naming the key) while other users are served; closing one frees
 * the slot. GET /clients shows each session's uid and pid. A burst of
 * refusals is logged once. */
Test(access, per_user_limit_refuses_the_next_session_and_frees_on_close)
{
    char buf[256];

    need_users();
    struct h_opts o = { .daemon_settings = "maxClientsPerUser = 3;" };
    h_start(&o);
    open_socket_dir();
    cr_assert(H_AWAIT(clients_total() == 0, 5000), "the start-up check's session stayed");
    struct agent alice;
    agent_start(&alice, U.alice, true);
    int held[3];
    for (int i = 0; i < 3; i++)
        held[i] = agent_use(&alice, H_POOL, "alice within her limit");
    for (int i = 0; i < 5; i++) {
        struct agent_reply r = agent_refused(&alice, H_POOL, DBPOOL_E_LIMIT, "alice's 4th session");
        cr_expect(strstr(r.message, "maxClientsPerUser"), "message: %s", r.message);
        cr_expect_str_eq(r.sqlstate, "53300");
    }
    dbpool_conn *root = h_connect();   /* another user is served */
    cr_assert_eq(h_scalar(root, "SELECT 1"), 1);

    char *body;
    cr_assert_eq(h_http_get("/clients", &body), 200);
    snprintf(buf, sizeof(buf), "\"uid\": %u, \"pid\": %d", (unsigned)U.alice_uid, (int)alice.pid);
    int n = 0;
    for (const char *p = body; (p = strstr(p, buf)); p++)
        n++;
    cr_expect_eq(n, 3, "GET /clients lists %d sessions with %s: %s", n, buf, body);
    snprintf(buf, sizeof(buf), "\"uid\": 0, \"pid\": %d", (int)getpid());
    cr_expect(strstr(body, buf), "GET /clients does not show root's session (%s): %s", buf, body);
    free(body);

    agent_ask(&alice, 'x', held[0], NULL);
    cr_assert(H_AWAIT(agent_ask(&alice, 'c', 0, H_POOL).code == 0, 5000),
              "the closed session's slot was not given back to alice");
    agent_refused(&alice, H_POOL, DBPOOL_E_LIMIT, "alice at her limit again");
    snprintf(buf, sizeof(buf), "uid=%u ", (unsigned)U.alice_uid);
    cr_expect_eq(log_lines_with("reason=max_clients_per_user", buf, NULL), 1,
                 "6 refusals within seconds: not logged exactly once");
    dbpool_close(root);
    agent_stop(&alice);
    h_stop_ok();
}

/* Twenty refused HELLOs in a row: every one is refused, one line is logged. */
Test(access, a_burst_of_refusals_is_logged_once)
{
    char extra[600], settings[128], uidkv[32];

    need_users();
    snprintf(settings, sizeof(settings), "allowUsers = (%u);", (unsigned)U.alice_uid);
    struct h_opts o = { .extra_pools = extra_pool(extra, sizeof(extra), LOCKED, settings) };
    h_start(&o);
    open_socket_dir();
    struct agent bob;
    agent_start(&bob, U.bob, true);
    for (int i = 0; i < 20; i++)
        agent_refused(&bob, LOCKED, DBPOOL_E_NOT_ALLOWED, "bob");
    agent_use(&bob, H_POOL, "bob after his refusals");
    snprintf(uidkv, sizeof(uidkv), "uid=%u ", (unsigned)U.bob_uid);
    cr_expect_eq(log_lines_with("reason=not_allowed", uidkv, NULL), 1,
                 "20 refusals: not logged exactly once");
    agent_stop(&bob);
    h_stop_ok();
}

/* maxClientsPerPool: counted per pool after HELLO; other pools unaffected;
 * a slot frees on close. */
Test(access, max_clients_per_pool)
{
    char extra[600];

    need_dbdir();
    struct h_opts o = { .pool_settings = "maxClientsPerPool = 2;",
                        .extra_pools = extra_pool(extra, sizeof(extra), "other", "") };
    h_start(&o);
    cr_assert(H_AWAIT(clients_total() == 0, 5000), "the start-up check's session stayed");
    dbpool_conn *a = h_connect(), *b = h_connect();
    dbpool_error err;
    memset(&err, 0, sizeof(err));
    cr_assert_null(h_try_connect(H_POOL, &err), "a third session on a pool with maxClientsPerPool = 2");
    cr_expect_eq(err.code, DBPOOL_E_LIMIT, "%s: %s", dbpool_code_name(err.code), err.message);
    cr_expect_str_eq(err.sqlstate, "53300");
    cr_expect(strstr(err.message, "maxClientsPerPool"), "message: %s", err.message);
    dbpool_conn *other = h_try_connect("other", &err);
    cr_assert_not_null(other, "the other pool refused: %s", err.message);
    cr_assert_eq(h_scalar(other, "SELECT 1"), 1);
    dbpool_close(b);
    dbpool_conn *c = NULL;
    cr_assert(H_AWAIT((c = h_try_connect(H_POOL, &err)) != NULL, 5000),
              "the closed session's place in the pool was not freed: %s", err.message);
    cr_assert_eq(h_scalar(a, "SELECT 1") + h_scalar(c, "SELECT 1"), 2);
    dbpool_close(a);
    dbpool_close(c);
    dbpool_close(other);
    h_stop_ok();
}
