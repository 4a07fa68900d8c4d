"""test_dbapi.py — every PEP 249 method and attribute against a real
dbpoold: module globals, connect() and its defaults, cursors (execute,
fetchone/fetchmany/fetchall, iteration, description, rowcount, lastrowid,
arraysize, close, the context managers), on SQLite and, with the harness up,
on PostgreSQL."""
import os
import unittest

import dbpool
from daemon import Backends, serve_module, backend_variants

daemon = None


serve_module(globals())


class ModuleGlobals(unittest.TestCase):
    def test_globals(self):
        self.assertEqual(dbpool.apilevel, "2.0")
        self.assertEqual(dbpool.threadsafety, 1)
        self.assertEqual(dbpool.paramstyle, "qmark")

    def test_exception_hierarchy(self):
        self.assertTrue(issubclass(dbpool.Warning, Exception))
        self.assertTrue(issubclass(dbpool.Error, Exception))
        self.assertTrue(issubclass(dbpool.InterfaceError, dbpool.Error))
        self.assertTrue(issubclass(dbpool.DatabaseError, dbpool.Error))
        for name in ("DataError", "OperationalError", "IntegrityError", "InternalError",
                     "ProgrammingError", "NotSupportedError"):
            self.assertTrue(issubclass(getattr(dbpool, name), dbpool.DatabaseError), name)
            self.assertIs(getattr(dbpool.Connection, name), getattr(dbpool, name))

    def test_socket_from_environment(self):
        old = os.environ.get("DBPOOL_SOCKET")
        os.environ["DBPOOL_SOCKET"] = daemon.socket
        try:
            conn = dbpool.connect(pool="app", autocommit=True)
            self.assertEqual(conn.backend, "sqlite")
            self.assertTrue(conn.server_version)
            conn.close()
        finally:
            if old is None:
                del os.environ["DBPOOL_SOCKET"]
            else:
                os.environ["DBPOOL_SOCKET"] = old

    def test_no_daemon_says_what_to_do(self):
        with self.assertRaises(dbpool.OperationalError) as cm:
            dbpool.connect(pool="app", socket=daemon.dir + "/nothing.sock")
        self.assertEqual(cm.exception.code, dbpool.IO)
        self.assertIn("is dbpoold running", str(cm.exception))

    def test_unknown_pool(self):
        with self.assertRaises(dbpool.OperationalError) as cm:
            daemon.connect("nosuchpool")
        self.assertEqual(cm.exception.code, dbpool.UNKNOWN_POOL)

    def test_bad_timeout_variable(self):
        os.environ["DBPOOL_TIMEOUT"] = "10"
        try:
            with self.assertRaises(dbpool.ProgrammingError) as cm:
                daemon.connect()
            self.assertIn("DBPOOL_TIMEOUT", str(cm.exception))
        finally:
            del os.environ["DBPOOL_TIMEOUT"]
        os.environ["DBPOOL_TIMEOUT"] = "1m30s"
        try:
            conn = daemon.connect()
            self.assertEqual(conn.timeout, 90)
            conn.close()
        finally:
            del os.environ["DBPOOL_TIMEOUT"]


