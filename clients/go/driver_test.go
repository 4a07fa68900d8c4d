// driver_test.go — the driver against the real dbpoold on a SQLite pool:
// types both ways, errors through errors.As, transactions (read-only,
// isolation), cancellation of a running statement by its context,
// streaming 100k rows in bounded memory, pinned sessions, and the daemon
// going away and coming back.

package dbpool

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"
)

const endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c WHERE x < 0"

func TestTypesSQLite(t *testing.T) {
	db := testDaemon.open(t, "app", "")
	var (
		i  int64
		f  float64
		s  string
		b  []byte
		n  sql.NullString
		bo bool
	)
	err := db.QueryRow("SELECT ?, ?, ?, ?, ?, ?", int64(-1<<62), 2.5, "héllo", []byte{0, 0xff}, nil, true).Scan(&i, &f, &s, &b, &n, &bo)
	if err != nil {
		t.Fatal(err)
	}
	if i != -1<<62 || f != 2.5 || s != "héllo" || !bytes.Equal(b, []byte{0, 0xff}) || n.Valid || !bo {
		t.Fatalf("round trip: %v %v %q %x %v %v", i, f, s, b, n, bo)
	}
	var v interface{}
	if err := db.QueryRow("SELECT x'00ff'").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if _, ok := v.([]byte); !ok {
		t.Fatalf("a BLOB scanned into interface{} is %T, want []byte", v)
	}
}

func TestTimeAndParseTime(t *testing.T) {
	db := testDaemon.open(t, "app", "&parseTime=true")
	mustExec(t, db, "CREATE TABLE IF NOT EXISTS ev (id INTEGER PRIMARY KEY, at TIMESTAMP, d DATE, label TEXT)")
	at := time.Date(2024, 2, 29, 13, 14, 15, 123456789, time.FixedZone("X", 5*3600+1800))
	res, err := db.Exec("INSERT INTO ev (at, d, label) VALUES (?, ?, ?)", at, "2024-03-01", at)
	if err != nil {
		t.Fatal(err)
	}
	id, err := res.LastInsertId()
	if err != nil || id <= 0 {
		t.Fatalf("LastInsertId: %d, %v", id, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("RowsAffected %d, want 1", n)
	}
	var got, day time.Time
	var label string
	if err := db.QueryRow("SELECT at, d, label FROM ev WHERE id = ?", id).Scan(&got, &day, &label); err != nil {
		t.Fatal(err)
	}
	if !got.Equal(at) || day.Format("2006-01-02") != "2024-03-01" {
		t.Fatalf("parseTime: %v / %v, want %v / 2024-03-01", got, day, at)
	}
	if label != "2024-02-29 13:14:15.123456789+05:30" {
		t.Fatalf("a time.Time parameter is sent as %q", label)
	}
}

func mustExec(t testing.TB, db *sql.DB, q string, args ...interface{}) sql.Result {
	t.Helper()
	r, err := db.Exec(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return r
}

func TestErrorsAs(t *testing.T) {
	db := testDaemon.open(t, "app", "")
	mustExec(t, db, "CREATE TABLE IF NOT EXISTS uq (id INTEGER PRIMARY KEY, v TEXT UNIQUE)")
	mustExec(t, db, "DELETE FROM uq")
	mustExec(t, db, "INSERT INTO uq (v) VALUES ('a')")
	_, err := db.Exec("INSERT INTO uq (v) VALUES (?)", "a")
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("duplicate key: %T %v, want *dbpool.Error", err, err)
	}
	if e.Code != CodeSQL || e.SQLState != "23505" || e.VendorCode != 2067 || e.Message == "" {
		t.Fatalf("duplicate key: code %d sqlstate %q vendor %d message %q", e.Code, e.SQLState, e.VendorCode, e.Message)
	}
	_, err = db.Exec("SELEC 1")
	if !errors.As(err, &e) || e.SQLState != "42601" {
		t.Fatalf("syntax error: %v", err)
	}
	_, err = db.Exec("SELECT ?", 1, 2)
	if !errors.As(err, &e) || e.SQLState != "07001" {
		t.Fatalf("parameter count: %v", err)
	}
}

func TestTransactionsSQLite(t *testing.T) {
	ctx := context.Background()
	db := testDaemon.open(t, "app", "")
	mustExec(t, db, "CREATE TABLE IF NOT EXISTS acct (id INTEGER PRIMARY KEY, n INTEGER)")
	mustExec(t, db, "DELETE FROM acct")
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("INSERT INTO acct (id, n) VALUES (1, 10)"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	tx, _ = db.BeginTx(ctx, nil)
	tx.Exec("INSERT INTO acct (id, n) VALUES (2, 20)")
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var ids string
	db.QueryRow("SELECT group_concat(id) FROM acct").Scan(&ids)
	if ids != "2" {
		t.Fatalf("after rollback + commit the rows are %q, want 2", ids)
	}
	checkReadOnly(t, db, "INSERT INTO acct (id, n) VALUES (3, 30)")
	_, err = db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeUsage {
		t.Fatalf("read committed on SQLite: %v, want a USAGE error", err)
	}
	tx, err = db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelSerializable})
	if err != nil {
		t.Fatalf("serializable on SQLite: %v", err)
	}
	tx.Rollback()
}

