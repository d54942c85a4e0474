package config

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

func newTestApp() DevApp {
	k := make([]byte, 16)
	rand.Read(k)
	return DevApp{SDKAppID: 1400000001, SecretKey: hex.EncodeToString(k), Admin: "administrator"}
}

// Processes starting at once on an empty config dir (here goroutines, the
// same system calls) all end up with the one app on disk; exactly one
// created it.
func TestCreateDevAppConcurrently(t *testing.T) {
	for round := range 20 {
		dir := filepath.Join(t.TempDir(), "cfg")
		const n = 16
		apps := make([]DevApp, n)
		created := make([]bool, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var err error
				apps[i], created[i], err = LoadOrCreateDevApp(dir, newTestApp)
				if err != nil {
					t.Errorf("round %d: %v", round, err)
				}
			}()
		}
		wg.Wait()
		disk, err := LoadDevApp(dir)
		if err != nil {
			t.Fatal(err)
		}
		creators := 0
		for i := range n {
			if apps[i] != disk {
				t.Fatalf("round %d: process %d runs with key %s…, the file has %s…", round, i, apps[i].SecretKey[:6], disk.SecretKey[:6])
			}
			if created[i] {
				creators++
			}
		}
		if creators != 1 {
			t.Fatalf("round %d: %d processes say they created the app", round, creators)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 {
			t.Fatalf("round %d: config dir holds %d entries, want only %s", round, len(entries), DevAppFile)
		}
	}
}

// A FIFO, a device or a huge file in place of devapp.json is refused, not
// waited on or read whole.
func TestLoadDevAppHostileFile(t *testing.T) {
	fifo := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(fifo, DevAppFile), 0o600); err != nil {
		t.Fatal(err)
	}
	dev := t.TempDir()
	if err := os.Symlink("/dev/zero", filepath.Join(dev, DevAppFile)); err != nil {
		t.Fatal(err)
	}
	huge := t.TempDir()
	big := `{"sdkappid":1,"secret_key":"k","admin":"` + strings.Repeat("a", 1<<20) + `"}`
	if err := os.WriteFile(filepath.Join(huge, DevAppFile), []byte(big), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, dir := range map[string]string{"fifo": fifo, "/dev/zero": dev, "1 MiB": huge} {
		if _, err := LoadDevApp(dir); err == nil {
			t.Errorf("%s: loaded", name)
		}
		if _, _, err := LoadOrCreateDevApp(dir, newTestApp); err == nil {
			t.Errorf("%s: LoadOrCreateDevApp went on", name)
		}
	}
}

// The config dir: CHATCTL_CONFIG_DIR, else an absolute XDG_CONFIG_HOME,
// else ~/.config. A relative XDG_CONFIG_HOME is ignored (the XDG spec):
// it made the dir depend on the working directory.
func TestDir(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	for _, c := range []struct{ dir, xdg, want string }{
		{"/etc/chatctl-x", "/xdg", "/etc/chatctl-x"},
		{"", "/xdg", "/xdg/chatctl"},
		{"", "rel/xdg", filepath.Join(home, ".config", "chatctl")},
		{"", "", filepath.Join(home, ".config", "chatctl")},
	} {
		t.Setenv("CHATCTL_CONFIG_DIR", c.dir)
		t.Setenv("XDG_CONFIG_HOME", c.xdg)
		if got, err := Dir(); err != nil || got != c.want {
			t.Errorf("CHATCTL_CONFIG_DIR=%q XDG_CONFIG_HOME=%q: %q, %v; want %q", c.dir, c.xdg, got, err, c.want)
		}
	}
}
