// example_test.go — the transaction helper of the service's database layer
// (WithTransaction with auto-rollback, read-only, nested via savepoints),
// written for this driver as a tested example: copy it into an application.
// The tests run it on the SQLite pool, and on PostgreSQL and MariaDB when
// their test servers are up.

package dbpool

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// Tx is a transaction that can nest: Tx.WithTransaction runs in a savepoint.
type Tx struct {
	*sql.Tx
	depth int
}

// WithTransaction runs fn in a transaction: committed when fn returns nil,
// rolled back when it returns an error or panics (the panic goes on).
// opts may ask for ReadOnly and an isolation level.
func WithTransaction(ctx context.Context, db *sql.DB, opts *sql.TxOptions, fn func(*Tx) error) (err error) {
	stx, err := db.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	tx := &Tx{Tx: stx}
	defer func() {
		if p := recover(); p != nil {
			stx.Rollback()
			panic(p)
		}
		if err != nil {
			if rerr := stx.Rollback(); rerr != nil {
				err = fmt.Errorf("%w (and the rollback failed: %v)", err, rerr)
			}
			return
		}
		err = stx.Commit()
	}()
	return fn(tx)
}

// WithTransaction runs fn in a savepoint of tx: released when fn returns
// nil, rolled back to (the outer transaction goes on) when it fails.
func (tx *Tx) WithTransaction(ctx context.Context, fn func(*Tx) error) (err error) {
	name := fmt.Sprintf("app_sp_%d", tx.depth+1)
	if _, err := tx.ExecContext(ctx, "SAVEPOINT "+name); err != nil {
		return err
	}
	inner := &Tx{Tx: tx.Tx, depth: tx.depth + 1}
	defer func() {
		if p := recover(); p != nil {
			tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT "+name)
			panic(p)
		}
		if err != nil {
			tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT "+name)
			return
		}
		_, err = tx.ExecContext(ctx, "RELEASE SAVEPOINT "+name)
	}()
	return fn(inner)
}

var errInsufficient = errors.New("insufficient funds")

// transfer moves amount between accounts; the log entry is best effort,
// in a savepoint of its own.
func transfer(ctx context.Context, db *sql.DB, from, to, amount int64) error {
	return WithTransaction(ctx, db, nil, func(tx *Tx) error {
		var balance int64
		if err := tx.QueryRowContext(ctx, "SELECT n FROM bank WHERE id = ?", from).Scan(&balance); err != nil {
			return err
		}
		if balance < amount {
			return errInsufficient
		}
		tx.ExecContext(ctx, "UPDATE bank SET n = n - ? WHERE id = ?", amount, from)
		tx.ExecContext(ctx, "UPDATE bank SET n = n + ? WHERE id = ?", amount, to)
		return tx.WithTransaction(ctx, func(tx *Tx) error {
			_, err := tx.ExecContext(ctx, "INSERT INTO bank_log (note) VALUES (?)", fmt.Sprintf("%d->%d %d", from, to, amount))
			return err
		})
	})
}

func Example_withTransaction() {
	ctx := context.Background()
	db := sql.OpenDB(NewConnector(Config{Socket: testDaemon.sock, Pool: "app"}))
	defer db.Close()
	db.Exec("DROP TABLE IF EXISTS bank")
	db.Exec("CREATE TABLE bank (id INTEGER PRIMARY KEY, n INTEGER)")
	db.Exec("CREATE TABLE IF NOT EXISTS bank_log (note TEXT)")
	db.Exec("INSERT INTO bank VALUES (1, 100), (2, 0)")

	fmt.Println(transfer(ctx, db, 1, 2, 70))
	fmt.Println(transfer(ctx, db, 1, 2, 70))

	err := WithTransaction(ctx, db, &sql.TxOptions{ReadOnly: true}, func(tx *Tx) error {
		var a, b int64
		tx.QueryRowContext(ctx, "SELECT (SELECT n FROM bank WHERE id = 1), (SELECT n FROM bank WHERE id = 2)").Scan(&a, &b)
		fmt.Println(a, b)
		return nil
	})
	fmt.Println(err)
	// Output:
	// <nil>
	// insufficient funds
	// 30 70
	// <nil>
}

// testWithTransaction checks rollback on error and on panic, and a nested
// failure that leaves the outer transaction's work in place.
func testWithTransaction(t *testing.T, db *sql.DB, create string) {
	ctx := context.Background()
	mustExec(t, db, "DROP TABLE IF EXISTS wt")
	mustExec(t, db, create)
	boom := errors.New("boom")
	err := WithTransaction(ctx, db, nil, func(tx *Tx) error {
		tx.ExecContext(ctx, "INSERT INTO wt VALUES (1)")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("fn's error: %v", err)
	}
	func() {
		defer func() { recover() }()
		WithTransaction(ctx, db, nil, func(tx *Tx) error {
			tx.ExecContext(ctx, "INSERT INTO wt VALUES (2)")
			panic("in fn")
		})
	}()
	err = WithTransaction(ctx, db, nil, func(tx *Tx) error {
		tx.ExecContext(ctx, "INSERT INTO wt VALUES (3)")
		if err := tx.WithTransaction(ctx, func(tx *Tx) error {
			tx.ExecContext(ctx, "INSERT INTO wt VALUES (4)")
			_, err := tx.ExecContext(ctx, "INSERT INTO no_such_table VALUES (5)")
			return err
		}); err == nil {
			t.Error("the nested failure was not reported")
		}
		return tx.WithTransaction(ctx, func(tx *Tx) error {
			_, err := tx.ExecContext(ctx, "INSERT INTO wt VALUES (6)")
			return err
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := column(t, db, "SELECT x FROM wt ORDER BY x"); got != "3,6" {
		t.Fatalf("rows %q, want 3,6 (1: error, 2: panic, 4: failed savepoint)", got)
	}
	err = WithTransaction(ctx, db, &sql.TxOptions{ReadOnly: true}, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO wt VALUES (7)")
		return err
	})
	var e *Error
	if !errors.As(err, &e) || e.SQLState != "25006" {
		t.Fatalf("write in a read-only WithTransaction: %v", err)
	}
}

func TestWithTransactionSQLite(t *testing.T) {
	testWithTransaction(t, testDaemon.open(t, "app", ""), "CREATE TABLE wt (x INTEGER)")
}

func TestWithTransactionPostgres(t *testing.T) {
	needPG(t)
	testWithTransaction(t, testDaemon.open(t, "pg", ""), "CREATE TABLE wt (x int)")
}

// column returns the first column of a query's rows, comma-separated.
func column(t *testing.T, db *sql.DB, q string) string {
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		rows.Scan(&s)
		out = append(out, s)
	}
	return strings.Join(out, ",")
}

func TestWithTransactionMySQL(t *testing.T) {
	needMySQL(t)
	testWithTransaction(t, testDaemon.open(t, "my", ""), "CREATE TABLE wt (x INT) ENGINE=InnoDB")
}
