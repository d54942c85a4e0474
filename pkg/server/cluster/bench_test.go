package cluster_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"chatctl/internal/benchtest"
	"chatctl/pkg/client"
	"chatctl/pkg/loadgen"
	"chatctl/pkg/rest"
	"chatctl/pkg/server"
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
		// A frame with the new A2Key, as the SDK's first requests after
		// its login: until then the server holds kick pushes (up to 1 s).
		if err := c.Hello(ctx); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		done := make(chan error, 1)
		go func() { _, err := admin.Do(ctx, rest.CmdKick, rest.KickRequest{UserID: user}, nil); done <- err }()
		if kt := servertest.WaitKick(b, c); kt != wire.KickRESTAPI {
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

// BenchmarkLogins: UserSig logins (new socket, wslogin, close) run by
// loadgen.Logins, as `chatctl bench logins` and pkg/loadgen's
// BenchmarkLogins run them: through three cluster nodes on one Redis (the
// users split evenly, one loadgen.Logins per node at once, 64 in flight in
// all), and against one node on the embedded bolt store (64 in flight).
// Reports logins/s (wall clock, noisy on a shared machine) and CPU per
// login, read once every node has closed its sockets: this process
// (servers and load generator) and, for Redis, redis-server's own (INFO
// cpu).
//
//	REDIS_URL=redis://127.0.0.1:P/0 go test -run '^$' -bench Logins -benchtime 20000x ./pkg/server/cluster
func BenchmarkLogins(b *testing.B) {
	b.Run("redis-3nodes", func(b *testing.B) {
		url := redistest.URL(b)
		e := newEnv(b, url, server.AppConfig{})
		ns := e.nodes(3)
		var eps []string
		var srvs []*server.Server
		for _, n := range ns {
			eps, srvs = append(eps, n.ws), append(srvs, n.srv)
		}
		rc := redisClient(b, url)
		before := redisCPU(b, rc)
		runLogins(b, testApp, e.app.Key, eps, srvs)
		b.ReportMetric((redisCPU(b, rc)-before)/float64(b.N)*1e6, "redis-cpu-µs/login")
	})
	b.Run("bolt-1node", func(b *testing.B) {
		ts := servertest.Start(b)
		runLogins(b, ts.App.SDKAppID, ts.App.Key, []string{ts.WSURL}, []*server.Server{ts.Server()})
	})
}

// runLogins logs b.N new users in through endpoints, node i of k taking
// the i-th k-th of the users with its share of 64 logins in flight, and
// waits for srvs to close every socket before it reads the CPU time.
func runLogins(b *testing.B, app uint64, key string, endpoints []string, srvs []*server.Server) {
	users := loadgen.Users(fmt.Sprintf("bl%d-%d-", time.Now().UnixNano(), b.N), b.N)
	sigs := loadgen.MintSigs(app, key, users, time.Hour, time.Now())
	const inFlight = 64
	k := len(endpoints)
	rs := make([]loadgen.LoginsResult, k)
	errs := make([]error, k)
	cpu0 := benchtest.CPU(b)
	b.ResetTimer()
	var wg sync.WaitGroup
	for i, ep := range endpoints {
		lo, hi := i*len(users)/k, (i+1)*len(users)/k
		wg.Go(func() {
			rs[i], errs[i] = loadgen.Logins(context.Background(), loadgen.Options{
				Target: loadgen.Target{Endpoint: ep, SDKAppID: app},
				Users:  users[lo:hi], Sigs: sigs[lo:hi], Concurrency: inFlight*(i+1)/k - inFlight*i/k,
			})
		})
	}
	wg.Wait()
	b.StopTimer()
	benchtest.WaitClosed(b, srvs...)
	cpu := benchtest.CPU(b) - cpu0
	ok, secs := 0, 0.0
	for i, r := range rs {
		if errs[i] != nil || r.Failed > 0 {
			b.Fatalf("node %d: %d of %d logins failed (%v), errors %v", i+1, r.Failed, r.Users, errs[i], r.Errors)
		}
		ok, secs = ok+r.OK, max(secs, r.Seconds)
	}
	b.ReportMetric(float64(ok)/secs, "logins/s")
	b.ReportMetric(cpu.Seconds()/float64(b.N)*1e6, "proc-cpu-µs/login")
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
