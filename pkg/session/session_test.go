package session

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

const secretA2 = "A2-SECRET-5f1e9c7d"

func sample(name string) Profile {
	at := time.Date(2026, 11, 25, 17, 50, 0, 123456789, time.UTC)
	return Profile{
		Endpoint:         "ws://127.0.0.1:8765/",
		SDKAppID:         1400000001,
		UserID:           "user-" + name,
		A2Key:            secretA2 + "-" + name,
		TinyID:           "144115212345678901",
		InstID:           4242,
		Platform:         7,
		ClockOffsetMS:    -412,
		ClockRTTMS:       3,
		ClockMeasuredAt:  at,
		LoginAt:          at.Add(-time.Millisecond),
		SigExpiresAt:     time.Date(2026, 12, 2, 17, 50, 0, 0, time.UTC),
		HelloIntervalSec: 30,
		State:            StateKicked,
		KickType:         "multipleAccount",
		StateAt:          at.Add(5 * time.Minute),
	}
}

func ctxT(t *testing.T) context.Context { return t.Context() }

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// noTempFiles fails if a temp file was left in dir.
func noTempFiles(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temp file left behind: %s", e.Name())
		}
	}
}

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := Open(dir)
	if s.Path() != filepath.Join(dir, "sessions.json") {
		t.Fatalf("Path() = %q", s.Path())
	}
	a, b := sample("a"), sample("b")
	b.State, b.KickType, b.StateAt = StateReady, "", time.Time{}
	if err := s.Put(ctxT(t), "default", a); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctxT(t), "work.2_x-y", b); err != nil {
		t.Fatal(err)
	}

	got, ok, err := s.Get(ctxT(t), "default")
	if err != nil || !ok {
		t.Fatalf("Get: %v %v", ok, err)
	}
	if !reflect.DeepEqual(got, a) {
		t.Errorf("Get = %#v\nwant %#v", got, a)
	}
	if got.A2Key != a.A2Key {
		t.Errorf("A2Key not stored")
	}
	all, err := s.List(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]Profile{"default": a, "work.2_x-y": b}; !reflect.DeepEqual(all, want) {
		t.Errorf("List = %v, want %v", all, want)
	}
	if _, ok, err := s.Get(ctxT(t), "nobody"); ok || err != nil {
		t.Errorf("Get(nobody) = %v, %v", ok, err)
	}

	// The file format: version 1, named profiles, snake_case keys, zero
	// times and an empty kick type left out, no UserSig.
	var raw struct {
		Version  int                       `json:"version"`
		Profiles map[string]map[string]any `json:"profiles"`
	}
	data := readFile(t, s.Path())
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	if raw.Version != 1 {
		t.Errorf("version = %d", raw.Version)
	}
	wantKeys := "a2_key clock_measured_at clock_offset_ms clock_rtt_ms endpoint hello_interval_s inst_id kick_type login_at platform sdkappid state state_at tiny_id user_id usersig_expires_at"
	if keys := sortedKeys(raw.Profiles["default"]); keys != wantKeys {
		t.Errorf("keys = %s\nwant %s", keys, wantKeys)
	}
	if _, ok := raw.Profiles["work.2_x-y"]["state_at"]; ok {
		t.Errorf("zero state_at written: %s", data)
	}
	if _, ok := raw.Profiles["work.2_x-y"]["kick_type"]; ok {
		t.Errorf("empty kick_type written: %s", data)
	}
	if bytes.Contains(bytes.ToLower(data), []byte("usersig\"")) {
		t.Errorf("file mentions a usersig: %s", data)
	}

	existed, err := s.Delete(ctxT(t), "default")
	if err != nil || !existed {
		t.Fatalf("Delete = %v, %v", existed, err)
	}
	existed, err = s.Delete(ctxT(t), "default")
	if err != nil || existed {
		t.Fatalf("second Delete = %v, %v", existed, err)
	}
	if _, ok, _ := s.Get(ctxT(t), "default"); ok {
		t.Error("deleted profile still there")
	}
	if _, ok, _ := s.Get(ctxT(t), "work.2_x-y"); !ok {
		t.Error("other profile lost by Delete")
	}
	noTempFiles(t, dir)
}

