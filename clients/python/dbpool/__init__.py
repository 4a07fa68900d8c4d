"""dbpool — a PEP 249 (DB-API 2.0) client for dbpoold, in pure Python.

    import dbpool
    conn = dbpool.connect(pool="app")          # $DBPOOL_SOCKET or /run/dbpoold/dbpoold.sock
    with conn:                                 # commit on success, rollback on error
        cur = conn.cursor()
        cur.execute("SELECT name FROM users WHERE id = ?", (42,))
        print(cur.fetchone())

The package speaks dbpoold's own protocol (doc/protocol.md) over its Unix
socket; the database behind the pool may be SQLite, PostgreSQL or MySQL.
doc/clients.md describes it for users; the modules: wire (frames), session
(socket, timeouts, cancel), connection and cursor (PEP 249), placeholders
(`?` for PostgreSQL), types (type objects, conversions), errors.
"""
import os

from . import errors as _errors
from .connection import Connection
from .cursor import Column, Cursor
from .errors import (DatabaseError, DataError, Error, IntegrityError, InterfaceError,
                     InternalError, NotSupportedError, OperationalError, ProgrammingError,
                     Warning)
from .session import DEFAULT_SOCKET, timeout_setting
from .types import (BINARY, DATETIME, NUMBER, ROWID, STRING, Binary, Date, DateFromTicks,
                    Time, TimeFromTicks, Timestamp, TimestampFromTicks)

__version__ = "1.0.0"

apilevel = "2.0"
threadsafety = 1          # threads may share the module, not connections
paramstyle = "qmark"

# Error codes (exception .code): the daemon's (protocol.md) and the client's own.
from .errors import (CANCELED, CONN_LOST, INTERNAL, IO, LIMIT, NOT_ALLOWED,  # noqa: E402
                     POOL_TIMEOUT, PROTOCOL, SHUTDOWN, SQL, TIMEOUT, TX_STATE, TX_TIMEOUT,
                     UNAVAILABLE, UNKNOWN_POOL, USAGE, VERSION)


def connect(pool=None, socket=None, client_name="", timeout=None, connect_timeout=None,
            autocommit=False, read_only=False, convert_types=True):
    """Opens a session with dbpoold on a pool.

    pool            the pool's name (default $DBPOOL_POOL, else "app")
    socket          the daemon's socket (default $DBPOOL_SOCKET, else
                    /run/dbpoold/dbpoold.sock)
    client_name     shown in dbpoold's status and logs
    timeout         request timeout in seconds: each wait for the daemon
                    (default $DBPOOL_TIMEOUT, else none; 0: none)
    connect_timeout connect and handshake, seconds (default
                    $DBPOOL_CONNECT_TIMEOUT, else 10; 0: none)
    autocommit      every statement commits by itself (default off: PEP 249)
    read_only       implicit transactions are BEGIN READ ONLY
    convert_types   TEXT values of date/time/timestamp/numeric columns become
                    datetime / Decimal objects (default on)
    """
    path = socket or os.environ.get("DBPOOL_SOCKET") or DEFAULT_SOCKET
    pool = pool or os.environ.get("DBPOOL_POOL") or "app"
    request_timeout = timeout_setting(timeout, "DBPOOL_TIMEOUT", None)
    ct = timeout_setting(connect_timeout, "DBPOOL_CONNECT_TIMEOUT", 10.0)
    return Connection(path, pool, client_name or "", ct or 0, request_timeout,
                      autocommit=autocommit, read_only=read_only, convert_types=convert_types)


__all__ = [
    "apilevel", "threadsafety", "paramstyle", "connect", "Connection", "Cursor", "Column",
    "Warning", "Error", "InterfaceError", "DatabaseError", "DataError", "OperationalError",
    "IntegrityError", "InternalError", "ProgrammingError", "NotSupportedError",
    "Date", "Time", "Timestamp", "DateFromTicks", "TimeFromTicks", "TimestampFromTicks",
    "Binary", "STRING", "BINARY", "NUMBER", "DATETIME", "ROWID",
    "PROTOCOL", "VERSION", "UNKNOWN_POOL", "NOT_ALLOWED", "SQL", "POOL_TIMEOUT", "UNAVAILABLE",
    "TX_TIMEOUT", "LIMIT", "CANCELED", "CONN_LOST", "SHUTDOWN", "TX_STATE", "INTERNAL",
    "IO", "USAGE", "TIMEOUT",
]
del _errors
