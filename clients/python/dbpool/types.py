"""types.py — PEP 249 type objects and constructors, and the conversion of
TEXT results by their declared type.

A cursor's description gives each column's declared type as dbpoold sends
it ("integer", "timestamptz", "VARCHAR", "" for an SQLite expression). The
type objects STRING, BINARY, NUMBER, DATETIME and ROWID compare equal to the
declared types of their family, so `desc[1] == dbpool.NUMBER` works on every
backend.

Values arrive typed (INT64 -> int, FLOAT64 -> float, BOOL -> bool, BLOB ->
bytes, TEXT -> str). A TEXT value whose column is declared as a date, time,
timestamp or decimal type is converted to datetime.date / .time / .datetime
or decimal.Decimal (as psycopg does); a value that does not parse (PostgreSQL
'infinity', MySQL zero dates) stays a str. connect(convert_types=False)
turns this off.
"""
import datetime
import decimal
import re
import time

_ARGS = re.compile(r"\s*\(.*?\)")


def base_type(decl):
    """'VARCHAR(20)' -> 'varchar', 'BIGINT UNSIGNED' -> 'bigint',
    'timestamp(3) with time zone' -> 'timestamp with time zone'."""
    t = _ARGS.sub("", decl).strip().lower()
    if t.endswith(" unsigned"):
        t = t[:-9]
    return t


_NUMBER_NAMES = {"bool", "boolean", "year", "money", "oid"}
_DATETIME_PREFIXES = ("date", "time", "interval")
_BINARY_NAMES = {"blob", "bytea", "binary", "varbinary", "tinyblob", "mediumblob",
                 "longblob", "bit", "geometry"}
_ROWID_NAMES = {"oid", "rowid", "tid", "xid", "ctid"}


def family(decl):
    """The PEP 249 family of a declared type: 'NUMBER', 'DATETIME', 'BINARY',
    'STRING', or '' when the declaration says nothing (an SQLite expression)."""
    t = base_type(decl)
    if not t:
        return ""
    if t in _BINARY_NAMES:
        return "BINARY"
    if t.startswith(_DATETIME_PREFIXES):
        return "DATETIME"
    if t in _NUMBER_NAMES or _is_numeric_name(t):
        return "NUMBER"
    return "STRING"


def _is_numeric_name(t):
    # SQLite's affinity rules, bounded to names that really are numbers.
    if "int" in t and "interval" not in t and "point" not in t:
        return True
    return t.startswith(("real", "float", "double", "numeric", "decimal", "serial",
                         "bigserial", "smallserial", "number"))


class DBAPITypeObject:
    """Equal to every declared type of its family (PEP 249 type objects)."""

    def __init__(self, name, test):
        self.name = name
        self._test = test

    def __eq__(self, other):
        if isinstance(other, DBAPITypeObject):
            return self is other
        if isinstance(other, str):
            return self._test(other)
        return NotImplemented

    def __ne__(self, other):
        r = self.__eq__(other)
        return r if r is NotImplemented else not r

    def __hash__(self):
        return hash(self.name)

    def __repr__(self):
        return "dbpool.%s" % self.name


STRING = DBAPITypeObject("STRING", lambda d: family(d) == "STRING")
BINARY = DBAPITypeObject("BINARY", lambda d: family(d) == "BINARY")
NUMBER = DBAPITypeObject("NUMBER", lambda d: family(d) == "NUMBER")
DATETIME = DBAPITypeObject("DATETIME", lambda d: family(d) == "DATETIME")
ROWID = DBAPITypeObject("ROWID", lambda d: base_type(d) in _ROWID_NAMES)

# Constructors (PEP 249).
Date = datetime.date
Time = datetime.time
Timestamp = datetime.datetime
Binary = bytes


def DateFromTicks(ticks):
    return Date(*time.localtime(ticks)[:3])


def TimeFromTicks(ticks):
    return Time(*time.localtime(ticks)[3:6])


def TimestampFromTicks(ticks):
    return Timestamp(*time.localtime(ticks)[:6])


# ------------------------------------------------------------- conversion

def _to_date(s):
    return datetime.date.fromisoformat(s)


def _to_datetime(s):
    return datetime.datetime.fromisoformat(s)


def _to_time(s):
    return datetime.time.fromisoformat(s)


_CONVERTERS = {
    "date": _to_date,
    "timestamp": _to_datetime, "timestamptz": _to_datetime, "datetime": _to_datetime,
    "timestamp without time zone": _to_datetime, "timestamp with time zone": _to_datetime,
    "time": _to_time, "timetz": _to_time,
    "time without time zone": _to_time, "time with time zone": _to_time,
    "numeric": decimal.Decimal, "decimal": decimal.Decimal,
}


def converter(decl):
    """The function that converts a TEXT value of this declared type, or None."""
    fn = _CONVERTERS.get(base_type(decl))
    if fn is None:
        return None

    def convert(v):
        if type(v) is not str:
            return v
        try:
            return fn(v)
        except (ValueError, ArithmeticError):
            return v
    return convert
