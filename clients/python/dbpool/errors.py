"""errors.py — the PEP 249 exception hierarchy and how dbpoold's errors map
onto it.

Every exception carries .code (the protocol's error code, doc/protocol.md
"Error codes", or one of the client's own IO / USAGE / TIMEOUT, as in
libdbpool), .sqlstate, .vendor_code (the database's own number, 0 if none),
.message, .txstate and .stmt_index. A daemon ERROR is mapped to a class by
its code first (pool timeouts, lost connections, ... are OperationalError
whatever their SQLSTATE), then, for SQL errors, by its SQLSTATE class.
"""

# The daemon's codes (protocol.md) and the client's own (libdbpool.md).
PROTOCOL, VERSION, UNKNOWN_POOL, NOT_ALLOWED, SQL = 1, 2, 3, 4, 5
POOL_TIMEOUT, UNAVAILABLE, TX_TIMEOUT, LIMIT, CANCELED = 6, 7, 8, 9, 10
CONN_LOST, SHUTDOWN, TX_STATE, INTERNAL = 11, 12, 13, 14
IO, USAGE, TIMEOUT = 100, 101, 102

CODE_NAMES = {
    PROTOCOL: "PROTOCOL", VERSION: "VERSION", UNKNOWN_POOL: "UNKNOWN_POOL",
    NOT_ALLOWED: "NOT_ALLOWED", SQL: "SQL", POOL_TIMEOUT: "POOL_TIMEOUT",
    UNAVAILABLE: "UNAVAILABLE", TX_TIMEOUT: "TX_TIMEOUT", LIMIT: "LIMIT",
    CANCELED: "CANCELED", CONN_LOST: "CONN_LOST", SHUTDOWN: "SHUTDOWN",
    TX_STATE: "TX_STATE", INTERNAL: "INTERNAL", IO: "IO", USAGE: "USAGE",
    TIMEOUT: "TIMEOUT",
}

# Codes after which the daemon closes the session (protocol.md, Errors).
SESSION_ENDING = frozenset((PROTOCOL, VERSION, UNKNOWN_POOL, NOT_ALLOWED, INTERNAL,
                            TX_TIMEOUT, SHUTDOWN))


class Warning(Exception):  # noqa: A001 — the name PEP 249 requires
    """Important warnings (PEP 249); dbpoold sends none today."""


class Error(Exception):
    """Base of every dbpool error (PEP 249)."""

    def __init__(self, message, code=0, sqlstate="", vendor_code=0, txstate=None,
                 stmt_index=-1):
        super().__init__(message)
        self.message = message
        self.code = code
        self.sqlstate = sqlstate
        self.vendor_code = vendor_code
        self.txstate = txstate
        self.stmt_index = stmt_index

    @property
    def code_name(self):
        return CODE_NAMES.get(self.code, str(self.code))

    def __str__(self):
        head = self.code_name
        if self.sqlstate:
            head += " " + self.sqlstate
        return "%s: %s" % (head, self.message)


class InterfaceError(Error):
    """The client library was misused or the protocol broke."""


class DatabaseError(Error):
    """An error reported by the database or the daemon."""


class DataError(DatabaseError):
    """A value out of range, invalid text, division by zero, ..."""


class OperationalError(DatabaseError):
    """The daemon, the pool or the server: timeouts, lost connections,
    cancelled statements, limits, shutdown."""


class IntegrityError(DatabaseError):
    """A constraint was violated (SQLSTATE class 23)."""


class InternalError(DatabaseError):
    """The transaction or the daemon is in a state that does not allow the
    request (SQLSTATE 25xxx, INTERNAL)."""


class ProgrammingError(DatabaseError):
    """Bad SQL, a missing table, the wrong number of parameters."""


class NotSupportedError(DatabaseError):
    """A feature the database or dbpoold does not support (0A000)."""


_BY_CODE = {
    PROTOCOL: InterfaceError, VERSION: InterfaceError, UNKNOWN_POOL: OperationalError,
    NOT_ALLOWED: OperationalError, POOL_TIMEOUT: OperationalError,
    UNAVAILABLE: OperationalError, TX_TIMEOUT: OperationalError, LIMIT: OperationalError,
    CANCELED: OperationalError, CONN_LOST: OperationalError, SHUTDOWN: OperationalError,
    TX_STATE: InternalError, INTERNAL: InternalError, IO: OperationalError,
    USAGE: ProgrammingError, TIMEOUT: OperationalError,
}

# SQLSTATE class (first two characters) -> exception, for SQL errors.
_BY_CLASS = {
    "07": ProgrammingError, "08": OperationalError, "0A": NotSupportedError,
    "21": ProgrammingError, "22": DataError, "23": IntegrityError,
    "24": InternalError, "25": InternalError, "26": InternalError, "27": InternalError,
    "28": OperationalError, "2B": InternalError, "2D": InternalError, "2F": InternalError,
    "34": OperationalError, "38": InternalError, "39": InternalError, "3B": InternalError,
    "3D": ProgrammingError, "3F": ProgrammingError, "40": OperationalError,
    "42": ProgrammingError, "44": ProgrammingError, "53": OperationalError,
    "54": OperationalError, "55": OperationalError, "57": OperationalError,
    "58": OperationalError, "F0": InternalError, "HV": OperationalError,
    "P0": InternalError, "XX": InternalError,
}


def error_class(code, sqlstate):
    if code != SQL:
        return _BY_CODE.get(code, DatabaseError)
    return _BY_CLASS.get(sqlstate[:2].upper(), DatabaseError)


def from_frame(code, sqlstate, message, txstate, stmt_index, vendor_code):
    """The exception for a daemon ERROR frame."""
    cls = error_class(code, sqlstate)
    return cls(message, code, sqlstate, vendor_code, txstate, stmt_index)
