// Package storetest is a conformance suite for store.Store implementations:
// the bolt and Redis stores run it. It is one file over the ~450 lines of
// the others because it is one table of the store's contract, case after
// case, and split it would spread that contract over files.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"chatctl/pkg/server/store"
)

// Run checks the behaviour every store.Store must have. newStore returns a
// fresh, empty store; Run closes it.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	open := func(t *testing.T) store.Store {
		t.Helper()
		s := newStore(t)
		t.Cleanup(func() { s.Close() })
		return s
	}
	t.Run("Accounts", func(t *testing.T) { testAccounts(t, open(t)) })
	t.Run("AccountUpdate", func(t *testing.T) { testAccountUpdate(t, open(t)) })
	t.Run("LoginAccount", func(t *testing.T) { testLoginAccount(t, open(t)) })
	t.Run("LoginAccountConcurrent", func(t *testing.T) { testLoginAccountConcurrent(t, open(t)) })
	t.Run("Watermarks", func(t *testing.T) { testWatermarks(t, open(t)) })
	t.Run("Revocations", func(t *testing.T) { testRevocations(t, open(t)) })
	t.Run("Secret", func(t *testing.T) { testSecret(t, open(t)) })
	t.Run("InstIDs", func(t *testing.T) { testInstIDs(t, open(t)) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, open(t)) })
	t.Run("CanceledContext", func(t *testing.T) { testCanceled(t, open(t)) })
}

// RunRestart checks that everything survives a restart. Each call of open
// returns the store over the same durable state; RunRestart closes the
// previous store before it opens the next.
func RunRestart(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := open(t)
	must(t, errOnly(s.ImportAccount(ctx, 1, store.Account{UserID: "alice", Nick: "Alice"})))
	must(t, errOnly(s.ImportAccount(ctx, 1, store.Account{UserID: "bob"})))
	must(t, errOnly(s.ImportAccount(ctx, 2, store.Account{UserID: "alice"})))
	// A login's import, whenever the store commits it, is committed by Close.
	must(t, errOnly(s.LoginAccount(ctx, 2, "carol", time.Now(), admitAll)))
	must(t, s.SetKickWatermark(ctx, 1, "alice", 1_700_000_000_123))
	until := time.Now().Add(time.Hour)
	must(t, s.RevokeInstance(ctx, 1, 77, until, "REST_API_Kick"))
	secret, err := s.Secret(ctx)
	must(t, err)
	seen := map[uint64]bool{}
	for range 10 {
		id, err := s.NextInstID(ctx)
		must(t, err)
		seen[id] = true
	}
	must(t, s.Close())

	for round := range 3 {
		s = open(t)
		if ok, err := s.AccountExists(ctx, 2, "carol"); err != nil || !ok {
			t.Fatalf("round %d: the login's import of carol was lost across Close: %v, %v", round, ok, err)
		}
		for _, a := range []struct {
			app  uint64
			user string
		}{{1, "alice"}, {1, "bob"}, {2, "alice"}} {
			if ok, err := s.AccountExists(ctx, a.app, a.user); err != nil || !ok {
				t.Fatalf("round %d: AccountExists(%d, %s) = %v, %v", round, a.app, a.user, ok, err)
			}
		}
		if ms, err := s.KickWatermark(ctx, 1, "alice"); err != nil || ms != 1_700_000_000_123 {
			t.Fatalf("round %d: KickWatermark = %d, %v", round, ms, err)
		}
		if why, ok, err := s.Revoked(ctx, 1, 77); err != nil || !ok || why != "REST_API_Kick" {
			t.Fatalf("round %d: Revoked = %q, %v, %v", round, why, ok, err)
		}
		sec, err := s.Secret(ctx)
		must(t, err)
		if string(sec) != string(secret) {
			t.Fatalf("round %d: secret changed across a restart", round)
		}
		for range 10 {
			id, err := s.NextInstID(ctx)
			must(t, err)
			if seen[id] {
				t.Fatalf("round %d: NextInstID repeated %d across a restart", round, id)
			}
			seen[id] = true
		}
		must(t, s.Close())
	}
}

