"""connection.py — the PEP 249 Connection: a session with dbpoold plus the
transaction rules of PEP 249.

Autocommit is off by default, as PEP 249 requires: the first statement
outside a transaction opens one (a BEGIN frame, READ_ONLY when
conn.read_only), commit() and rollback() end it. With autocommit on, every
statement commits by itself and the session holds no server connection
between statements (dbpoold's transaction pooling works best that way).
On a PostgreSQL pool the daemon answers BEGIN itself, so the implicit BEGIN
is pipelined with the first statement (one round trip); on SQLite and MySQL
BEGIN takes a server connection and may fail (POOL_TIMEOUT), so it is sent
and answered first: a statement never runs outside the transaction the
application believes it is in.

One cursor at a time streams its result from the socket (self._streaming);
any other request on the connection first makes that cursor read the rest
of its result into memory (Cursor._detach), so nested cursors work.
`with conn:` commits on success and rolls back on an exception; it does not
close the connection. `with conn.transaction():` is an explicit transaction
(nested: a savepoint), for autocommit connections above all.
"""
import contextlib

from . import errors, wire
from .cursor import Cursor
from .placeholders import Translator
from .session import DEFAULT_CONNECT_TIMEOUT, Session

_COMMIT = wire.frame(wire.COMMIT)
_ROLLBACK = wire.frame(wire.ROLLBACK)
_PING = wire.frame(wire.PING)
_PIN = wire.frame(wire.PIN)
_UNPIN = wire.frame(wire.UNPIN)


