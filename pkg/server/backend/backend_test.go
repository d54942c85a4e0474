package backend

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"chatctl/internal/leaktest"
	"chatctl/pkg/server"
	"chatctl/pkg/server/store/bolt"
)

// A data dir another serve holds: Open waits for its lock, but returns
// ctx's cause once ctx ends (a signal to serve), not the lock's error a
// while later. A store the wait opens after that is closed: the lock is
// free for the next one.
func TestOpenBoltStopsWithItsContext(t *testing.T) {
	leaktest.Check(t)
	dir := t.TempDir()
	holder, err := bolt.Open(filepath.Join(dir, server.StoreFile))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	stop := errors.New("stopped")
	time.AfterFunc(50*time.Millisecond, func() { cancel(stop) })
	if _, err := Open(ctx, Options{DataDir: dir}); !errors.Is(err, stop) {
		t.Fatalf("Open with the lock held, stopped: %v", err)
	}
	holder.Close() // the wait, still running, now opens it, and must close it
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	b, err := Open(ctx2, Options{DataDir: dir})
	if err != nil {
		t.Fatalf("Open after the stopped one: %v", err)
	}
	b.Close(ctx2)
}
