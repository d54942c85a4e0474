package redis_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"chatctl/internal/leaktest"
	"chatctl/pkg/server/store"

	rstore "chatctl/pkg/server/store/redis"
	"chatctl/pkg/server/store/redis/redistest"
	"chatctl/pkg/server/store/storetest"

	goredis "github.com/redis/go-redis/v9"
)

func open(t testing.TB, url, prefix string) *rstore.Store {
	t.Helper()
	s, err := rstore.Open(context.Background(), url, rstore.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	url := redistest.URL(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, url, redistest.Prefix(t, url))
	})
}

func TestRestart(t *testing.T) {
	url := redistest.URL(t)
	prefix := redistest.Prefix(t, url)
	storetest.RunRestart(t, func(t *testing.T) store.Store { return open(t, url, prefix) })
}

// Two nodes (two stores on one Redis) share everything, and their instance
// ids never collide.
func TestTwoNodes(t *testing.T) {
	ctx := context.Background()
	ns, _ := openNodes(t, 2)
	a, b := ns[0], ns[1]
	sa, _ := a.Secret(ctx)
	sb, _ := b.Secret(ctx)
	if string(sa) != string(sb) {
		t.Fatal("two nodes got different secrets")
	}
	if _, err := a.ImportAccount(ctx, 1, store.Account{UserID: "alice", Nick: "Alice"}); err != nil {
		t.Fatal(err)
	}
	if created, err := b.ImportAccount(ctx, 1, store.Account{UserID: "alice"}); err != nil || created {
		t.Fatalf("import on node b = %v, %v; want existed", created, err)
	}
	if err := a.RevokeInstance(ctx, 1, 42, time.Now().Add(time.Hour), "multipleAccount"); err != nil {
		t.Fatal(err)
	}
	if why, ok, err := b.Revoked(ctx, 1, 42); err != nil || !ok || why != "multipleAccount" {
		t.Fatalf("node b Revoked = %q, %v, %v", why, ok, err)
	}
	acct, ok, err := b.Account(ctx, 1, "alice")
	if err != nil || !ok || acct.Nick != "Alice" {
		t.Fatalf("node b Account = %+v, %v, %v", acct, ok, err)
	}
	seen := map[uint64]bool{}
	done := make(chan error, 2)
	ids := make(chan uint64, 2000)
	for _, s := range []*rstore.Store{a, b} {
		go func() {
			for range 1000 {
				id, err := s.NextInstID(ctx)
				if err != nil {
					done <- err
					return
				}
				ids <- id
			}
			done <- nil
		}()
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	close(ids)
	for id := range ids {
		if seen[id] || id >= 1<<53 {
			t.Fatalf("id %d repeated or too big", id)
		}
		seen[id] = true
	}
}

// A revocation's key expires with the A2Key it refuses.
func TestRevocationTTL(t *testing.T) {
	ctx := context.Background()
	url := redistest.URL(t)
	prefix := redistest.Prefix(t, url)
	s := open(t, url, prefix)
	defer s.Close()
	until := time.Now().Add(90 * time.Minute)
	if err := s.RevokeInstance(ctx, 7, 99, until, "logout"); err != nil {
		t.Fatal(err)
	}
	key := prefix + "{7}:rev:99"
	exp, err := s.Client().PExpireTime(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if got := exp.Milliseconds(); got != until.UnixMilli() {
		t.Fatalf("revocation expires at %d, want %d (the A2Key's expiry)", got, until.UnixMilli())
	}
	// Extending moves the expiry; a shorter one leaves it.
	later := until.Add(time.Hour)
	if err := s.RevokeInstance(ctx, 7, 99, later, "REST_API_Kick"); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeInstance(ctx, 7, 99, until, "logout"); err != nil {
		t.Fatal(err)
	}
	exp, _ = s.Client().PExpireTime(ctx, key).Result()
	if exp.Milliseconds() != later.UnixMilli() {
		t.Fatalf("expiry %d after extend+shorter, want %d", exp.Milliseconds(), later.UnixMilli())
	}
	if why, ok, _ := s.Revoked(ctx, 7, 99); !ok || why != "REST_API_Kick" {
		t.Fatalf("Revoked = %q, %v", why, ok)
	}
	// A short one really goes away in Redis, not only by the client's clock.
	if err := s.RevokeInstance(ctx, 7, 100, time.Now().Add(50*time.Millisecond), "logout"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := s.Client().Exists(ctx, prefix+"{7}:rev:100").Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("expired revocation still in Redis")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Accounts and watermarks have no TTL.
	if _, err := s.ImportAccount(ctx, 7, store.Account{UserID: "u"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetKickWatermark(ctx, 7, "u", 1_700_000_000_000); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{prefix + "{7}:acct", prefix + "{7}:wm"} {
		if ttl, _ := s.Client().PTTL(ctx, k).Result(); ttl != -1 {
			t.Fatalf("%s has TTL %v, want none", k, ttl)
		}
	}
}

// Instance ids never fall below the clock floor, so a Redis that lost the
// counter does not hand out an id again.
func TestInstIDAfterDataLoss(t *testing.T) {
	ctx := context.Background()
	url := redistest.URL(t)
	prefix := redistest.Prefix(t, url)
	s := open(t, url, prefix)
	defer s.Close()
	first, err := s.NextInstID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if floor := uint64(time.Now().Add(-time.Minute).UnixMilli()) << rstore.InstIDClockShift; first < floor {
		t.Fatalf("first id %d below the clock floor %d", first, floor)
	}
	var last uint64
	for range 100 {
		if last, err = s.NextInstID(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Redis loses the counter and the secret (a restart without persistence).
	if err := s.Client().Del(ctx, prefix+"{g}:instid", prefix+"{g}:secret").Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond)
	id, err := s.NextInstID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if id <= last {
		t.Fatalf("after the counter was lost: id %d, not above the last one %d", id, last)
	}
	// The node put its secret back: a node opened now shares it.
	b := open(t, url, prefix)
	defer b.Close()
	sa, _ := s.Secret(ctx)
	sb, _ := b.Secret(ctx)
	if string(sa) != string(sb) {
		t.Fatal("the secret was not restored")
	}
	// A different secret in Redis is reported, not silently used.
	if err := s.Client().Set(ctx, prefix+"{g}:secret", strings.Repeat("x", 32), 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.NextInstID(ctx); !errors.Is(err, rstore.ErrSecretChanged) {
		t.Fatalf("NextInstID with another secret in Redis: %v; want ErrSecretChanged", err)
	}
}

// Redis down: every method fails fast with store.ErrUnavailable; when Redis
// is back the same store works again by itself. With appendfsync always,
// every acknowledged write survives the restart.
func TestRedisDownAndBack(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	s := open(t, srv.URL(), "")
	defer s.Close()
	if aof, always, err := s.Persistence(ctx); err != nil || !aof || !always {
		t.Fatalf("Persistence = %v, %v, %v; want AOF with fsync always", aof, always, err)
	}
	if _, err := s.ImportAccount(ctx, 1, store.Account{UserID: "alice"}); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeInstance(ctx, 1, 5, time.Now().Add(time.Hour), "multipleDevice"); err != nil {
		t.Fatal(err)
	}
	id1, err := s.NextInstID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv.Kill() // SIGKILL: only what was fsynced survives
	checks := map[string]func() error{
		"ImportAccount": func() error { _, err := s.ImportAccount(ctx, 1, store.Account{UserID: "bob"}); return err },
		"AccountExists": func() error { _, err := s.AccountExists(ctx, 1, "alice"); return err },
		"KickWatermark": func() error { _, err := s.KickWatermark(ctx, 1, "alice"); return err },
		"Revoked":       func() error { _, _, err := s.Revoked(ctx, 1, 5); return err },
		"NextInstID":    func() error { _, err := s.NextInstID(ctx); return err },
		"RevokeInstance": func() error {
			return s.RevokeInstance(ctx, 1, 6, time.Now().Add(time.Hour), "logout")
		},
	}
	for name, f := range checks {
		if err := f(); !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("%s with Redis down: %v; want store.ErrUnavailable", name, err)
		}
	}
	if _, err := rstore.Open(ctx, srv.URL(), rstore.Options{}); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Open with Redis down: %v; want store.ErrUnavailable", err)
	}
	srv.Restart()
	if ok, err := s.AccountExists(ctx, 1, "alice"); err != nil || !ok {
		t.Fatalf("after the restart: AccountExists = %v, %v", ok, err)
	}
	if why, ok, err := s.Revoked(ctx, 1, 5); err != nil || !ok || why != "multipleDevice" {
		t.Fatalf("after the restart: Revoked = %q, %v, %v", why, ok, err)
	}
	id2, err := s.NextInstID(ctx)
	if err != nil || id2 <= id1 {
		t.Fatalf("after the restart: NextInstID = %d, %v; want > %d", id2, err, id1)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := rstore.Open(context.Background(), "http://x", rstore.Options{}); err == nil {
		t.Fatal("Open of an http URL succeeded")
	}
	// The password of a URL never appears in an error.
	_, err := rstore.Open(context.Background(), "redis://u:hunter2@127.0.0.1:1/0", rstore.Options{})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Open of a closed port: %v; want ErrUnavailable", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error shows the password: %v", err)
	}
}

func TestClosed(t *testing.T) {
	url := redistest.URL(t)
	s := open(t, url, redistest.Prefix(t, url))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.AccountExists(context.Background(), 1, "alice"); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("after Close: %v; want ErrUnavailable", err)
	}
	if _, err := s.Secret(context.Background()); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Secret after Close: %v; want ErrUnavailable", err)
	}
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// TestMain silences go-redis's own logger (its dial failures are expected
// here: the tests stop Redis on purpose).
func TestMain(m *testing.M) {
	goredis.SetLogger(quiet{})
	os.Exit(leaktest.Run(m))
}
