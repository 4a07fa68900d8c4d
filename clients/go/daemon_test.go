// daemon_test.go — the test fixture: TestMain starts the real dbpoold
// ($DBPOOLD_BIN) on sockets in a temporary directory with a SQLite pool
// "app" (a PostgreSQL pool "pg" when tests/pg/run-pg-tests.sh's
// DBPOOL_TEST_PG_* variables are set, a MariaDB pool "my" when
// tests/mysql/run-mysql-tests.sh's DBPOOL_TEST_MYSQL_* are), awaits a working session, runs the
// tests and stops the daemon. tests/go/run.sh runs it from `make check`.

package dbpool

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// daemon is one dbpoold started by a test.
type daemon struct {
	dir    string
	sock   string
	cmd    *exec.Cmd
	exited chan error // receives cmd.Wait's result
}

var testDaemon *daemon

func TestMain(m *testing.M) {
	if os.Getenv("DBPOOLD_BIN") == "" {
		fmt.Fprintln(os.Stderr, "dbpool Go tests: DBPOOLD_BIN is not set; run tests/go/run.sh (or make check), which points it at build/dbpoold")
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "dbpool-go.")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testDaemon = &daemon{dir: dir, sock: filepath.Join(dir, "d.sock")}
	if err := testDaemon.start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	testDaemon.stop()
	if code == 0 {
		os.RemoveAll(dir)
	} else {
		fmt.Fprintf(os.Stderr, "dbpoold's log and files are kept in %s\n", dir)
	}
	os.Exit(code)
}

// pgPool is the configuration of the "pg" pool, "" without a test server.
func pgPool() string {
	host := os.Getenv("DBPOOL_TEST_PG_HOST")
	if host == "" {
		return ""
	}
	return fmt.Sprintf(`, { name = "pg"; type = "postgres"; postgres = { host = "%s"; port = %s; name = "%s"; username = "%s"; maxOpenConns = 4; }; }`,
		host, envOr("DBPOOL_TEST_PG_PORT", "5432"), envOr("DBPOOL_TEST_PG_DB", "dbpool_test"), envOr("DBPOOL_TEST_PG_USER", "dbpool"))
}

// myPool is the configuration of the "my" pool, "" without a test server.
func myPool() string {
	host := os.Getenv("DBPOOL_TEST_MYSQL_HOST")
	if host == "" {
		return ""
	}
	return fmt.Sprintf(`, { name = "my"; type = "mysql"; mysql = { host = "%s"; name = "%s"; username = "%s"; passwordFile = "%s"; maxOpenConns = 4; }; }`,
		host, envOr("DBPOOL_TEST_MYSQL_DB", "dbpool_test"), envOr("DBPOOL_TEST_MYSQL_USER", "dbpool"), os.Getenv("DBPOOL_TEST_MYSQL_PASSWORD_FILE"))
}

func (d *daemon) config() string {
	return fmt.Sprintf(`daemon = {
    socket = "%s";
    statusSocket = "%s/s.sock";
    logLevel = "info";
    shutdownTimeout = "2s";
};
pools = (
    { name = "app"; type = "sqlite"; sqlite = { filePath = "%s/app.db"; maxOpenConns = 3; }; }%s%s
);
`, d.sock, d.dir, d.dir, pgPool(), myPool())
}

// start runs dbpoold and awaits a session answering PING (10 s at most).
func (d *daemon) start() error {
	conf := filepath.Join(d.dir, "dbpoold.conf")
	if err := os.WriteFile(conf, []byte(d.config()), 0o600); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(d.dir, "dbpoold.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	d.cmd = exec.Command(os.Getenv("DBPOOLD_BIN"), "-c", conf)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		return fmt.Errorf("cannot start dbpoold: %v", err)
	}
	d.exited = make(chan error, 1)
	go func() { d.exited <- d.cmd.Wait(); logf.Close() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := dial(context.Background(), Config{Socket: d.sock, Pool: "app", ConnectTimeout: time.Second}); err == nil {
			c.Close()
			return nil
		}
		select {
		case err := <-d.exited:
			return fmt.Errorf("dbpoold exited during start-up (%v); see %s/dbpoold.log", err, d.dir)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dbpoold did not answer within 10 s; see %s/dbpoold.log", d.dir)
		}
	}
}

// stop sends SIGTERM and awaits the exit (SIGKILL after 10 s).
func (d *daemon) stop() {
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		d.cmd.Process.Kill()
		<-d.exited
	}
}

// open returns a sql.DB on a pool of the test daemon.
func (d *daemon) open(t testing.TB, pool string, params string) *sql.DB {
	t.Helper()
	db, err := sql.Open("dbpool", "unix://"+d.sock+"?pool="+pool+params)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// needPG skips a PostgreSQL test when no test server is up.
func needPG(t *testing.T) {
	if os.Getenv("DBPOOL_TEST_PG_HOST") == "" {
		t.Skip("no PostgreSQL test server: run under tests/pg/run-pg-tests.sh (DBPOOL_TEST_PG_* unset)")
	}
}

// needMySQL skips a MySQL test when no test server is up.
func needMySQL(t *testing.T) {
	if os.Getenv("DBPOOL_TEST_MYSQL_HOST") == "" {
		t.Skip("no MariaDB test server: run under tests/mysql/run-mysql-tests.sh (DBPOOL_TEST_MYSQL_* unset)")
	}
}

// session returns a *sql.Conn of db, closed with the test.
func session(t *testing.T, db *sql.DB) *sql.Conn {
	t.Helper()
	sc, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.Close() })
	return sc
}

// checkReadOnly: insert (a write) fails with 25006 in a read-only transaction.
func checkReadOnly(t *testing.T, db *sql.DB, insert string) {
	t.Helper()
	ro, err := db.BeginTx(context.Background(), &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Rollback()
	_, err = ro.Exec(insert)
	var e *Error
	if !errors.As(err, &e) || e.SQLState != "25006" {
		t.Fatalf("write in a read-only transaction: %v, want SQLSTATE 25006", err)
	}
}
