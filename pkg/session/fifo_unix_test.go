//go:build unix

package session

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A FIFO or a directory in the session file's place is refused at once as
// not a regular file (ErrCorrupt): opening a FIFO would wait for a writer
// with the lock held, past the lock's bound and any signal.
func TestNotARegularFile(t *testing.T) {
	for name, mk := range map[string]func(string) error{
		"fifo": func(p string) error { return syscall.Mkfifo(p, 0o600) },
		"dir":  func(p string) error { return os.Mkdir(p, 0o700) },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := mk(filepath.Join(dir, FileName)); err != nil {
				t.Skip(err)
			}
			s := Open(dir)
			done := make(chan error, 1)
			go func() { _, _, err := s.Get(context.Background(), "p"); done <- err }()
			select {
			case err := <-done:
				if !errors.Is(err, ErrCorrupt) || err.Error() != "session file "+s.Path()+" is not a regular file; it was left unchanged: fix or remove it" {
					t.Errorf("Get: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Get still blocked after 5 s")
			}
			err := s.Update(context.Background(), func(f *File) error { f.Profiles["p"] = Profile{UserID: "u", SDKAppID: 1}; return nil })
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("Update: %v", err)
			}
			if fi, err := os.Lstat(s.Path()); err != nil || fi.Mode().IsRegular() {
				t.Errorf("the %s was replaced: %v %v", name, fi, err)
			}
		})
	}
}

// A file over maxFileSize is refused as corrupt, after reading no more
// than one byte past the bound.
func TestTooLargeRefused(t *testing.T) {
	dir := t.TempDir()
	s := Open(dir)
	if err := os.WriteFile(s.Path(), make([]byte, maxFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := s.Get(context.Background(), "p")
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("Get: %v", err)
	}
}