func errOnly[T any](_ T, err error) error { return err }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testAccounts(t *testing.T, s store.Store) {
	ctx := context.Background()
	if ok, err := s.AccountExists(ctx, 1, "alice"); err != nil || ok {
		t.Fatalf("empty store: AccountExists = %v, %v", ok, err)
	}
	users := []string{"alice", "bob", "用户", "a b/c", "x@y.z"}
	for _, u := range users {
		created, err := s.ImportAccount(ctx, 1, store.Account{UserID: u})
		if err != nil || !created {
			t.Fatalf("ImportAccount(%q) = %v, %v; want created", u, created, err)
		}
	}
	if created, err := s.ImportAccount(ctx, 1, store.Account{UserID: "alice"}); err != nil || created {
		t.Fatalf("second ImportAccount(alice) = %v, %v; want existed", created, err)
	}
	// Apps are separate.
	if ok, err := s.AccountExists(ctx, 2, "alice"); err != nil || ok {
		t.Fatalf("AccountExists(app 2, alice) = %v, %v; want false", ok, err)
	}
	// A user id that is a prefix of another is a different account.
	if ok, err := s.AccountExists(ctx, 1, "ali"); err != nil || ok {
		t.Fatalf("AccountExists(ali) = %v, %v; want false", ok, err)
	}
	for _, u := range users {
		if ok, err := s.AccountExists(ctx, 1, u); err != nil || !ok {
			t.Fatalf("AccountExists(%q) = %v, %v", u, ok, err)
		}
	}
	if existed, err := s.DeleteAccount(ctx, 1, "alice"); err != nil || !existed {
		t.Fatalf("DeleteAccount(alice) = %v, %v; want existed", existed, err)
	}
	if existed, err := s.DeleteAccount(ctx, 1, "alice"); err != nil || existed {
		t.Fatalf("second DeleteAccount(alice) = %v, %v; want not existed", existed, err)
	}
	if existed, err := s.DeleteAccount(ctx, 2, "bob"); err != nil || existed {
		t.Fatalf("DeleteAccount(app 2, bob) = %v, %v; want not existed", existed, err)
	}
	if ok, err := s.AccountExists(ctx, 1, "alice"); err != nil || ok {
		t.Fatalf("AccountExists(alice) after delete = %v, %v", ok, err)
	}
	if created, err := s.ImportAccount(ctx, 1, store.Account{UserID: "alice"}); err != nil || !created {
		t.Fatalf("re-import after delete = %v, %v; want created", created, err)
	}
	if _, err := s.ImportAccount(ctx, 1, store.Account{}); err == nil {
		t.Fatal("ImportAccount with an empty UserID succeeded")
	}
}

func testAccountUpdate(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.ImportAccount(ctx, 1, store.Account{UserID: "alice", Nick: "Alice", FaceURL: "http://x/a.png"}); err != nil {
		t.Fatal(err)
	}
	// An update (e.g. the auto-import of a login) with empty fields is fine.
	if created, err := s.ImportAccount(ctx, 1, store.Account{UserID: "alice"}); err != nil || created {
		t.Fatalf("update = %v, %v", created, err)
	}
	if created, err := s.ImportAccount(ctx, 1, store.Account{UserID: "alice", Nick: "Al"}); err != nil || created {
		t.Fatalf("update = %v, %v", created, err)
	}
}

func admitAll(int64) bool { return true }

