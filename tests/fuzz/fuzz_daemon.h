/*
 * fuzz_daemon.h — a real dbpoold daemon inside a fuzz target process, for
 * the targets that drive the event loop (fuzz_session, fuzz_status).
 *
 * fuzz_daemon_get() builds the daemon once per process from a config file it
 * writes into a fresh temporary directory (client socket, status socket and
 * a SQLite pool "app" whose database lives there too), starts the pool and
 * waits until its writer connection is open. The daemon, its pool and the
 * SQLite database persist across inputs so one input costs a session, not
 * a daemon start-up; fuzz_daemon_recycle() replaces everything when the
 * database has grown too large. At exit the daemon is freed and the
 * directory removed.
 *
 * fuzz_loop_until() runs the daemon's event loop (the target's own socket
 * events included) until a condition holds or a deadline passes.
 */
#ifndef DBPOOLD_FUZZ_DAEMON_H
#define DBPOOLD_FUZZ_DAEMON_H

#include <stdbool.h>

#include "fuzz_util.h"

struct daemon;

/* The daemon of this process (built on first use; aborts with a message
 * when it cannot be built). */
struct daemon *fuzz_daemon_get(void);
/* Path of the status socket. */
const char *fuzz_daemon_status_path(void);
/* Every `every` calls, check the database size; past the bound, free the
 * daemon and build a fresh one on an empty database. */
void fuzz_daemon_recycle(unsigned every);

/* Runs the loop until done(arg) is true (true) or ms milliseconds passed
 * (false). done is checked before each loop pass. */
bool fuzz_loop_until(bool (*done)(void *arg), void *arg, unsigned ms);

#endif
