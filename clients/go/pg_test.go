// pg_test.go — the driver on the PostgreSQL pool "pg" of the test daemon
// (run under tests/pg/run-pg-tests.sh; skipped without its server): types
// as PostgreSQL sends them, ? translated to $N, SQLSTATE through errors.As,
// read-only and isolated transactions, and a cancelled pg_sleep inside a
// transaction.

package dbpool

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestTypesPostgres(t *testing.T) {
	needPG(t)
	db := testDaemon.open(t, "pg", "&parseTime=true")
	var (
		i  int64
		f  float64
		s  string
		b  []byte
		bo bool
		ts time.Time
		n  sql.NullInt64
	)
	at := time.Date(2024, 2, 29, 13, 14, 15, 123456000, time.UTC)
	err := db.QueryRow("SELECT ?::int8, ?::float8, ?::text, ?::bytea, ?::bool, ?::timestamptz, NULL::int",
		int64(1)<<40, 0.25, "it's ?", []byte{1, 0, 2}, true, at).Scan(&i, &f, &s, &b, &bo, &ts, &n)
	if err != nil {
		t.Fatal(err)
	}
	if i != 1<<40 || f != 0.25 || s != "it's ?" || !bytes.Equal(b, []byte{1, 0, 2}) || !bo || !ts.Equal(at) || n.Valid {
		t.Fatalf("round trip: %v %v %q %x %v %v %v", i, f, s, b, bo, ts, n)
	}
	rows, err := db.Query("SELECT now()::timestamptz AS at, 1::int4 AS n, interval '1 day' AS i")
	if err != nil {
		t.Fatal(err)
	}
	cts, _ := rows.ColumnTypes()
	rows.Close()
	if cts[0].DatabaseTypeName() != "TIMESTAMPTZ" || cts[1].DatabaseTypeName() != "INT4" {
		t.Fatalf("declared types: %q %q", cts[0].DatabaseTypeName(), cts[1].DatabaseTypeName())
	}
	if cts[0].ScanType() != reflect.TypeOf(time.Time{}) || cts[1].ScanType() != reflect.TypeOf(int64(0)) ||
		cts[2].ScanType() != reflect.TypeOf(new(interface{})).Elem() {
		t.Fatalf("scan types: %v %v %v", cts[0].ScanType(), cts[1].ScanType(), cts[2].ScanType())
	}
}

func TestErrorsPostgres(t *testing.T) {
	needPG(t)
	db := testDaemon.open(t, "pg", "")
	_, err := db.Exec("SELECT * FROM no_such_table_here WHERE x = ?", 1)
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeSQL || e.SQLState != "42P01" || e.VendorCode != 0 {
		t.Fatalf("missing table: %v", err)
	}
	res := mustExec(t, db, "SELECT 1")
	if _, err := res.LastInsertId(); err == nil {
		t.Fatal("LastInsertId on PostgreSQL did not say it is unsupported")
	}
}

func TestTransactionsPostgres(t *testing.T) {
	needPG(t)
	ctx := context.Background()
	db := testDaemon.open(t, "pg", "")
	mustExec(t, db, "CREATE TABLE IF NOT EXISTS go_acct (id int PRIMARY KEY, n int)")
	mustExec(t, db, "DELETE FROM go_acct")
	checkReadOnly(t, db, "INSERT INTO go_acct VALUES (1, 1)")
	tx, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelSerializable, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var level, readOnly string
	tx.QueryRow("SELECT current_setting('transaction_isolation'), current_setting('transaction_read_only')").Scan(&level, &readOnly)
	tx.Rollback()
	if level != "serializable" || readOnly != "on" {
		t.Fatalf("isolation %q read-only %q, want serializable on", level, readOnly)
	}
	_, err = db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelSnapshot})
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeUsage {
		t.Fatalf("snapshot isolation: %v, want USAGE", err)
	}
}

// TestCancelPostgres: a context ends pg_sleep inside a transaction; the
// transaction is failed ('E') and rolls back; the session serves on.
func TestCancelPostgres(t *testing.T) {
	needPG(t)
	db := testDaemon.open(t, "pg", "")
	db.SetMaxOpenConns(1)
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	_, err = tx.ExecContext(ctx, "SELECT pg_sleep(30)")
	if took := time.Since(start); took > 10*time.Second || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled pg_sleep: %v after %v", err, took)
	}
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeCanceled || e.SQLState != "57014" || e.TxState != 'E' {
		t.Fatalf("cancelled pg_sleep: %v, want CANCELED 57014 in a failed transaction", err)
	}
	tx.Rollback()
	var n int64
	if err := db.QueryRow("SELECT ?::int + 1", 41).Scan(&n); err != nil || n != 42 {
		t.Fatalf("after the cancel: %v %d", err, n)
	}
}
