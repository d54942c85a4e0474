package server

import (
	"context"
	"errors"
	"testing"
	"time"
)

// storeCtx keeps context.Context's contract without a timer until one is
// waited on: Err is nil until the deadline or end, then DeadlineExceeded
// or Canceled with Done closed; Done closes by itself at the deadline.
func TestStoreCtx(t *testing.T) {
	done := func(ctx context.Context) bool {
		select {
		case <-ctx.Done():
			return true
		default:
			return false
		}
	}
	t.Run("EndBeforeAnyWait", func(t *testing.T) {
		c := newStoreCtx(time.Now(), time.Hour)
		if err := c.Err(); err != nil {
			t.Fatalf("Err before the deadline = %v", err)
		}
		if d, ok := c.Deadline(); !ok || time.Until(d) < 59*time.Minute {
			t.Fatalf("Deadline = %v, %v", d, ok)
		}
		c.end()
		if err := c.Err(); !errors.Is(err, context.Canceled) || !done(c) {
			t.Fatalf("after end: Err %v, done %v; want Canceled, closed", err, done(c))
		}
		c.end() // harmless
	})
	t.Run("EndAfterWait", func(t *testing.T) {
		c := newStoreCtx(time.Now(), time.Hour)
		ch := c.Done()
		if done(c) || c.Err() != nil {
			t.Fatal("done before the deadline")
		}
		// A context derived from it ends with it.
		d, cancel := context.WithCancel(c)
		defer cancel()
		c.end()
		<-ch
		<-d.Done()
		if err := c.Err(); !errors.Is(err, context.Canceled) {
			t.Fatalf("after end: Err %v; want Canceled", err)
		}
		if c.Done() != ch {
			t.Fatal("Done changed channel")
		}
	})
	t.Run("PastDeadline", func(t *testing.T) {
		c := newStoreCtx(time.Now().Add(-time.Second), time.Millisecond)
		if err := c.Err(); !errors.Is(err, context.DeadlineExceeded) || !done(c) {
			t.Fatalf("past the deadline: Err %v, done %v; want DeadlineExceeded, closed", err, done(c))
		}
		c.end()
		if err := c.Err(); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("end after the deadline changed Err to %v", err)
		}
	})
	t.Run("DoneClosesAtDeadline", func(t *testing.T) {
		c := newStoreCtx(time.Now(), 20*time.Millisecond)
		defer c.end()
		select {
		case <-c.Done():
		case <-time.After(time.Minute):
			t.Fatal("Done not closed a minute after a 20ms deadline")
		}
		if err := c.Err(); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Err = %v; want DeadlineExceeded", err)
		}
	})
}