class Connection:
    """One session with dbpoold on one pool (PEP 249 Connection)."""

    Warning = errors.Warning
    Error = errors.Error
    InterfaceError = errors.InterfaceError
    DatabaseError = errors.DatabaseError
    DataError = errors.DataError
    OperationalError = errors.OperationalError
    IntegrityError = errors.IntegrityError
    InternalError = errors.InternalError
    ProgrammingError = errors.ProgrammingError
    NotSupportedError = errors.NotSupportedError

    def __init__(self, path, pool, client_name, connect_timeout, request_timeout,
                 autocommit=False, read_only=False, convert_types=True):
        self._session = Session(path, pool, client_name,
                                connect_timeout if connect_timeout is not None
                                else DEFAULT_CONNECT_TIMEOUT, request_timeout)
        self.pool = pool
        self._autocommit = bool(autocommit)
        self.read_only = bool(read_only)
        self.convert_types = convert_types
        self._streaming = None            # the cursor whose result is on the socket
        self._columns = {}                # COLUMNS payload -> (description, converters)
        self._pinned = False
        self._closed = False
        self._translate = Translator() if self._session.backend == "postgres" else None

    # ---------------------------------------------------------- attributes

    @property
    def backend(self):
        """'sqlite', 'postgres' or 'mysql' (from HELLO_OK)."""
        return self._session.backend

    @property
    def server_version(self):
        """The daemon's version string."""
        return self._session.server

    @property
    def txstate(self):
        """'I' no transaction, 'T' in one, 'E' in a failed one (PostgreSQL)."""
        return self._session.txstate

    @property
    def in_transaction(self):
        return self._session.txstate != "I"

    @property
    def closed(self):
        return self._closed or not self._session.is_open

    @property
    def is_pinned(self):
        return self._pinned and self._session.is_open

    @property
    def autocommit(self):
        return self._autocommit

    @autocommit.setter
    def autocommit(self, value):
        self._check()
        self._settle()
        if bool(value) != self._autocommit and self.in_transaction:
            raise errors.ProgrammingError(
                "cannot change autocommit inside a transaction: commit() or rollback() first",
                errors.USAGE)
        self._autocommit = bool(value)

    @property
    def timeout(self):
        """Request timeout in seconds (None: no limit); see session.py."""
        return self._session.timeout

    @timeout.setter
    def timeout(self, value):
        if value is not None and value < 0:
            raise errors.ProgrammingError("timeout is seconds >= 0 or None", errors.USAGE)
        self._session.timeout = value or None

    # ---------------------------------------------------------- PEP 249

    def cursor(self):
        self._check()
        return Cursor(self)

    def commit(self):
        """Commits the open transaction; without one, does nothing."""
        self._end_transaction(_COMMIT, "COMMIT")

    def rollback(self):
        """Rolls back the open transaction; without one, does nothing."""
        self._end_transaction(_ROLLBACK, "ROLLBACK")

    def close(self):
        """Ends the session; an open transaction is rolled back by the daemon."""
        if self._closed:
            return
        self._closed = True
        if self._streaming is not None:
            self._streaming._abandon()
        self._session.terminate()

    def __del__(self):
        # A connection dropped without close(): the daemon sees the session
        # end and rolls back, as for close(); no ResourceWarning.
        session = getattr(self, "_session", None)
        if session is not None and session.is_open:
            session.close_quietly("connection garbage-collected without close()")

    def __enter__(self):
        self._check()
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.commit()
        elif not self.closed:
            self.rollback()
        return False

    # ---------------------------------------------------------- extensions

    @contextlib.contextmanager
    def transaction(self, read_only=False):
        """An explicit transaction, in autocommit mode too: BEGIN (READ ONLY),
        COMMIT when the block ends, ROLLBACK when it raises. Inside a
        transaction it nests as a savepoint (the daemon's nested BEGIN), so a
        failing inner block rolls back only its own work."""
        self._simple(wire.begin(read_only), "BEGIN")
        try:
            yield self
        except BaseException:
            self._rollback_quietly()
            raise
        self._simple(_COMMIT, "COMMIT")

    def _rollback_quietly(self):
        """Rolls back for a block that raised; the block's exception is the
        one to report, so a failure here is not."""
        try:
            if not self.closed and self.in_transaction:
                self._simple(_ROLLBACK, "ROLLBACK")
        except errors.Error:
            pass

    def execute(self, operation, parameters=None):
        """A new cursor that ran the statement (as sqlite3 and psycopg offer)."""
        return self.cursor().execute(operation, parameters)

    def cancel(self):
        """Cancels the running request (CANCEL frame). Callable from another
        thread; never waits. True if a request was running and the frame sent;
        the cancelled call fails with OperationalError, code CANCELED."""
        if self.closed:
            return False
        return self._session.cancel()

    def ping(self):
        """A round trip to the daemon (PING)."""
        self._simple(_PING, "PING")

    def pin(self):
        """Keeps one server connection for this session across transactions
        (protocol.md, Pinned sessions). Outside a transaction only."""
        self._simple(_PIN, "PIN")
        self._pinned = True

    def unpin(self):
        """Gives the pinned server connection back (the daemon resets it)."""
        self._simple(_UNPIN, "UNPIN")
        self._pinned = False

    # ---------------------------------------------------------- internals

    def _check(self):
        if self._closed:
            raise errors.InterfaceError(
                "the connection is closed; open a new one with dbpool.connect()", errors.USAGE)
        if not self._session.is_open:
            self._session._check_open()

    def _settle(self):
        """Before a new request: the streaming cursor reads the rest of its result."""
        if self._streaming is not None:
            self._streaming._detach()

    def _end_transaction(self, frame, what):
        self._check()
        self._settle()
        if self._session.txstate == "I":
            return
        self._simple(frame, what)

    def _simple(self, frame, what):
        """A request answered by READY or ERROR alone."""
        self._check()
        self._settle()
        s = self._session
        s.request(frame, what)
        self._await_ready(what)

    def _await_ready(self, what):
        s = self._session
        ftype, buf, off, end = s.read_frame()
        if ftype == wire.READY:
            s.finish(wire.get_ready(buf, off))
            return
        if ftype == wire.ERROR:
            raise self._error(wire.get_error(buf, off, end))
        raise s.unexpected(ftype, "in answer to " + what)

    def _error(self, fields):
        err = self._session.error(fields)
        if err.code == errors.CONN_LOST:
            self._pinned = False          # a lost server connection ends the pin
        return err

    def _start(self, payload_frame, what):
        """Sends a statement, preceded by the implicit BEGIN when one is due;
        the answer to that BEGIN is read here, the statement's is left."""
        self._check()
        self._settle()
        s = self._session
        if self._autocommit or s.txstate != "I":
            s.request(payload_frame, what)
            return
        begin = wire.begin(self.read_only)
        if s.backend != "postgres":
            s.request(begin, "BEGIN")
            self._await_ready("BEGIN")
            s.request(payload_frame, what)
            return
        s.request(begin + payload_frame, what)
        ftype, buf, off, end = s.read_frame()
        if ftype == wire.READY:
            s.txstate = wire.get_ready(buf, off)
            return
        if ftype != wire.ERROR:
            raise s.unexpected(ftype, "in answer to BEGIN")
        err = self._error(wire.get_error(buf, off, end))
        if s.is_open:
            self._skip_answer()
        raise err

    def _skip_answer(self):
        """Reads and drops one request's answer, up to its terminal frame."""
        s = self._session
        while True:
            ftype, buf, off, end = s.read_frame()
            if ftype == wire.READY:
                s.finish(wire.get_ready(buf, off))
                return
            if ftype == wire.ERROR:
                self._error(wire.get_error(buf, off, end))
                return
