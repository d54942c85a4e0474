package cluster_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"chatctl/pkg/client"
	"chatctl/pkg/loadgen"
	"chatctl/pkg/server"
	"chatctl/pkg/server/rest"
	"chatctl/pkg/server/servertest"
	"chatctl/pkg/server/store/redis/redistest"
	"chatctl/pkg/wire"

	goredis "github.com/redis/go-redis/v9"
)

// BenchmarkCrossNodeKick: the whole cross-node kick, one at a time. A Web
// instance is logged in on node 1; the clock runs from the REST kick sent
// to node 3 (HTTP, watermark, presence, revocation, publish) to the
// stat_forceoffline push read by the client on node 1. p50/p99 in µs.
//
//	REDIS_URL=redis://127.0.0.1:P/0 go test -run '^$' -bench CrossNodeKick -benchtime 500x ./pkg/server/cluster
func BenchmarkCrossNodeKick(b *testing.B) {
	e := newEnv(b, redistest.URL(b), server.AppConfig{})
	ns := e.nodes(3)
	admin := e.admin(ns[2])
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		user := "k" + strconv.Itoa(i%16)
		c, err := client.Dial(ctx, client.Config{Endpoint: ns[0].ws, SDKAppID: testApp})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Login(ctx, user, e.mint(user)); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		done := make(chan error, 1)
		go func() { _, err := admin.Do(ctx, rest.CmdKick, rest.KickRequest{UserID: user}, nil); done <- err }()
		if kt := waitKick(b, c); kt != wire.KickRESTAPI {
			b.Fatalf("KickType %d", kt)
		}
		lat = append(lat, time.Since(start))
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		c.Close()
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkLogins: UserSig logins (new socket, wslogin, close) through
// three cluster nodes on one Redis, spread round robin, against one node
// on the embedded bolt store; 48 in flight. Reports logins/s (wall clock,
// noisy on a shared machine) and CPU per login: this process (servers and
// load generator) and, for Redis, redis-server's own (INFO cpu).
//
//	REDIS_URL=redis://127.0.0.1:P/0 go test -run '^$' -bench Logins -benchtime 20000x ./pkg/server/cluster
func BenchmarkLogins(b *testing.B) {
	b.Run("redis-3nodes", func(b *testing.B) {
		url := redistest.URL(b)
		e := newEnv(b, url, server.AppConfig{})
		ns := e.nodes(3)
		var eps []string
		for _, n := range ns {
			eps = append(eps, n.ws)
		}
		rc := redisClient(b, url)
		before := redisCPU(b, rc)
		runLogins(b, eps, testApp, e.app.Key)
		b.ReportMetric((redisCPU(b, rc)-before)/float64(b.N)*1e6, "redis-cpu-µs/login")
	})
	b.Run("bolt-1node", func(b *testing.B) {
		ts := servertest.Start(b)
		runLogins(b, []string{ts.WSURL}, ts.App.SDKAppID, ts.App.Key)
	})
}

func runLogins(b *testing.B, endpoints []string, app uint64, key string) {
	var ds []*loadgen.Dialer
	for _, ep := range endpoints {
		d, err := loadgen.NewDialer(loadgen.Target{Endpoint: ep, SDKAppID: app})
		if err != nil {
			b.Fatal(err)
		}
		ds = append(ds, d)
	}
	users := loadgen.Users(fmt.Sprintf("bl%d-%d-", time.Now().UnixNano(), b.N), b.N)
	sigs := loadgen.MintSigs(app, key, users, time.Hour, time.Now())
	var next, failed atomic.Int64
	var first sync.Once
	var firstErr error
	cpu0 := cpuTime()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range 48 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(users) {
					return
				}
				s, err := ds[i%len(ds)].Login(context.Background(), users[i], sigs[i])
				if err != nil {
					failed.Add(1)
					first.Do(func() { firstErr = err })
					continue
				}
				s.Close()
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d logins failed, first: %v", n, b.N, firstErr)
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "logins/s")
	b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N)*1e6, "proc-cpu-µs/login")
}

// cpuTime is this process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func redisClient(b *testing.B, url string) *goredis.Client {
	opt, err := goredis.ParseURL(url)
	if err != nil {
		b.Fatal(err)
	}
	c := goredis.NewClient(opt)
	b.Cleanup(func() { c.Close() })
	return c
}

// redisCPU is redis-server's used_cpu_user + used_cpu_sys, in seconds.
func redisCPU(b *testing.B, c *goredis.Client) float64 {
	info, err := c.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var sum float64
	for _, l := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(l), ":")
		if ok && (k == "used_cpu_user" || k == "used_cpu_sys") {
			f, _ := strconv.ParseFloat(v, 64)
			sum += f
		}
	}
	return sum
}
