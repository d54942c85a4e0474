package bolt_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"chatctl/pkg/server/store"
	"chatctl/pkg/server/store/bolt"
	"chatctl/pkg/server/store/storetest"

	bbolt "go.etcd.io/bbolt"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := bolt.Open(filepath.Join(t.TempDir(), "data", "chatctl.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chatctl.db")
	storetest.RunRestart(t, func(t *testing.T) store.Store {
		s, err := bolt.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestFileAndDirModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, "chatctl.db")
	s, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for p, want := range map[string]os.FileMode{path: 0o600, dir: 0o700 | os.ModeDir} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
		}
	}
}

func TestLockTimeout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chatctl.db")
	s, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// flock locks are per open file, so a second Open in this process
	// contends exactly as a second process would.
	_, err = bolt.OpenOptions(path, bolt.Options{LockTimeout: 100 * time.Millisecond})
	if !errors.Is(err, bolt.ErrLocked) {
		t.Fatalf("second Open: %v; want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("lock error %q does not name %s", err, path)
	}
	// The holder is unaffected, and the lock is free once it closes.
	if _, err := s.ImportAccount(context.Background(), 1, store.Account{UserID: "alice"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := bolt.Open(path)
	if err != nil {
		t.Fatalf("Open after the holder closed: %v", err)
	}
	defer s2.Close()
	if ok, _ := s2.AccountExists(context.Background(), 1, "alice"); !ok {
		t.Fatal("account lost")
	}
}

func TestCorruptFile(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string][]byte{
		"text.db":  []byte(strings.Repeat("this is not a bolt database\n", 1000)),
		"zeros.db": make([]byte, 64<<10),
		"short.db": []byte("x"),
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := bolt.Open(path)
		if err == nil {
			t.Fatalf("%s: Open succeeded on a corrupt file", name)
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %q does not name the file", name, err)
		}
	}
}

func TestCorruptedAfterWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chatctl.db")
	s, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Overwrite both meta pages (the first two 4 KiB pages).
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, 8<<10), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, err = bolt.Open(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open of a store with broken meta pages: %v; want an error naming %s", err, path)
	}
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func TestPurgeRevoked(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	s, path := openTemp(t, bolt.Options{Now: clk.Now, PurgeEvery: -1})
	for i := range uint64(10) {
		if err := s.RevokeInstance(ctx, 1, i+1, clk.Now().Add(time.Duration(i+1)*time.Minute), "logout"); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.PurgeRevoked(ctx); err != nil || n != 0 {
		t.Fatalf("PurgeRevoked = %d, %v; want 0", n, err)
	}
	clk.Add(4*time.Minute + time.Second)
	// Run-out revocations are not reported even before a purge.
	if _, ok, _ := s.Revoked(ctx, 1, 3); ok {
		t.Fatal("run-out revocation still reported")
	}
	if _, ok, _ := s.Revoked(ctx, 1, 5); !ok {
		t.Fatal("running revocation not reported")
	}
	if n, err := s.PurgeRevoked(ctx); err != nil || n != 4 {
		t.Fatalf("PurgeRevoked = %d, %v; want 4", n, err)
	}
	if n, _ := s.PurgeRevoked(ctx); n != 0 {
		t.Fatalf("second PurgeRevoked = %d; want 0", n)
	}
	s.Close()
	// Open starts a purge in the background at once (not after PurgeEvery).
	clk.Add(3 * time.Minute)
	s, err := bolt.OpenOptions(path, bolt.Options{Now: clk.Now, PurgeEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if n, _ := s.Revocations(ctx); n == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the purge at Open did not run")
		}
	}
	for i := uint64(8); i <= 10; i++ {
		if _, ok, _ := s.Revoked(ctx, 1, i); !ok {
			t.Fatalf("revocation %d lost", i)
		}
	}
}

// A purge deletes in chunks, each its own write, found by scans of a
// bounded number of keys: all of the run-out ones across chunks and scans
// (each goes on where the last stopped), none still running.
func TestPurgeInChunks(t *testing.T) {
	defer bolt.SetPurgeChunk(3, 5)()
	ctx := context.Background()
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	s, _ := openTemp(t, bolt.Options{Now: clk.Now, PurgeEvery: -1})
	for i := range uint64(20) {
		until := clk.Now().Add(time.Minute)
		if i%4 == 0 {
			until = clk.Now().Add(time.Hour) // still running at the purge
		}
		if err := s.RevokeInstance(ctx, 1, i+1, until, "logout"); err != nil {
			t.Fatal(err)
		}
	}
	clk.Add(2 * time.Minute)
	var writes []int
	defer bolt.OnPurgeWrite(func(n int) { writes = append(writes, n) })()
	if n, err := s.PurgeRevoked(ctx); err != nil || n != 15 {
		t.Fatalf("PurgeRevoked = %d, %v; want 15", n, err)
	}
	// Scans of 5 keys find 4 run-out ones each (every 4th runs on): no
	// write of more than 3, and all 15 across them.
	if len(writes) < 5 || slices.Max(writes) > 3 {
		t.Errorf("writes of %v, want at least 5 of at most 3", writes)
	}
	if n, err := s.Revocations(ctx); err != nil || n != 5 {
		t.Fatalf("Revocations = %d, %v; want the 5 running", n, err)
	}
	for i := uint64(0); i < 20; i += 4 {
		if _, ok, _ := s.Revoked(ctx, 1, i+1); !ok {
			t.Errorf("running revocation %d purged", i+1)
		}
	}
}

func TestBackgroundPurge(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	s, err := bolt.OpenOptions(filepath.Join(t.TempDir(), "chatctl.db"), bolt.Options{Now: clk.Now, PurgeEvery: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.RevokeInstance(ctx, 1, 1, clk.Now().Add(time.Minute), "logout"); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Revocations(ctx); err != nil || n != 1 {
		t.Fatalf("Revocations = %d, %v; want 1", n, err)
	}
	clk.Add(2 * time.Minute)
	// The loop deletes it: wait (bounded) for it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := s.Revocations(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("background purge never deleted the run-out revocation")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAccountFields(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	s, err := bolt.OpenOptions(filepath.Join(t.TempDir(), "chatctl.db"), bolt.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.ImportAccount(ctx, 1, store.Account{UserID: "alice", Nick: "Alice", FaceURL: "http://x/a.png"}); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Hour)
	if _, err := s.ImportAccount(ctx, 1, store.Account{UserID: "alice", Nick: "Al"}); err != nil {
		t.Fatal(err)
	}
	a, ok, err := s.Account(ctx, 1, "alice")
	if err != nil || !ok {
		t.Fatalf("Account = %v, %v", ok, err)
	}
	want := store.Account{UserID: "alice", Nick: "Al", FaceURL: "http://x/a.png", Created: time.Unix(1_700_000_000, 0).UTC()}
	if !a.Created.Equal(want.Created) || a.UserID != want.UserID || a.Nick != want.Nick || a.FaceURL != want.FaceURL {
		t.Fatalf("Account = %+v, want %+v", a, want)
	}
	if _, ok, _ := s.Account(ctx, 1, "bob"); ok {
		t.Fatal("Account(bob) found")
	}
}

// A login's import is in memory until the flusher commits it (here: never
// before Close): reads see it, a delete right after it wins over it, and
// Close commits it.
func TestLoginImportPending(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t, bolt.Options{FlushEvery: time.Hour})
	at := time.UnixMilli(1_700_000_000_123)
	for _, u := range []string{"alice", "bob", "carol"} {
		if _, err := s.LoginAccount(ctx, 1, u, at, admitAll); err != nil {
			t.Fatal(err)
		}
	}
	a, ok, err := s.Account(ctx, 1, "alice")
	if err != nil || !ok || a.UserID != "alice" || !a.Created.Equal(at) || a.Nick != "" {
		t.Fatalf("Account(alice) pending = %+v, %v, %v", a, ok, err)
	}
	if existed, err := s.DeleteAccount(ctx, 1, "bob"); err != nil || !existed {
		t.Fatalf("DeleteAccount(bob) = %v, %v; want existed", existed, err)
	}
	// An explicit import after a pending one keeps the login's Created.
	if created, err := s.ImportAccount(ctx, 1, store.Account{UserID: "carol", Nick: "C"}); err != nil || created {
		t.Fatalf("ImportAccount(carol) = %v, %v; want an update", created, err)
	}
	if _, err := s.LoginAccount(ctx, 1, "dave", at, admitAll); err != nil { // pending at Close
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for u, want := range map[string]bool{"alice": true, "bob": false, "carol": true, "dave": true} {
		if ok, err := s.AccountExists(ctx, 1, u); err != nil || ok != want {
			t.Errorf("after reopen: AccountExists(%s) = %v, %v; want %v", u, ok, err, want)
		}
	}
	if a, _, _ := s.Account(ctx, 1, "carol"); !a.Created.Equal(at) || a.Nick != "C" {
		t.Errorf("after reopen: Account(carol) = %+v", a)
	}
}

// The flusher commits without Close: a copy of the file holds the import
// soon after.
func TestLoginImportFlushed(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t, bolt.Options{FlushEvery: time.Millisecond})
	defer s.Close()
	if _, err := s.LoginAccount(ctx, 1, "alice", time.Now(), admitAll); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		// A copy taken in the middle of a commit may not open: try again.
		n, err := readCopy(t, path)
		if err == nil && n == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice's login import not in the file after 10s (last copy: %d accounts, %v)", n, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// readCopy opens a copy of the store file at path (the store itself holds
// its lock) and returns the number of accounts in it.
func readCopy(t *testing.T, path string) (int, error) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(cp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := bolt.Open(cp)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return bolt.AccountsInFile(c)
}

// The login that finds PendingMax imports pending commits them itself,
// before it returns: memory holds no more than that whatever the flusher's
// interval.
func TestLoginImportPendingMax(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t, bolt.Options{FlushEvery: time.Hour})
	defer s.Close()
	for i := range bolt.PendingMax - 1 {
		if _, err := s.LoginAccount(ctx, 1, fmt.Sprintf("u%d", i), time.Now(), admitAll); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := readCopy(t, path); err != nil || n != 0 {
		t.Fatalf("before PendingMax: %d accounts in the file, %v; want 0 (all pending)", n, err)
	}
	if _, err := s.LoginAccount(ctx, 1, "last", time.Now(), admitAll); err != nil {
		t.Fatal(err)
	}
	if n, err := readCopy(t, path); err != nil || n != bolt.PendingMax {
		t.Fatalf("after PendingMax: %d accounts in the file, %v; want %d", n, err, bolt.PendingMax)
	}
}

// On a disk that fails commits, a login commits its import itself and,
// refused, drops it: unless another login of the same user was admitted
// meanwhile because it was pending, whose account it then is (committed
// once the disk works again). A second login that its watermark refuses
// relies on nothing: the import is dropped, as no login happened.
func TestLoginImportFailingDisk(t *testing.T) {
	for _, tc := range []struct {
		name  string
		admit func(int64) bool
		kept  bool
	}{
		{"a second login admitted on it keeps it", admitAll, true},
		{"a second login refused by its watermark does not", func(int64) bool { return false }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			// No purge loop: FailWrites swaps the file under it.
			s, path := openTemp(t, bolt.Options{FlushEvery: time.Hour, PurgeEvery: -1})
			if err := bolt.FailWrites(s); err != nil {
				t.Fatal(err)
			}
			release := bolt.HoldFlushes(s)
			first := make(chan error, 1)
			go func() {
				ok, err := s.LoginAccount(ctx, 1, "u", time.Now(), admitAll)
				if ok && err == nil {
					err = errors.New("admitted on a failing disk")
				}
				first <- err
			}()
			for !bolt.Pending(s, 1, "u") { // queued, its flush held
				time.Sleep(time.Millisecond)
			}
			if ok, err := s.LoginAccount(ctx, 1, "u", time.Now(), tc.admit); ok != tc.kept || err != nil {
				t.Fatalf("second login of u while its import is pending: %v, %v; want %v", ok, err, tc.kept)
			}
			release()
			if err := <-first; err == nil {
				t.Fatal("first login: no error from a failing disk")
			}
			if bolt.Pending(s, 1, "u") != tc.kept {
				t.Fatalf("u's import pending after the first login's refusal: %v, want %v", !tc.kept, tc.kept)
			}
			if err := bolt.RestoreWrites(s); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			want := 0
			if tc.kept {
				want = 1
			}
			if n, err := readCopy(t, path); err != nil || n != want {
				t.Fatalf("after Close: %d accounts in the file, %v; want %d", n, err, want)
			}
		})
	}
}

func TestInstIDsSkipAtMostABlock(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "chatctl.db")
	var last uint64
	for range 3 {
		s, err := bolt.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		id, err := s.NextInstID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if id <= last || id > last+bolt.InstIDBlock+1 {
			t.Fatalf("first id after a restart %d; previous %d", id, last)
		}
		last = id
		s.Close()
	}
}

func TestClosed(t *testing.T) {
	before := runtime.NumGoroutine()
	s, err := bolt.Open(filepath.Join(t.TempDir(), "chatctl.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.ImportAccount(context.Background(), 1, store.Account{UserID: "alice"}); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("ImportAccount after Close: %v; want ErrUnavailable", err)
	}
	if _, err := s.AccountExists(context.Background(), 1, "alice"); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("AccountExists after Close: %v; want ErrUnavailable", err)
	}
	if _, err := s.LoginAccount(context.Background(), 1, "alice", time.Now(), admitAll); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("LoginAccount after Close: %v; want ErrUnavailable", err)
	}
	// The purge and flush goroutines are gone.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("goroutines: %d before Open, %d after Close", before, runtime.NumGoroutine())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMain lets the test binary act as a second process opening a store.
func TestMain(m *testing.M) {
	if path := os.Getenv("CHATCTL_BOLT_HELPER_OPEN"); path != "" {
		s, err := bolt.OpenOptions(path, bolt.Options{LockTimeout: 200 * time.Millisecond})
		if err != nil {
			os.Stderr.WriteString(err.Error())
			if errors.Is(err, bolt.ErrLocked) {
				os.Exit(3)
			}
			os.Exit(1)
		}
		s.Close()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// openInSecondProcess opens the store at path in a fresh process of this
// test binary (TestMain) and returns its exit code and stderr.
func openInSecondProcess(t *testing.T, path string) (int, string) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "CHATCTL_BOLT_HELPER_OPEN="+path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), stderr.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, stderr.String()
}

func TestLockedBySecondProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chatctl.db")
	s, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	second := func() (int, string) { return openInSecondProcess(t, path) }
	code, msg := second()
	if code != 3 || !strings.Contains(msg, path) || !strings.Contains(msg, "locked by another process") {
		t.Fatalf("second process while the store is open: exit %d, %q; want ErrLocked naming the file", code, msg)
	}
	s.Close()
	if code, msg := second(); code != 0 {
		t.Fatalf("second process after Close: exit %d, %q", code, msg)
	}
}

