package loadgen_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"chatctl/pkg/loadgen"
	"chatctl/pkg/server/servertest"
)

// BenchmarkLogins runs the logins load against an in-process server, so
// that one CPU profile shows both sides:
//
//	go test -run '^$' -bench Logins -benchtime 5000x -cpuprofile cpu.out ./pkg/loadgen
func BenchmarkLogins(b *testing.B) {
	ts := servertest.Start(b)
	users := loadgen.Users(fmt.Sprintf("bl%d-", b.N), b.N)
	sigs := loadgen.MintSigs(ts.App.SDKAppID, ts.App.Key, users, time.Hour, time.Now())
	b.ResetTimer()
	r, err := loadgen.Logins(context.Background(), loadgen.Options{
		Target: loadgen.Target{Endpoint: ts.WSURL, SDKAppID: ts.App.SDKAppID},
		Users:  users, Sigs: sigs, Concurrency: 64,
	})
	if err != nil || r.Failed > 0 {
		b.Fatalf("logins: %v, errors %v", err, r.Errors)
	}
	b.ReportMetric(r.PerSecond, "logins/s")
	b.ReportMetric(r.Latency.P99, "p99-ms")
}
