// query.go — statements: QUERY frames built from driver arguments
// (placeholders translated on PostgreSQL pools), ExecContext reading to the
// terminal frame, QueryContext returning rows that stream one ROW frame per
// Next (never a whole result in memory), and client-side prepared
// statements (the daemon caches server-side statements itself).

package dbpool

import (
	"context"
	"database/sql/driver"
	"io"
	"reflect"
	"strings"
	"time"
)

// encodeQuery builds the QUERY frame in c.enc.
func (c *conn) encodeQuery(query string, args []driver.NamedValue) error {
	if len(args) > 0 && c.hello.backend == "postgres" && c.cfg.TranslatePlaceholders {
		query = translatePlaceholders(query)
	}
	if c.hello.maxParams != 0 && len(args) > int(c.hello.maxParams) {
		return driverError(CodeUsage, nil, "too many parameters: %d (dbpoold allows at most %d); split the statement, or raise daemon.maxParams", len(args), c.hello.maxParams)
	}
	c.enc.start(fQuery)
	c.enc.str(query)
	c.enc.u16(uint16(len(args)))
	for _, a := range args {
		if a.Name != "" {
			return driverError(CodeUsage, nil, "named parameter %q: dbpool takes positional parameters only (? or $N)", a.Name)
		}
		if err := c.appendValue(a.Value); err != nil {
			return err
		}
	}
	return nil
}

