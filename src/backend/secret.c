/*
 * secret.c — reads a password file into memory and wipes secrets before
 * freeing them (contract: secret.h). The file is read whole (at most
 * SECRET_MAX + 1 bytes, to tell "too large" from "exactly full"); the
 * buffer is wiped on every path that does not hand it to the caller.
 */
#define _DEFAULT_SOURCE   /* explicit_bzero */
#include "backend/secret.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void secret_free(char *s)
{
    if (!s)
        return;
    explicit_bzero(s, strlen(s));
    free(s);
}

static void wipe_buffer(char *buf, size_t size)
{
    explicit_bzero(buf, size);
    free(buf);
}

/* Reads up to size bytes; the count, or -1 with errno set. */
static ssize_t read_upto(int fd, char *buf, size_t size)
{
    size_t n = 0;

    while (n < size) {
        ssize_t r = read(fd, buf + n, size - n);

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

/* Opens path for reading if it is a regular file; -1 with err filled. */
static int open_regular(const char *path, char *err, size_t errlen)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s is not a regular file", path);
        close(fd);
        return -1;
    }
    return fd;
}

/* Checks the n bytes read and makes them a string; false with err filled. */
static bool finish_secret(const char *path, char *buf, size_t n, char *err, size_t errlen)
{
    if (n > SECRET_MAX) {
        snprintf(err, errlen, "%s is larger than %d bytes (it must hold just the password)",
                 path, SECRET_MAX);
        return false;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    if (n == 0) {
        snprintf(err, errlen, "%s is empty (write the password into it)", path);
        return false;
    }
    if (memchr(buf, '\0', n)) {
        snprintf(err, errlen, "%s contains a NUL byte (it must hold just the password, as text)",
                 path);
        return false;
    }
    buf[n] = '\0';
    return true;
}

int secret_read_file(const char *path, char **out, char *err, size_t errlen)
{
    char *buf;
    ssize_t n;
    int fd, e;

    *out = NULL;
    fd = open_regular(path, err, errlen);
    if (fd < 0)
        return -1;
    buf = malloc(SECRET_MAX + 2);
    if (!buf) {
        snprintf(err, errlen, "cannot read %s: out of memory", path);
        close(fd);
        return -1;
    }
    n = read_upto(fd, buf, SECRET_MAX + 1);
    e = errno;
    close(fd);
    if (n < 0)
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(e));
    if (n < 0 || !finish_secret(path, buf, (size_t)n, err, errlen)) {
        wipe_buffer(buf, SECRET_MAX + 2);
        return -1;
    }
    *out = buf;
    return 0;
}