func sortedKeys(m map[string]any) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	for i := range ks {
		for j := i + 1; j < len(ks); j++ {
			if ks[j] < ks[i] {
				ks[i], ks[j] = ks[j], ks[i]
			}
		}
	}
	return strings.Join(ks, " ")
}

func TestMissingFileIsEmpty(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "not", "yet")
	s := Open(dir)
	if _, ok, err := s.Get(ctxT(t), "default"); ok || err != nil {
		t.Fatalf("Get = %v, %v", ok, err)
	}
	all, err := s.List(ctxT(t))
	if err != nil || all == nil || len(all) != 0 {
		t.Fatalf("List = %v, %v", all, err)
	}
	if existed, err := s.Delete(ctxT(t), "default"); existed || err != nil {
		t.Fatalf("Delete = %v, %v", existed, err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("reads or Delete created the dir: %v", err)
	}
	// An Update that changes nothing writes nothing.
	if err := s.Update(ctxT(t), func(f *File) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("no-op Update created the file: %v", err)
	}
}

func TestPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cfg", "chatctl")
	s := Open(dir)
	if err := s.Put(ctxT(t), "default", sample("a")); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{
		dir:                          os.ModeDir | 0o700,
		filepath.Dir(dir):            os.ModeDir | 0o700,
		s.Path():                     0o600,
		filepath.Join(dir, LockName): 0o600,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode(), want)
		}
	}
	// A file someone loosened is tightened on the next write.
	if err := os.Chmod(s.Path(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctxT(t), "other", sample("b")); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(s.Path()); fi.Mode() != 0o600 {
		t.Errorf("after rewrite: mode %v, want 0600", fi.Mode())
	}
}

// assertRefused checks that every operation on a bad file fails with an
// error naming it, and that the file is left byte for byte as it was.
func assertRefused(t *testing.T, content string, wantIs ...error) {
	t.Helper()
	dir := t.TempDir()
	s := Open(dir)
	if err := os.WriteFile(s.Path(), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	check := func(op string, err error) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s on %q: no error", op, content)
		}
		for _, w := range append([]error{ErrCorrupt}, wantIs...) {
			if !errors.Is(err, w) {
				t.Errorf("%s: error %q is not %v", op, err, w)
			}
		}
		if !strings.Contains(err.Error(), s.Path()) {
			t.Errorf("%s: error %q does not name %s", op, err, s.Path())
		}
	}
	_, _, err := s.Get(ctxT(t), "default")
	check("Get", err)
	_, err = s.List(ctxT(t))
	check("List", err)
	check("Put", s.Put(ctxT(t), "default", sample("a")))
	_, err = s.Delete(ctxT(t), "default")
	check("Delete", err)
	called := false
	check("Update", s.Update(ctxT(t), func(f *File) error {
		called = true
		f.Profiles = map[string]Profile{}
		return nil
	}))
	if called {
		t.Error("Update called fn on a corrupt file")
	}
	if got := readFile(t, s.Path()); string(got) != content {
		t.Errorf("file changed: %q, was %q", got, content)
	}
	noTempFiles(t, dir)
}

func TestCorruptFileRefused(t *testing.T) {
	for name, content := range map[string]string{
		"garbage":      "not json at all",
		"empty":        "",
		"blank":        " \n",
		"truncated":    `{"version":1,"profiles":{"default":{"user_id":"al`,
		"no version":   `{"profiles":{}}`,
		"version zero": `{"version":0,"profiles":{}}`,
		"version text": `{"version":"1","profiles":{}}`,
		"array":        `[1,2,3]`,
		"bad profiles": `{"version":1,"profiles":[]}`,
		"bad field":    `{"version":1,"profiles":{"default":{"inst_id":"x"}}}`,
		"bad name":     `{"version":1,"profiles":{"has space":{}}}`,
		"empty name":   `{"version":1,"profiles":{"":{}}}`,
		"bad state":    `{"version":1,"profiles":{"default":{"user_id":"alice","sdkappid":1,"state":"bogus"}}}`,
		"bad offset":   `{"version":1,"profiles":{"default":{"user_id":"alice","sdkappid":1,"state":"ready","clock_offset_ms":9000000000000000000}}}`,
		"no user":      `{"version":1,"profiles":{"default":{"sdkappid":1,"state":"ready"}}}`,
		"bad user":     `{"version":1,"profiles":{"default":{"user_id":"al\u0085ice","sdkappid":1,"state":"ready"}}}`,
		"fffd, escape": `{"version":1,"profiles":{"default":{"user_id":"\ufffd\u001b[2J","sdkappid":1,"state":"ready"}}}`,
		"control user": `{"version":1,"profiles":{"default":{"user_id":"al\u001b[2Jice","sdkappid":1,"state":"ready"}}}`,
		"no app":       `{"version":1,"profiles":{"default":{"user_id":"alice","state":"ready"}}}`,
	} {
		t.Run(name, func(t *testing.T) { assertRefused(t, content) })
	}
}