// testLoginAccount: a login's import is seen by every read at once, is
// refused with the watermark admit refuses, and orders before a later
// ImportAccount or DeleteAccount of the user.
func testLoginAccount(t *testing.T, s store.Store) {
	ctx := context.Background()
	at := time.UnixMilli(1_700_000_000_123)
	var seen []int64
	admitted, err := s.LoginAccount(ctx, 1, "alice", at, func(wm int64) bool { seen = append(seen, wm); return true })
	if err != nil || !admitted {
		t.Fatalf("LoginAccount(alice) = %v, %v; want admitted", admitted, err)
	}
	if len(seen) != 1 || seen[0] != 0 {
		t.Fatalf("admit saw %v; want [0] (no kick)", seen)
	}
	if ok, err := s.AccountExists(ctx, 1, "alice"); err != nil || !ok {
		t.Fatalf("AccountExists after a login import = %v, %v", ok, err)
	}
	// A second login of the user imports nothing more.
	if _, err := s.LoginAccount(ctx, 1, "alice", at.Add(time.Hour), admitAll); err != nil {
		t.Fatal(err)
	}
	// An explicit import follows the login's: it updates, Created stays.
	if created, err := s.ImportAccount(ctx, 1, store.Account{UserID: "alice", Nick: "Alice"}); err != nil || created {
		t.Fatalf("ImportAccount after a login import = %v, %v; want updated", created, err)
	}
	// A delete right after a login's import wins.
	if _, err := s.LoginAccount(ctx, 1, "bob", at, admitAll); err != nil {
		t.Fatal(err)
	}
	if existed, err := s.DeleteAccount(ctx, 1, "bob"); err != nil || !existed {
		t.Fatalf("DeleteAccount right after a login import = %v, %v; want existed", existed, err)
	}
	if ok, err := s.AccountExists(ctx, 1, "bob"); err != nil || ok {
		t.Fatalf("AccountExists after the delete = %v, %v; want false", ok, err)
	}
	// Refused by the watermark: nothing imported, admit saw the watermark.
	must(t, s.SetKickWatermark(ctx, 1, "carol", 1_700_000_009_000))
	seen = nil
	admitted, err = s.LoginAccount(ctx, 1, "carol", at, func(wm int64) bool { seen = append(seen, wm); return false })
	if err != nil || admitted {
		t.Fatalf("refused LoginAccount = %v, %v; want not admitted", admitted, err)
	}
	if len(seen) != 1 || seen[0] != 1_700_000_009_000 {
		t.Fatalf("admit saw %v; want the watermark", seen)
	}
	if ok, err := s.AccountExists(ctx, 1, "carol"); err != nil || ok {
		t.Fatalf("a refused login imported carol: %v, %v", ok, err)
	}
	if _, err := s.LoginAccount(ctx, 1, "", at, admitAll); err == nil {
		t.Fatal("LoginAccount with an empty UserID succeeded")
	}
	ctx2, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.LoginAccount(ctx2, 1, "dave", at, admitAll); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("LoginAccount with a canceled context: %v; want store.ErrUnavailable", err)
	}
	// Logins past any flush: every one of them is imported.
	for i := range 300 {
		if _, err := s.LoginAccount(ctx, 2, fmt.Sprintf("m%d", i), at, admitAll); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 300 {
		if ok, err := s.AccountExists(ctx, 2, fmt.Sprintf("m%d", i)); err != nil || !ok {
			t.Fatalf("AccountExists(m%d) after 300 login imports = %v, %v", i, ok, err)
		}
	}
}

// testLoginAccountConcurrent: logins, deletes and reads of the same users
// at once, without an error; when all are done a login of each user
// imports it again.
func testLoginAccountConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	const workers, users = 4, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers*users*3)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range users {
				u := fmt.Sprintf("u%d", (i*7+w)%users)
				if _, err := s.LoginAccount(ctx, 1, u, time.Now(), admitAll); err != nil {
					errs <- err
				}
				if w == 0 && i%3 == 0 {
					if _, err := s.DeleteAccount(ctx, 1, u); err != nil {
						errs <- err
					}
				}
				if _, err := s.AccountExists(ctx, 1, u); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// A login after the deletes imports again.
	for i := range users {
		u := fmt.Sprintf("u%d", i)
		if _, err := s.LoginAccount(ctx, 1, u, time.Now(), admitAll); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.AccountExists(ctx, 1, u); err != nil || !ok {
			t.Fatalf("AccountExists(%s) after its login = %v, %v", u, ok, err)
		}
	}
}

