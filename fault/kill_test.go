package fault

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chatctl/pkg/client"
	"chatctl/pkg/server"

	"go.etcd.io/bbolt"
)

// killLogins is how many logins TestKillMidLogins starts; `make soak`
// raises it with FAULT_KILL_LOGINS.
func killLogins() int {
	n := 1000
	if v := os.Getenv("FAULT_KILL_LOGINS"); v != "" {
		fmt.Sscan(v, &n)
	}
	return n
}

// loginOutcome is what one client saw of one login (and maybe its logout).
type loginOutcome struct {
	user      string
	ok        bool // wslogin answered OK
	sess      client.Session
	loggedOut bool // its wslogout was answered OK too
	triedOut  bool // a wslogout was sent (answered or not)
	err       error
}

// The server is killed with SIGKILL in the middle of 1,000 concurrent
// logins (every tenth followed by a logout). After a restart on the same
// data dir: the store passes bbolt's consistency check, every login that was
// answered OK re-logs in with its A2Key, every logout that was answered OK
// stays logged out, and fresh logins get instance ids none of the answered
// logins had.
func TestKillMidLogins(t *testing.T) {
	t.Parallel()
	cfg := filepath.Join(t.TempDir(), "config")
	data := filepath.Join(t.TempDir(), "data")
	srv := startServe(t, cfg, "--data-dir", data)

	n := killLogins()
	const workers = 16
	outcomes := make([]loginOutcome, n)
	var answered atomic.Int64
	killAt := int64(n * 2 / 5)
	killed := make(chan struct{})
	var killOnce sync.Once
	kill := func() {
		killOnce.Do(func() {
			srv.kill()
			close(killed)
		})
	}
	work := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				outcomes[i] = loginOnce(srv, fmt.Sprintf("k%04d", i), i%10 == 0)
				if outcomes[i].ok && answered.Add(1) == killAt {
					kill()
				}
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	kill() // in case fewer than killAt were answered
	if srv.code != 128+9 {
		t.Fatalf("serve exited %d, not by SIGKILL; stderr:\n%s", srv.code, srv.stderr.String())
	}

	var ok, out, failed int
	for _, o := range outcomes {
		switch {
		case o.ok && o.loggedOut:
			out++
		case o.ok:
			ok++
		default:
			failed++
			if o.err != nil && !errors.Is(o.err, client.ErrUnreachable) {
				t.Errorf("login %s failed with %v, not a network error", o.user, o.err)
			}
		}
	}
	t.Logf("%d logins: %d answered OK, %d also logged out, %d cut by the kill", n, ok+out, out, failed)
	if ok+out == 0 || failed == 0 {
		t.Fatalf("the kill did not land mid-run: %d answered, %d failed", ok+out, failed)
	}

	checkStore(t, data, "after SIGKILL")

	srv2 := startServe(t, cfg, "--data-dir", data)
	cc := client.Config{Endpoint: srv2.WS, SDKAppID: srv2.dev.SDKAppID}
	seen := map[uint64]string{}
	var mu sync.Mutex
	var wg2 sync.WaitGroup
	idx := make(chan int)
	for range workers {
		wg2.Add(1)
		go func() {
			defer wg2.Done()
			for i := range idx {
				o := outcomes[i]
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				_, err := client.Probe(ctx, cc, o.sess)
				cancel()
				var se *client.ServerError
				switch {
				case o.loggedOut && (!errors.As(err, &se) || se.RevokedReason() != "logout"):
					t.Errorf("%s logged out before the kill, re-login after restart: %v", o.user, err)
				case o.triedOut && !o.loggedOut:
					// The kill came between the logout and its answer:
					// either outcome is right.
				case !o.loggedOut && err != nil:
					t.Errorf("%s logged in before the kill (inst %d), re-login after restart: %v", o.user, o.sess.InstID, err)
				}
			}
		}()
	}
	for i, o := range outcomes {
		if o.ok {
			mu.Lock()
			if prev, dup := seen[o.sess.InstID]; dup {
				t.Errorf("instance id %d given to %s and %s", o.sess.InstID, prev, o.user)
			}
			seen[o.sess.InstID] = o.user
			mu.Unlock()
			idx <- i
		}
	}
	close(idx)
	wg2.Wait()

	// Fresh logins after the restart never reuse an answered instance id.
	for i := range 20 {
		o := loginOnce(srv2, fmt.Sprintf("fresh%02d", i), false)
		if !o.ok {
			t.Fatalf("fresh login after restart: %v", o.err)
		}
		if prev, dup := seen[o.sess.InstID]; dup {
			t.Errorf("fresh login after restart got instance id %d, already %s's", o.sess.InstID, prev)
		}
	}
	if code := srv2.stop(t); code != 0 {
		t.Errorf("restarted serve exited %d; stderr:\n%s", code, srv2.stderr.String())
	}
}

// loginOnce logs user in on a new socket (and out again with logout),
// then closes the socket.
func loginOnce(srv *serveProc, user string, logout bool) loginOutcome {
	o := loginOutcome{user: user}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{Endpoint: srv.WS, SDKAppID: srv.dev.SDKAppID})
	if err != nil {
		o.err = err
		return o
	}
	defer c.Close()
	res, err := c.Login(ctx, user, srv.sig(user, time.Hour))
	if err != nil {
		o.err = err
		return o
	}
	o.ok, o.sess = true, res.Session()
	if logout {
		o.triedOut = true
		if err := c.Logout(ctx, 0); err == nil {
			o.loggedOut = true
		}
	}
	return o
}

// checkStore checks that the store file in data opens and passes bbolt's
// own consistency check (when says after what, in a failure).
func checkStore(t *testing.T, data, when string) {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(data, server.StoreFile), 0o600, &bbolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("store %s: %v", when, err)
	}
	defer db.Close()
	if err := db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	}); err != nil {
		t.Errorf("store %s fails its check: %v", when, err)
	}
}