func TestFutureVersionRefused(t *testing.T) {
	content := `{"version":2,"profiles":{"default":{"user_id":"alice","new_thing":true}}}`
	assertRefused(t, content, ErrUnsupportedVersion)
	_, _, err := Open(t.TempDir()).Get(ctxT(t), "x") // missing file: not a version error
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, FileName), []byte(content), 0o600)
	_, _, err = Open(dir).Get(ctxT(t), "default")
	if err == nil || !strings.Contains(err.Error(), "version 2") {
		t.Errorf("error %v does not say which version", err)
	}
}

func TestUpdateErrorWritesNothing(t *testing.T) {
	s := Open(t.TempDir())
	if err := s.Put(ctxT(t), "default", sample("a")); err != nil {
		t.Fatal(err)
	}
	before := readFile(t, s.Path())
	boom := errors.New("boom")
	err := s.Update(ctxT(t), func(f *File) error {
		delete(f.Profiles, "default")
		f.Profiles["new"] = sample("n")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want boom", err)
	}
	if got := readFile(t, s.Path()); !bytes.Equal(got, before) {
		t.Errorf("file changed after a failed fn")
	}
}

func TestInvalidNamesAndStates(t *testing.T) {
	s := Open(t.TempDir())
	if err := s.Put(ctxT(t), "default", sample("a")); err != nil {
		t.Fatal(err)
	}
	before := readFile(t, s.Path())
	for _, name := range []string{"", "has space", "a/b", "../x", "é", "x\n", strings.Repeat("a", 65)} {
		if err := s.Put(ctxT(t), name, sample("a")); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Put(%q) = %v", name, err)
		} else if !strings.Contains(err.Error(), fmt.Sprintf("%q", name)) {
			t.Errorf("error %q does not quote the name", err)
		}
		if _, _, err := s.Get(ctxT(t), name); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Get(%q) = %v", name, err)
		}
		if _, err := s.Delete(ctxT(t), name); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Delete(%q) = %v", name, err)
		}
		err := s.Update(ctxT(t), func(f *File) error { f.Profiles[name] = sample("a"); return nil })
		if !errors.Is(err, ErrInvalidName) {
			t.Errorf("Update adding %q = %v", name, err)
		}
	}
	for _, name := range []string{"a", "default", strings.Repeat("z", 64), "A.b_c-9", "..", "-"} {
		if err := ValidateName(name); err != nil {
			t.Errorf("ValidateName(%q) = %v", name, err)
		}
	}
	bad := sample("a")
	bad.State = "sleeping"
	if err := s.Put(ctxT(t), "default", bad); err == nil || !strings.Contains(err.Error(), "sleeping") {
		t.Errorf("Put with unknown state = %v", err)
	}
	if got := readFile(t, s.Path()); !bytes.Equal(got, before) {
		t.Errorf("file changed by rejected writes")
	}
}

// A config "dir" that is a regular file fails even for root.
func TestConfigDirIsAFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "chatctl")
	if err := os.WriteFile(dir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := Open(dir)
	err := s.Put(ctxT(t), "default", sample("a"))
	if err == nil || !strings.Contains(err.Error(), s.Path()) {
		t.Errorf("Put = %v, want an error naming %s", err, s.Path())
	}
	if _, _, err := s.Get(ctxT(t), "default"); err == nil || !strings.Contains(err.Error(), s.Path()) {
		t.Errorf("Get = %v, want an error naming %s", err, s.Path())
	}
	if got := readFile(t, dir); string(got) != "x" {
		t.Errorf("the file in the dir's place changed: %q", got)
	}
}

