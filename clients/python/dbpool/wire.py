"""wire.py — the dbpoold wire format (doc/protocol.md, version 1) in Python.

Encodes the client's frames (HELLO, QUERY, BATCH, BEGIN and the empty ones)
and decodes the daemon's (HELLO_OK, COLUMNS, ROW, STMT_DONE, READY, ERROR)
from a bytes buffer at an offset, without copying the frame first. It knows
nothing about sockets: session.py moves the bytes, this file gives them
meaning. Structs are compiled once; the ROW decoder is the hot path.
"""
import datetime
import decimal
import struct

VERSION = 1

# Frame types, client -> daemon.
HELLO, QUERY, BATCH, BEGIN = b"H", b"Q", b"B", b"T"
COMMIT, ROLLBACK, PING, TERMINATE, CANCEL = b"C", b"R", b"P", b"X", b"K"
PIN, UNPIN = b"N", b"U"
# Frame types, daemon -> client (as ints: what indexing bytes gives).
HELLO_OK, COLUMNS, ROW, STMT_DONE, READY, ERROR = (ord(c) for c in "hdrsze")

FLAG_ATOMIC = 0x01
FLAG_READ_ONLY = 0x01

# Value tags.
T_NULL, T_INT64, T_FLOAT64, T_TEXT, T_BLOB, T_BOOL = range(6)

_HDR = struct.Struct(">IB")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_I64 = struct.Struct(">q")
_F64 = struct.Struct(">d")
_STMT_DONE = struct.Struct(">qq")
_TAG_I64 = struct.Struct(">Bq")
_TAG_F64 = struct.Struct(">Bd")
_TAG_U32 = struct.Struct(">BI")
_ERR_TAIL = struct.Struct(">ci")
_HEADER_SIZE = 5
_NULL = b"\x00"
_TRUE = b"\x05\x01"
_FALSE = b"\x05\x00"
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1

header = _HDR.unpack_from
u32 = _U32.unpack_from
HEADER_SIZE = _HEADER_SIZE


class EncodeError(ValueError):
    """A parameter the protocol cannot carry; .index is its position."""

    def __init__(self, message, index=None):
        super().__init__(message)
        self.index = index


class UnsupportedType(EncodeError):
    """A parameter of a Python type the client does not send."""


def frame(ftype, payload=b""):
    """One whole frame: u32 length (type byte + payload), type, payload."""
    return _HDR.pack(len(payload) + 1, ftype[0]) + payload


def put_str(s):
    return _U32.pack(len(s)) + s


def encode_text(s):
    """UTF-8 bytes of s; lone surrogates from a surrogateescape decode become
    the bytes they stood for (and the daemon then judges them)."""
    try:
        return s.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError as e:
        raise EncodeError("text cannot be encoded as UTF-8 (%s); pass bytes for binary data"
                          % e.reason) from None


def _iso(v):
    return encode_text(v.isoformat(sep=" ") if isinstance(v, datetime.datetime) else v.isoformat())


def encode_value(v):
    """One tagged value (protocol.md, Values). Raises EncodeError."""
    t = type(v)
    if t is int:
        if _INT64_MIN <= v <= _INT64_MAX:
            return _TAG_I64.pack(T_INT64, v)
        raise EncodeError("integer %d is out of the 64-bit range the protocol carries; "
                          "pass it as a str or decimal.Decimal" % v)
    if t is str:
        b = encode_text(v)
        return _TAG_U32.pack(T_TEXT, len(b)) + b
    if v is None:
        return _NULL
    if t is float:
        return _TAG_F64.pack(T_FLOAT64, v)
    if t is bool:
        return _TRUE if v else _FALSE
    return _encode_other(v)


def _encode_other(v):
    if isinstance(v, (bytes, bytearray, memoryview)):
        b = bytes(v)
        return _TAG_U32.pack(T_BLOB, len(b)) + b
    if isinstance(v, bool):
        return _TRUE if v else _FALSE
    if isinstance(v, int):
        return encode_value(int(v))
    if isinstance(v, float):
        return _TAG_F64.pack(T_FLOAT64, float(v))
    if isinstance(v, str):
        return encode_value(str(v))
    if isinstance(v, (datetime.date, datetime.time)):
        b = _iso(v)
        return _TAG_U32.pack(T_TEXT, len(b)) + b
    if isinstance(v, decimal.Decimal):
        b = str(v).encode("ascii")
        return _TAG_U32.pack(T_TEXT, len(b)) + b
    raise UnsupportedType("cannot send a %s: use None, int, float, str, bytes, bool, "
                      "datetime, date, time or Decimal" % type(v).__name__)


