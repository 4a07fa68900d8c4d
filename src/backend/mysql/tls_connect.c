/*
 * tls_connect.c — a MySQL connection with TLS is set up on a helper thread
 * (src/backend/helper.h), not on the loop.
 *
 * WHY
 *
 * Connector/C 3.3 puts the socket in blocking mode right after connect()
 * and relies on MSG_DONTWAIT for its own reads; OpenSSL's reads do not use
 * it, so the whole TLS handshake (and the authentication after it) would
 * run as blocking reads inside mysql_real_connect_start(), freezing the
 * loop for as long as the server takes to answer (measured with strace
 * against MariaDB 10.11: no EAGAIN, no return to the loop between the
 * greeting and the end of the authentication). It also reads the CA bundle
 * file for every connection. Both belong off the loop.
 *
 * HOW
 *
 * The helper gets its own copies of the settings (the password is wiped
 * before it is freed) and a MYSQL handle with every option set, runs the
 * blocking mysql_real_connect() (bounded by MYSQL_OPT_CONNECT_TIMEOUT), and
 * wakes the loop through c->ev_tls. The loop takes the handle, puts the
 * socket back in non-blocking mode (Connector/C leaves it blocking after
 * TLS, and its non-blocking calls would then block in SSL_read) and goes on
 * as after a non-blocking connect. When the connect ends otherwise
 * (timeout, close) the connection abandons the job; the helper then closes
 * the handle itself, after shutting the socket down so that nothing waits.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <mysql.h>

#include "backend/helper.h"
#include "backend/mysql/mysql_internal.h"

struct tls_job {
    struct helper_wake wake;   /* first: job_release casts back */
    MYSQL *m;                  /* the helper's until the loop takes it */
    char *mem;                 /* the strings below, one allocation */
    size_t mem_len;
    const char *host, *user, *password, *db, *socket;
    unsigned port;
    bool ok;
};

static void job_release(struct helper_wake *w)
{
    struct tls_job *j = (struct tls_job *)(void *)w;

    if (j->m) {   /* nobody took it: fail whatever the library does next at once */
        int fd = (int)mysql_get_socket(j->m);
        if (fd >= 0)
            (void)shutdown(fd, SHUT_RDWR);
        mysql_close(j->m);
    }
    if (j->mem) {
        explicit_bzero(j->mem, j->mem_len);   /* the password is in there */
        free(j->mem);
    }
    free(j);
}

static void *tls_main(void *arg)
{
    struct tls_job *j = arg;

    j->ok = mysql_real_connect(j->m, j->host, j->user, j->password, j->db, j->port,
                               j->socket, 0) != NULL;   /* the error stays on j->m */
    helper_wake_done(&j->wake);
    helper_exit();
    return NULL;
}

/* Copy the strings the helper needs into one allocation. */
static bool copy_strings(struct tls_job *j, const char *const src[5])
{
    const char **dst[5] = { &j->host, &j->user, &j->password, &j->db, &j->socket };
    size_t len[5], total = 0, off = 0;

    for (int i = 0; i < 5; i++)
        total += (len[i] = src[i] ? strlen(src[i]) + 1 : 0);
    if (!(j->mem = malloc(total ? total : 1)))
        return false;
    j->mem_len = total;
    for (int i = 0; i < 5; i++) {
        *dst[i] = src[i] ? memcpy(j->mem + off, src[i], len[i]) : NULL;
        off += len[i];
    }
    return true;
}

static void job_fail_start(struct tls_job *j)
{
    helper_wake_unref(&j->wake);     /* the helper's, which never ran */
    helper_wake_abandon(&j->wake);   /* ours: frees j (and closes j->m) */
}

int my_tls_connect_start(struct mysql_conn *c, event_callback_fn done, const char *host,
                         const char *user, const char *password, const char *db, unsigned port,
                         const char *socket_path)
{
    const char *const strs[5] = { host, user, password, db, socket_path };
    struct tls_job *j;
    int rc;

    if (!c->ev_tls && !(c->ev_tls = event_new(c->base, -1, 0, done, c)))
        return ENOMEM;
    if (!(j = calloc(1, sizeof(*j))))
        return ENOMEM;
    if (!copy_strings(j, strs) || (rc = helper_wake_init(&j->wake, c->ev_tls, job_release)) != 0) {
        free(j->mem);
        free(j);
        return ENOMEM;
    }
    j->port = port;
    j->m = c->m;   /* the helper's now */
    c->m = NULL;
    if ((rc = helper_start(tls_main, j)) != 0) {
        c->m = j->m;
        j->m = NULL;
        job_fail_start(j);
        return rc;
    }
    c->tls = &j->wake;
    return 0;
}

/* On the loop: the helper is done; the handle is the connection's again.
 * 1: connected; 0: the connect failed (the error is on c->m); -1: the
 * socket cannot be made non-blocking (errno). */
int my_tls_connect_finish(struct mysql_conn *c)
{
    struct tls_job *j = (struct tls_job *)(void *)c->tls;
    bool ok = j->ok;
    int fd, fl;

    c->m = j->m;
    j->m = NULL;
    my_tls_forget(c);
    if (!ok)
        return 0;
    fd = (int)mysql_get_socket(c->m);
    fl = fd >= 0 ? fcntl(fd, F_GETFL) : -1;
    if (fl < 0 || ((fl & O_NONBLOCK) == 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0))
        return -1;
    return 1;
}

bool my_tls_finished(struct mysql_conn *c)
{
    return c->tls && helper_wake_finished(c->tls);
}