// readOnlyDir makes dir read-only, or skips the test when that does not stop
// writes (running as root).
func readOnlyDir(t *testing.T, dir string) {
	t.Helper()
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	probe := filepath.Join(dir, "probe")
	if f, err := os.Create(probe); err == nil {
		f.Close()
		os.Remove(probe)
		t.Skip("chmod 0500 does not stop writes here (running as root); TestConfigDirIsAFile and TestFailedWriteKeepsOldFile cover failing writes")
	}
}

func TestReadOnlyDir(t *testing.T) {
	dir := t.TempDir()
	s := Open(dir)
	if err := s.Put(ctxT(t), "default", sample("a")); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, LockName)) // a dir where no lock file can be made
	before := readFile(t, s.Path())
	readOnlyDir(t, dir)
	err := s.Put(ctxT(t), "other", sample("b"))
	if err == nil || !strings.Contains(err.Error(), s.Path()) {
		t.Errorf("Put = %v, want an error naming %s", err, s.Path())
	}
	if got := readFile(t, s.Path()); !bytes.Equal(got, before) {
		t.Error("file changed")
	}
	// Reads still work.
	if p, ok, err := s.Get(ctxT(t), "default"); err != nil || !ok || p.UserID != "user-a" {
		t.Errorf("Get in a read-only dir = %v, %v, %v", p, ok, err)
	}
}

// A write that fails half way (EFBIG under RLIMIT_FSIZE, in a helper
// process) leaves the old file as it was and no temp file.
func TestFailedWriteKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	s := Open(dir)
	if err := s.Put(ctxT(t), "default", sample("a")); err != nil {
		t.Fatal(err)
	}
	before := readFile(t, s.Path())
	out, err := helper(t, "fsize", dir, "second").CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v: %s", err, out)
	}
	if !strings.Contains(string(out), s.Path()) || !strings.Contains(string(out), "file too large") {
		t.Errorf("error %q should name %s and the cause", out, s.Path())
	}
	if got := readFile(t, s.Path()); !bytes.Equal(got, before) {
		t.Errorf("old file changed by a failed write")
	}
	noTempFiles(t, dir)
	if _, ok, err := s.Get(ctxT(t), "second"); ok || err != nil {
		t.Errorf("Get(second) = %v, %v", ok, err)
	}
}

func TestConcurrentGoroutines(t *testing.T) {
	checkNoLeak(t)
	s := Open(t.TempDir())
	const n = 50
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var readErr error
	var readers sync.WaitGroup
	readers.Go(func() { // a reader alongside never sees a broken file
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.List(ctxT(t)); err != nil {
				readErr = err
				return
			}
		}
	})
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			// Each Store value and Put is independent: the lock is what
			// serialises them.
			st := Open(filepath.Dir(s.Path()))
			name := fmt.Sprintf("p%02d", i)
			errs <- st.Put(ctxT(t), name, sample(name))
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if readErr != nil {
		t.Errorf("concurrent List: %v", readErr)
	}
	checkAll(t, s, n)
}

func checkAll(t *testing.T, s *Store, n int) {
	t.Helper()
	var f File
	if err := json.Unmarshal(readFile(t, s.Path()), &f); err != nil {
		t.Fatalf("file does not parse: %v", err)
	}
	if len(f.Profiles) != n {
		t.Fatalf("file holds %d profiles, want %d", len(f.Profiles), n)
	}
	for i := range n {
		name := fmt.Sprintf("p%02d", i)
		if p, ok := f.Profiles[name]; !ok || p.UserID != "user-"+name || p.A2Key != sample(name).A2Key {
			t.Errorf("profile %s = %v, %v", name, p, ok)
		}
	}
	noTempFiles(t, filepath.Dir(s.Path()))
}

func TestConcurrentProcesses(t *testing.T) {
	dir := t.TempDir()
	s := Open(dir)
	const n = 50
	cmds := make([]*exec.Cmd, n)
	outs := make([]*bytes.Buffer, n)
	for i := range n {
		cmds[i] = helper(t, "put", dir, fmt.Sprintf("p%02d", i))
		outs[i] = new(bytes.Buffer)
		cmds[i].Stdout, cmds[i].Stderr = outs[i], outs[i]
	}
	for _, c := range cmds {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	// Wait for all writers in the background; read alongside meanwhile.
	done := make(chan struct{})
	errs := make([]error, n)
	go func() {
		for i, c := range cmds {
			errs[i] = c.Wait()
		}
		close(done)
	}()
	for reading := true; reading; {
		select {
		case <-done:
			reading = false
		default:
		}
		if _, err := s.List(ctxT(t)); err != nil {
			t.Errorf("List while writers run: %v", err)
		}
		time.Sleep(time.Millisecond) // leave the CPU to the writers
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("helper p%02d: %v: %s", i, err, outs[i])
		}
	}
	checkAll(t, s, n)
}

