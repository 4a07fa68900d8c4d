// mysql_test.go — the driver on the MariaDB pool "my" of the test daemon
// (run under tests/mysql/run-mysql-tests.sh; skipped without its server):
// MySQL's types (DATETIME with parseTime, DECIMAL as exact text), SQLSTATE
// and vendor code through errors.As, LastInsertId, read-only transactions,
// an isolation level set for one transaction (read committed sees a
// concurrent commit, repeatable read does not), and a cancelled SLEEP.

package dbpool

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"
)

func TestTypesMySQL(t *testing.T) {
	needMySQL(t)
	db := testDaemon.open(t, "my", "&parseTime=true")
	mustExec(t, db, "CREATE TABLE IF NOT EXISTS go_ty (id BIGINT AUTO_INCREMENT PRIMARY KEY, at DATETIME(6), amount DECIMAL(30,10), raw VARBINARY(10))")
	at := time.Date(2024, 2, 29, 13, 14, 15, 123456000, time.UTC)
	res := mustExec(t, db, "INSERT INTO go_ty (at, amount, raw) VALUES (?, ?, ?)", at, "12345678901234567890.0123456789", []byte{0, 1})
	id, err := res.LastInsertId()
	if err != nil || id <= 0 {
		t.Fatalf("LastInsertId: %d %v", id, err)
	}
	var got time.Time
	var amount string
	var raw []byte
	if err := db.QueryRow("SELECT at, amount, raw FROM go_ty WHERE id = ?", id).Scan(&got, &amount, &raw); err != nil {
		t.Fatal(err)
	}
	if !got.Equal(at) || amount != "12345678901234567890.0123456789" || len(raw) != 2 || raw[1] != 1 {
		t.Fatalf("round trip: %v %q %x", got, amount, raw)
	}
}

func TestErrorsMySQL(t *testing.T) {
	needMySQL(t)
	db := testDaemon.open(t, "my", "")
	mustExec(t, db, "CREATE TABLE IF NOT EXISTS go_uq (id INT PRIMARY KEY)")
	mustExec(t, db, "DELETE FROM go_uq")
	mustExec(t, db, "INSERT INTO go_uq VALUES (1)")
	_, err := db.Exec("INSERT INTO go_uq VALUES (?)", 1)
	var e *Error
	if !errors.As(err, &e) || e.SQLState != "23000" || e.VendorCode != 1062 {
		t.Fatalf("duplicate key: %v", err)
	}
}

func TestTransactionsMySQL(t *testing.T) {
	needMySQL(t)
	ctx := context.Background()
	db := testDaemon.open(t, "my", "")
	mustExec(t, db, "CREATE TABLE IF NOT EXISTS go_iso (id INT PRIMARY KEY) ENGINE=InnoDB")
	mustExec(t, db, "DELETE FROM go_iso")
	checkReadOnly(t, db, "INSERT INTO go_iso VALUES (100)")
	for i, c := range []struct {
		level sql.IsolationLevel
		sees  int64
	}{{sql.LevelReadCommitted, 1}, {sql.LevelRepeatableRead, 0}} {
		mustExec(t, db, "DELETE FROM go_iso")
		tx, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: c.level})
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		tx.QueryRow("SELECT count(*) FROM go_iso").Scan(&n)
		mustExec(t, db, "INSERT INTO go_iso VALUES (?)", i+1)
		tx.QueryRow("SELECT count(*) FROM go_iso").Scan(&n)
		tx.Rollback()
		if n != c.sees {
			t.Errorf("%v: the transaction sees %d rows after a concurrent commit, want %d", c.level, n, c.sees)
		}
	}
}

func TestCancelMySQL(t *testing.T) {
	needMySQL(t)
	db := testDaemon.open(t, "my", "")
	db.SetMaxOpenConns(1)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := db.ExecContext(ctx, "SELECT SLEEP(30)")
	var e *Error
	if took := time.Since(start); took > 10*time.Second || !errors.As(err, &e) || e.Code != CodeCanceled {
		t.Fatalf("cancelled SLEEP: %v after %v", err, took)
	}
	var n int64
	if err := db.QueryRow("SELECT ? + 1", 41).Scan(&n); err != nil || n != 42 {
		t.Fatalf("after the cancel: %v %d", err, n)
	}
}
