package loadgen_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"chatctl/fault"
	"chatctl/pkg/loadgen"
	"chatctl/pkg/server/servertest"
)

// hangFirst is a fault.Proxy to the server at addr whose first
// connection is frozen (a starved server that never answers its
// handshake); the ones after it flow.
func hangFirst(t *testing.T, addr string) string {
	t.Helper()
	p, err := fault.NewProxy(addr)
	if err != nil {
		t.Fatal(err)
	}
	p.SetStall(true) // nothing flows until the first connection is frozen
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for len(p.Accepts()) == 0 {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
		p.Freeze()
		p.SetStall(false)
	}()
	t.Cleanup(func() {
		close(stop)
		<-done
		p.Close()
	})
	return p.Addr()
}

// A login whose handshake timed out is tried again with --retries, after
// a pause, and counted as retried, not failed; without retries it fails.
func TestLoginRetries(t *testing.T) {
	ts := servertest.Start(t)
	for _, tc := range []struct {
		retries, ok int
		failed      map[string]int
		retried     map[string]int
	}{
		{retries: 1, ok: 2, failed: map[string]int{}, retried: map[string]int{"dial: timeout": 1}},
		{retries: 0, ok: 1, failed: map[string]int{"dial: timeout": 1}, retried: map[string]int{}},
	} {
		front := hangFirst(t, ts.Addr)
		users := loadgen.Users("retry-", 2)
		sigs := []string{ts.Sig(users[0], time.Hour), ts.Sig(users[1], time.Hour)}
		r, err := loadgen.Logins(context.Background(), loadgen.Options{
			Target:  loadgen.Target{Endpoint: "ws://" + front, SDKAppID: ts.App.SDKAppID, DialTimeout: 300 * time.Millisecond},
			Users:   users,
			Sigs:    sigs,
			Retries: tc.retries, Concurrency: 1,
		})
		if err != nil {
			t.Fatal(err)
		}
		if r.OK != tc.ok || !equalCounts(r.Errors, tc.failed) || !equalCounts(r.Retried, tc.retried) {
			t.Errorf("retries %d: ok %d errors %v retried %v; want ok %d errors %v retried %v",
				tc.retries, r.OK, r.Errors, r.Retried, tc.ok, tc.failed, tc.retried)
		}
	}
	// What is not a "try again" is not tried again: a refused UserSig.
	r, err := loadgen.Logins(context.Background(), loadgen.Options{
		Target: loadgen.Target{Endpoint: ts.WSURL, SDKAppID: ts.App.SDKAppID},
		Users:  []string{"retry-bad"}, Sigs: []string{"not-a-sig"}, Retries: 3,
	})
	if err != nil || r.OK != 0 || r.Failed != 1 || len(r.Retried) != 0 {
		t.Errorf("bad sig with retries: %v, ok %d failed %d retried %v", err, r.OK, r.Failed, r.Retried)
	}
}

func equalCounts(a, b map[string]int) bool {
	if a == nil || len(a) != len(b) {
		return false
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}

// A run stopped while a login waits to be tried again ends that wait
// and keeps the failure as it was: no try with a dead context, whose
// error would replace the timeout in the table.
func TestLoginRetryStoppedInPause(t *testing.T) {
	ts := servertest.Start(t)
	front := hangFirst(t, ts.Addr)
	users := loadgen.Users("retry-stop-", 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(600*time.Millisecond, cancel) // in the 1 s pause after the 300 ms timeout
	r, err := loadgen.Logins(ctx, loadgen.Options{
		Target: loadgen.Target{Endpoint: "ws://" + front, SDKAppID: ts.App.SDKAppID, DialTimeout: 300 * time.Millisecond},
		Users:  users, Sigs: []string{ts.Sig(users[0], time.Hour)}, Retries: 3, Concurrency: 1,
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("stopped run: %v", err)
	}
	if !equalCounts(r.Errors, map[string]int{"dial: timeout": 1}) || len(r.Retried) != 0 {
		t.Errorf("stopped in the pause: errors %v retried %v; want the dial timeout and no retry", r.Errors, r.Retried)
	}
}
