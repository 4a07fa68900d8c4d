/*
 * test_backend_helpers.c — the helpers every driver shares (src/backend/):
 * reading a password file (secret.c), helper threads waking the event loop
 * (helper.c), and host-name resolution off the loop (resolve.c). A real
 * libevent loop and real threads; names that must not resolve end in
 * ".invalid" (RFC 6761), so no test depends on the network.
 */
#include <criterion/criterion.h>
#include <event2/event.h>
#include <event2/thread.h>

#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/helper.h"
#include "backend/resolve.h"
#include "backend/secret.h"

/* ------------------------------------------------------------- secret */

static char dir[] = "/tmp/dbpoold-secret-XXXXXX";

static void secret_setup(void)
{
    cr_assert_not_null(mkdtemp(dir));
}

static void secret_teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(secret, .init = secret_setup, .fini = secret_teardown);

/* Write n bytes of content into dir/name; returns the path (static). */
static const char *write_secret(const char *name, const char *content, size_t n)
{
    static char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(content, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
    return path;
}

Test(secret, trailing_newlines_are_dropped)
{
    char err[256] = "", *pw = NULL;
    const char *path = write_secret("pw", "s3 cr\net\r\n\n", 11);

    cr_assert_eq(secret_read_file(path, &pw, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(pw, "s3 cr\net");   /* inner newlines are the password's */
    secret_free(pw);
}

Test(secret, empty_file_is_an_error)
{
    char err[256] = "", *pw = (char *)1;
    const char *path = write_secret("empty", "\n", 1);

    cr_assert_eq(secret_read_file(path, &pw, err, sizeof(err)), -1);
    cr_assert_null(pw);
    cr_assert(strstr(err, path) && strstr(err, "is empty"), "%s", err);
    secret_free(NULL);   /* harmless */
}

Test(secret, size_bound)
{
    static char big[SECRET_MAX + 1];
    char err[256] = "", *pw = NULL;
    const char *path;

    memset(big, 'x', sizeof(big));
    path = write_secret("max", big, SECRET_MAX);
    cr_assert_eq(secret_read_file(path, &pw, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(strlen(pw), SECRET_MAX);
    secret_free(pw);

    path = write_secret("over", big, SECRET_MAX + 1);
    pw = (char *)1;
    cr_assert_eq(secret_read_file(path, &pw, err, sizeof(err)), -1);
    cr_assert_null(pw);
    cr_assert(strstr(err, path) && strstr(err, "larger than 4096 bytes"), "%s", err);
}

Test(secret, missing_file_names_the_file)
{
    char err[256] = "", *pw = (char *)1;

    cr_assert_eq(secret_read_file("/nonexistent-dbpoold/pw", &pw, err, sizeof(err)), -1);
    cr_assert_null(pw);
    cr_assert_str_eq(err, "cannot open /nonexistent-dbpoold/pw: No such file or directory");
}

/* ------------------------------------------------------------- helpers */

static struct event_base *base;

static void loop_setup(void)
{
    cr_assert_eq(evthread_use_pthreads(), 0);
    base = event_base_new();
    cr_assert_not_null(base);
}

static void loop_teardown(void)
{
    helper_quiesce(1000);
    event_base_free(base);
    libevent_global_shutdown();
}

TestSuite(helper, .init = loop_setup, .fini = loop_teardown, .timeout = 30);

struct job {
    struct helper_wake wake;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool go;                   /* the test lets the helper finish */
};

static atomic_int released;

static void job_release(struct helper_wake *w)
{
    struct job *j = (struct job *)w;
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j);
    atomic_fetch_add(&released, 1);
}

static void *job_main(void *arg)
{
    struct job *j = arg;

    pthread_mutex_lock(&j->mu);
    while (!j->go)
        pthread_cond_wait(&j->cv, &j->mu);
    pthread_mutex_unlock(&j->mu);
    helper_wake_done(&j->wake);
    helper_exit();
    return NULL;
}

static void job_go(struct job *j)
{
    pthread_mutex_lock(&j->mu);
    j->go = true;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

static struct job *job_start(struct event *ev)
{
    struct job *j = calloc(1, sizeof(*j));

    cr_assert_not_null(j);
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    cr_assert_eq(helper_wake_init(&j->wake, ev, job_release), 0);
    cr_assert_eq(helper_start(job_main, j), 0);
    return j;
}

static int woken;

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    woken++;
}

static void on_guard(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    *(bool *)arg = true;
}

/* Run the loop until woken or the guard (ms) passes. */
static void run_until_woken(int ms)
{
    bool over = false;
    struct event *g = evtimer_new(base, on_guard, &over);
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

    cr_assert_eq(evtimer_add(g, &tv), 0);
    while (!woken && !over)
        cr_assert_geq(event_base_loop(base, EVLOOP_ONCE), 0);
    event_free(g);
}

/* A helper waiting for job_go(), its owner's event in *ev; counters reset. */
static struct job *fresh_job(struct event **ev)
{
    *ev = event_new(base, -1, 0, on_wake, NULL);
    cr_assert_not_null(*ev);
    woken = 0;
    atomic_store(&released, 0);
    return job_start(*ev);
}

Test(helper, a_finished_helper_wakes_the_loop_once)
{
    struct event *ev;
    struct job *j = fresh_job(&ev);

    cr_assert(!helper_wake_finished(&j->wake));
    job_go(j);
    run_until_woken(10000);
    cr_assert_eq(woken, 1);
    cr_assert(helper_wake_finished(&j->wake));
    cr_assert_eq(atomic_load(&released), 0, "released while the owner holds it");
    helper_wake_abandon(&j->wake);
    event_free(ev);
    /* The helper may still be between its wake-up and dropping its
     * reference: once it has exited, the job is released exactly once. */
    helper_quiesce(10000);
    cr_assert_eq(atomic_load(&released), 1);
}

/* The owner leaves first: the helper finishes later without touching the
 * owner's event, which is freed at once; the job is released once. */
Test(helper, abandoned_helper_never_wakes_its_owner)
{
    struct event *ev;
    struct job *j = fresh_job(&ev);

    helper_wake_abandon(&j->wake);
    event_free(ev);
    job_go(j);
    helper_quiesce(10000);
    cr_assert_eq(atomic_load(&released), 1);
    cr_assert_eq(event_base_loop(base, EVLOOP_NONBLOCK), 1, "the loop had an event");
    cr_assert_eq(woken, 0);
}

/* A wake-up already posted when the owner leaves is withdrawn. */
Test(helper, abandon_withdraws_a_posted_wake_up)
{
    struct event *ev;
    struct job *j = fresh_job(&ev);

    job_go(j);
    helper_quiesce(10000);   /* done: the activation is posted, not yet run */
    helper_wake_abandon(&j->wake);
    cr_assert_eq(atomic_load(&released), 1);
    cr_assert_eq(event_base_loop(base, EVLOOP_NONBLOCK), 1, "the loop had an event");
    cr_assert_eq(woken, 0);
    event_free(ev);
}

/* ------------------------------------------------------------- resolve */

TestSuite(resolve, .init = loop_setup, .fini = loop_teardown, .timeout = 30);

Test(resolve, which_entries_are_names)
{
    cr_assert(!resolve_needed(""));
    cr_assert(!resolve_needed("/var/run/postgresql"));
    cr_assert(!resolve_needed("@abstract"));
    cr_assert(!resolve_needed("127.0.0.1,::1,/tmp,"));
    cr_assert(resolve_needed("db.example"));
    cr_assert(resolve_needed("/tmp,127.0.0.1,db.example"));
}

Test(resolve, names_resolve_off_the_loop_and_wake_it)
{
    struct event *ev = event_new(base, -1, 0, on_wake, NULL);
    struct resolve_job *job = NULL;
    const struct resolve_entry *e;
    char msg[256];

    woken = 0;
    cr_assert_eq(resolve_start("localhost,/tmp,nosuch.invalid", ev, &job), 0);
    run_until_woken(10000);
    cr_assert_eq(woken, 1);
    cr_assert(resolve_finished(job));
    cr_assert_eq(resolve_count(job), 3);
    e = resolve_entry(job, 0);
    cr_assert(e->lookup);
    cr_assert_eq(e->gai, 0, "%s", gai_strerror(e->gai));
    cr_assert(strcmp(e->addr, "127.0.0.1") == 0 || strcmp(e->addr, "::1") == 0, "%s", e->addr);
    e = resolve_entry(job, 1);
    cr_assert(!e->lookup);
    cr_assert_str_eq(e->name, "/tmp");
    e = resolve_entry(job, 2);
    cr_assert(e->lookup);
    cr_assert_neq(e->gai, 0);
    resolve_entry_error(e, msg, sizeof(msg));
    cr_assert(strncmp(msg, "cannot resolve host nosuch.invalid: ", 36) == 0, "%s", msg);
    resolve_abandon(job);
    event_free(ev);
}
