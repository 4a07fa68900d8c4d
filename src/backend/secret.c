/*
 * secret.c — reading a password file with a size bound, clearing every
 * buffer that held it; see secret.h.
 */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE   /* explicit_bzero */
#endif
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L   /* O_CLOEXEC */
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/secret.h"

static int read_failed(const char *path, int e, char *err, size_t errlen)
{
    if (e == EFBIG)
        snprintf(err, errlen, "cannot read passwordFile %s: it is larger than %d bytes; "
                 "put only the password in it", path, SECRET_FILE_MAX);
    else
        snprintf(err, errlen, "cannot read passwordFile %s: %s", path, strerror(e));
    return -1;
}

/* Up to max bytes of fd into buf; the count, or -1 with errno. No stdio:
 * its buffer would keep a copy of the secret that nobody clears. */
static ssize_t read_all(int fd, char *buf, size_t max)
{
    size_t n = 0;

    while (n < max) {
        ssize_t r = read(fd, buf + n, max - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        n += (size_t)r;
    }
    return (ssize_t)n;
}

int secret_read_file(const char *path, char **out, char *err, size_t errlen)
{
    char *buf = malloc(SECRET_FILE_MAX + 1);
    ssize_t got;
    size_t n;
    int fd, e = 0;

    *out = NULL;
    fd = buf ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0) {
        e = buf ? errno : ENOMEM;
        free(buf);
        return read_failed(path, e, err, errlen);
    }
    got = read_all(fd, buf, SECRET_FILE_MAX + 1);
    if (got < 0)
        e = errno ? errno : EIO;
    else if ((size_t)got > SECRET_FILE_MAX)
        e = EFBIG;
    (void)close(fd);   /* read-only: nothing to lose */
    if (e) {
        explicit_bzero(buf, SECRET_FILE_MAX + 1);
        free(buf);
        return read_failed(path, e, err, errlen);
    }
    n = (size_t)got;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    explicit_bzero(buf + n, SECRET_FILE_MAX + 1 - n);   /* the dropped newlines */
    *out = buf;
    return 0;
}

void secret_free(char *secret)
{
    if (secret) {
        explicit_bzero(secret, strlen(secret));
        free(secret);
    }
}
