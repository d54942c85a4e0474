package fault

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// mountTmpfs mounts a tmpfs of size bytes at a new dir (root only); it
// skips the test with the reason when it cannot.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cfg")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		t.Skipf("cannot mount a %s tmpfs (%v): needs root and CAP_SYS_ADMIN; "+
			"TestConfigDirFileSizeLimit covers the full disk with RLIMIT_FSIZE", size, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fillUp writes a file until the file system is full.
func fillUp(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil && !errors.Is(err, syscall.ENOSPC) {
		t.Fatal(err)
	}
	if f == nil {
		return
	}
	defer f.Close()
	buf := make([]byte, 512)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	f.Sync()
}

// dirNames lists the names in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// checkCleanFailure: a documented non-zero code, nothing on stdout, one
// "chatctl: " line on stderr.
func checkCleanFailure(t *testing.T, r result, what string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if r.code <= 0 || r.code == 2 || documentedCodes[r.code] == "" || r.stdout != "" ||
		len(lines) != 1 || !strings.HasPrefix(lines[0], "chatctl: ") {
		t.Errorf("%s: not a clean failure: %v", what, r)
	}
}

// aliceConfig is a config dir in which alice logged in, and what a
// failed write must leave as it was.
type aliceConfig struct {
	env       []string
	cfg, path string // the dir and its sessions.json
	old       []byte // sessions.json
	names     []string
}

// loginAlice starts a server and logs alice in on config dir cfg.
func loginAlice(t *testing.T, cfg string) *aliceConfig {
	t.Helper()
	srv := startServe(t, cfg, "--data-dir", filepath.Join(t.TempDir(), "data"))
	a := &aliceConfig{env: cleanEnv(cfg, "CHATCTL_ENDPOINT="+srv.WS), cfg: cfg, path: filepath.Join(cfg, "sessions.json")}
	if r := run(t, a.env, procLimit, "login", "alice"); r.code != 0 {
		t.Fatalf("%v", r)
	}
	var err error
	if a.old, err = os.ReadFile(a.path); err != nil {
		t.Fatal(err)
	}
	a.names = dirNames(t, cfg)
	return a
}

// unchanged checks that sessions.json keeps its content byte for byte, that
// the dir holds no new file (fillUp's filler aside), and that whoami still
// answers alice.
func (a *aliceConfig) unchanged(t *testing.T, state string) {
	t.Helper()
	if b, err := os.ReadFile(a.path); err != nil || !bytes.Equal(b, a.old) {
		t.Errorf("%s: sessions.json changed (%v):\nold %s\nnew %s", state, err, a.old, b)
	}
	if got := dirNames(t, a.cfg); !slices.Equal(got, a.names) && !slices.Equal(got, sortedWith(a.names, "filler")) {
		t.Errorf("%s: the config dir holds %v, was %v", state, got, a.names)
	}
	if r := run(t, a.env, procLimit, "whoami"); r.code != 0 || !strings.Contains(r.stdout, "alice") {
		t.Errorf("%s: whoami: %v", state, r)
	}
}

// A config dir on a full file system, then on a read-only one: login (and
// logout) fail with one error line and a documented exit code, the session
// file keeps its old content byte for byte, no temp file is left behind, and
// read-only commands keep working.
func TestConfigDirFullOrReadOnly(t *testing.T) {
	t.Parallel()
	cfg := mountTmpfs(t, "64k")
	a := loginAlice(t, cfg)
	check := func(state string) {
		t.Helper()
		r := run(t, a.env, procLimit, "--profile", "p2", "login", "bob")
		checkCleanFailure(t, r, state+": login bob")
		t.Logf("%s: %v", state, r)
		r = run(t, a.env, procLimit, "logout")
		checkCleanFailure(t, r, state+": logout")
		t.Logf("%s: %v", state, r)
		a.unchanged(t, state)
	}

	fillUp(t, cfg)
	check("full")

	if err := os.Remove(filepath.Join(cfg, "filler")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("", cfg, "", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
		t.Fatalf("remount read-only: %v", err)
	}
	check("read-only")

	// Writable again: the same commands work, so nothing was left broken.
	if err := syscall.Mount("", cfg, "", syscall.MS_REMOUNT, "size=64k"); err != nil {
		t.Fatalf("remount read-write: %v", err)
	}
	if r := run(t, a.env, procLimit, "--profile", "p2", "login", "bob"); r.code != 0 {
		t.Errorf("after remount: %v", r)
	}
	// The logout on the full disk did log out on the server before it
	// failed to save (docs/RELIABILITY.md): this one finds the session
	// ended (3) and removes the profile.
	if r := run(t, a.env, procLimit, "logout"); r.code != 0 && r.code != 3 {
		t.Errorf("after remount: %v", r)
	}
	if r := run(t, a.env, procLimit, "whoami"); r.code != 3 {
		t.Errorf("after logout: %v", r)
	}
}

func sortedWith(names []string, extra string) []string {
	s := append(slices.Clone(names), extra)
	slices.Sort(s)
	return s
}

// The full-disk case without root: chatctl runs under RLIMIT_FSIZE of 512
// bytes (SIGXFSZ ignored, so the write fails with EFBIG as on a full disk),
// smaller than the session file it must write. login fails with one error
// line, the file keeps its old content, no temp file is left behind.
func TestConfigDirFileSizeLimit(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh to set RLIMIT_FSIZE with")
	}
	a := loginAlice(t, filepath.Join(t.TempDir(), "config"))
	if len(a.old) <= 512 {
		t.Fatalf("the session file is only %d bytes: the limit would not bite", len(a.old))
	}
	limited := func(args ...string) result {
		t.Helper()
		sh := append([]string{"-c", `trap "" XFSZ; ulimit -f 1 && exec "$0" "$@"`, builtBinary(t)}, args...)
		ctx, cancel := context.WithTimeout(context.Background(), procLimit)
		defer cancel()
		cmd := exec.CommandContext(ctx, "sh", sh...)
		cmd.Env = a.env
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return result{args: args, code: exitCode(err), stdout: out.String(), stderr: errb.String()}
	}
	r := limited("--profile", "p2", "login", "bob")
	checkCleanFailure(t, r, "login under RLIMIT_FSIZE")
	if !strings.Contains(r.stderr, "file too large") {
		t.Errorf("login under RLIMIT_FSIZE did not hit the limit: %v", r)
	}
	a.unchanged(t, "under RLIMIT_FSIZE")
}