// TestCancelByContext: the context ends a statement that would run for
// ever; the call returns in bounded time and the session serves on.
func TestCancelByContext(t *testing.T) {
	db := testDaemon.open(t, "app", "")
	db.SetMaxOpenConns(1)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	var n int64
	err := db.QueryRowContext(ctx, endless).Scan(&n)
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the cancelled statement returned after %v", took)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled statement: %v, want context.DeadlineExceeded", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeCanceled || e.SQLState != "57014" {
		t.Fatalf("cancelled statement: %v, want CANCELED 57014", err)
	}
	if err := db.QueryRow("SELECT 42").Scan(&n); err != nil || n != 42 {
		t.Fatalf("after the cancel: %v %d", err, n)
	}
}

// TestTimeoutDSN: the DSN's timeout bounds a request without a deadline.
func TestTimeoutDSN(t *testing.T) {
	db := testDaemon.open(t, "app", "&timeout=200ms")
	var n int64
	err := db.QueryRow(endless).Scan(&n)
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeTimeout || e.SQLState != "57014" || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("statement above the DSN timeout: %v, want TIMEOUT 57014", err)
	}
	t.Logf("statement above the DSN timeout: %v", err)
	if err := db.QueryRow("SELECT 7").Scan(&n); err != nil || n != 7 {
		t.Fatalf("after the timeout: %v %d", err, n)
	}
}

