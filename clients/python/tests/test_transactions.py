"""test_transactions.py — PEP 249 transactions through dbpoold: the implicit
BEGIN, commit/rollback seen from another session, autocommit, read_only,
`with conn:` (commit on success, rollback on an exception), the errors
with their SQLSTATE and vendor code, pin()/unpin(), and executemany as
BATCH frames split at the daemon's maxBatchStatements."""
import unittest

import dbpool
from daemon import Backends, serve_module, backend_variants

daemon = None


serve_module(globals(), daemon_settings="maxBatchStatements = 10;")


class Transactions(Backends, unittest.TestCase):
    def setUp(self):
        self.t = self.table("py_tx_" + self._testMethodName[5:20],
                            "id integer primary key, v text")
        self.conn = self.connect()
        self.cur = self.conn.cursor()
        self.other = self.connect(autocommit=True)

    def tearDown(self):
        self.conn.close()
        self.other.close()

    def count(self):
        return self.other.cursor().execute("SELECT count(*) FROM %s" % self.t).fetchone()[0]

    def test_implicit_transaction_and_commit(self):
        self.assertFalse(self.conn.autocommit)
        self.cur.execute("INSERT INTO %s VALUES (?, ?)" % self.t, (1, "a"))
        self.assertEqual(self.conn.txstate, "T")
        self.assertEqual(self.count(), 0)               # not visible before commit
        self.conn.commit()
        self.assertEqual(self.conn.txstate, "I")
        self.assertEqual(self.count(), 1)
        self.conn.commit()                              # nothing open: no-op

    def test_rollback(self):
        self.cur.execute("INSERT INTO %s VALUES (?, ?)" % self.t, (1, "a"))
        self.conn.rollback()
        self.assertEqual(self.conn.txstate, "I")
        self.assertEqual(self.count(), 0)
        self.conn.rollback()

    def test_autocommit(self):
        self.conn.autocommit = True
        self.cur.execute("INSERT INTO %s VALUES (?, ?)" % self.t, (1, "a"))
        self.assertEqual(self.conn.txstate, "I")
        self.assertEqual(self.count(), 1)
        self.conn.autocommit = False
        self.cur.execute("INSERT INTO %s VALUES (?, ?)" % self.t, (2, "b"))
        with self.assertRaises(dbpool.ProgrammingError):
            self.conn.autocommit = True
        self.conn.rollback()

    def test_context_manager(self):
        with self.conn:
            self.cur.execute("INSERT INTO %s VALUES (?, ?)" % self.t, (1, "a"))
        self.assertEqual(self.count(), 1)
        with self.assertRaises(ZeroDivisionError):
            with self.conn:
                self.cur.execute("INSERT INTO %s VALUES (?, ?)" % self.t, (2, "b"))
                1 / 0
        self.assertEqual(self.conn.txstate, "I")
        self.assertEqual(self.count(), 1)
        self.assertFalse(self.conn.closed)              # `with` does not close

    def test_explicit_transaction_block(self):
        self.conn.autocommit = True
        with self.conn.transaction():
            self.cur.execute("INSERT INTO %s VALUES (?, ?)" % self.t, (1, "a"))
            self.assertEqual(self.conn.txstate, "T")
            self.assertEqual(self.count(), 0)
        self.assertEqual(self.conn.txstate, "I")
        self.assertEqual(self.count(), 1)
        with self.assertRaises(KeyError):
            with self.conn.transaction():
                self.cur.execute("INSERT INTO %s VALUES (?, ?)" % self.t, (2, "b"))
                raise KeyError("x")
        self.assertEqual((self.conn.txstate, self.count()), ("I", 1))

    def test_nested_transaction_blocks_are_savepoints(self):
        self.conn.autocommit = True
        with self.conn.transaction():
            self.cur.execute("INSERT INTO %s VALUES (?, ?)" % self.t, (1, "outer"))
            with self.assertRaises(dbpool.IntegrityError):
                with self.conn.transaction():
                    self.cur.execute("INSERT INTO %s VALUES (?, ?)" % self.t, (2, "inner"))
                    self.cur.execute("INSERT INTO %s VALUES (?, ?)" % self.t, (1, "dup"))
            self.assertEqual(self.conn.txstate, "T")    # the outer one goes on, even on PG
            self.cur.execute("INSERT INTO %s VALUES (?, ?)" % self.t, (3, "outer"))
        rows = self.other.cursor().execute("SELECT id FROM %s ORDER BY id" % self.t).fetchall()
        self.assertEqual(rows, [(1,), (3,)])

    def test_read_only_transaction_block(self):
        self.conn.autocommit = True
        with self.assertRaises(dbpool.DatabaseError):
            with self.conn.transaction(read_only=True):
                self.cur.execute("INSERT INTO %s VALUES (?, ?)" % self.t, (1, "a"))
        self.assertEqual((self.conn.txstate, self.count()), ("I", 0))

    def test_read_only(self):
        ro = self.connect(read_only=True)
        c = ro.cursor()
        self.assertEqual(c.execute("SELECT count(*) FROM %s" % self.t).fetchone(), (0,))
        with self.assertRaises(dbpool.DatabaseError):
            c.execute("INSERT INTO %s VALUES (?, ?)" % self.t, (1, "a"))
        ro.close()
        self.assertEqual(self.count(), 0)

    def test_errors_carry_sqlstate_and_vendor_code(self):
        self.conn.autocommit = True
        self.cur.execute("INSERT INTO %s VALUES (?, ?)" % self.t, (1, "a"))
        with self.assertRaises(dbpool.IntegrityError) as cm:
            self.cur.execute("INSERT INTO %s VALUES (?, ?)" % self.t, (1, "b"))
        e = cm.exception
        if self.my:                                     # MySQL: 23000 and ER_DUP_ENTRY
            self.assertEqual((e.code, e.sqlstate, e.vendor_code), (dbpool.SQL, "23000", 1062))
        else:                                           # SQLITE_CONSTRAINT_PRIMARYKEY
            self.assertEqual((e.code, e.sqlstate), (dbpool.SQL, "23505"))
            self.assertEqual(e.vendor_code, 0 if self.pg else 1555)
        self.assertTrue(e.message)
        with self.assertRaises(dbpool.ProgrammingError) as cm:
            self.cur.execute("SELECT * FROM py_no_such_table")
        self.assertEqual(cm.exception.sqlstate, "42S02" if self.my else "42P01")
        with self.assertRaises(dbpool.ProgrammingError) as cm:
            self.cur.execute("SELECT ?, ?", (1,))
        self.assertEqual(cm.exception.sqlstate, "07001")
        if self.pg:
            with self.assertRaises(dbpool.DataError) as cm:
                self.cur.execute("SELECT 1 / 0")
            self.assertEqual(cm.exception.sqlstate, "22012")

    def test_failed_transaction(self):
        if not self.pg:
            self.skipTest("only PostgreSQL has failed transactions")
        with self.assertRaises(dbpool.ProgrammingError):
            self.cur.execute("SELECT * FROM py_no_such_table")
        self.assertEqual(self.conn.txstate, "E")
        with self.assertRaises(dbpool.InternalError) as cm:
            self.cur.execute("SELECT 1")
        self.assertEqual(cm.exception.sqlstate, "25P02")
        with self.assertRaises(dbpool.InternalError):
            self.conn.commit()                          # nothing was committed
        self.assertEqual(self.conn.txstate, "I")
        self.assertEqual(self.cur.execute("SELECT 1").fetchone(), (1,))
        self.conn.rollback()

    def test_executemany_batches(self):
        rows = [(i, "v%d" % i) for i in range(25)]      # maxBatchStatements = 10: 3 batches
        self.cur.executemany("INSERT INTO %s VALUES (?, ?)" % self.t, rows)
        self.assertEqual(self.cur.rowcount, 25)
        self.conn.commit()
        self.assertEqual(self.count(), 25)
        self.cur.executemany("INSERT INTO %s VALUES (?, ?)" % self.t, iter([]))
        self.assertEqual(self.cur.rowcount, 0)

    def test_executemany_error_index_and_autocommit(self):
        self.conn.autocommit = True
        rows = [(i, "v") for i in range(20)] + [(100, "a"), (100, "dup"), (101, "b")]
        with self.assertRaises(dbpool.IntegrityError) as cm:
            self.cur.executemany("INSERT INTO %s VALUES (?, ?)" % self.t, rows)
        self.assertEqual(cm.exception.stmt_index, 21)   # across the batch split
        self.assertEqual(self.count(), 21)              # autocommit: what ran stays

    def test_pin_keeps_session_state(self):
        self.conn.autocommit = True
        self.conn.pin()
        self.assertTrue(self.conn.is_pinned)
        self.conn.pin()                                 # pinned again: nothing happens
        if self.pg:
            self.cur.execute("SET application_name = 'py_pinned'")
            for _ in range(3):
                got = self.cur.execute("SHOW application_name").fetchone()[0]
                self.assertEqual(got, "py_pinned")
        elif self.my:
            self.cur.execute("SET @py_pinned = 5")
            for _ in range(3):
                self.assertEqual(self.cur.execute("SELECT @py_pinned").fetchone(), (5,))
        else:
            self.cur.execute("CREATE TEMP TABLE py_pin_tmp (x)")
            for _ in range(3):
                self.cur.execute("SELECT count(*) FROM py_pin_tmp")
                self.assertEqual(self.cur.fetchone(), (0,))
        self.conn.unpin()
        self.assertFalse(self.conn.is_pinned)
        self.conn.unpin()

    def test_unpin_inside_transaction(self):
        self.conn.pin()
        self.cur.execute("SELECT 1")
        with self.assertRaises(dbpool.InternalError) as cm:
            self.conn.unpin()
        self.assertEqual((cm.exception.code, cm.exception.sqlstate), (dbpool.TX_STATE, "25000"))
        self.assertTrue(self.conn.is_pinned)
        self.conn.rollback()
        self.conn.unpin()


backend_variants(Transactions, globals())

if __name__ == "__main__":
    unittest.main()
