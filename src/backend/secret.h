/*
 * secret.h — reading a secret (a password file) for a driver's connections.
 *
 * The file is read whole, with a size bound (SECRET_FILE_MAX bytes), and
 * its trailing newlines (\n, \r) are dropped: "secret\n" is the password
 * "secret". Called where blocking is allowed (config load or reload), never
 * on the event loop. Every buffer that held the secret is cleared before it
 * is freed; the caller frees the result with secret_free().
 */
#ifndef DBPOOLD_BACKEND_SECRET_H
#define DBPOOLD_BACKEND_SECRET_H

#include <stddef.h>

#define SECRET_FILE_MAX 4096

/* 0 with *out a malloc'ed, NUL-terminated copy of the secret; -1 with *out
 * NULL and err saying which file could not be read, and why. */
int secret_read_file(const char *path, char **out, char *err, size_t errlen);
/* Clear (explicit_bzero) and free a secret; harmless on NULL. */
void secret_free(char *secret);

#endif
