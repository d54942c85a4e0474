package loadgen_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chatctl/internal/benchtest"
	"chatctl/pkg/loadgen"
	"chatctl/pkg/server/servertest"
)

// BenchmarkLogins runs the logins load against an in-process server, so
// that one CPU profile shows both sides. cpu-us/login is the CPU time
// (user + system) of the process, both sides together, per login: less
// noisy than logins/s on a shared machine. It is read once the server has
// closed every socket, as BenchmarkTCPFloor reads it once its server side
// is done, so both count the whole close. The generator's goroutines carry
// the profiler label side=generator, so that a CPU profile shows the
// server (and the runtime's background work) alone with -tagignore:
//
//	go test -run '^$' -bench '^BenchmarkLogins$' -benchtime 20000x -cpuprofile cpu.out ./pkg/loadgen
//	go tool pprof -top -tagignore side=generator cpu.out
func BenchmarkLogins(b *testing.B) {
	ts := servertest.Start(b)
	users := loadgen.Users(fmt.Sprintf("bl%d-", b.N), b.N)
	sigs := loadgen.MintSigs(ts.App.SDKAppID, ts.App.Key, users, time.Hour, time.Now())
	cpu0 := benchtest.CPU(b)
	b.ResetTimer()
	var r loadgen.LoginsResult
	var err error
	pprof.Do(context.Background(), pprof.Labels("side", "generator"), func(ctx context.Context) {
		r, err = loadgen.Logins(ctx, loadgen.Options{
			Target: loadgen.Target{Endpoint: ts.WSURL, SDKAppID: ts.App.SDKAppID},
			Users:  users, Sigs: sigs, Concurrency: 64,
		})
	})
	if err != nil || r.Failed > 0 {
		b.Fatalf("logins: %v, errors %v", err, r.Errors)
	}
	b.StopTimer()
	benchtest.WaitClosed(b, ts.Server())
	b.ReportMetric(float64(benchtest.CPU(b)-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-us/login")
	b.ReportMetric(r.PerSecond, "logins/s")
	b.ReportMetric(r.Latency.P99, "p99-ms")
}

// BenchmarkTCPFloor is the floor under BenchmarkLogins: the same TCP
// exchange as one login (connect, a 300-byte request and 130-byte answer
// as the upgrade, a 700-byte frame and 300-byte reply as the wslogin, an
// 8-byte close frame and its 4-byte echo, then close) with 64 in flight,
// but no HTTP, WebSocket, JSON, UserSig or store: what the kernel and the
// Go runtime cost per login whatever the code does. Compare its
// cpu-us/login with BenchmarkLogins' on the same machine at the same time.
//
//	go test -run '^$' -bench 'Logins|TCPFloor' -benchtime 20000x ./pkg/loadgen
func BenchmarkTCPFloor(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var served sync.WaitGroup
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			served.Add(1)
			go func() {
				defer served.Done()
				defer c.Close()
				p := make([]byte, 1024)
				io.ReadFull(c, p[:300])
				c.Write(p[:130])
				io.ReadFull(c, p[:700])
				c.Write(p[:300])
				io.ReadFull(c, p[:8])
				c.Write(p[:4])
				c.Read(p)
			}()
		}
	}()
	var next atomic.Int64
	var wg sync.WaitGroup
	cpu0 := benchtest.CPU(b)
	b.ResetTimer()
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := make([]byte, 1024)
			for next.Add(1) <= int64(b.N) {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					b.Error(err)
					return
				}
				c.Write(p[:300])
				io.ReadFull(c, p[:130])
				c.Write(p[:700])
				io.ReadFull(c, p[:300])
				c.Write(p[:8])
				c.Close()
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	ln.Close()
	served.Wait()
	b.ReportMetric(float64(benchtest.CPU(b)-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-us/login")
}