class Cursors(Backends, unittest.TestCase):
    def setUp(self):
        self.conn = self.connect()
        self.cur = self.conn.cursor()

    def tearDown(self):
        self.conn.close()

    def fill(self, name, n):
        self.table(name, "id integer primary key, v text")
        self.cur.executemany("INSERT INTO %s (id, v) VALUES (?, ?)" % name,
                             [(i, "v%d" % i) for i in range(1, n + 1)])
        self.conn.commit()

    def test_execute_returns_cursor_and_description(self):
        self.assertIsNone(self.cur.description)
        r = self.cur.execute("SELECT 1 AS one, 'x' AS two")
        self.assertIs(r, self.cur)
        self.assertEqual([d[0] for d in self.cur.description], ["one", "two"])
        self.assertEqual(len(self.cur.description[0]), 7)
        self.assertEqual(self.cur.fetchall(), [(1, "x")])

    def test_declared_types_in_description(self):
        self.table("py_decl", "i integer, t text, r real, b %s"
                   % ("bytea" if self.pg else "blob"))
        self.cur.execute("SELECT i, t, r, b FROM py_decl")
        codes = [d.type_code for d in self.cur.description]
        self.assertEqual(codes[0], dbpool.NUMBER)
        self.assertEqual(codes[1], dbpool.STRING)
        self.assertEqual(codes[2], dbpool.NUMBER)
        self.assertEqual(codes[3], dbpool.BINARY)
        self.assertNotEqual(codes[1], dbpool.NUMBER)

    def test_fetchone_fetchmany_fetchall(self):
        self.fill("py_fetch", 10)
        self.cur.execute("SELECT id FROM py_fetch ORDER BY id")
        self.assertEqual(self.cur.fetchone(), (1,))
        self.assertEqual(self.cur.arraysize, 1)
        self.assertEqual(self.cur.fetchmany(), [(2,)])
        self.cur.arraysize = 3
        self.assertEqual(self.cur.fetchmany(), [(3,), (4,), (5,)])
        self.assertEqual(self.cur.fetchmany(2), [(6,), (7,)])
        self.assertEqual(self.cur.rowcount, -1)        # not known until the end
        self.assertEqual(self.cur.fetchall(), [(8,), (9,), (10,)])
        self.assertEqual(self.cur.rowcount, 10)
        self.assertIsNone(self.cur.fetchone())
        self.assertEqual(self.cur.fetchmany(5), [])
        self.assertEqual(self.cur.fetchall(), [])
        self.assertEqual(self.cur.rownumber, 10)

    def test_iteration(self):
        self.fill("py_iter", 5)
        self.cur.execute("SELECT id, v FROM py_iter ORDER BY id")
        self.assertEqual([r for r in self.cur], [(i, "v%d" % i) for i in range(1, 6)])

    def test_rowcount_and_lastrowid(self):
        self.fill("py_rc", 4)
        self.cur.execute("UPDATE py_rc SET v = 'x' WHERE id <= ?", (3,))
        self.assertEqual(self.cur.rowcount, 3)
        self.assertIsNone(self.cur.description)
        self.cur.execute("DELETE FROM py_rc WHERE id = ?", (99,))
        self.assertEqual(self.cur.rowcount, 0)
        self.cur.execute("INSERT INTO py_rc (id, v) VALUES (?, ?)", (42, "a"))
        self.assertEqual(self.cur.rowcount, 1)
        if self.sqlite:
            self.assertEqual(self.cur.lastrowid, 42)     # the rowid
        else:                                           # no AUTO_INCREMENT column
            self.assertIsNone(self.cur.lastrowid)

    def test_fetch_without_result_is_an_error(self):
        with self.assertRaises(dbpool.ProgrammingError):
            self.cur.fetchone()
        self.fill("py_nores", 1)
        self.cur.execute("UPDATE py_nores SET v = 'y'")
        with self.assertRaises(dbpool.ProgrammingError):
            self.cur.fetchall()

    def test_no_ops_and_optional_methods(self):
        self.cur.setinputsizes([None])
        self.cur.setoutputsize(10)
        self.cur.execute("SELECT 1")
        self.assertIsNone(self.cur.nextset())
        with self.assertRaises(dbpool.NotSupportedError):
            self.cur.callproc("p")

    def test_cursor_close_and_context_manager(self):
        self.fill("py_close", 100)
        with self.conn.cursor() as c:
            c.execute("SELECT id FROM py_close")
            self.assertEqual(c.fetchone(), (1,))
        self.assertTrue(c.closed)
        with self.assertRaises(dbpool.InterfaceError):
            c.execute("SELECT 1")
        # the unread rows were dropped: the session is in step
        self.assertEqual(self.cur.execute("SELECT 7").fetchall(), [(7,)])

    def test_nested_cursors(self):
        self.fill("py_nest", 20)
        outer = self.conn.cursor()
        outer.execute("SELECT id FROM py_nest ORDER BY id")
        got = []
        for (i,) in outer:
            self.cur.execute("SELECT v FROM py_nest WHERE id = ?", (i,))
            got.append(self.cur.fetchone()[0])
        self.assertEqual(got, ["v%d" % i for i in range(1, 21)])

    def test_re_execute_drops_unread_rows(self):
        self.fill("py_reex", 50)
        self.cur.execute("SELECT id FROM py_reex")
        self.cur.fetchone()
        self.assertEqual(self.cur.execute("SELECT count(*) FROM py_reex").fetchone(), (50,))

    def test_closed_connection(self):
        self.conn.close()
        self.assertTrue(self.conn.closed)
        with self.assertRaises(dbpool.InterfaceError):
            self.conn.cursor()
        with self.assertRaises(dbpool.InterfaceError):
            self.cur.execute("SELECT 1")
        self.conn.close()                               # twice is fine

    def test_parameters_must_be_a_sequence(self):
        with self.assertRaises(dbpool.ProgrammingError):
            self.cur.execute("SELECT ?", "ab")
        with self.assertRaises(dbpool.ProgrammingError):
            self.cur.execute("SELECT ?", {"a": 1})
        self.assertEqual(self.cur.execute("SELECT ?", [5]).fetchone(), (5,))

    def test_connection_execute_shortcut(self):
        cur = self.conn.execute("SELECT ? * 2", (21,))
        self.assertIsInstance(cur, dbpool.Cursor)
        self.assertEqual(cur.fetchall(), [(42,)])

    def test_ping(self):
        self.conn.ping()
        self.assertEqual(self.conn.txstate, "I")


backend_variants(Cursors, globals())

if __name__ == "__main__":
    unittest.main()