// startQuery starts a call and sends the QUERY.
func (c *conn) startQuery(ctx context.Context, query string, args []driver.NamedValue) (*call, error) {
	k, err := c.startCall(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.encodeQuery(query, args); err != nil {
		k.end()
		return nil, err
	}
	if err := k.send(c.enc.finish()); err != nil {
		k.end()
		return nil, err
	}
	return k, nil
}

// ExecContext runs a statement and discards any rows (driver.ExecerContext).
func (c *conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	k, err := c.startQuery(ctx, query, args)
	if err != nil {
		return nil, err
	}
	defer k.end()
	res := result{backend: c.hello.backend}
	for {
		f, err := k.read()
		if err != nil {
			return nil, err
		}
		switch f.typ {
		case fColumns, fRow:
		case fStmtDone:
			res.affected, res.lastID, _ = decodeStmtDone(f.payload)
		case fReady:
			c.tx = readyState(f.payload)
			return res, nil
		case fError:
			return nil, k.fail(f.payload)
		default:
			return nil, k.unexpected(f, "a statement's answer")
		}
	}
}

// QueryContext runs a statement and streams its rows (driver.QueryerContext).
func (c *conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	k, err := c.startQuery(ctx, query, args)
	if err != nil {
		return nil, err
	}
	r := &rows{c: c, k: k}
	f, err := k.read()
	if err != nil {
		return nil, err
	}
	switch f.typ {
	case fColumns:
		names, types, ok := decodeColumns(f.payload)
		if !ok {
			return nil, k.unexpected(f, "malformed COLUMNS")
		}
		r.names, r.types = names, types
	case fStmtDone:
		r.affected, r.lastID, _ = decodeStmtDone(f.payload)
	case fError:
		return nil, k.fail(f.payload)
	default:
		return nil, k.unexpected(f, "a statement's answer")
	}
	c.rows = r
	return r, nil
}

// rows streams one result: each Next reads one frame.
type rows struct {
	c        *conn
	k        *call
	names    []string
	types    []string
	affected int64
	lastID   int64
	done     bool
	err      error
}

func (r *rows) Columns() []string { return r.names }

// ColumnTypeDatabaseTypeName is the declared type, upper case ("" if none).
func (r *rows) ColumnTypeDatabaseTypeName(i int) string { return strings.ToUpper(r.types[i]) }

// ColumnTypeScanType is the Go type values of the column usually have.
func (r *rows) ColumnTypeScanType(i int) reflect.Type {
	switch t := strings.TrimSuffix(strings.ToLower(r.types[i]), " unsigned"); {
	case intTypes[t]:
		return reflect.TypeOf(int64(0))
	case strings.HasPrefix(t, "float") || t == "double" || t == "real" || t == "double precision":
		return reflect.TypeOf(float64(0))
	case t == "bool" || t == "boolean":
		return reflect.TypeOf(false)
	case t == "bytea" || strings.Contains(t, "blob") || strings.Contains(t, "binary"):
		return reflect.TypeOf([]byte(nil))
	case r.c.cfg.ParseTime && isTimeType(t):
		return reflect.TypeOf(time.Time{})
	}
	return reflect.TypeOf(new(interface{})).Elem()
}

// intTypes are the declared integer types of the three backends.
var intTypes = map[string]bool{
	"int": true, "integer": true, "int2": true, "int4": true, "int8": true, "smallint": true,
	"bigint": true, "tinyint": true, "mediumint": true, "year": true,
}

// Next reads the next row; io.EOF at the end of the statement.
func (r *rows) Next(dest []driver.Value) error {
	for !r.done {
		f, err := r.k.read()
		if err != nil {
			return r.finish(err)
		}
		switch f.typ {
		case fRow:
			return r.decodeRow(f, dest)
		case fStmtDone:
			r.affected, r.lastID, _ = decodeStmtDone(f.payload)
		case fReady:
			r.c.tx = readyState(f.payload)
			return r.finish(io.EOF)
		case fError:
			return r.finish(r.k.fail(f.payload))
		default:
			return r.finish(r.k.unexpected(f, "rows"))
		}
	}
	return r.err
}

func (r *rows) decodeRow(f frame, dest []driver.Value) error {
	d := decoder{p: f.payload}
	if n := int(d.u16()); n != len(r.names) || n != len(dest) {
		return r.finish(r.k.unexpected(f, "a ROW of the wrong width"))
	}
	for i := range dest {
		v, tag := d.value()
		if tag == tagText && r.c.cfg.ParseTime && isTimeType(r.types[i]) {
			v = parseTimeText(v.(string))
		}
		dest[i] = v
	}
	if d.bad {
		return r.finish(r.k.unexpected(f, "a malformed ROW"))
	}
	return nil
}

func (r *rows) finish(err error) error {
	r.done, r.err = true, err
	r.k.end()
	if r.c.rows == r {
		r.c.rows = nil
	}
	return err
}

// Close reads the rest of the statement's answer (without cancelling it:
// inside a PostgreSQL transaction a cancel would fail the transaction),
// so the session is in step for the next request.
func (r *rows) Close() error {
	for !r.done {
		var scratch [64]driver.Value
		dest := scratch[:0]
		if len(r.names) <= len(scratch) {
			dest = scratch[:len(r.names)]
		} else {
			dest = make([]driver.Value, len(r.names))
		}
		r.Next(dest)
	}
	if r.err == io.EOF {
		return nil
	}
	return r.err
}

// abandon ends rows whose reader ran another statement on the session
// before reading them all: the rest is read and dropped, and the rows
// report that instead of ending as if complete.
func (r *rows) abandon() error {
	dest := make([]driver.Value, len(r.names))
	dropped := 0
	for !r.done {
		if r.Next(dest) == nil {
			dropped++
		}
	}
	if r.err == io.EOF && dropped > 0 {
		r.err = driverError(CodeUsage, nil, "%d rows of this result were dropped: another statement ran on the same connection before they were read; read or close rows first (or use a second connection)", dropped)
	}
	if r.err == io.EOF {
		return nil
	}
	return r.err
}

// result is a statement's STMT_DONE.
type result struct {
	backend  string
	affected int64
	lastID   int64
}

func (r result) RowsAffected() (int64, error) { return r.affected, nil }

func (r result) LastInsertId() (int64, error) {
	if r.backend == "postgres" {
		return 0, driverError(CodeUsage, nil, "LastInsertId is not supported on PostgreSQL: use INSERT ... RETURNING id with QueryRow")
	}
	return r.lastID, nil
}

// PrepareContext returns a client-side statement: dbpoold prepares and
// caches server-side statements itself (driver.ConnPrepareContext).
func (c *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if c.closed {
		return nil, driver.ErrBadConn
	}
	return &stmt{c: c, query: query}, nil
}

func (c *conn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

type stmt struct {
	c     *conn
	query string
}

func (s *stmt) Close() error  { return nil }
func (s *stmt) NumInput() int { return -1 } // the daemon checks the count (07001)

func (s *stmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	return s.c.ExecContext(ctx, s.query, args)
}

func (s *stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	return s.c.QueryContext(ctx, s.query, args)
}

func (s *stmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.ExecContext(context.Background(), named(args))
}

func (s *stmt) Query(args []driver.Value) (driver.Rows, error) {
	return s.QueryContext(context.Background(), named(args))
}

func (s *stmt) CheckNamedValue(nv *driver.NamedValue) error { return s.c.CheckNamedValue(nv) }

func named(args []driver.Value) []driver.NamedValue {
	nv := make([]driver.NamedValue, len(args))
	for i, a := range args {
		nv[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
	return nv
}
