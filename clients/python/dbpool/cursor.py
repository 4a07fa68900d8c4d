"""cursor.py — the PEP 249 Cursor: runs statements (QUERY, and executemany
as BATCH frames) and streams their rows.

execute() reads the answer up to the COLUMNS frame (or to the end, for a
statement without rows); fetch* then read ROW frames from the socket as
they are asked for, so a result of any size is read in bounded memory and
the daemon's back-pressure does the rest. If another request is made on the
connection while this cursor still streams, the cursor first reads the rest
of its result into memory (_detach); its own next execute() or close()
reads and drops what is left (_discard).

rowcount is the rows changed (INSERT/UPDATE/DELETE, summed over an
executemany) or, for a statement with rows, -1 until the last row was read
and then their number. lastrowid is the backend's last insert id (SQLite
rowid, MySQL AUTO_INCREMENT), None when it has none.
"""
import collections

from . import errors, types, wire

Column = collections.namedtuple(
    "Column", "name type_code display_size internal_size precision scale null_ok")

_DEFAULT_MAX_BATCH = 1000


class Cursor:
    """Runs statements on its connection's session (PEP 249 Cursor)."""

    def __init__(self, connection):
        self.connection = connection
        self.arraysize = 1
        self.description = None
        self.rowcount = -1
        self.lastrowid = None
        self.rownumber = None
        self.closed = False
        self._streaming = False
        self._buffered = None            # deque of rows read ahead by _detach
        self._deferred = None            # the ERROR that ended a detached stream
        self._conv = None                # [(column index, converter)] or None

    # ---------------------------------------------------------- execute

    def execute(self, operation, parameters=None):
        """Runs one statement with `?` parameters; returns the cursor."""
        conn = self._begin_statement()
        params = _as_params(parameters)
        if params and conn._translate is not None:
            operation = conn._translate(operation)
        frame = self._query_frame(conn._session, operation, params)
        conn._start(frame, "QUERY")
        self._read_first()
        return self

    def executemany(self, operation, seq_of_parameters):
        """Runs the statement once per parameter set, as few BATCH frames as
        the daemon's limits allow (maxBatchStatements, maxFrameSize)."""
        conn = self._begin_statement()
        s = conn._session
        if conn._translate is not None:
            operation = conn._translate(operation)
        sql = wire.put_str(self._encode_sql(operation))
        limit = s.max_batch or _DEFAULT_MAX_BATCH
        chunk, size, base = [], 8, 0
        self.rowcount = 0
        for params in seq_of_parameters:
            stmt = sql + self._encode_params(s, _as_params(params))
            if len(stmt) + 8 > s.max_frame:
                raise self._too_large(s, len(stmt) + 8)
            if chunk and (len(chunk) >= limit or size + len(stmt) > s.max_frame):
                self._run_batch(chunk, base)
                base += len(chunk)
                chunk, size = [], 8
            chunk.append(stmt)
            size += len(stmt)
        if chunk:
            self._run_batch(chunk, base)
        return self

    def callproc(self, procname, parameters=()):
        raise errors.NotSupportedError(
            "callproc is not supported: run the procedure with execute(\"CALL %s(...)\")"
            % procname, errors.USAGE)

    def nextset(self):
        """dbpoold returns one result per statement: there is never a next set."""
        self._check()
        return None

    def setinputsizes(self, sizes):
        pass

    def setoutputsize(self, size, column=None):
        pass

    # ---------------------------------------------------------- fetching

    def fetchone(self):
        if self._buffered is not None:
            if self._buffered:
                self.rownumber += 1
                return self._buffered.popleft()
            return self._raise_deferred()
        if self._streaming:
            row = self._read_row()
            if row is not None:
                self.rownumber += 1
            return row
        self._check_result()
        return None

    def fetchmany(self, size=None):
        n = self.arraysize if size is None else size
        rows = []
        while len(rows) < n:
            row = self.fetchone()
            if row is None:
                break
            rows.append(row)
        return rows

    def fetchall(self):
        if self._buffered is not None or not self._streaming:
            return self.fetchmany(float("inf"))
        rows = []
        append, read = rows.append, self._read_row
        row = read()
        while row is not None:
            append(row)
            row = read()
        self.rownumber += len(rows)
        return rows

    def __iter__(self):
        return self

    def __next__(self):
        row = self.fetchone()
        if row is None:
            raise StopIteration
        return row

    # ---------------------------------------------------------- closing

    def close(self):
        """Closes the cursor; an unread result is read and dropped."""
        if self.closed:
            return
        if self._streaming and not self.connection.closed:
            self._discard()
        self._streaming = False
        self._buffered = None
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close()
        return False

    # ---------------------------------------------------------- internals

    def _check(self):
        if self.closed:
            raise errors.InterfaceError(
                "the cursor is closed; make a new one with conn.cursor()", errors.USAGE)
        self.connection._check()

    def _check_result(self):
        self._check()
        if self.description is None:
            raise errors.ProgrammingError(
                "no result to fetch: the last statement returned no rows (or none ran)",
                errors.USAGE)

    def _begin_statement(self):
        """Clears the previous result; returns the connection."""
        self._check()
        if self._streaming:
            self._discard()
        self.description = None
        self.rowcount = -1
        self.lastrowid = None
        self.rownumber = None
        self._buffered = self._deferred = self._conv = None
        return self.connection

    def _encode_sql(self, sql):
        try:
            return wire.encode_text(sql)
        except wire.EncodeError as e:
            raise errors.DataError("the statement: %s" % e, errors.USAGE) from None

    def _encode_params(self, s, params):
        if len(params) > s.max_params:
            raise errors.ProgrammingError(
                "too many parameters: %d (dbpoold allows at most %d); split the statement, "
                "or raise daemon.maxParams in dbpoold.conf" % (len(params), s.max_params),
                errors.USAGE)
        try:
            return wire.encode_params(params)
        except wire.UnsupportedType as e:
            raise errors.ProgrammingError(str(e), errors.USAGE) from None
        except wire.EncodeError as e:
            raise errors.DataError(str(e), errors.USAGE) from None

    def _query_frame(self, s, sql, params):
        payload = wire.put_str(self._encode_sql(sql)) + self._encode_params(s, params)
        if len(payload) + 1 > s.max_frame:
            raise self._too_large(s, len(payload) + 1)
        return wire.frame(wire.QUERY, payload)

    @staticmethod
    def _too_large(s, n):
        return errors.ProgrammingError(
            "the request is %d bytes, above dbpoold's maxFrameSize of %d: send less per "
            "statement, or raise daemon.maxFrameSize in dbpoold.conf" % (n, s.max_frame),
            errors.USAGE)

    def _read_first(self):
        """Reads the statement's answer up to COLUMNS, or to its end."""
        conn = self.connection
        s = conn._session
        while True:
            ftype, buf, off, end = s.read_frame()
            if ftype == wire.COLUMNS:
                self._set_columns(buf[off:end])
                self._streaming = True
                conn._streaming = self
                return
            if ftype == wire.STMT_DONE:
                self._done(wire.get_stmt_done(buf, off))
            elif ftype == wire.READY:
                s.finish(wire.get_ready(buf, off))
                return
            elif ftype == wire.ERROR:
                raise conn._error(wire.get_error(buf, off, end))
            else:
                raise s.unexpected(ftype, "in answer to a QUERY")

    def _set_columns(self, payload):
        """Description and converters from a COLUMNS payload; an application
        runs the same few statements, so they are cached by the payload."""
        cache = self.connection._columns
        hit = cache.get(payload)
        if hit is None:
            cols = wire.get_columns(payload, 0, len(payload))
            desc = tuple(Column(name, decl, None, None, None, None, None) for name, decl in cols)
            conv = None
            if self.connection.convert_types:
                conv = [(i, types.converter(decl)) for i, (_, decl) in enumerate(cols)]
                conv = [c for c in conv if c[1] is not None] or None
            if len(cache) >= 256:
                cache.clear()
            hit = cache[payload] = (desc, conv)
        self.description, self._conv = hit
        self.rownumber = 0

    def _done(self, done):
        self.rowcount, last = done
        self.lastrowid = last or None

    def _read_row(self):
        """The next row from the socket, or None at the end of the result."""
        s = self.connection._session
        ftype, buf, off, end = s.read_frame()
        if ftype == wire.ROW:
            row = wire.get_row(buf, off, end)
            if len(row) != len(self.description):
                raise s.malformed("a ROW of %d values after COLUMNS of %d"
                                  % (len(row), len(self.description)))
            if self._conv is not None:
                for i, fn in self._conv:
                    row[i] = fn(row[i])
            return tuple(row)
        self._end_stream(ftype, buf, off, end)
        return None

    def _end_stream(self, ftype, buf, off, end):
        conn = self.connection
        s = conn._session
        if ftype == wire.STMT_DONE:
            self._done(wire.get_stmt_done(buf, off))
            ftype, buf, off, end = s.read_frame()
        self._streaming = False
        conn._streaming = None
        if ftype == wire.READY:
            s.finish(wire.get_ready(buf, off))
        elif ftype == wire.ERROR:
            raise conn._error(wire.get_error(buf, off, end))
        else:
            raise s.unexpected(ftype, "in a result")

    def _detach(self):
        """Another request needs the session: read the rest into memory."""
        rows = collections.deque()
        try:
            row = self._read_row()
            while row is not None:
                rows.append(row)
                row = self._read_row()
        except errors.DatabaseError as e:
            if not self.connection._session.is_open:
                raise
            self._deferred = e
        self._buffered = rows

    def _raise_deferred(self):
        err, self._deferred = self._deferred, None
        if err is not None:
            raise err
        return None

    def _discard(self):
        """Reads and drops the rest of this cursor's result."""
        try:
            while self._read_row() is not None:
                pass
        except errors.DatabaseError:
            if not self.connection._session.is_open:
                raise

    def _abandon(self):
        self._streaming = False

    def _run_batch(self, stmts, base):
        conn = self.connection
        s = conn._session
        conn._start(wire.frame(wire.BATCH, wire.batch_payload(0, stmts)), "BATCH")
        while True:
            ftype, buf, off, end = s.read_frame()
            if ftype == wire.STMT_DONE:
                n, last = wire.get_stmt_done(buf, off)
                self.rowcount += n
                self.lastrowid = last or self.lastrowid
            elif ftype == wire.READY:
                s.finish(wire.get_ready(buf, off))
                return
            elif ftype == wire.ERROR:
                err = conn._error(wire.get_error(buf, off, end))
                if err.stmt_index >= 0:
                    err.stmt_index += base
                raise err
            elif ftype not in (wire.COLUMNS, wire.ROW):
                raise s.unexpected(ftype, "in answer to a BATCH")


def _as_params(parameters):
    if parameters is None:
        return ()
    if isinstance(parameters, (tuple, list)):
        return parameters
    if isinstance(parameters, (str, bytes, dict)) or not hasattr(parameters, "__iter__"):
        raise errors.ProgrammingError(
            "parameters must be a sequence (a tuple or list) matching the `?` placeholders, "
            "not a %s" % type(parameters).__name__, errors.USAGE)
    return tuple(parameters)
