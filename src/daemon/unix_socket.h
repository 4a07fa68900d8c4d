/*
 * unix_socket.h — binding a listening Unix socket file (unix_socket.c).
 */
#ifndef DBPOOLD_UNIX_SOCKET_H
#define DBPOOLD_UNIX_SOCKET_H

#include <stddef.h>

/* Create, bind and listen (with backlog; the kernel caps it at
 * net.core.somaxconn) on a Unix stream socket at path with permission
 * bits mode. A stale socket file (nobody listening) is replaced; a live one
 * or a non-socket file at path is an error. Returns the fd (non-blocking,
 * close-on-exec) or -1 with a message telling the user what to do. */
int unix_socket_listen(const char *path, unsigned mode, int backlog, char *errbuf, size_t errlen);

#endif
