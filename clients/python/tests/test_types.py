"""test_types.py — values round trip through dbpoold with their Python
types (None, int, float, str, bytes, bool, datetime, Decimal), integers out
of the 64-bit range are refused before anything is sent, the PEP 249 type
objects and constructors, and the placeholder rewriting for PostgreSQL."""
import datetime
import decimal
import unittest

import dbpool
from daemon import Backends, serve_module, backend_variants
from dbpool.placeholders import to_numbered
from dbpool.types import family

daemon = None


serve_module(globals())


class RoundTrip(Backends, unittest.TestCase):
    def setUp(self):
        self.conn = self.connect(autocommit=True)
        self.cur = self.conn.cursor()

    def tearDown(self):
        self.conn.close()

    def echo(self, value, cast=""):
        sql = "SELECT ?%s AS v" % cast
        return self.cur.execute(sql, (value,)).fetchone()[0]

    def test_scalars(self):
        for v in (None, 0, -1, 2**63 - 1, -2**63, 1.5, -0.25, 1e300, "", "héllo ☃ 𝄞",
                  "with\x00nul" if self.sqlite else "plain"):
            got = self.echo(v)
            self.assertEqual(got, v)
            self.assertIs(type(got), type(v))

    def test_blob(self):
        data = bytes(range(256)) * 10
        for v in (data, bytearray(data), memoryview(data)):
            got = self.echo(v)
            self.assertEqual(got, data)
            self.assertIs(type(got), bytes)

    def test_bool(self):
        if self.pg:                             # MySQL's BOOLEAN is TINYINT: 1 / 0 too
            self.assertIs(self.echo(True, "::boolean"), True)
            self.assertIs(self.echo(False, "::boolean"), False)
        else:                                   # SQLite has no boolean: 1 / 0
            self.assertEqual(self.echo(True), 1)
            self.assertEqual(self.echo(False), 0)

    def test_big_text_value(self):
        v = "x" * (3 << 20)
        self.assertEqual(self.echo(v), v)

    def test_int_out_of_range_refused_before_sending(self):
        for v in (2**63, -2**63 - 1):
            with self.assertRaises(dbpool.DataError) as cm:
                self.cur.execute("SELECT ?", (v,))
            self.assertIn("64-bit", str(cm.exception))
            self.assertEqual(cm.exception.code, dbpool.USAGE)
        self.assertEqual(self.echo(5), 5)        # the session goes on

    def test_too_many_parameters_refused_before_sending(self):
        n = self.conn._session.max_params + 1
        with self.assertRaises(dbpool.ProgrammingError) as cm:
            self.cur.execute("SELECT " + ", ".join("?" * n), [1] * n)
        self.assertEqual(cm.exception.code, dbpool.USAGE)
        self.assertIn("maxParams", str(cm.exception))
        self.assertEqual(self.echo(6), 6)        # not sent: the daemon did not close us

    def test_unsupported_type(self):
        with self.assertRaises(dbpool.ProgrammingError) as cm:
            self.cur.execute("SELECT ?", (object(),))
        self.assertIn("parameter 1", str(cm.exception))

    def test_dates_and_decimals_by_declared_type(self):
        ts = datetime.datetime(2024, 2, 29, 13, 14, 15, 123456)
        d = datetime.date(1999, 12, 31)
        t = datetime.time(23, 59, 58)
        dec = decimal.Decimal("12345678901234567890.0123456789")
        if self.pg:
            cols = "ts timestamp, d date, t time, n numeric"
        elif self.my:
            cols = "ts datetime(6), d date, t time, n decimal(30, 10)"
        else:
            cols = "ts timestamp, d date, t time, n decimal"
        self.table("py_dt", cols)
        self.cur.execute("INSERT INTO py_dt VALUES (?, ?, ?, ?)", (ts, d, t, str(dec)))
        row = self.cur.execute("SELECT ts, d, t, n FROM py_dt").fetchone()
        self.assertEqual(row[0], ts)
        self.assertEqual(row[1], d)
        self.assertEqual(row[2], t)
        if not self.sqlite:                      # SQLite stores a REAL (numeric affinity)
            self.assertEqual(row[3], dec)
        self.assertEqual(self.cur.description[0].type_code, dbpool.DATETIME)
        raw = self.connect(autocommit=True, convert_types=False)
        self.assertIsInstance(raw.cursor().execute("SELECT ts FROM py_dt").fetchone()[0], str)
        raw.close()

    def test_timestamptz(self):
        if not self.pg:
            self.skipTest("PostgreSQL type")
        v = self.cur.execute("SELECT '2024-01-02 03:04:05+00'::timestamptz").fetchone()[0]
        self.assertEqual(v, datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc))
        self.assertEqual(self.cur.execute("SELECT 'infinity'::timestamptz").fetchone()[0],
                         "infinity")

    def test_invalid_utf8_text_is_kept(self):
        if not self.sqlite:
            self.skipTest("only SQLite stores invalid UTF-8 in text")
        v = self.cur.execute("SELECT CAST(x'61ff62' AS TEXT)").fetchone()[0]
        self.assertEqual(v.encode("utf-8", "surrogateescape"), b"a\xffb")