// TestStreaming100k reads 100k rows of 1 kB: the driver holds one row at a
// time, so the heap stays far below the result's 100 MB.
func TestStreaming100k(t *testing.T) {
	db := testDaemon.open(t, "app", "")
	rows, err := db.Query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 100000) SELECT x, randomblob(1000) FROM c")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var count, sum, x int64
	var blob []byte
	var peak uint64
	var ms runtime.MemStats
	for rows.Next() {
		if err := rows.Scan(&x, &blob); err != nil {
			t.Fatal(err)
		}
		if len(blob) != 1000 {
			t.Fatalf("row %d: blob of %d bytes", x, len(blob))
		}
		count++
		sum += x
		if count%10000 == 0 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak {
				peak = ms.HeapInuse
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if count != 100000 || sum != 100000*100001/2 {
		t.Fatalf("%d rows, sum %d", count, sum)
	}
	if peak > 32<<20 {
		t.Fatalf("heap in use reached %d MB while streaming: rows are being held", peak>>20)
	}
}

// TestEarlyClose: closing rows half-way leaves the session in step.
func TestEarlyClose(t *testing.T) {
	db := testDaemon.open(t, "app", "")
	db.SetMaxOpenConns(1)
	var x int64
	if err := db.QueryRow("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 5000) SELECT x FROM c").Scan(&x); err != nil || x != 1 {
		t.Fatalf("QueryRow: %v %d", err, x)
	}
	if err := db.QueryRow("SELECT 99").Scan(&x); err != nil || x != 99 {
		t.Fatalf("the next statement: %v %d", err, x)
	}
}

// TestInterleaved: a statement run while rows are open on the same
// connection; the rest of the rows are reported dropped, not complete.
func TestInterleaved(t *testing.T) {
	ctx := context.Background()
	sc := session(t, testDaemon.open(t, "app", ""))
	rows, err := sc.QueryContext(ctx, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 10) SELECT x FROM c")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	rows.Next()
	var x int64
	if err := sc.QueryRowContext(ctx, "SELECT 5").Scan(&x); err != nil || x != 5 {
		t.Fatalf("second statement: %v %d", err, x)
	}
	n := 0
	for rows.Next() {
		n++
	}
	var e *Error
	if n != 0 || !errors.As(rows.Err(), &e) || e.Code != CodeUsage {
		t.Fatalf("the interrupted rows: %d more rows, err %v", n, rows.Err())
	}
}

// TestPinSQLite: a pinned session keeps its connection (a temporary table
// lives on); after Unpin it is reset.
func TestPinSQLite(t *testing.T) {
	ctx := context.Background()
	sc := session(t, testDaemon.open(t, "app", ""))
	if err := Pin(ctx, sc); err != nil {
		t.Fatal(err)
	}
	sc.Raw(func(dc interface{}) error {
		if !dc.(Session).IsPinned() {
			t.Error("IsPinned is false after Pin")
		}
		return nil
	})
	if _, err := sc.ExecContext(ctx, "CREATE TEMP TABLE scratch (x INTEGER)"); err != nil {
		t.Fatal(err)
	}
	sc.ExecContext(ctx, "INSERT INTO scratch VALUES (5)")
	var x int64
	if err := sc.QueryRowContext(ctx, "SELECT x FROM scratch").Scan(&x); err != nil || x != 5 {
		t.Fatalf("temporary table of the pinned session: %v %d", err, x)
	}
	if err := Unpin(ctx, sc); err != nil {
		t.Fatal(err)
	}
	err := sc.QueryRowContext(ctx, "SELECT x FROM scratch").Scan(&x)
	var e *Error
	if !errors.As(err, &e) || e.SQLState != "42P01" {
		t.Fatalf("after Unpin the temporary table should be gone: %v", err)
	}
}

// TestDaemonGoesAway: idle sessions of a stopped daemon are dropped, a
// transaction cut by the stop fails with a clear error in bounded time,
// and the sql.DB serves again once the daemon is back.
func TestDaemonGoesAway(t *testing.T) {
	dir := t.TempDir()
	d := &daemon{dir: dir, sock: filepath.Join(dir, "d.sock")}
	if err := d.start(); err != nil {
		t.Fatal(err)
	}
	defer d.stop()
	db := d.open(t, "app", "")
	mustExec(t, db, "CREATE TABLE t (x INTEGER)")
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	tx.Exec("INSERT INTO t VALUES (1)")
	d.stop()
	start := time.Now()
	err = tx.Commit()
	var e *Error
	if !errors.As(err, &e) || (e.Code != CodeIO && e.Code != CodeShutdown) {
		t.Fatalf("commit after the daemon stopped: %v", err)
	}
	_, err = db.Exec("INSERT INTO t VALUES (2)")
	if !errors.As(err, &e) || e.Code != CodeIO || time.Since(start) > 5*time.Second {
		t.Fatalf("statement while the daemon is down: %v (after %v)", err, time.Since(start))
	}
	if err := d.start(); err != nil {
		t.Fatal(err)
	}
	var n int64
	if err := db.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil || n != 0 {
		t.Fatalf("after the restart: %v, %d rows (the cut transaction must not have committed)", err, n)
	}
}

func TestDSN(t *testing.T) {
	t.Setenv("DBPOOL_SOCKET", "/tmp/x.sock")
	t.Setenv("DBPOOL_TIMEOUT", "")
	cfg, err := ParseDSN("?pool=app&client=web&connect_timeout=250ms&timeout=1m30s&parseTime=true")
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Socket: "/tmp/x.sock", Pool: "app", ClientName: "web", ConnectTimeout: 250 * time.Millisecond,
		Timeout: 90 * time.Second, ParseTime: true, TranslatePlaceholders: true}
	if cfg != want {
		t.Fatalf("%+v, want %+v", cfg, want)
	}
	if cfg, _ := ParseDSN("unix:run/d.sock?pool=p"); cfg.Socket != "run/d.sock" {
		t.Errorf("relative socket path: %q", cfg.Socket)
	}
	cfg, _ = ParseDSN("unix:///run/d.sock?pool=p&placeholders=native")
	if cfg.Socket != "/run/d.sock" || cfg.TranslatePlaceholders || cfg.ConnectTimeout != DefaultConnectTimeout {
		t.Fatalf("%+v", cfg)
	}
	for _, bad := range []string{"unix:///s?pool=p&timeout=5", "tcp://h/?pool=p", "unix:///s?pool=p&colour=red", "unix:///s?pool=p&parseTime=maybe"} {
		if _, err := ParseDSN(bad); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
	t.Setenv("DBPOOL_POOL", "")
	if cfg, _ := ParseDSN("unix:///s"); cfg.Pool != "app" {
		t.Errorf("default pool %q, want app", cfg.Pool)
	}
	t.Setenv("DBPOOL_POOL", "billing")
	if cfg, _ := ParseDSN("unix:///s"); cfg.Pool != "billing" {
		t.Errorf("$DBPOOL_POOL: pool %q", cfg.Pool)
	}
	t.Setenv("DBPOOL_TIMEOUT", "2s")
	if cfg, _ := ParseDSN("?pool=p"); cfg.Timeout != 2*time.Second {
		t.Errorf("$DBPOOL_TIMEOUT: %v", cfg.Timeout)
	}
}

func TestPlaceholders(t *testing.T) {
	cases := map[string]string{
		"SELECT ?, ?":                       "SELECT $1, $2",
		"SELECT '?', ? -- ?\n, ?":           "SELECT '?', $1 -- ?\n, $2",
		`SELECT "a?" , E'\'?', ?`:           `SELECT "a?" , E'\'?', $1`,
		"SELECT $$ ? $$, $tag$ ?$ $tag$, ?": "SELECT $$ ? $$, $tag$ ?$ $tag$, $1",
		"SELECT /* ? /* ? */ ? */ ?":        "SELECT /* ? /* ? */ ? */ $1",
		"SELECT 'it''s ?', ?":               "SELECT 'it''s ?', $1",
	}
	for in, want := range cases {
		if got := translatePlaceholders(in); got != want {
			t.Errorf("%q -> %q, want %q", in, got, want)
		}
	}
}

func ExampleNewConnector() {
	db := sql.OpenDB(NewConnector(Config{Socket: testDaemon.sock, Pool: "app", ClientName: "example"}))
	defer db.Close()
	var greeting string
	if err := db.QueryRow("SELECT ? || ' ' || ?", "hello", "dbpool").Scan(&greeting); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(greeting)
	// Output: hello dbpool
}

// TestDaemonFrozen: a daemon that answers nothing (SIGSTOP). A statement
// whose context ends gets no answer to its CANCEL either: the session is
// closed after the grace, in bounded time; a new session fails the
// connect timeout; after SIGCONT the sql.DB serves again.
func TestDaemonFrozen(t *testing.T) {
	dir := t.TempDir()
	d := &daemon{dir: dir, sock: filepath.Join(dir, "d.sock")}
	if err := d.start(); err != nil {
		t.Fatal(err)
	}
	defer d.stop()
	db := d.open(t, "app", "&connect_timeout=300ms")
	db.SetMaxOpenConns(1)
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	d.cmd.Process.Signal(syscall.SIGSTOP)
	defer d.cmd.Process.Signal(syscall.SIGCONT)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	var n int64
	err := db.QueryRowContext(ctx, "SELECT 1").Scan(&n)
	var e *Error
	if took := time.Since(start); took > 3*time.Second || !errors.Is(err, context.DeadlineExceeded) ||
		!errors.As(err, &e) || e.Code != CodeCanceled {
		t.Fatalf("statement on a frozen daemon: %v after %v", err, took)
	}
	t.Logf("statement on a frozen daemon: %v", err)
	start = time.Now()
	err = db.QueryRow("SELECT 1").Scan(&n)
	if took := time.Since(start); took > 3*time.Second || !errors.As(err, &e) || e.Code != CodeTimeout {
		t.Fatalf("new session on a frozen daemon: %v after %v, want TIMEOUT (connect timeout)", err, took)
	}
	d.cmd.Process.Signal(syscall.SIGCONT)
	if err := db.QueryRow("SELECT 3").Scan(&n); err != nil || n != 3 {
		t.Fatalf("after SIGCONT: %v %d", err, n)
	}
}

// TestResetSession: a session given back to database/sql inside a plain
// SQL transaction, and pinned, is rolled back and unpinned before reuse.
func TestResetSession(t *testing.T) {
	ctx := context.Background()
	db := testDaemon.open(t, "app", "")
	db.SetMaxOpenConns(1)
	mustExec(t, db, "CREATE TABLE IF NOT EXISTS rs (x INTEGER)")
	mustExec(t, db, "DELETE FROM rs")
	sc, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := Pin(ctx, sc); err != nil {
		t.Fatal(err)
	}
	sc.ExecContext(ctx, "BEGIN")
	if _, err := sc.ExecContext(ctx, "INSERT INTO rs VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	sc.Close()
	var n int64
	if err := db.QueryRow("SELECT count(*) FROM rs").Scan(&n); err != nil || n != 0 {
		t.Fatalf("the abandoned transaction: %v, %d rows visible", err, n)
	}
	sc = session(t, db)
	sc.Raw(func(dc interface{}) error {
		if s := dc.(Session); s.IsPinned() || s.TxState() != 'I' {
			t.Errorf("reused session: pinned %v, txstate %c", s.IsPinned(), s.TxState())
		}
		return nil
	})
}