func TestLockTimeout(t *testing.T) {
	checkNoLeak(t)
	dir := t.TempDir()
	s := Open(dir)
	if err := s.Put(ctxT(t), "default", sample("a")); err != nil {
		t.Fatal(err)
	}
	before := readFile(t, s.Path())
	release := startHolder(t, dir, true)

	s.LockTimeout = 200 * time.Millisecond
	called := false
	err := s.Update(ctxT(t), func(*File) error { called = true; return nil })
	if !errors.Is(err, ErrLockTimeout) {
		t.Fatalf("Update = %v, want ErrLockTimeout", err)
	}
	if !strings.Contains(err.Error(), s.Path()) || !strings.Contains(err.Error(), LockName) {
		t.Errorf("error %q should name the file and its lock", err)
	}
	if called {
		t.Error("fn ran without the lock")
	}
	if _, _, err := s.Get(ctxT(t), "default"); !errors.Is(err, ErrLockTimeout) {
		t.Errorf("Get under an exclusive lock = %v, want ErrLockTimeout", err)
	}

	// The context bounds the wait too.
	s.LockTimeout = time.Hour
	ctx, cancel := context.WithTimeout(ctxT(t), 100*time.Millisecond)
	defer cancel()
	err = s.Put(ctx, "default", sample("b"))
	if !errors.Is(err, ErrLockTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Put with a deadline = %v", err)
	}
	ctx, cancel = context.WithCancel(ctxT(t))
	time.AfterFunc(50*time.Millisecond, cancel)
	err = s.Put(ctx, "default", sample("b"))
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrLockTimeout) {
		t.Errorf("Put cancelled = %v", err)
	}
	if got := readFile(t, s.Path()); !bytes.Equal(got, before) {
		t.Error("file changed while locked by another process")
	}

	// Once the holder exits, the lock is free again.
	release()
	s.LockTimeout = 0
	if err := s.Put(ctxT(t), "default", sample("b")); err != nil {
		t.Fatalf("Put after the holder exited: %v", err)
	}
}

// A shared (read) lock does not block other readers.
func TestReadersShareTheLock(t *testing.T) {
	s := Open(t.TempDir())
	if err := s.Put(ctxT(t), "default", sample("a")); err != nil {
		t.Fatal(err)
	}
	startHolder(t, filepath.Dir(s.Path()), false)
	s2 := Open(filepath.Dir(s.Path()))
	s2.LockTimeout = 200 * time.Millisecond
	if _, ok, err := s2.Get(ctxT(t), "default"); !ok || err != nil {
		t.Errorf("Get beside a reader = %v, %v", ok, err)
	}
	if err := s2.Put(ctxT(t), "x", sample("x")); !errors.Is(err, ErrLockTimeout) {
		t.Errorf("Put beside a reader = %v, want ErrLockTimeout", err)
	}
}

func TestA2KeyNeverPrinted(t *testing.T) {
	p := sample("a")
	f := File{Version: 1, Profiles: map[string]Profile{"default": p}}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3v", "%-v", "%T"} {
		outs = append(outs,
			fmt.Sprintf(verb, p), fmt.Sprintf(verb, &p), fmt.Sprintf(verb, f),
			fmt.Sprintf(verb, &f), fmt.Sprintf(verb, []Profile{p}))
	}
	outs = append(outs, fmt.Sprint(p), fmt.Sprintln(p), p.String(), fmt.Sprint(p.Redacted()))
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "profile", p, "file", f)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "profile", p)
	outs = append(outs, logs.String())
	if r, _ := json.Marshal(p.Redacted()); true {
		outs = append(outs, string(r))
	}
	hexKey := fmt.Sprintf("%x", secretA2)
	for _, o := range outs {
		if strings.Contains(o, secretA2) || strings.Contains(strings.ToLower(o), hexKey) {
			t.Errorf("A2Key leaked: %s", o)
		}
	}
	// The rest is still shown, and the key's presence is marked.
	if s := fmt.Sprintf("%+v", p); !strings.Contains(s, "UserID:user-a") || !strings.Contains(s, "A2Key:<redacted>") {
		t.Errorf("%%+v = %s", s)
	}
	if strings.Contains(fmt.Sprint(p.Redacted()), redactedMark) {
		t.Error("a profile without a key shows the mark")
	}
	if p.Redacted().A2Key != "" || p.A2Key == "" {
		t.Error("Redacted must clear the copy only")
	}
}

