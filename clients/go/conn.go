// conn.go — one driver.Conn is one dbpoold session: the handshake, the
// request cycle (send one frame, read frames to the terminal READY or
// ERROR), cancellation through the protocol's CANCEL when the context ends
// (then a grace to read on to the terminal frame, else the session is
// closed, as libdbpool does), Ping, ResetSession, IsValid and Close.
// Statements and results are in query.go, transactions and pins in tx.go.

package dbpool

import (
	"bufio"
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// cancelGrace is how long a cancelled request may take to end (at most).
const cancelGrace = time.Second

type conn struct {
	cfg    Config
	nc     *net.UnixConn
	br     *bufio.Reader
	enc    encoder
	rbuf   []byte
	hello  helloOK
	tx     byte  // 'I', 'T', 'E' from the last terminal frame
	pinned bool  // as the daemon last said
	closed bool  // the session is gone (or out of step): never reused
	rows   *rows // the streaming result in progress, if any
	wmu    sync.Mutex
}

func dial(ctx context.Context, cfg Config) (*conn, error) {
	if cfg.ConnectTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.ConnectTimeout)
		defer cancel()
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", cfg.Socket)
	if err != nil {
		return nil, driverError(CodeIO, err, "cannot connect to dbpoold at %s: %v (is dbpoold running? set DBPOOL_SOCKET or the DSN's socket path)", cfg.Socket, unwrapOp(err))
	}
	c := &conn{cfg: cfg, nc: nc.(*net.UnixConn), tx: 'I'}
	c.br = bufio.NewReaderSize(c.nc, 64<<10)
	if err := c.handshake(ctx); err != nil {
		c.nc.Close()
		return nil, err
	}
	return c, nil
}

func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

func (c *conn) handshake(ctx context.Context) error {
	if dl, ok := ctx.Deadline(); ok {
		c.nc.SetDeadline(dl)
		defer c.nc.SetDeadline(time.Time{})
	}
	c.enc.start(fHello)
	c.enc.u16(protocolVersion)
	c.enc.str(c.cfg.Pool)
	c.enc.str(c.cfg.ClientName)
	if _, err := c.nc.Write(c.enc.finish()); err != nil {
		return c.handshakeErr(err)
	}
	f, err := c.readRaw()
	if err != nil {
		return c.handshakeErr(err)
	}
	switch f.typ {
	case fHelloOK:
		h, ok := decodeHelloOK(f.payload)
		if !ok {
			return driverError(CodeProtocol, nil, "malformed HELLO_OK from dbpoold at %s; is it a dbpoold speaking protocol %d?", c.cfg.Socket, protocolVersion)
		}
		c.hello = h
		return nil
	case fError:
		return c.errorFrame(f.payload)
	}
	return driverError(CodeProtocol, nil, "unexpected frame %q in answer to HELLO", f.typ)
}

func (c *conn) handshakeErr(err error) error {
	if isTimeout(err) {
		return driverError(CodeTimeout, err, "dbpoold at %s accepted the connection but did not answer the handshake within %v (connect timeout); is it hung or overloaded?", c.cfg.Socket, c.cfg.ConnectTimeout)
	}
	return driverError(CodeIO, err, "dbpoold at %s closed the session during the handshake (%v); is it shutting down?", c.cfg.Socket, err)
}

func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded)
}

// handshakeFrameLimit bounds the frames read before HELLO_OK announced
// the daemon's maxFrameSize.
const handshakeFrameLimit = 1 << 20

func (c *conn) readRaw() (frame, error) {
	limit := c.hello.maxFrame
	if limit == 0 {
		limit = handshakeFrameLimit
	}
	f, buf, err := readFrame(c.br, c.rbuf, limit)
	c.rbuf = buf
	return f, err
}

// errorFrame decodes an ERROR, follows its transaction state and closes
// the session when the daemon does.
func (c *conn) errorFrame(p []byte) error {
	e, ok := decodeError(p)
	if !ok {
		c.kill()
		return driverError(CodeProtocol, nil, "malformed ERROR frame from dbpoold; the session was closed, reconnect")
	}
	c.tx = e.TxState
	if e.Code == CodeConnLost {
		c.pinned = false
	}
	if e.closesSession() {
		c.kill()
		if e.Code == CodeShutdown {
			e.cause = driver.ErrBadConn // the request did not run: retry elsewhere
		}
	}
	return e
}

// kill drops the session at once.
func (c *conn) kill() {
	if !c.closed {
		c.closed = true
		c.nc.Close()
	}
}

