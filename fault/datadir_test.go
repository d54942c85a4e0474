package fault

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"chatctl/pkg/client"
)

// The server's data dir fills up (a 1 MiB tmpfs) while it serves: logins
// that need a write are refused with a store error (70500, or 70169 on a
// timeout), the server keeps running, sessions answered before still
// re-log in; once space is freed new logins work again without a restart;
// after a restart the store passes bbolt's check and every login answered
// OK, before or after the full disk, is still valid.
func TestServerDataDirFull(t *testing.T) {
	t.Parallel()
	data := mountTmpfs(t, "1m")
	cfg := filepath.Join(t.TempDir(), "config")
	srv := startServe(t, cfg, "--data-dir", data)

	var answered []loginOutcome
	for i := range 20 {
		o := loginOnce(srv, "before"+string(rune('a'+i)), false)
		if !o.ok {
			t.Fatalf("login before the disk filled: %v", o.err)
		}
		answered = append(answered, o)
	}

	fillUp(t, data)
	refused := 0
	for i := range 200 { // past the leased block of instance ids too
		user := "full" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		o := loginOnce(srv, user, false)
		var se *client.ServerError
		switch {
		case o.ok:
			// Writes that fit in pages bbolt has already freed succeed.
			answered = append(answered, o)
		case errors.As(o.err, &se) && (se.Code == 70500 || se.Code == 70169):
			refused++
		default:
			t.Fatalf("login %d on a full disk: %v, want 70500/70169", i, o.err)
		}
	}
	if refused == 0 {
		t.Fatalf("no login was refused on a full disk: the disk did not fill?")
	}
	cc := client.Config{Endpoint: srv.WS, SDKAppID: srv.dev.SDKAppID}
	for _, o := range answered[:20] {
		if _, err := client.Probe(ctxT(t), cc, o.sess); err != nil {
			t.Errorf("%s re-login while the disk is full: %v", o.user, err)
		}
	}

	if err := os.Remove(filepath.Join(data, "filler")); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		o := loginOnce(srv, "after"+string(rune('a'+i)), false)
		if !o.ok {
			t.Fatalf("login after space was freed: %v", o.err)
		}
		answered = append(answered, o)
	}
	if code := srv.stop(t); code != 0 {
		t.Errorf("serve exited %d after the full disk; stderr:\n%s", code, srv.stderr.String())
	}
	t.Logf("%d of 200 logins refused on the full disk, %d answered; serve's log:\n%s", refused, len(answered)-30, lastLines(srv.stderr.String(), 3))

	checkStore(t, data, "after the full disk")

	srv2 := startServe(t, cfg, "--data-dir", data)
	cc.Endpoint = srv2.WS
	for _, o := range answered {
		if _, err := client.Probe(ctxT(t), cc, o.sess); err != nil {
			t.Errorf("%s re-login after restart: %v", o.user, err)
		}
	}
}