func TestServerNow(t *testing.T) {
	local := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	p := Profile{ClockOffsetMS: 3_599_827}
	if got, want := ServerNow(p, local), local.Add(3599827*time.Millisecond); !got.Equal(want) {
		t.Errorf("ServerNow = %v, want %v", got, want)
	}
	p.ClockOffsetMS = -412
	if got := ServerNow(p, local); got.UnixMilli() != local.UnixMilli()-412 {
		t.Errorf("ServerNow = %v", got)
	}
}

func TestLoggedIn(t *testing.T) {
	for st, want := range map[State]bool{StateReady: true, StateKicked: false, StateExpired: false, StateLoggedOut: false, "": false} {
		if got := (Profile{State: st}).LoggedIn(); got != want {
			t.Errorf("LoggedIn(%q) = %v", st, got)
		}
	}
}

// Unknown fields of the same version are read, ignored, and dropped only
// when something is written.
func TestUnknownFieldsAndNoOpUpdate(t *testing.T) {
	dir := t.TempDir()
	s := Open(dir)
	content := `{"version":1,"profiles":{"default":{"user_id":"alice","sdkappid":1,"extra":1}},"more":true}`
	os.WriteFile(s.Path(), []byte(content), 0o600)
	p, ok, err := s.Get(ctxT(t), "default")
	if err != nil || !ok || p.UserID != "alice" {
		t.Fatalf("Get = %v, %v, %v", p, ok, err)
	}
	if err := s.Update(ctxT(t), func(*File) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, s.Path()); string(got) != content {
		t.Errorf("no-op Update rewrote the file: %s", got)
	}
}

