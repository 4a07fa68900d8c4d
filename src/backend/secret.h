/*
 * secret.h — reading a secret (a password) from a file, and wiping it.
 *
 * Shared by every driver that authenticates with a password: the
 * configuration loader reads a pool's passwordFile once, at load, through
 * secret_read_file, so nothing reads files on the event loop; the secret
 * lives in the pool's configuration until config_free wipes it with
 * secret_free.
 */
#ifndef DBPOOLD_SECRET_H
#define DBPOOLD_SECRET_H

#include <stddef.h>

enum { SECRET_MAX = 4096 };   /* bytes a secret file may hold (newline included) */

/* 0: *out is a malloc'ed NUL-terminated secret (trailing newline(s)
 * stripped, at most SECRET_MAX bytes); -1: *out is NULL and err says what
 * is wrong with the file (never its contents). Only regular files are
 * read, so a FIFO or a device named by mistake cannot block the caller. */
int secret_read_file(const char *path, char **out, char *err, size_t errlen);

/* explicit_bzero + free; NULL ok. */
void secret_free(char *s);

#endif