// call is one request in flight: its context and the watcher that sends
// CANCEL when the context ends.
type call struct {
	c      *conn
	ctx    context.Context
	parent context.Context // the caller's
	cancel context.CancelFunc
	stop   chan struct{}
	done   chan struct{}
	fired  error // the context's error once CANCEL was sent (read after done)
	own    bool  // fired by the DSN's timeout, not the caller's context
	ended  bool
}

// startCall checks the session and starts watching ctx.
func (c *conn) startCall(ctx context.Context) (*call, error) {
	if c.closed {
		return nil, badConn("the session with dbpoold is closed; reconnect")
	}
	if c.rows != nil {
		if err := c.rows.abandon(); err != nil && c.closed {
			return nil, err
		}
	}
	k := &call{c: c, ctx: ctx, parent: ctx, cancel: func() {}}
	if c.cfg.Timeout > 0 {
		k.ctx, k.cancel = context.WithTimeout(ctx, c.cfg.Timeout)
	}
	if k.ctx.Done() != nil {
		k.stop, k.done = make(chan struct{}), make(chan struct{})
		go k.watch()
	}
	return k, nil
}

func (k *call) watch() {
	defer close(k.done)
	select {
	case <-k.stop:
	case <-k.ctx.Done():
		k.fired = k.ctx.Err()
		k.own = k.c.cfg.Timeout > 0 && k.parent.Err() == nil
		k.c.sendCancel(k.grace())
	}
}

func (k *call) grace() time.Duration {
	if t := k.c.cfg.Timeout; t > 0 && t < cancelGrace {
		return t
	}
	return cancelGrace
}

// sendCancel writes CANCEL and bounds the rest of the answer by the grace.
// A request whose own send is stuck (the daemon not reading) is cut.
func (c *conn) sendCancel(grace time.Duration) {
	now := time.Now()
	if !c.wmu.TryLock() {
		c.nc.SetDeadline(now)
		return
	}
	defer c.wmu.Unlock()
	var e encoder
	e.start(fCancel)
	c.nc.SetWriteDeadline(now.Add(grace))
	c.nc.Write(e.finish())
	c.nc.SetWriteDeadline(time.Time{})
	c.nc.SetReadDeadline(now.Add(grace))
}

// end stops the watcher; after it no CANCEL can be sent for this call.
func (k *call) end() {
	if k.ended {
		return
	}
	k.ended = true
	if k.stop != nil {
		close(k.stop)
		<-k.done
		if k.fired != nil && !k.c.closed {
			k.c.nc.SetDeadline(time.Time{})
		}
	}
	k.cancel()
}

// send writes the encoded request frame.
func (k *call) send(b []byte) error {
	c := k.c
	if max := c.hello.maxFrame; max != 0 && uint64(len(b)-4) > uint64(max) {
		return driverError(CodeUsage, nil, "the request is %d bytes, above the daemon's maxFrameSize %d; send less per statement, or raise daemon.maxFrameSize", len(b)-4, max)
	}
	c.wmu.Lock()
	if dl, ok := k.ctx.Deadline(); ok {
		c.nc.SetWriteDeadline(dl)
	}
	n, err := c.nc.Write(b)
	c.nc.SetWriteDeadline(time.Time{})
	c.wmu.Unlock()
	if err == nil {
		return nil
	}
	c.kill()
	if n == 0 {
		return badConn("dbpoold closed the session before the request was sent (%v); was it stopped or restarted? reconnect", unwrapOp(err))
	}
	return driverError(CodeIO, err, "sending to dbpoold failed half-way (%v); the session was closed, reconnect", unwrapOp(err))
}

// read reads the next frame of the answer; a failure closes the session.
func (k *call) read() (frame, error) {
	f, err := k.c.readRaw()
	if err == nil {
		return f, nil
	}
	k.end()
	k.c.kill()
	if k.own {
		return f, driverError(CodeTimeout, k.fired, "dbpoold did not answer within %v (the DSN's timeout) nor end the request after a cancel; the session was closed. Is dbpoold hung or overloaded? (the daemon rolls back an open transaction)", k.c.cfg.Timeout)
	}
	if k.fired != nil {
		return f, driverError(CodeCanceled, k.fired, "the statement was cancelled (%v) and dbpoold did not end it within %v; the session was closed (the daemon rolls back its transaction)", k.fired, k.grace())
	}
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
		return f, driverError(CodeIO, err, "dbpoold closed the session (was it stopped or restarted?); reconnect")
	}
	return f, driverError(CodeIO, err, "reading from dbpoold failed: %v; the session was closed", err)
}