backend_variants(RoundTrip, globals())


class TypeObjects(unittest.TestCase):
    def test_families(self):
        for decl, fam in [("integer", "NUMBER"), ("BIGINT UNSIGNED", "NUMBER"),
                          ("numeric(10,2)", "NUMBER"), ("DOUBLE", "NUMBER"),
                          ("varchar(20)", "STRING"), ("text", "STRING"), ("JSON", "STRING"),
                          ("point", "STRING"), ("timestamptz", "DATETIME"),
                          ("DATETIME", "DATETIME"), ("interval", "DATETIME"),
                          ("bytea", "BINARY"), ("LONGBLOB", "BINARY"), ("", "")]:
            self.assertEqual(family(decl), fam, decl)
        self.assertEqual("integer", dbpool.NUMBER)
        self.assertNotEqual("integer", dbpool.STRING)
        self.assertEqual("oid", dbpool.ROWID)

    def test_constructors(self):
        self.assertEqual(dbpool.Date(2020, 1, 2), datetime.date(2020, 1, 2))
        self.assertEqual(dbpool.Time(1, 2, 3), datetime.time(1, 2, 3))
        self.assertEqual(dbpool.Timestamp(2020, 1, 2, 3, 4, 5),
                         datetime.datetime(2020, 1, 2, 3, 4, 5))
        self.assertEqual(dbpool.Binary(b"ab"), b"ab")
        self.assertIsInstance(dbpool.DateFromTicks(0), datetime.date)
        self.assertIsInstance(dbpool.TimeFromTicks(0), datetime.time)
        self.assertIsInstance(dbpool.TimestampFromTicks(0), datetime.datetime)


class Placeholders(unittest.TestCase):
    def test_rewrite(self):
        cases = [
            ("SELECT ?, ?", "SELECT $1, $2"),
            ("SELECT '?', ?", "SELECT '?', $1"),
            ("SELECT 'it''s ?', ?", "SELECT 'it''s ?', $1"),
            ("SELECT E'\\' ?', ?", "SELECT E'\\' ?', $1"),
            ('SELECT "a?b" FROM t WHERE x = ?', 'SELECT "a?b" FROM t WHERE x = $1'),
            ("SELECT ? -- what?\n, ?", "SELECT $1 -- what?\n, $2"),
            ("SELECT /* ? /* ? */ ? */ ?", "SELECT /* ? /* ? */ ? */ $1"),
            ("SELECT $$ ? $$, $t$ ? $t$, ?", "SELECT $$ ? $$, $t$ ? $t$, $1"),
            ("SELECT a$b, ?", "SELECT a$b, $1"),
            ("SELECT '{}'::jsonb ?? 'k', ?", "SELECT '{}'::jsonb ? 'k', $1"),
        ]
        for sql, want in cases:
            self.assertEqual(to_numbered(sql)[0], want, sql)


class PostgresPlaceholders(Backends, unittest.TestCase):
    POOL = "pg"

    def setUp(self):
        if not self.daemon.pg:
            self.skipTest("PostgreSQL harness not up (run tests/pg/run-pg-tests.sh)")

    def test_quotes_and_dollar_quotes_reach_postgres(self):
        conn = self.connect(autocommit=True)
        cur = conn.cursor()
        row = cur.execute("SELECT '?' AS a, $q$ ? $q$ AS b, ? AS c, '{\"k\":1}'::jsonb ?? 'k'",
                          (7,)).fetchone()
        self.assertEqual(row, ("?", " ? ", 7, True))
        # without parameters nothing is rewritten: jsonb's ? works as is
        self.assertEqual(cur.execute("SELECT '{\"k\":1}'::jsonb ? 'k'").fetchone(), (True,))
        conn.close()


if __name__ == "__main__":
    unittest.main()