func testWatermarks(t *testing.T, s store.Store) {
	ctx := context.Background()
	if ms, err := s.KickWatermark(ctx, 1, "alice"); err != nil || ms != 0 {
		t.Fatalf("no kick: KickWatermark = %d, %v", ms, err)
	}
	must(t, s.SetKickWatermark(ctx, 1, "alice", 1_700_000_000_500))
	if ms, err := s.KickWatermark(ctx, 1, "alice"); err != nil || ms != 1_700_000_000_500 {
		t.Fatalf("KickWatermark = %d, %v", ms, err)
	}
	must(t, s.SetKickWatermark(ctx, 1, "alice", 1_700_000_009_000))
	if ms, _ := s.KickWatermark(ctx, 1, "alice"); ms != 1_700_000_009_000 {
		t.Fatalf("later kick: KickWatermark = %d", ms)
	}
	// No watermark at or before the epoch, or past 2^53 ms (Redis's
	// float score would round it).
	for _, ms := range []int64{0, -1, 1 << 53} {
		if err := s.SetKickWatermark(ctx, 1, "alice", ms); err == nil {
			t.Errorf("SetKickWatermark(%d) took it", ms)
		}
	}
	// A clock step back never re-admits UserSigs an earlier kick refused.
	must(t, s.SetKickWatermark(ctx, 1, "alice", 1_600_000_000_000))
	if ms, _ := s.KickWatermark(ctx, 1, "alice"); ms != 1_700_000_009_000 {
		t.Fatalf("earlier kick moved the watermark back to %d", ms)
	}
	for _, c := range []struct {
		app  uint64
		user string
	}{{2, "alice"}, {1, "bob"}, {1, "alic"}, {1, "alice2"}} {
		if ms, err := s.KickWatermark(ctx, c.app, c.user); err != nil || ms != 0 {
			t.Fatalf("KickWatermark(%d, %s) = %d, %v; want 0", c.app, c.user, ms, err)
		}
	}
	// A watermark outlives the account: a re-imported user's old UserSigs stay refused.
	if _, err := s.ImportAccount(ctx, 1, store.Account{UserID: "carol"}); err != nil {
		t.Fatal(err)
	}
	must(t, s.SetKickWatermark(ctx, 1, "carol", 1_700_000_000_000))
	if _, err := s.DeleteAccount(ctx, 1, "carol"); err != nil {
		t.Fatal(err)
	}
	if ms, _ := s.KickWatermark(ctx, 1, "carol"); ms != 1_700_000_000_000 {
		t.Fatalf("watermark after delete = %d", ms)
	}
}

func testRevocations(t *testing.T, s store.Store) {
	ctx := context.Background()
	now := time.Now()
	if _, ok, err := s.Revoked(ctx, 1, 5); err != nil || ok {
		t.Fatalf("nothing revoked: Revoked = %v, %v", ok, err)
	}
	must(t, s.RevokeInstance(ctx, 1, 5, now.Add(time.Hour), "multipleAccount"))
	if why, ok, err := s.Revoked(ctx, 1, 5); err != nil || !ok || why != "multipleAccount" {
		t.Fatalf("Revoked = %q, %v, %v", why, ok, err)
	}
	for _, c := range []struct{ app, inst uint64 }{{2, 5}, {1, 6}, {1, 4}, {1, 5 << 32}} {
		if _, ok, err := s.Revoked(ctx, c.app, c.inst); err != nil || ok {
			t.Fatalf("Revoked(%d, %d) = %v, %v; want false", c.app, c.inst, ok, err)
		}
	}
	// A revocation that has already run out refuses nothing.
	must(t, s.RevokeInstance(ctx, 1, 9, now.Add(-time.Second), "logout"))
	if _, ok, err := s.Revoked(ctx, 1, 9); err != nil || ok {
		t.Fatalf("expired revocation: Revoked = %v, %v; want false", ok, err)
	}
	// An empty reason is kept as empty.
	must(t, s.RevokeInstance(ctx, 1, 10, now.Add(time.Hour), ""))
	if why, ok, err := s.Revoked(ctx, 1, 10); err != nil || !ok || why != "" {
		t.Fatalf("Revoked(10) = %q, %v, %v", why, ok, err)
	}
	// A second, shorter revocation does not shorten the first.
	must(t, s.RevokeInstance(ctx, 1, 5, now.Add(-time.Minute), "logout"))
	if why, ok, _ := s.Revoked(ctx, 1, 5); !ok || why != "multipleAccount" {
		t.Fatalf("after a shorter revocation: Revoked = %q, %v", why, ok)
	}
}

