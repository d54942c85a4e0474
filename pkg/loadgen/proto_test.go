package loadgen_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"chatctl/pkg/loadgen"

	"github.com/gorilla/websocket"
)

// The connection JWT is what any HS256 implementation makes of the same
// header and claims (this one computed with Python's hmac and base64):
// sub is the user ID, JSON-escaped, exp a Unix time.
func TestMintJWTsKnownAnswer(t *testing.T) {
	got := loadgen.MintJWTs("k3y", []string{`alice"1`}, time.Hour, time.Unix(1700000000, 0))
	const want = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZVwiMSIsImV4cCI6MTcwMDAwMzYwMH0.BG_RSFWy3ff4-zFMAe0tTafkbj3KGCwjajRS9fYMrBY"
	if len(got) != 1 || got[0] != want {
		t.Fatalf("MintJWTs = %q\nwant %q", got, want)
	}
}

// closeRecorder is a gorilla server that answers one message and records
// how each client then left: its close code, or -1 for a reset.
type closeRecorder struct {
	mu    sync.Mutex
	codes []int
	other []string
}

func (cr *closeRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer ws.Close()
	if _, _, err := ws.ReadMessage(); err != nil {
		return
	}
	ws.WriteMessage(websocket.BinaryMessage, []byte("ok"))
	_, _, err = ws.ReadMessage()
	cr.mu.Lock()
	defer cr.mu.Unlock()
	var ce *websocket.CloseError
	switch {
	case errors.As(err, &ce):
		cr.codes = append(cr.codes, ce.Code)
	case err != nil && strings.Contains(err.Error(), "connection reset"):
		cr.codes = append(cr.codes, -1)
	default:
		cr.other = append(cr.other, err.Error())
	}
}

func (cr *closeRecorder) wait(t *testing.T, n int) []int {
	t.Helper()
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		cr.mu.Lock()
		got := len(cr.codes) + len(cr.other)
		cr.mu.Unlock()
		if got >= n {
			break
		}
	}
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if len(cr.other) > 0 {
		t.Fatalf("clients left with %q", cr.other)
	}
	return append([]int(nil), cr.codes...)
}

// --close sdk ends each login with the SDK's close frame 4000; --close
// reset with a TCP reset and no close frame. The result says which.
func TestLoginsCloseModes(t *testing.T) {
	for _, tc := range []struct {
		mode loadgen.CloseMode
		code int
	}{{"", 4000}, {loadgen.CloseSDK, 4000}, {loadgen.CloseReset, -1}} {
		cr := &closeRecorder{}
		srv := httptest.NewServer(cr)
		r, err := loadgen.Logins(context.Background(), loadgen.Options{
			Target: loadgen.Target{Endpoint: srv.URL, Protocol: loadgen.ProtoWS, Close: tc.mode},
			Users:  loadgen.Users("c-", 5), Sigs: make([]string, 5), Concurrency: 2,
		})
		if err != nil || r.OK != 5 {
			t.Fatalf("close %q: %v, %+v", tc.mode, err, r)
		}
		want := tc.mode
		if want == "" {
			want = loadgen.CloseSDK
		}
		if r.Close != want || r.Protocol != loadgen.ProtoWS {
			t.Errorf("close %q: result says close %q protocol %q", tc.mode, r.Close, r.Protocol)
		}
		codes := cr.wait(t, 5)
		for _, c := range codes {
			if c != tc.code {
				t.Errorf("close %q: the server saw %v, want all %d", tc.mode, codes, tc.code)
				break
			}
		}
		srv.Close()
	}
	if _, err := loadgen.NewDialer(loadgen.Target{Endpoint: "ws://127.0.0.1:1", Close: "fin"}); err == nil {
		t.Error("close mode fin accepted")
	}
}

// centrifugoLike speaks what the generator needs of Centrifugo's JSON
// protocol (its client protocol docs): a connect with an HS256 token
// signed with secret, answered with ping and pong; a bad token closed
// with 3500; then a ping {} every 100 ms, each answered with {}.
type centrifugoLike struct {
	secret string
	mu     sync.Mutex
	subs   []string
	pongs  int
}

