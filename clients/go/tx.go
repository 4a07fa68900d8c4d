// tx.go — transactions and pinned sessions. BeginTx sends BEGIN (READ_ONLY
// flag for sql.TxOptions.ReadOnly); a non-default isolation level is set in
// SQL where the backend has it (PostgreSQL: BEGIN ISOLATION LEVEL ...;
// MySQL: SET TRANSACTION + START TRANSACTION in one batch, so both run on
// the one server connection) and refused with a clear error where it does
// not. Pin / Unpin reach the session through (*sql.Conn).Raw.

package dbpool

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
)

var isolationSQL = map[sql.IsolationLevel]string{
	sql.LevelReadUncommitted: "READ UNCOMMITTED",
	sql.LevelReadCommitted:   "READ COMMITTED",
	sql.LevelRepeatableRead:  "REPEATABLE READ",
	sql.LevelSerializable:    "SERIALIZABLE",
}

// BeginTx opens a transaction (driver.ConnBeginTx).
func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if c.closed {
		return nil, driver.ErrBadConn
	}
	if c.tx != 'I' {
		return nil, driverError(CodeTxState, nil, "a transaction is already open on this session (a plain SQL BEGIN?); end it with COMMIT or ROLLBACK first")
	}
	level := sql.IsolationLevel(opts.Isolation)
	var err error
	switch {
	case level == sql.LevelDefault || (level == sql.LevelSerializable && c.hello.backend == "sqlite"):
		flags := 0
		if opts.ReadOnly {
			flags = 1
		}
		err = c.simple(ctx, fBegin, flags)
	default:
		err = c.beginIsolated(ctx, level, opts.ReadOnly)
	}
	if err != nil {
		return nil, err
	}
	return &tx{c: c}, nil
}

func (c *conn) beginIsolated(ctx context.Context, level sql.IsolationLevel, readOnly bool) error {
	name, ok := isolationSQL[level]
	if !ok || c.hello.backend == "sqlite" {
		return driverError(CodeUsage, nil, "isolation level %v is not available on a %s pool; %s", level, c.hello.backend, isolationHint(c.hello.backend))
	}
	access := ""
	if readOnly {
		access = " READ ONLY"
	}
	if c.hello.backend == "mysql" {
		return c.batch(ctx, "SET TRANSACTION ISOLATION LEVEL "+name, "START TRANSACTION"+access)
	}
	_, err := c.ExecContext(ctx, "BEGIN ISOLATION LEVEL "+name+access, nil)
	return err
}

func isolationHint(backend string) string {
	if backend == "sqlite" {
		return "SQLite transactions are always serializable: use sql.LevelDefault or sql.LevelSerializable"
	}
	return "use read uncommitted, read committed, repeatable read or serializable"
}

// batch runs statements without parameters in one non-atomic BATCH.
func (c *conn) batch(ctx context.Context, stmts ...string) error {
	k, err := c.startCall(ctx)
	if err != nil {
		return err
	}
	defer k.end()
	c.enc.start(fBatch)
	c.enc.u8(0)
	c.enc.u16(uint16(len(stmts)))
	for _, s := range stmts {
		c.enc.str(s)
		c.enc.u16(0)
	}
	if err := k.send(c.enc.finish()); err != nil {
		return err
	}
	for {
		f, err := k.read()
		if err != nil {
			return err
		}
		switch f.typ {
		case fColumns, fRow, fStmtDone:
		case fReady:
			c.tx = readyState(f.payload)
			return nil
		case fError:
			return k.fail(f.payload)
		default:
			return k.unexpected(f, "a batch's answer")
		}
	}
}

// tx is a database/sql transaction; Commit and Rollback have no context,
// so they are bounded by the DSN's timeout only.
type tx struct{ c *conn }

func (t *tx) Commit() error {
	return t.c.simple(context.Background(), fCommit, -1)
}

// Rollback ends the transaction; one the server already ended (a lost
// server connection, a deadlock on MySQL) needs nothing more.
func (t *tx) Rollback() error {
	if t.c.closed {
		return driver.ErrBadConn
	}
	if t.c.tx == 'I' {
		return nil
	}
	return t.c.simple(context.Background(), fRollback, -1)
}

// Session is what (*sql.Conn).Raw hands out: the dbpool session itself.
type Session interface {
	// Pin keeps one server connection for the session across transactions
	// (doc/protocol.md, "Pinned sessions"); outside a transaction only.
	Pin(ctx context.Context) error
	// Unpin gives it back (the daemon resets it first).
	Unpin(ctx context.Context) error
	// IsPinned says whether the session is pinned, as the daemon last said.
	IsPinned() bool
	// Backend is the pool's backend: "sqlite", "postgres" or "mysql".
	Backend() string
	// TxState is 'I', 'T' or 'E' after the last request.
	TxState() byte
}

func (c *conn) Pin(ctx context.Context) error {
	if err := c.simple(ctx, fPin, -1); err != nil {
		return err
	}
	c.pinned = true
	return nil
}

func (c *conn) Unpin(ctx context.Context) error {
	if err := c.simple(ctx, fUnpin, -1); err != nil {
		return err
	}
	c.pinned = false
	return nil
}

func (c *conn) IsPinned() bool  { return c.pinned && !c.closed }
func (c *conn) Backend() string { return c.hello.backend }
func (c *conn) TxState() byte   { return c.tx }

// Pin pins the session behind sc; keep sc (not the *sql.DB) for the work
// that needs the pin, and Unpin before sc.Close (otherwise the driver
// unpins when database/sql next reuses the session).
func Pin(ctx context.Context, sc *sql.Conn) error {
	return withSession(sc, func(s Session) error { return s.Pin(ctx) })
}

// Unpin ends the pin of the session behind sc.
func Unpin(ctx context.Context, sc *sql.Conn) error {
	return withSession(sc, func(s Session) error { return s.Unpin(ctx) })
}

func withSession(sc *sql.Conn, fn func(Session) error) error {
	return sc.Raw(func(dc interface{}) error {
		s, ok := dc.(Session)
		if !ok {
			return fmt.Errorf("dbpool: the *sql.Conn is a %T, not a dbpool session", dc)
		}
		return fn(s)
	})
}

// Begin is the context-less form database/sql no longer calls.
func (c *conn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}