// fail turns an ERROR frame into the error of the call.
func (k *call) fail(p []byte) error {
	k.end()
	err := k.c.errorFrame(p)
	var e *Error
	if k.fired != nil && errors.As(err, &e) && e.Code == CodeCanceled {
		e.cause = k.fired
		if k.own {
			e.Code = CodeTimeout
			e.Message = fmt.Sprintf("the request did not complete within %v (the DSN's timeout) and was cancelled; the session is still usable. If it needs longer, raise timeout in the DSN or $DBPOOL_TIMEOUT (dbpoold: %s)", k.c.cfg.Timeout, e.Message)
		}
	}
	return err
}

// unexpected handles a frame out of sequence: the stream is out of step.
func (k *call) unexpected(f frame, what string) error {
	k.end()
	k.c.kill()
	return driverError(CodeProtocol, nil, "unexpected frame %q from dbpoold while reading %s; the session was closed", f.typ, what)
}

// simple runs a request answered by READY or ERROR alone.
func (c *conn) simple(ctx context.Context, typ byte, flags int) error {
	k, err := c.startCall(ctx)
	if err != nil {
		return err
	}
	defer k.end()
	c.enc.start(typ)
	if flags >= 0 {
		c.enc.u8(byte(flags))
	}
	if err := k.send(c.enc.finish()); err != nil {
		return err
	}
	f, err := k.read()
	if err != nil {
		return err
	}
	switch f.typ {
	case fReady:
		c.tx = readyState(f.payload)
		return nil
	case fError:
		return k.fail(f.payload)
	}
	return k.unexpected(f, "a READY")
}

func readyState(p []byte) byte {
	if len(p) > 0 {
		return p[0]
	}
	return 'I'
}

// Ping sends PING (driver.Pinger).
func (c *conn) Ping(ctx context.Context) error {
	if c.closed {
		return driver.ErrBadConn
	}
	return c.simple(ctx, fPing, -1)
}

// IsValid says whether database/sql may keep the session (driver.Validator).
func (c *conn) IsValid() bool { return !c.closed }

// ResetSession runs before a pooled session is reused: a session the
// daemon closed (stopped, restarted, SHUTDOWN sent) is dropped, an open
// transaction (plain SQL BEGIN left behind) rolled back, a pin ended.
func (c *conn) ResetSession(ctx context.Context) error {
	if c.closed || !c.peerAlive() {
		c.kill()
		return driver.ErrBadConn
	}
	if c.tx != 'I' {
		if err := c.simple(ctx, fRollback, -1); err != nil {
			c.kill()
			return driver.ErrBadConn
		}
	}
	if c.pinned {
		if err := c.Unpin(ctx); err != nil {
			c.kill()
			return driver.ErrBadConn
		}
	}
	return nil
}

// peerAlive peeks at the socket without blocking: between requests the
// daemon sends nothing, so EOF or any byte means the session is over.
func (c *conn) peerAlive() bool {
	if c.br.Buffered() > 0 {
		return false
	}
	rc, err := c.nc.SyscallConn()
	if err != nil {
		return false
	}
	alive := true
	rc.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		_ = n
		alive = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
		return true
	})
	return alive
}

// Close ends the session (TERMINATE, then close).
func (c *conn) Close() error {
	if c.closed {
		return nil
	}
	if c.rows == nil {
		c.enc.start(fTerminate)
		c.nc.SetWriteDeadline(time.Now().Add(cancelGrace))
		c.nc.Write(c.enc.finish())
	}
	c.kill()
	return nil
}

// The interfaces database/sql looks for.
var (
	_ driver.Conn                           = (*conn)(nil)
	_ driver.ConnBeginTx                    = (*conn)(nil)
	_ driver.ConnPrepareContext             = (*conn)(nil)
	_ driver.ExecerContext                  = (*conn)(nil)
	_ driver.QueryerContext                 = (*conn)(nil)
	_ driver.Pinger                         = (*conn)(nil)
	_ driver.SessionResetter                = (*conn)(nil)
	_ driver.Validator                      = (*conn)(nil)
	_ driver.NamedValueChecker              = (*conn)(nil)
	_ Session                               = (*conn)(nil)
	_ driver.DriverContext                  = (*Driver)(nil)
	_ driver.StmtExecContext                = (*stmt)(nil)
	_ driver.StmtQueryContext               = (*stmt)(nil)
	_ driver.RowsColumnTypeDatabaseTypeName = (*rows)(nil)
	_ driver.RowsColumnTypeScanType         = (*rows)(nil)
)
