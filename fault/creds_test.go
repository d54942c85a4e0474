package fault

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chatctl/pkg/client"
	"chatctl/pkg/sig"

	"github.com/gorilla/websocket"
)

// loginCode logs user in with userSig on a fresh socket and returns the
// reply's ErrorCode (0 on success).
func loginCode(t *testing.T, srv *serveProc, user, userSig string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{Endpoint: srv.WS, SDKAppID: srv.dev.SDKAppID})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Login(ctx, user, userSig)
	var se *client.ServerError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &se):
		return se.Code
	}
	t.Fatalf("login %s: %v", user, err)
	return -1
}

// restCode posts body to a REST command with the query q and returns the
// answer's ErrorCode.
func restCode(t *testing.T, srv *serveProc, command string, q url.Values, body string) int {
	t.Helper()
	resp, err := http.Post(srv.REST+"/v4/"+command+"?"+q.Encode(), "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env struct {
		ActionStatus string
		ErrorCode    int
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil || resp.StatusCode != 200 {
		t.Fatalf("REST %s: HTTP %d, %v", command, resp.StatusCode, err)
	}
	if (env.ActionStatus == "OK") != (env.ErrorCode == 0) {
		t.Errorf("REST %s: inconsistent envelope %+v", command, env)
	}
	return env.ErrorCode
}

func randomKey() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Forged, tampered, other-app, other-user and expired UserSigs are refused
// with their documented codes (docs/CODES.md); guessing locks the user's
// guesses (70050) but not the user, nor anyone else; forged or foreign A2Keys are refused
// (70002); the REST API refuses every call without a valid admin identity;
// a cross-origin WebSocket upgrade is refused (403) unless its origin is
// allowed.
func TestCredentialAttacks(t *testing.T) {
	t.Parallel()
	cfg := filepath.Join(t.TempDir(), "config")
	srv := startServe(t, cfg, "--allow-origin", "http://ok.example")
	app, key := srv.dev.SDKAppID, srv.dev.SecretKey
	now := time.Now()
	mint := func(app uint64, key, user string, at time.Time, expire time.Duration) string {
		return sig.Gen(sig.Params{SDKAppID: app, Key: key, UserID: user, Expire: int64(expire / time.Second)}, at)
	}
	good := mint(app, key, "alice", now, time.Hour)
	tampered := []byte(good)
	mid := len(tampered) / 2
	if tampered[mid] == 'A' {
		tampered[mid] = 'B'
	} else {
		tampered[mid] = 'A'
	}

	for _, tc := range []struct {
		what, user, sig string
		codes           []int
	}{
		{"forged (another key)", "alice", mint(app, randomKey(), "alice", now, time.Hour), []int{70009}},
		{"tampered (one character)", "alice", string(tampered), []int{70003, 70009}},
		{"other app", "alice", mint(app+1, key, "alice", now, time.Hour), []int{70014}},
		{"other user", "alice", mint(app, key, "bob", now, time.Hour), []int{70013}},
		{"expired", "alice", mint(app, key, "alice", now.Add(-2*time.Hour), time.Hour), []int{70001}},
		{"garbage", "alice", "not a usersig", []int{70003}},
		{"empty", "alice", "", []int{70002, 70003}},
	} {
		if got := loginCode(t, srv, tc.user, tc.sig); !containsInt(tc.codes, got) {
			t.Errorf("%s UserSig: code %d, want one of %v", tc.what, got, tc.codes)
		}
	}
	// alice failed 7 times above: still under the lockout; her real sig works.
	if got := loginCode(t, srv, "alice", good); got != 0 {
		t.Errorf("alice with her own UserSig after the attacks: code %d", got)
	}

	// Guessing: after 10 failures carol's guesses get 70050; her own
	// UserSig still logs her in (no one can lock her out); dave is not
	// affected.
	for i := range 10 {
		guess := mint(app, randomKey(), "carol", now, time.Hour)
		if got := loginCode(t, srv, "carol", guess); got != 70009 && got != 70050 {
			t.Errorf("guess %d: code %d", i, got)
		}
	}
	if got := loginCode(t, srv, "carol", mint(app, randomKey(), "carol", now, time.Hour)); got != 70050 {
		t.Errorf("a guess after 10: code %d, want 70050", got)
	}
	if got := loginCode(t, srv, "carol", mint(app, key, "carol", now, time.Hour)); got != 0 {
		t.Errorf("carol with her own UserSig after 10 guesses: code %d, want 0", got)
	}
	if got := loginCode(t, srv, "dave", mint(app, key, "dave", now, time.Hour)); got != 0 {
		t.Errorf("dave while carol is locked: code %d", got)
	}

	// A2Keys: tampered, and one from another server, are refused.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{Endpoint: srv.WS, SDKAppID: app})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Login(ctx, "erin", mint(app, key, "erin", now, time.Hour))
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	other := startServe(t, filepath.Join(t.TempDir(), "config2"))
	oc, err := client.Dial(ctx, client.Config{Endpoint: other.WS, SDKAppID: other.dev.SDKAppID})
	if err != nil {
		t.Fatal(err)
	}
	ores, err := oc.Login(ctx, "erin", other.sig("erin", time.Hour))
	oc.Close()
	if err != nil {
		t.Fatal(err)
	}
	forged := res.Session()
	a2 := []byte(forged.A2Key)
	a2[len(a2)/2] ^= 1
	forged.A2Key = string(a2)
	for what, s := range map[string]client.Session{"tampered A2Key": forged, "another server's A2Key": ores.Session()} {
		_, err := client.Probe(ctx, client.Config{Endpoint: srv.WS, SDKAppID: app}, s)
		var se *client.ServerError
		if !errors.As(err, &se) || se.Code != 70002 {
			t.Errorf("%s: %v, want 70002", what, err)
		}
	}

	// REST without a valid admin identity.
	q := func(id, us string) url.Values {
		v := url.Values{"sdkappid": {fmt.Sprint(app)}, "contenttype": {"json"}, "random": {"1"}}
		if id != "" {
			v.Set("identifier", id)
		}
		if us != "" {
			v.Set("usersig", us)
		}
		return v
	}
	admin := srv.dev.Admin
	kick := `{"UserID":"alice"}`
	for _, tc := range []struct {
		what  string
		q     url.Values
		codes []int
	}{
		{"no identifier", q("", mint(app, key, admin, now, time.Hour)), []int{60004}},
		{"no usersig", q(admin, ""), []int{60005}},
		{"a user, not an admin", q("alice", good), []int{60010}},
		{"admin with a forged sig", q(admin, mint(app, randomKey(), admin, now, time.Hour)), []int{70009}},
		{"admin with alice's sig", q(admin, good), []int{70013}},
		{"admin with an expired sig", q(admin, mint(app, key, admin, now.Add(-2*time.Hour), time.Hour)), []int{70001}},
		{"another app", url.Values{"sdkappid": {fmt.Sprint(app + 1)}, "identifier": {admin}, "usersig": {mint(app+1, key, admin, now, time.Hour)}}, []int{60006}},
	} {
		if got := restCode(t, srv, "im_open_login_svc/kick", tc.q, kick); !containsInt(tc.codes, got) {
			t.Errorf("REST kick, %s: code %d, want %v", tc.what, got, tc.codes)
		}
	}
	// alice was never kicked by any of them: her session is still good.
	if _, err := client.Probe(ctx, client.Config{Endpoint: srv.WS, SDKAppID: app}, res.Session()); err != nil {
		t.Errorf("erin's session after the REST attacks: %v", err)
	}
	if got := loginCode(t, srv, "alice", good); got != 0 {
		t.Errorf("alice's UserSig after the REST attacks: code %d (a REST kick got through?)", got)
	}

	// Cross-origin upgrades.
	for origin, ok := range map[string]bool{"http://evil.example": false, "http://ok.example": true, "": true,
		"null": false, "http://ok.example.evil.example": false} {
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		ws, resp, err := websocket.DefaultDialer.Dial(srv.WS+"/binfo", h)
		if ws != nil {
			ws.Close()
		}
		if ok && err != nil {
			t.Errorf("origin %q refused: %v", origin, err)
		}
		if !ok && (err == nil || resp == nil || resp.StatusCode != http.StatusForbidden) {
			t.Errorf("origin %q: %v, want 403", origin, err)
		}
	}
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