// openTemp opens a store with options o in a file of a fresh temp dir.
func openTemp(t *testing.T, o bolt.Options) (*bolt.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "chatctl.db")
	s, err := bolt.OpenOptions(path, o)
	if err != nil {
		t.Fatal(err)
	}
	return s, path
}

// admitAll admits a login whatever the user's kick watermark.
func admitAll(int64) bool { return true }

// Damaged data pages (zeroed, or bytes flipped at random), which once
// panicked or faulted (SIGSEGV) in Open or in the first login to read
// them, are refused by Open with one error naming the file. Each seed
// damages a fresh copy of one store of 3,000 accounts.
func TestDamagedPagesRefusedAtOpen(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.db")
	s, err := bolt.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 30 { // concurrent writers share transactions and fsyncs
		wg.Go(func() {
			for i := w; i < 3000; i += 30 {
				if _, err := s.ImportAccount(ctx, 1400000001, store.Account{UserID: fmt.Sprintf("user-%05d", i), Nick: strings.Repeat("n", 40)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	s.Close()
	orig, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	page := os.Getpagesize()
	pages := len(orig) / page
	rng := rand.New(rand.NewPCG(1, 2))
	for seed := range 24 {
		b := bytes.Clone(orig)
		// Past the two meta pages and the freelist: the data.
		p := 3 + rng.IntN(pages-3)
		if seed%2 == 0 {
			clear(b[p*page : (p+1)*page])
		} else {
			for range 64 {
				b[p*page+rng.IntN(page)] = byte(rng.Uint32())
			}
		}
		path := filepath.Join(dir, fmt.Sprintf("damaged-%d.db", seed))
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := bolt.Open(path)
		if err == nil {
			// A page the store no longer uses (free) may be damaged
			// harmlessly: then every account must still read.
			for i := range 3000 {
				if _, _, err := s.Account(ctx, 1400000001, fmt.Sprintf("user-%05d", i)); err != nil {
					t.Fatalf("seed %d (page %d): Open succeeded, then %v", seed, p, err)
				}
			}
			s.Close()
			continue
		}
		if !strings.Contains(err.Error(), path) || strings.Count(err.Error(), "\n") > 0 {
			t.Errorf("seed %d (page %d): %q", seed, p, err)
		}
	}
}

// A freelist page whose count is absurd (damage, or a hostile file) is
// refused by Open with one error naming the file. bbolt allocates the count
// it reads before looking at the page: 2^33 ids was a 64 GiB allocation, an
// out-of-memory crash no recover catches. Open runs in a second process, so
// that such a crash fails the test instead of killing it.
func TestAbsurdFreelistCountRefusedAtOpen(t *testing.T) {
	s, path := openTemp(t, bolt.Options{PurgeEvery: -1})
	if _, err := s.ImportAccount(context.Background(), 1400000001, store.Account{UserID: "alice"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// A file of 1 KiB pages whose meta page 0 is damaged too: bbolt then
	// finds the page size by trying 1 KiB << i for meta page 1.
	small := filepath.Join(t.TempDir(), "small.db")
	db, err := bbolt.Open(small, 0o600, &bbolt.Options{PageSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucket([]byte("b"))
		if err == nil {
			err = b.Put([]byte("k"), []byte("v"))
		}
		return err
	})
	db.Close()
	for _, c := range []struct {
		path      string
		breakMeta bool
	}{{path, false}, {small, true}} {
		orig, err := os.ReadFile(c.path)
		if err != nil {
			t.Fatal(err)
		}
		// bbolt's layout: a 16-byte page header, then the meta: magic,
		// version, page size, flags, root bucket (16), freelist, high
		// water mark, txid. The freelist is the newer meta's, or meta
		// 1's once meta 0 is damaged.
		size := int(binary.LittleEndian.Uint32(orig[16+8:]))
		meta := func(i int) []byte { return orig[i*size+16 : i*size+16+64] }
		inUse := meta(0)
		if txid := binary.LittleEndian.Uint64(meta(1)[48:]); c.breakMeta || txid > binary.LittleEndian.Uint64(inUse[48:]) {
			inUse = meta(1)
		}
		free := int(binary.LittleEndian.Uint64(inUse[32:]))
		if flags := binary.LittleEndian.Uint16(orig[free*size+8:]); flags != 0x10 {
			t.Fatalf("%s: page %d has flags %#x, not a freelist's", c.path, free, flags)
		}
		for _, count := range []uint64{1 << 33, 1 << 40, 1<<63 - 1, 1 << 63} {
			b := bytes.Clone(orig)
			if c.breakMeta {
				b[16] ^= 0xFF // meta 0's magic
			}
			hdr := b[free*size:]
			binary.LittleEndian.PutUint16(hdr[10:], 0xFFFF) // the count is in the first element
			binary.LittleEndian.PutUint64(hdr[16:], count)
			damaged := filepath.Join(t.TempDir(), "damaged.db")
			if err := os.WriteFile(damaged, b, 0o600); err != nil {
				t.Fatal(err)
			}
			code, msg := openInSecondProcess(t, damaged)
			if code != 1 || !strings.Contains(msg, damaged) || !strings.Contains(msg, "corrupt") || strings.Contains(msg, "\n") {
				t.Errorf("%d-byte pages, count %d: Open in a second process: exit %d, stderr %.300q; want exit 1, one line saying the file is corrupt", size, count, code, msg)
			}
		}
	}
}
