package loadgen_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"chatctl/pkg/loadgen"
	"chatctl/pkg/server/servertest"
)

// BenchmarkLogins runs the logins load against an in-process server, so
// that one CPU profile shows both sides. cpu-us/login is the CPU time
// (user + system) of the process, both sides together, per login: less
// noisy than logins/s on a shared machine.
//
//	go test -run '^$' -bench Logins -benchtime 5000x -cpuprofile cpu.out ./pkg/loadgen
func BenchmarkLogins(b *testing.B) {
	ts := servertest.Start(b)
	users := loadgen.Users(fmt.Sprintf("bl%d-", b.N), b.N)
	sigs := loadgen.MintSigs(ts.App.SDKAppID, ts.App.Key, users, time.Hour, time.Now())
	cpu0 := cpuTime()
	b.ResetTimer()
	r, err := loadgen.Logins(context.Background(), loadgen.Options{
		Target: loadgen.Target{Endpoint: ts.WSURL, SDKAppID: ts.App.SDKAppID},
		Users:  users, Sigs: sigs, Concurrency: 64,
	})
	if err != nil || r.Failed > 0 {
		b.Fatalf("logins: %v, errors %v", err, r.Errors)
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-us/login")
	b.ReportMetric(r.PerSecond, "logins/s")
	b.ReportMetric(r.Latency.P99, "p99-ms")
}

// cpuTime is the process's user + system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
