/*
 * http.h — dbpoolctl's HTTP/1.1 client over the status socket (http.c):
 * one request per connection (Connection: close), answer read whole.
 * No library beyond libc: the daemon's answers are small and plain.
 */
#ifndef DBPOOLCTL_HTTP_H
#define DBPOOLCTL_HTTP_H

#include <stddef.h>

struct http_reply {
    int status;                 /* 200, 404, ... */
    char *body;                 /* NUL-terminated (owned) */
    size_t len;
};

/* Send METHOD path to the Unix socket at socket_path and read the answer
 * within timeout_ms. 0 on success; -1 when the daemon cannot be reached or
 * answers garbage, with a message saying what to check in err. */
int http_request(const char *socket_path, const char *method, const char *path, int timeout_ms,
                 struct http_reply *out, char *err, size_t errlen);
void http_reply_free(struct http_reply *r);

#endif