func testSecret(t *testing.T, s store.Store) {
	ctx := context.Background()
	a, err := s.Secret(ctx)
	must(t, err)
	if len(a) != 32 {
		t.Fatalf("secret has %d bytes, want 32", len(a))
	}
	zero := true
	for _, b := range a {
		zero = zero && b == 0
	}
	if zero {
		t.Fatal("secret is all zeros")
	}
	a[0] ^= 0xff // the caller's copy
	b, err := s.Secret(ctx)
	must(t, err)
	a[0] ^= 0xff
	if string(a) != string(b) {
		t.Fatal("Secret changed between calls (or returned shared memory)")
	}
}

func testInstIDs(t *testing.T, s store.Store) {
	ctx := context.Background()
	const workers, each = 4, 700
	var mu sync.Mutex
	seen := make(map[uint64]bool, workers*each)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				id, err := s.NextInstID(ctx)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				dup := seen[id]
				seen[id] = true
				mu.Unlock()
				if id == 0 || id >= 1<<53 || dup {
					errs <- fmt.Errorf("NextInstID = %d (zero, too big or repeated)", id)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != workers*each {
		t.Fatalf("%d distinct ids, want %d", len(seen), workers*each)
	}
}

func testConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	const workers, each = 4, 25
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	errs := make(chan error, workers*each*3)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				// Every worker imports the same users: exactly one creates each.
				c, err := s.ImportAccount(ctx, 1, store.Account{UserID: fmt.Sprintf("u%d", i)})
				if err != nil {
					errs <- err
					return
				}
				if c {
					mu.Lock()
					created++
					mu.Unlock()
				}
				if err := s.SetKickWatermark(ctx, 1, fmt.Sprintf("u%d", i), int64(1_700_000_000_000+w)); err != nil {
					errs <- err
				}
				if _, _, err := s.Revoked(ctx, 1, uint64(i)); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if created != each {
		t.Fatalf("%d imports reported created, want %d", created, each)
	}
	for i := range each {
		if ok, err := s.AccountExists(ctx, 1, fmt.Sprintf("u%d", i)); err != nil || !ok {
			t.Fatalf("AccountExists(u%d) = %v, %v", i, ok, err)
		}
		ms, err := s.KickWatermark(ctx, 1, fmt.Sprintf("u%d", i))
		if err != nil || ms != 1_700_000_000_000+workers-1 {
			t.Fatalf("KickWatermark(u%d) = %d, %v; want the largest", i, ms, err)
		}
	}
}

func testCanceled(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.ImportAccount(ctx, 1, store.Account{UserID: "alice"})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("ImportAccount with a canceled context: %v; want store.ErrUnavailable", err)
	}
	if ok, _ := s.AccountExists(context.Background(), 1, "alice"); ok {
		t.Fatal("a canceled ImportAccount imported the account")
	}
	if _, err := s.AccountExists(ctx, 1, "alice"); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("AccountExists with a canceled context: %v; want store.ErrUnavailable", err)
	}
}
