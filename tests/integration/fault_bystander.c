/*
 * fault_bystander.c — the fault matrix's bystander (see fault_bystander.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "fault_bystander.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fault_tools.h"
#include "harness.h"
#include "common/proto.h"

struct bystander B;

static void by_note_bad(const char *what, const struct fc_res *r)
{
    char d[300];
    if (atomic_fetch_add(&B.bad, 1) == 0)
        snprintf(B.first_bad, sizeof(B.first_bad), "%s: %s", what, fc_describe(r, d, sizeof(d)));
}

/* An error (or the end of the session) the fault explains. */
static bool by_explained(const struct fc_res *r)
{
    if (r->kind == FC_ERROR && r->code < 32 && (B.allowed & (1u << r->code)))
        return true;
    return atomic_load(&B.shutting) && (r->kind == FC_EOF || fc_is(r, DBPOOL_E_SHUTDOWN));
}

/* One request of the bystander; false when its session is over. */
static bool by_step(bool *tx_open)
{
    struct fc_res r;

    if (B.in_tx && !*tx_open) {
        if (!fc_send_begin(B.fd))
            return false;
        fc_read(B.fd, B.answer_ms, &r);
        if (r.kind != FC_READY) {
            /* MariaDB's BEGIN takes a server connection: an outage shows here */
            if (r.kind == FC_TIMEOUT)
                atomic_fetch_add(&B.hangs, 1);
            if (r.kind == FC_TIMEOUT || !by_explained(&r))
                by_note_bad("BEGIN", &r);
            return r.kind == FC_ERROR && r.code != DBPOOL_E_SHUTDOWN;
        }
        *tx_open = true;
    }
    fc_query(B.fd, "SELECT 1", NULL, 0, B.answer_ms, &r);
    if (atomic_load(&B.stop))
        return false;
    if (r.kind == FC_READY) {
        atomic_fetch_add(&B.ok, 1);
        atomic_store(&B.last_ok_ms, h_now_ms());
        *tx_open = r.tx == 'T';
        return true;
    }
    if (r.kind == FC_TIMEOUT) {
        atomic_fetch_add(&B.hangs, 1);
        by_note_bad("SELECT 1", &r);
        return false;
    }
    if (!by_explained(&r))
        by_note_bad("SELECT 1", &r);
    if (r.kind != FC_ERROR || r.code == DBPOOL_E_SHUTDOWN)
        return false;
    *tx_open = r.tx == 'T';
    if (r.tx == 'E') {
        fc_send_empty(B.fd, PT_ROLLBACK);
        fc_read(B.fd, B.answer_ms, &r);
        *tx_open = false;
    }
    return true;
}

static void *by_main(void *arg)
{
    (void)arg;
    bool tx_open = B.tx_open0;
    while (!atomic_load(&B.stop) && by_step(&tx_open))
        h_sleep_ms(10);
    return NULL;
}

void by_start(int answer_ms, bool in_tx, unsigned allowed, bool want_sid)
{
    if (B.started)
        return;
    B.answer_ms = answer_ms;
    B.fd = fc_open(h_paths()->sock, B.answer_ms);
    cr_assert_geq(B.fd, 0, "the bystander could not connect: %s", strerror(errno));
    B.in_tx = in_tx;
    B.allowed = allowed;
    B.tx_open0 = false;
    B.sid = -1;
    if (in_tx && want_sid) {
        /* MariaDB shows a session idle in a transaction as idle ('Sleep'):
         * the id tells the bystander's apart (obs_kill_idle spares it). */
        struct fc_res r;
        char d[400];
        cr_assert(fc_send_begin(B.fd), "bystander BEGIN");
        fc_read(B.fd, B.answer_ms, &r);
        cr_assert(r.kind == FC_READY && r.tx == 'T', "bystander BEGIN: %s",
                  fc_describe(&r, d, sizeof(d)));
        fc_query(B.fd, fs_session_id_sql(), NULL, 0, B.answer_ms, &r);
        cr_assert(r.kind == FC_READY && r.have_int, "bystander session id: %s",
                  fc_describe(&r, d, sizeof(d)));
        B.tx_open0 = true;
        B.sid = (long)r.first_int;
    }
    atomic_init(&B.stop, false);
    atomic_init(&B.shutting, false);
    atomic_init(&B.ok, 0);
    atomic_init(&B.hangs, 0);
    atomic_init(&B.bad, 0);
    atomic_init(&B.last_ok_ms, 0);
    cr_assert_eq(pthread_create(&B.tid, NULL, by_main, NULL), 0);
    B.started = true;
    cr_assert(H_AWAIT(atomic_load(&B.ok) >= 1 || atomic_load(&B.bad) > 0, B.answer_ms + 1000),
              "the bystander's first request was not answered");
    cr_assert_eq(atomic_load(&B.bad), 0, "the bystander failed before the fault: %s",
                 B.first_bad);
}

/* Stop it (its session closes; an open transaction is rolled back). */
void by_stop(void)
{
    if (!B.started)
        return;
    atomic_store(&B.stop, true);
    shutdown(B.fd, SHUT_RDWR);
    pthread_join(B.tid, NULL);
    close(B.fd);
    B.started = false;
}