func (cl *centrifugoLike) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/connection/websocket" {
		http.NotFound(w, r)
		return
	}
	ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer ws.Close()
	var req struct {
		ID      int `json:"id"`
		Connect struct {
			Token string `json:"token"`
		} `json:"connect"`
	}
	if ws.ReadJSON(&req) != nil || req.ID != 1 {
		return
	}
	parts := strings.Split(req.Connect.Token, ".")
	mac := hmac.New(sha256.New, []byte(cl.secret))
	mac.Write([]byte(strings.Join(parts[:min(2, len(parts))], ".")))
	var claims struct {
		Sub string `json:"sub"`
	}
	raw, _ := base64.RawURLEncoding.DecodeString(parts[min(1, len(parts)-1)])
	if len(parts) != 3 || parts[2] != base64.RawURLEncoding.EncodeToString(mac.Sum(nil)) || json.Unmarshal(raw, &claims) != nil {
		ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(3500, "invalid token"))
		return
	}
	cl.mu.Lock()
	cl.subs = append(cl.subs, claims.Sub)
	cl.mu.Unlock()
	// A push batched before the reply, newline-separated, as Centrifugo does.
	ws.WriteMessage(websocket.TextMessage, []byte(`{"push":{"channel":"x"}}`+"\n"+`{"id":1,"connect":{"client":"c","version":"6.9.1","ping":1,"pong":true}}`))
	done := make(chan struct{})
	defer close(done)
	go func() {
		tk := time.NewTicker(100 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
				if ws.WriteMessage(websocket.TextMessage, []byte("{}")) != nil {
					return
				}
			}
		}
	}()
	for {
		_, m, err := ws.ReadMessage()
		if err != nil {
			return
		}
		if string(m) == "{}" {
			cl.mu.Lock()
			cl.pongs++
			cl.mu.Unlock()
		}
	}
}

// The Centrifugo mode connects with one JWT per user (sub = the user),
// takes the ping interval from the connect reply, answers every ping with
// a pong while it holds, and files a token refused by a close frame under
// its code.
func TestCentrifugoMode(t *testing.T) {
	cl := &centrifugoLike{secret: "s3cret"}
	srv := httptest.NewServer(cl)
	defer srv.Close()
	users := loadgen.Users("cf-", 4)
	o := loadgen.Options{
		Target: loadgen.Target{Endpoint: srv.URL, Protocol: loadgen.ProtoCentrifugo},
		Users:  users, Sigs: loadgen.MintJWTs("s3cret", users, time.Hour, time.Now()), Concurrency: 2,
	}
	r, err := loadgen.Hold(context.Background(), loadgen.HoldOptions{Options: o, Duration: 1500 * time.Millisecond})
	if err != nil || r.LoggedIn != 4 || r.Disconnects != 0 {
		t.Fatalf("hold: %v, %+v", err, r)
	}
	if r.HelloInterval != 1 || r.Protocol != loadgen.ProtoCentrifugo || r.Pongs == 0 || r.Hellos != 0 {
		t.Errorf("hold: ping interval %gs, protocol %q, pongs %d, hellos %d", r.HelloInterval, r.Protocol, r.Pongs, r.Hellos)
	}
	cl.mu.Lock()
	if strings.Join(cl.subs, ",") == "" || len(cl.subs) != 4 || cl.pongs < int(r.Pongs)/2 {
		t.Errorf("server saw subs %q and %d pongs (generator counted %d)", cl.subs, cl.pongs, r.Pongs)
	}
	cl.mu.Unlock()

	o.Sigs = loadgen.MintJWTs("wrong", users, time.Hour, time.Now())
	lr, err := loadgen.Logins(context.Background(), o)
	if err != nil || lr.OK != 0 || lr.Errors["login: websocket: close 3500"] != 4 {
		t.Fatalf("bad tokens: %v, %+v", err, lr)
	}
}
