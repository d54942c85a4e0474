package redis_test

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"chatctl/pkg/server/store"
	rstore "chatctl/pkg/server/store/redis"
	"chatctl/pkg/server/store/redis/redistest"
)

func benchStore(b *testing.B) (*rstore.Store, string) {
	url := redistest.URL(b)
	prefix := redistest.Prefix(b, url)
	s := open(b, url, prefix)
	b.Cleanup(func() { s.Close() })
	return s, prefix
}

// BenchmarkOps: one store operation per op, serially (round-trip bound) and
// from 16 goroutines (what a node's concurrent logins see).
func BenchmarkOps(b *testing.B) {
	ctx := context.Background()
	s, _ := benchStore(b)
	const users = 1000
	for i := range users {
		u := "user-" + strconv.Itoa(i)
		if _, err := s.ImportAccount(ctx, 1, store.Account{UserID: u}); err != nil {
			b.Fatal(err)
		}
		if err := s.SetKickWatermark(ctx, 1, u, 1_700_000_000_000); err != nil {
			b.Fatal(err)
		}
	}
	until := time.Now().Add(time.Hour)
	exp := until.Unix()
	var seq atomic.Uint64
	ops := []struct {
		name string
		fn   func(i uint64) error
	}{
		{"AccountExists", func(i uint64) error {
			_, err := s.AccountExists(ctx, 1, "user-"+strconv.Itoa(int(i%users)))
			return err
		}},
		{"ImportExisting", func(i uint64) error {
			_, err := s.ImportAccount(ctx, 1, store.Account{UserID: "user-" + strconv.Itoa(int(i%users))})
			return err
		}},
		{"ImportNew", func(i uint64) error {
			_, err := s.ImportAccount(ctx, 2, store.Account{UserID: "new-" + strconv.FormatUint(i, 10)})
			return err
		}},
		{"KickWatermark", func(i uint64) error {
			_, err := s.KickWatermark(ctx, 1, "user-"+strconv.Itoa(int(i%users)))
			return err
		}},
		{"SetKickWatermark", func(i uint64) error {
			return s.SetKickWatermark(ctx, 1, "user-"+strconv.Itoa(int(i%users)), 1_700_000_000_000+int64(i))
		}},
		{"RevokeInstance", func(i uint64) error { return s.RevokeInstance(ctx, 1, i+1, until, "multipleAccount") }},
		{"Revoked", func(i uint64) error { _, _, err := s.Revoked(ctx, 1, i%users+1); return err }},
		{"NextInstID", func(uint64) error { _, err := s.NextInstID(ctx); return err }},
		{"Instances", func(i uint64) error { _, err := s.Instances(ctx, 1, "user-"+strconv.Itoa(int(i%users))); return err }},
		{"Attach", func(i uint64) error {
			_, err := s.Attach(ctx, on(1, "user-"+strconv.Itoa(int(i%users)), store.Instance{InstID: i%users + 1, Node: "0123456789abcdef", Platform: 7, LoginAt: time.Now(), Expires: exp}), store.Policy{WebInstances: 1, DetachedFor: time.Minute})
			return err
		}},
		// What a UserSig login will ask the store across nodes: watermark,
		// account, instance id, then the policy (Attach).
		{"LoginPath", func(i uint64) error {
			u := "user-" + strconv.Itoa(int(i%users))
			if _, err := s.KickWatermark(ctx, 1, u); err != nil {
				return err
			}
			if _, err := s.AccountExists(ctx, 1, u); err != nil {
				return err
			}
			if _, err := s.NextInstID(ctx); err != nil {
				return err
			}
			// (under the user's one instance id, so hashes do not grow)
			_, err := s.Attach(ctx, on(1, u, store.Instance{InstID: i%users + 1, Node: "0123456789abcdef", Platform: 7, LoginAt: time.Now(), Expires: exp}), store.Policy{WebInstances: 1, DetachedFor: time.Minute})
			return err
		}},
	}
	if _, err := s.NodeHeartbeat(ctx, "0123456789abcdef", time.Minute); err != nil {
		b.Fatal(err)
	}
	for _, op := range ops {
		b.Run(op.name, func(b *testing.B) {
			for b.Loop() {
				if err := op.fn(seq.Add(1)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
		})
		b.Run(op.name+"/parallel16", func(b *testing.B) {
			b.SetParallelism(8) // 8 × GOMAXPROCS(2) = 16 goroutines
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := op.fn(seq.Add(1)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
		})
	}
}

// BenchmarkSessionMemory: Redis memory (INFO used_memory) per online
// session: its account and its presence entry (one user, one instance, as
// a login writes them: Attach). One op = one session.
func BenchmarkSessionMemory(b *testing.B) {
	benchMemory(b, "B/session", func(s *rstore.Store, app uint64, i int, exp int64) error {
		u := fmt.Sprintf("user-%08d", i)
		if _, err := s.ImportAccount(context.Background(), app, store.Account{UserID: u}); err != nil {
			return err
		}
		_, err := s.Attach(context.Background(), on(app, u, store.Instance{
			InstID: uint64(1_800_000_000_000_000 + i), Node: "0123456789abcdef", Platform: 7,
			LoginAt: time.Now(), Expires: exp,
		}), store.Policy{WebInstances: 1, DetachedFor: time.Minute})
		return err
	})
}

// BenchmarkRevocationMemory: Redis memory per revoked instance (a key with a
// TTL). One op = one revocation.
func BenchmarkRevocationMemory(b *testing.B) {
	until := time.Now().Add(time.Hour)
	benchMemory(b, "B/revocation", func(s *rstore.Store, app uint64, i int, _ int64) error {
		return s.RevokeInstance(context.Background(), app, uint64(1_800_000_000_000_000+i), until, "multipleAccount")
	})
}

var memApp atomic.Uint64

func benchMemory(b *testing.B, unit string, write func(s *rstore.Store, app uint64, i int, exp int64) error) {
	ctx := context.Background()
	s, _ := benchStore(b)
	app := 1000 + memApp.Add(1) // a fresh app per run: its hashes start empty
	exp := time.Now().Add(time.Hour).Unix()
	used := func() int64 {
		info, err := s.Client().InfoMap(ctx, "memory").Result()
		if err != nil {
			b.Fatal(err)
		}
		n, _ := strconv.ParseInt(info["Memory"]["used_memory"], 10, 64)
		return n
	}
	before := used()
	i := 0
	for b.Loop() {
		if err := write(s, app, i, exp); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(used()-before)/float64(b.N), unit)
}
