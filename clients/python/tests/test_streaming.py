"""test_streaming.py — results stream (100k rows read in bounded client
memory), cancel() from another thread, the request timeout (cancel and
grace: the session stays usable; a hung daemon: the session is closed in
bounded time), the connect timeout, and the daemon going away (shutdown,
killed in the middle of a result)."""
import os
import subprocess
import sys
import threading
import time
import tracemalloc
import unittest

import dbpool
from daemon import Backends, Daemon, serve_module, await_condition, backend_variants

daemon = None
ROWS = 100000
SIGPIPE_CHILD = """
import signal, sys, dbpool
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
conn = dbpool.connect(pool="app", socket=sys.argv[1], autocommit=True)
print("connected", flush=True)
sys.stdin.readline()
try:
    for _ in range(3):
        conn.cursor().execute("SELECT ?", ("x" * (4 << 20),))
except dbpool.Error as e:
    print(type(e).__name__, e)
"""


serve_module(globals())


class Streaming(Backends, unittest.TestCase):
    def setUp(self):
        self.conn = self.connect(autocommit=True)
        self.cur = self.conn.cursor()

    def tearDown(self):
        self.conn.close()

    def big_query(self, n=ROWS):
        if self.pg:
            return "SELECT i, lpad(i::text, 100, '0') FROM generate_series(1, %d) i" % n
        if self.my:     # recursive CTEs stop at 1000 levels there: five tables of digits
            digits = ("(SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 "
                      "UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL "
                      "SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9)")
            num = "a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 10000 * f.d + 1"
            return ("SELECT %s AS i, LPAD(%s, 100, '0') FROM %s a, %s b, %s c, %s e, %s f "
                    "WHERE %s <= %d" % (num, num, digits, digits, digits, digits, digits, num, n))
        return ("WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < %d) "
                "SELECT i, printf('%%0100d', i) FROM c" % n)

    def endless_query(self):
        if self.pg:
            return "SELECT pg_sleep(60)"
        if self.my:
            return "SELECT SLEEP(60)"
        return ("WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c) "
                "SELECT count(*) FROM c")

    def test_100k_rows_in_bounded_memory(self):
        tracemalloc.start()
        try:
            self.cur.execute(self.big_query())
            n = total = 0
            for i, s in self.cur:
                n += 1
                total += i
                self.assertEqual(len(s), 100)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        self.assertEqual(n, ROWS)
        self.assertEqual(total, ROWS * (ROWS + 1) // 2)
        self.assertEqual(self.cur.rowcount, ROWS)
        # the whole result is over 13 MB as Python tuples; streaming holds a few frames
        self.assertLess(peak, 2 << 20, "client memory grew with the result: %d bytes" % peak)

    def test_cancel_from_another_thread(self):
        t = threading.Thread(target=lambda: await_condition(self.conn.cancel, "a running request"))
        t.start()
        start = time.monotonic()
        with self.assertRaises(dbpool.OperationalError) as cm:
            self.cur.execute(self.endless_query()).fetchall()
        t.join()
        self.assertEqual((cm.exception.code, cm.exception.sqlstate), (dbpool.CANCELED, "57014"))
        self.assertLess(time.monotonic() - start, 10)
        self.assertFalse(self.conn.cancel())            # nothing runs: nothing sent
        self.assertEqual(self.cur.execute("SELECT 1").fetchone(), (1,))

    def test_request_timeout_cancels_and_keeps_session(self):
        self.conn.timeout = 0.3
        start = time.monotonic()
        with self.assertRaises(dbpool.OperationalError) as cm:
            self.cur.execute(self.endless_query()).fetchall()
        elapsed = time.monotonic() - start
        e = cm.exception
        self.assertEqual((e.code, e.sqlstate), (dbpool.TIMEOUT, "57014"))
        self.assertIn("still usable", str(e))
        self.assertLess(elapsed, 0.3 + 1.0 + 0.5)
        self.assertEqual(self.cur.execute("SELECT 2").fetchone(), (2,))

    def test_nested_cursor_reads_the_rest_into_memory(self):
        self.cur.execute(self.big_query(1000))
        self.assertEqual(self.cur.fetchone()[0], 1)
        other = self.conn.cursor()
        self.assertEqual(other.execute("SELECT 5").fetchone(), (5,))
        self.assertEqual(len(self.cur.fetchall()), 999)


backend_variants(Streaming, globals())


class DaemonGoesAway(unittest.TestCase):
    """Each test runs its own daemon, which it stops, freezes or kills."""

    def setUp(self):
        self.d = Daemon()

    def tearDown(self):
        self.d.stop()

    def test_hung_daemon_request_timeout_closes_session(self):
        conn = self.d.connect(autocommit=True, timeout=0.3)
        self.d.freeze()
        start = time.monotonic()
        with self.assertRaises(dbpool.OperationalError) as cm:
            conn.cursor().execute("SELECT 1")
        elapsed = time.monotonic() - start
        self.d.thaw()
        self.assertEqual(cm.exception.code, dbpool.TIMEOUT)
        self.assertIn("session was closed", str(cm.exception))
        self.assertLess(elapsed, 0.3 + 0.3 + 0.5)
        self.assertTrue(conn.closed)
        with self.assertRaises(dbpool.OperationalError) as cm:
            conn.cursor()
        self.assertEqual(cm.exception.code, dbpool.IO)
        fresh = self.d.connect(autocommit=True)
        self.assertEqual(fresh.cursor().execute("SELECT 3").fetchone(), (3,))
        fresh.close()

    def test_hung_daemon_mid_stream(self):
        conn = self.d.connect(autocommit=True, timeout=0.3)
        cur = conn.cursor()
        cur.execute("WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c "
                    "WHERE i < 1000000) SELECT i, printf('%0100d', i) FROM c")
        self.assertEqual(cur.fetchone()[0], 1)
        self.d.freeze()
        start = time.monotonic()
        with self.assertRaises(dbpool.OperationalError) as cm:
            while cur.fetchone() is not None:    # buffered rows first, then the wait
                pass
        elapsed = time.monotonic() - start
        self.d.thaw()
        self.assertEqual(cm.exception.code, dbpool.TIMEOUT)
        self.assertLess(elapsed, 0.3 + 0.3 + 1.0)
        self.assertTrue(conn.closed)

    def test_hung_daemon_connect_timeout(self):
        self.d.freeze()
        start = time.monotonic()
        with self.assertRaises(dbpool.OperationalError) as cm:
            self.d.connect(connect_timeout=0.3)
        self.d.thaw()
        self.assertEqual(cm.exception.code, dbpool.TIMEOUT)
        self.assertIn("handshake", str(cm.exception))
        self.assertLess(time.monotonic() - start, 1.5)

    def test_shutdown_while_idle(self):
        conn = self.d.connect(autocommit=True)
        self.d.proc.terminate()
        self.d.proc.wait(timeout=15)
        with self.assertRaises(dbpool.OperationalError) as cm:
            conn.cursor().execute("SELECT 1")
        self.assertIn(cm.exception.code, (dbpool.SHUTDOWN, dbpool.IO))
        self.assertTrue(conn.closed)

    def test_daemon_gone_with_default_sigpipe(self):
        # A program that restores SIGPIPE's default must get an error, not die.
        child = subprocess.Popen(
            [sys.executable, "-c", SIGPIPE_CHILD, self.d.socket], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
        self.assertEqual(child.stdout.readline().strip(), "connected")
        self.d.kill()
        out, err = child.communicate("go\n", timeout=30)
        self.assertEqual(child.returncode, 0, "child died: %s\n%s" % (child.returncode, err))
        self.assertIn("OperationalError", out)

    def test_daemon_killed_mid_stream(self):
        conn = self.d.connect(autocommit=True)
        cur = conn.cursor()
        cur.execute("WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c "
                    "WHERE i < 1000000) SELECT i, printf('%0100d', i) FROM c")
        self.assertEqual(cur.fetchone()[0], 1)
        self.d.kill()
        start = time.monotonic()
        with self.assertRaises(dbpool.OperationalError) as cm:
            while cur.fetchone() is not None:
                pass
        self.assertEqual(cm.exception.code, dbpool.IO)
        self.assertIn("reconnect", str(cm.exception))
        self.assertLess(time.monotonic() - start, 5)
        self.assertTrue(conn.closed)


if __name__ == "__main__":
    unittest.main()
