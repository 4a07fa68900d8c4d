// bench_test.go — round trips per second of one Go session, for comparison
// with bench/dbpool-bench on the same workload:
//
//	DBPOOL_BENCH_SOCKET=SOCK DBPOOL_BENCH_POOL=POOL go test -run '^$' -bench Select -benchtime 5s
//	build/dbpool-bench --target dbpool:SOCK:POOL -c 1 -w select -T 5 --model threads
//
// The statement is pgbench's -S (SELECT abalance FROM pgbench_accounts
// WHERE aid = ?, a random aid of scale 1) when the pool has pgbench's
// tables, else SELECT ? on the test daemon's pool.

package dbpool

import (
	"math/rand"
	"os"
	"syscall"
	"testing"
	"time"
)

func BenchmarkSelect(b *testing.B) {
	sock, pool := os.Getenv("DBPOOL_BENCH_SOCKET"), envOr("DBPOOL_BENCH_POOL", "app")
	if sock == "" {
		sock = testDaemon.sock
	}
	d := &daemon{sock: sock}
	db := d.open(b, pool, "")
	db.SetMaxOpenConns(1)
	q, n := "SELECT ?", int64(1)
	if db.QueryRow("SELECT count(*) FROM pgbench_accounts").Scan(&n) == nil && n > 0 {
		q = "SELECT abalance FROM pgbench_accounts WHERE aid = ?"
	}
	var v int64
	b.ResetTimer()
	cpu0, start := cpuTime(), time.Now()
	for i := 0; i < b.N; i++ {
		if err := db.QueryRow(q, rand.Int63n(n)+1).Scan(&v); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "roundtrips/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-us/op")
}

// cpuTime is the process's user + system time (the whole test binary:
// database/sql's and the runtime's goroutines included).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
