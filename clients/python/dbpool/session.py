"""session.py — one session with dbpoold over its Unix socket: connecting
and the HELLO handshake, sending requests, reading frames, timeouts, CANCEL,
and the daemon going away. Connection and Cursor build on it; it knows the
framing but not what a cursor is.

Reading: one recv of up to 64 KiB into a bytes buffer that frames are
decoded from in place (wire.py works on (buffer, offset, end)); a frame
split across reads is joined once. Nothing is read before it is asked for,
so a result streams: the daemon stops fetching rows while we do not read.

Timeouts follow libdbpool (doc/libdbpool.md, "Timeouts"): a connect timeout
(default 10 s, $DBPOOL_CONNECT_TIMEOUT) bounds connect(2) and the handshake;
a request timeout (default none, $DBPOOL_TIMEOUT) bounds each wait for the
daemon — a request's send, its first answer, each further frame. When it
expires the session sends CANCEL and reads on for a grace (the timeout, at
most 1 s): if the answer ends in time the session stays usable, else it is
closed. Without a request timeout the socket stays blocking and a read is a
single recv(2).
"""
import os
import re
import select
import socket
import struct
import threading
import time

from . import errors, wire

DEFAULT_SOCKET = "/run/dbpoold/dbpoold.sock"
DEFAULT_CONNECT_TIMEOUT = 10.0
_RECV_SIZE = 65536
_MAX_GRACE = 1.0
_DURATION = re.compile(r"(\d+)(ms|h|m|s)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_CANCEL_FRAME = wire.frame(wire.CANCEL)
_TERMINATE_FRAME = wire.frame(wire.TERMINATE)
# A daemon that closed the socket is an error to report, not a SIGPIPE to die of
# (Python ignores SIGPIPE, an embedding program may not).
_NOSIGNAL = socket.MSG_NOSIGNAL
_DONTWAIT = socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL


def parse_duration(text, what):
    """'250ms', '10s', '1m30s', '0' -> seconds (None for 0: no limit), as
    libdbpool and dbpoold.conf read durations."""
    if text == "0":
        return None
    pos, total, last = 0, 0.0, None
    for m in _DURATION.finditer(text):
        if m.start() != pos or (last is not None and _UNITS[m.group(2)] >= last):
            break
        last = _UNITS[m.group(2)]
        total += int(m.group(1)) * last
        pos = m.end()
    if pos != len(text) or not text:
        raise errors.ProgrammingError(
            '%s="%s" is not a duration: write it like "10s", "250ms" or "1m30s" '
            '("0": no limit), or unset it' % (what, text[:100]), errors.USAGE)
    return total


def timeout_setting(given, env, default):
    """A timeout in seconds (None: no limit) from the argument, else the
    environment variable, else the default."""
    if given is not None:
        if given < 0:
            raise errors.ProgrammingError("a timeout is seconds >= 0 (0: no limit), not %r"
                                          % (given,), errors.USAGE)
        return given or None
    text = os.environ.get(env, "")
    return parse_duration(text, env) if text else default


def _fmt(seconds):
    return "%gms" % (seconds * 1000) if seconds < 1 else "%gs" % seconds


def _connect_hint(e):
    if isinstance(e, (FileNotFoundError, ConnectionRefusedError, NotADirectoryError)):
        return " (is dbpoold running? set DBPOOL_SOCKET or pass socket=)"
    if isinstance(e, PermissionError):
        return " (check the permissions of the socket and its directory)"
    return ""


class Session:
    """The socket, the read buffer and the request state of one session."""

    def __init__(self, path, pool, client_name, connect_timeout, request_timeout):
        self.path = path
        self.timeout = request_timeout
        self.backend = self.server = ""
        self.max_frame, self.max_params, self.max_batch = 16 << 20, 1024, 0
        self.txstate = "I"
        self.closed_reason = None        # set once the session is over
        self._buf, self._pos = b"", 0
        self._busy = False               # a request is outstanding (cancel may send)
        self._what = "request"           # its name, for messages
        self._grace_deadline = None      # set while a timed-out request gets its grace
        self.timed_out = False
        self._send_lock = threading.Lock()
        self._sock = None
        self._poll = None
        self._connect(pool, client_name, connect_timeout)

    # ---------------------------------------------------------- connecting

    def _connect(self, pool, client_name, limit):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            if limit:   # bounds a connect(2) waiting on a full accept queue
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO,
                                struct.pack("ll", int(limit), int(limit % 1 * 1e6)))
            sock.connect(self.path)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", 0, 0))
        except BlockingIOError:
            sock.close()
            raise errors.OperationalError(
                "dbpoold at %s did not accept the connection within %s (connect timeout): "
                "its accept queue is full; is it hung or overloaded? retry later"
                % (self.path, _fmt(limit)), errors.TIMEOUT) from None
        except OSError as e:
            sock.close()
            raise errors.OperationalError("cannot connect to dbpoold at %s: %s%s"
                                          % (self.path, e.strerror or e, _connect_hint(e)),
                                          errors.IO) from None
        self._sock = sock
        self._poll = select.poll()
        self._poll.register(sock.fileno(), select.POLLIN)
        self._handshake(pool, client_name, limit)

    def _handshake(self, pool, client_name, limit):
        saved, self.timeout, self._what = self.timeout, limit or None, "handshake"
        try:
            self.send(wire.hello(pool, client_name))
            self._busy = False          # nothing to CANCEL: the timeout closes at once
            ftype, buf, off, end = self.read_frame()
        except errors.OperationalError as e:
            if e.code == errors.TIMEOUT:
                e.message = ("dbpoold at %s accepted the connection but did not answer the "
                             "handshake within %s (connect timeout); is it hung or overloaded? "
                             "raise connect_timeout or $DBPOOL_CONNECT_TIMEOUT if it is just slow"
                             % (self.path, _fmt(limit)))
                e.args = (e.message,)
            raise
        finally:
            self.timeout, self._busy = saved, False
        if ftype == wire.ERROR:
            err = self.error(wire.get_error(buf, off, end))
            self.close_quietly(str(err))
            raise err
        if ftype != wire.HELLO_OK:
            raise self.malformed("expected HELLO_OK, got frame type %r" % chr(ftype))
        (self.backend, self.server, self.max_frame, self.max_params,
         self.max_batch) = wire.get_hello_ok(buf, off, end)

    # ---------------------------------------------------------- sending

    def request(self, data, what):
        """Sends one request (or several pipelined) and marks it outstanding."""
        self._check_open()
        self._what = what
        self.timed_out = False
        self._grace_deadline = None
        self.send(data)

    def send(self, data):
        with self._send_lock:
            if self.timeout is None:
                try:
                    self._sock.sendall(data, _NOSIGNAL)
                except OSError as e:
                    self._send_failed(e)
            else:
                self._send_bounded(data)
            self._busy = True

    def _send_bounded(self, data):
        view, sent = memoryview(data), 0
        deadline = time.monotonic() + self.timeout
        while sent < len(view):
            try:
                sent += self._sock.send(view[sent:], _DONTWAIT)
                continue
            except BlockingIOError:
                pass
            except OSError as e:
                self._send_failed(e)
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([], [self._sock], [], left)[1]:
                self._send_timed_out(sent)

    def _send_timed_out(self, sent):
        if sent:
            self.close_quietly("request timeout during a send")
            raise errors.OperationalError(
                "dbpoold did not read the %s within %s (request timeout) and half of it was "
                "sent; the session was closed. Is dbpoold hung or overloaded? reconnect"
                % (self._what, _fmt(self.timeout)), errors.TIMEOUT)
        raise errors.OperationalError(
            "dbpoold did not read the %s within %s (request timeout); nothing was sent and "
            "the session is still usable. Is dbpoold hung or overloaded?"
            % (self._what, _fmt(self.timeout)), errors.TIMEOUT)

    def _send_failed(self, e):
        """The daemon closed the socket: report the ERROR it sent before, if any."""
        try:
            while True:
                chunk = self._sock.recv(_RECV_SIZE, socket.MSG_DONTWAIT)
                if not chunk:
                    break
                self._append(chunk)
        except OSError:
            pass
        err = self._pending_error()
        self.close_quietly("send failed: %s" % e)
        raise err or self._gone_error() from None

    def _pending_error(self):
        while len(self._buf) - self._pos >= wire.HEADER_SIZE:
            length, ftype = wire.header(self._buf, self._pos)
            end = self._pos + 4 + length
            if end > len(self._buf):
                return None
            off, self._pos = self._pos + wire.HEADER_SIZE, end
            if ftype == wire.ERROR:
                return self.error(wire.get_error(self._buf, off, end))
        return None

    # ---------------------------------------------------------- cancel

    def cancel(self):
        """Sends CANCEL if a request is outstanding; never waits for the daemon
        to read. Safe from another thread. True if the frame was sent."""
        if not self._send_lock.acquire(timeout=0.2):
            return False
        try:
            if not self._busy or self._sock is None:
                return False
            return self._send_cancel()
        finally:
            self._send_lock.release()

    def _send_cancel(self):
        try:
            n = self._sock.send(_CANCEL_FRAME, _DONTWAIT)
        except OSError:
            return False
        if n < len(_CANCEL_FRAME):      # 5 bytes into a full buffer: finish them
            self._sock.sendall(_CANCEL_FRAME[n:], _NOSIGNAL)
        return True

    # ---------------------------------------------------------- reading

    def read_frame(self):
        """The next frame: (type, buffer, payload offset, payload end). The
        buffer is only valid until the next read_frame."""
        buf, pos = self._buf, self._pos
        if len(buf) - pos >= 5:
            length, ftype = wire.header(buf, pos)
            end = pos + 4 + length
            if end <= len(buf) and 0 < length <= self.max_frame:
                self._pos = end
                return ftype, buf, pos + 5, end
        return self._read_frame_slow()

    def _read_frame_slow(self):
        self._check_open()
        deadline = None
        if self.timeout is not None:
            deadline = self._grace_deadline or time.monotonic() + self.timeout
        self._fill(5, deadline)
        length, ftype = wire.header(self._buf, self._pos)
        if length == 0 or length > self.max_frame:
            raise self.malformed("frame length %d (limit %d)" % (length, self.max_frame))
        self._fill(4 + length, deadline)
        pos = self._pos
        self._pos = pos + 4 + length
        return ftype, self._buf, pos + 5, pos + 4 + length

    def _append(self, chunk):
        if self._pos >= len(self._buf):
            self._buf, self._pos = chunk, 0
        else:
            self._buf, self._pos = self._buf[self._pos:] + chunk, 0

    def _fill(self, need, deadline):
        """Reads until need bytes are buffered from the current position."""
        have = len(self._buf) - self._pos
        if have >= need:
            return
        parts = [self._buf[self._pos:]] if have else []
        while have < need:
            chunk = self._recv(max(_RECV_SIZE, min(need - have, 1 << 20)), deadline)
            parts.append(chunk)
            have += len(chunk)
            if deadline is not None and self._grace_deadline is not None:
                deadline = self._grace_deadline
        self._buf = parts[0] if len(parts) == 1 else b"".join(parts)
        self._pos = 0

    def _recv(self, size, deadline):
        while deadline is not None and not self._poll.poll(
                max(0, (deadline - time.monotonic()) * 1000)):
            deadline = self._expired()
        try:
            chunk = self._sock.recv(size)
        except OSError as e:
            self.close_quietly("recv failed: %s" % e)
            raise self._gone_error() from None
        if not chunk:
            self.close_quietly("end of file")
            raise self._gone_error()
        return chunk

    def _expired(self):
        """The request timeout expired: first CANCEL and a grace, then close."""
        if self._grace_deadline is None and self._busy:
            self.timed_out = True
            with self._send_lock:
                self._send_cancel()
            self._grace_deadline = time.monotonic() + min(self.timeout, _MAX_GRACE)
            return self._grace_deadline
        what, limit = self._what, self.timeout
        self.close_quietly("request timeout")
        extra = ("; whether the transaction committed is unknown" if what == "COMMIT" else "")
        raise errors.OperationalError(
            "dbpoold did not answer the %s within %s (request timeout) nor end it after a "
            "cancel; the session was closed%s. Is dbpoold hung or overloaded? reconnect"
            % (what, _fmt(limit), extra), errors.TIMEOUT, txstate="I")

    # ---------------------------------------------------------- results

    def finish(self, txstate):
        """A terminal frame arrived: the request is over."""
        self.txstate = txstate
        self._busy = False
        self._grace_deadline = None

    def error(self, fields):
        """The exception for an ERROR frame (which ends the request)."""
        code, sqlstate, message, tx, stmt_index, vendor = fields
        self.finish(tx)
        if self.timed_out and code == errors.CANCELED:
            message = ("the %s did not complete within %s (request timeout) and was cancelled; "
                       "the session is still usable%s. If it needs longer, raise the timeout "
                       "(connect(timeout=...), conn.timeout, $DBPOOL_TIMEOUT)"
                       % (self._what, _fmt(self.timeout),
                          "; the transaction failed: roll it back" if tx == "E" else ""))
            return errors.OperationalError(message, errors.TIMEOUT, sqlstate, vendor, tx,
                                           stmt_index)
        if code in errors.SESSION_ENDING:
            self.closed_reason = "%s: %s" % (errors.CODE_NAMES.get(code, code), message)
            self._close_socket()
        return errors.from_frame(code, sqlstate, message, tx, stmt_index, vendor)

    def malformed(self, what):
        self.close_quietly("malformed frame")
        return errors.InterfaceError("dbpoold sent a malformed frame (%s); the session was "
                                     "closed: is the client older than the daemon?" % what,
                                     errors.PROTOCOL)

    def unexpected(self, ftype, where):
        return self.malformed("unexpected frame %r %s" % (chr(ftype), where))

    # ---------------------------------------------------------- closing

    @property
    def is_open(self):
        return self._sock is not None

    def _check_open(self):
        if self._sock is None:
            raise errors.OperationalError(
                "the session with dbpoold is closed (%s); reconnect" % self.closed_reason,
                errors.IO, txstate="I")

    def _gone_error(self):
        shutting = self.closed_reason and "SHUTDOWN" in self.closed_reason
        return errors.OperationalError(
            "dbpoold closed the session (%s); reconnect"
            % ("it is shutting down" if shutting else "was it stopped or restarted?"),
            errors.IO, txstate="I")

    def _close_socket(self):
        sock, self._sock = self._sock, None
        self._busy = False
        self.txstate = "I"
        if sock is not None:
            sock.close()

    def close_quietly(self, reason):
        if self.closed_reason is None:
            self.closed_reason = reason
        self._close_socket()

    def terminate(self):
        """Polite goodbye: TERMINATE (never waits), then close."""
        if self._sock is not None:
            try:
                self._sock.send(_TERMINATE_FRAME, _DONTWAIT)
            except OSError:
                pass
        self.close_quietly("closed by the application")