def encode_params(params):
    """u16 nparams + the values; EncodeError carries the failing index."""
    out = [_U16.pack(len(params))]
    for i, v in enumerate(params):
        try:
            out.append(encode_value(v))
        except EncodeError as e:
            raise type(e)("parameter %d: %s" % (i + 1, e), i) from None
    return b"".join(out)


def query_payload(sql, params):
    return put_str(sql) + encode_params(params)


def hello(pool, client_name):
    return frame(HELLO, _U16.pack(VERSION) + put_str(encode_text(pool))
                 + put_str(encode_text(client_name)))


def begin(read_only):
    return frame(BEGIN, bytes((FLAG_READ_ONLY if read_only else 0,)))


def batch_payload(flags, stmts):
    """stmts: already encoded statements (str sql + params)."""
    return bytes((flags,)) + _U16.pack(len(stmts)) + b"".join(stmts)


# ---------------------------------------------------------------- decoding

class Malformed(Exception):
    """A frame from the daemon that does not follow protocol.md."""


def _str_at(buf, off, end):
    n = _U32.unpack_from(buf, off)[0]
    off += 4
    if off + n > end:
        raise Malformed("string runs past the end of the frame")
    return buf[off:off + n], off + n


def get_hello_ok(buf, off, end):
    """-> (backend, server, max_frame, max_params, max_batch or 0)."""
    off += 2                                    # version
    backend, off = _str_at(buf, off, end)
    server, off = _str_at(buf, off, end)
    max_frame, max_params = struct.unpack_from(">IH", buf, off)
    off += 6
    max_batch = _U16.unpack_from(buf, off)[0] if off + 2 <= end else 0
    return (backend.decode("utf-8", "replace"), server.decode("utf-8", "replace"),
            max_frame, max_params, max_batch)


def get_columns(buf, off, end):
    """-> [(name, declared_type)] as str."""
    n = _U16.unpack_from(buf, off)[0]
    off += 2
    cols = []
    for _ in range(n):
        name, off = _str_at(buf, off, end)
        decl, off = _str_at(buf, off, end)
        cols.append((name.decode("utf-8", "surrogateescape"), decl.decode("utf-8", "replace")))
    if off != end:
        raise Malformed("trailing bytes after COLUMNS")
    return cols


def get_row(buf, off, end):
    """-> list of values (None, int, float, str, bytes, bool)."""
    n = _U16.unpack_from(buf, off)[0]
    off += 2
    row = []
    append = row.append
    for _ in range(n):
        tag = buf[off]
        if tag == T_INT64:
            append(_I64.unpack_from(buf, off + 1)[0])
            off += 9
        elif tag == T_TEXT:
            ln = _U32.unpack_from(buf, off + 1)[0]
            off += 5
            append(buf[off:off + ln].decode("utf-8", "surrogateescape"))
            off += ln
        elif tag == T_NULL:
            append(None)
            off += 1
        elif tag == T_FLOAT64:
            append(_F64.unpack_from(buf, off + 1)[0])
            off += 9
        elif tag == T_BLOB:
            ln = _U32.unpack_from(buf, off + 1)[0]
            off += 5
            append(bytes(buf[off:off + ln]))
            off += ln
        elif tag == T_BOOL:
            b = buf[off + 1]
            if b > 1:
                raise Malformed("BOOL value %d" % b)
            append(b == 1)
            off += 2
        else:
            raise Malformed("unknown value tag %d" % tag)
    if off != end:
        raise Malformed("ROW length does not match its values")
    return row


def get_stmt_done(buf, off):
    """-> (rows_affected, last_insert_id)."""
    return _STMT_DONE.unpack_from(buf, off)


def get_ready(buf, off):
    return chr(buf[off])


def get_error(buf, off, end):
    """-> (code, sqlstate, message, txstate, stmt_index, vendor_code)."""
    code = _U16.unpack_from(buf, off)[0]
    sqlstate, off = _str_at(buf, off + 2, end)
    message, off = _str_at(buf, off, end)
    tx, stmt_index = _ERR_TAIL.unpack_from(buf, off)
    off += 5
    vendor = struct.unpack_from(">i", buf, off)[0] if off + 4 <= end else 0
    return (code, sqlstate.decode("ascii", "replace"), message.decode("utf-8", "replace"),
            tx.decode("ascii"), stmt_index, vendor)
