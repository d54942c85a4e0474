package server_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"chatctl/pkg/server"
	"chatctl/pkg/server/servertest"
)

// /debug/stats answers loopback GETs with the counts; anything else is
// 404 (not loopback) or 405; and a flood of ?gc=1 forces at most one
// collection a second, where each request used to force one.
func TestDebugStats(t *testing.T) {
	ts := servertest.Start(t)
	dial(t, ts, "/binfo").mustLogin("ann", ts.Sig("ann", time.Hour))
	get := func(q string) server.Stats {
		t.Helper()
		resp, err := http.Get(ts.RESTURL + "/debug/stats" + q)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st server.Stats
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("HTTP %d, %v", resp.StatusCode, err)
		}
		return st
	}
	if st := get(""); st.Sessions != 1 || st.Sockets != 1 || st.Users != 1 {
		t.Errorf("stats %+v, want one session, socket and user", st)
	}

	start := time.Now()
	before := get("?gc=1").NumGC
	const n = 50
	for range n - 1 {
		get("?gc=1")
	}
	after := get("").NumGC
	// One collection per started second of the flood, and a few the
	// runtime may run by itself: far below one per request.
	if most := uint32(time.Since(start)/time.Second) + 1 + 3; after-before > most {
		t.Errorf("%d requests with gc=1 ran %d collections; want at most %d", n, after-before, most)
	}

	req := httptest.NewRequest(http.MethodGet, "/debug/stats", nil)
	req.RemoteAddr = "192.0.2.2:4000"
	rec := httptest.NewRecorder()
	ts.Server().Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusNotFound {
		t.Errorf("from 192.0.2.2: HTTP %d, want 404", rec.Code)
	}
	resp, err := http.Post(ts.RESTURL+"/debug/stats", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: HTTP %d, want 405", resp.StatusCode)
	}
}