// A writer killed before its rename leaves a temp file (which may hold
// A2Keys); the next write removes it.
func TestUpdateRemovesStaleTempFiles(t *testing.T) {
	dir := t.TempDir()
	st := Open(dir)
	ctx := context.Background()
	if err := st.Put(ctx, "a", Profile{UserID: "alice", SDKAppID: 1, A2Key: "secret", State: StateReady}); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "."+FileName+".tmp12345")
	if err := os.WriteFile(stale, []byte(`{"a2_key":"secret"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := st.Put(ctx, "b", Profile{UserID: "bob", SDKAppID: 1, State: StateReady}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("stale temp file still there: %v", err)
	}
	got, err := st.List(ctx)
	if err != nil || len(got) != 2 {
		t.Fatalf("List = %v, %v; want 2 profiles", got, err)
	}
}

// A session file that is a symlink (dotfiles kept in a repo) is written
// through: the link stays, its target gets the new content. The rename
// used to replace the link with a regular file, leaving the target stale.
func TestUpdateWritesThroughASymlink(t *testing.T) {
	dir, elsewhere := t.TempDir(), t.TempDir()
	target := filepath.Join(elsewhere, "sessions.json")
	st := Open(dir)
	ctx := context.Background()
	if err := st.Put(ctx, "a", Profile{UserID: "alice", SDKAppID: 1, State: StateReady}); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(st.Path(), target); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, st.Path()); err != nil {
		t.Fatal(err)
	}
	if err := st.Put(ctx, "b", Profile{UserID: "bob", SDKAppID: 1, State: StateReady}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(st.Path()); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the session file is no longer the symlink: %v, %v", fi, err)
	}
	if b := readFile(t, target); !strings.Contains(string(b), `"bob"`) {
		t.Fatalf("the link's target was not written: %s", b)
	}
	if n, _ := filepath.Glob(filepath.Join(elsewhere, ".*tmp*")); len(n) != 0 {
		t.Fatalf("temp files left beside the target: %v", n)
	}
}

// A dangling symlink as the session file (the dotfiles' target not yet
// created) is written through as well: the first write creates the target.
func TestFirstWriteThroughADanglingSymlink(t *testing.T) {
	dir, elsewhere := t.TempDir(), t.TempDir()
	target := filepath.Join(elsewhere, "sessions.json")
	st := Open(dir)
	if err := os.Symlink(target, st.Path()); err != nil {
		t.Fatal(err)
	}
	if err := st.Put(context.Background(), "a", Profile{UserID: "alice", SDKAppID: 1, State: StateReady}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(st.Path()); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the session file is no longer the symlink: %v, %v", fi, err)
	}
	if b := readFile(t, target); !strings.Contains(string(b), `"alice"`) {
		t.Fatalf("the link's target was not created: %s", b)
	}
}

// A change that would make the file larger than a read takes is refused,
// the file left as it was: chatctl's own login wrote such a file, and
// every later command then called it corrupt (the CLI pass).
func TestUpdateRefusesAFileTooLargeToRead(t *testing.T) {
	s := Open(t.TempDir())
	ctx := ctxT(t)
	big := strings.Repeat("k", 1<<10)
	fill := func(f *File, from, to int) {
		for i := from; i < to; i++ {
			f.Profiles[fmt.Sprint("p", i)] = Profile{UserID: "u", SDKAppID: 1, A2Key: big, State: StateReady}
		}
	}
	n := maxFileSize / (2 * len(big))
	if err := s.Update(ctx, func(f *File) error { fill(f, 0, n); return nil }); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(ctx, func(f *File) error { fill(f, n, 2*n); return nil })
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), s.Path()) {
		t.Fatalf("Update past %d bytes: %v; want ErrTooLarge naming the file", maxFileSize, err)
	}
	if after, _ := os.ReadFile(s.Path()); !bytes.Equal(before, after) {
		t.Errorf("the refused change was written")
	}
	if _, err := s.List(ctx); err != nil {
		t.Errorf("the file no longer reads: %v", err)
	}
}

// Two config dirs whose session file is one (the second's a symlink to the
// first's) take one lock: each beside its own link, concurrent Updates
// interleaved, and Puts that returned nil were lost (16 logins, 11
// profiles saved), or failed as one deleted the other's temp file.
func TestOneFileTwoDirsOneLock(t *testing.T) {
	a, b := Open(t.TempDir()), Open(t.TempDir())
	if err := os.Symlink(a.Path(), b.Path()); err != nil {
		t.Fatal(err)
	}
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		for _, s := range []*Store{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- s.Put(ctxT(t), fmt.Sprintf("p%d-%p", i, s), Profile{UserID: "u", SDKAppID: 1, State: StateReady})
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if all, err := b.List(ctxT(t)); err != nil || len(all) != 2*n {
		t.Errorf("%d profiles saved of %d (%v)", len(all), 2*n, err)
	}
}

// A symlink to a file in a dir that is not there does not make that dir
// (a stale or hostile link chose where a dir, and the A2Keys, went):
// the write fails, naming the lock it could not take, as a file that
// cannot be read (exit 1, session_file).
func TestLinkIntoAMissingDirMakesNone(t *testing.T) {
	s, missing := Open(t.TempDir()), filepath.Join(t.TempDir(), "no", "such")
	if err := os.Symlink(filepath.Join(missing, "sessions.json"), s.Path()); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctxT(t), "a", Profile{UserID: "u", SDKAppID: 1, State: StateReady}); !errors.Is(err, ErrUnreadable) || !strings.Contains(err.Error(), "lock") {
		t.Errorf("Put through a link into a missing dir: %v", err)
	}
	if _, err := s.LockLogin(ctxT(t), "a"); !errors.Is(err, ErrUnreadable) {
		t.Errorf("LockLogin through a link into a missing dir: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(missing)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the link's dir was made: %v", err)
	}
}

// A profile saved when the UserID rule still took U+FFFD (before it
// refused what lone surrogate escapes decode to) stays readable: one old
// profile made the whole file corrupt, every command exit 1.
func TestProfileWithReplacementCharReadable(t *testing.T) {
	dir := t.TempDir()
	content := `{"version":1,"profiles":{"old":{"user_id":"x\ufffd","sdkappid":1,"state":"ready"},"a":{"user_id":"alice","sdkappid":1,"state":"ready"}}}`
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	all, err := Open(dir).List(ctxT(t))
	if err != nil || all["old"].UserID != "x\uFFFD" || all["a"].UserID != "alice" {
		t.Fatalf("List: %v, %v", all, err)
	}
}
