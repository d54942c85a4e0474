package session

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// LockLogin excludes a second holder of the same profile until the first
// unlocks, and not a holder of another profile.
func TestLockLogin(t *testing.T) {
	s := Open(t.TempDir())
	ctx := context.Background()
	unlock, err := s.LockLogin(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.LockLogin(ctx, "q")
	if err != nil {
		t.Fatalf("another profile's login lock: %v", err)
	}
	other()
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := s.LockLogin(short, "p"); !errors.Is(err, ErrLockTimeout) {
		t.Fatalf("a second lock of p while held: %v, want ErrLockTimeout", err)
	}
	got := make(chan error, 1)
	go func() {
		u, err := s.LockLogin(ctx, "p")
		if err == nil {
			u()
		}
		got <- err
	}()
	unlock()
	if err := <-got; err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	if _, err := s.LockLogin(ctx, "../x"); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("bad name: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.dir, LoginLocksDir, "p.lock")); err != nil {
		t.Fatal(err)
	}
}

// A corrupt file is described in words, without Go's type names.
func TestCorruptInWords(t *testing.T) {
	for in, want := range map[string]string{
		`[1,2]`:                       "holds an array, not an object",
		`{"version":"one"}`:           `"version" is a string, not a whole number`,
		`{"version":1,"profiles":[]}`: `"profiles" is an array, not an object`,
		`{"version":1,"profiles":{"a":{"inst_id":"x"}}}`: `is a string, not a whole number`,
		`{"version":1,`: "not valid JSON",
	} {
		_, err := decode("f", []byte(in))
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "Go value") {
			t.Errorf("decode(%s) = %v; want %q", in, err, want)
		}
	}
}
