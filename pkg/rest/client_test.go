package rest

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// A server's answer that is the API's in form but not in content is said
// in the answer's terms: a FAIL with no code, a field of the wrong JSON
// type (it named Go's types: "of type []rest.OnlineResult").
func TestHostileAnswers(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{`{"ActionStatus":"FAIL"}`, "FAIL with no error code or info"},
		{`{"ActionStatus":"OK","ErrorCode":0,"QueryResult":{"To_Account":"x"}}`, "bad answer: its QueryResult is a JSON object, not what the REST API sends"},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(c.body)) }))
		cl := &Client{BaseURL: srv.URL, SDKAppID: 1400000001, Admin: "administrator", Key: strings.Repeat("ab", 32)}
		var resp QueryOnlineStatusResponse
		_, err := cl.Do(context.Background(), CmdQueryOnlineStatus, QueryOnlineStatusRequest{ToAccount: []string{"x"}}, &resp)
		srv.Close()
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "rest.") {
			t.Errorf("answer %s: %v, want %q", c.body, err, c.want)
		}
	}
}

// A redirect is not followed, with a client of the caller's too: the
// request's query holds the admin's UserSig, which went to the host the
// Location named. The answer is no REST answer: unreachable, not the API.
func TestRedirectNotFollowed(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		w.Write([]byte(`{"ActionStatus":"OK","ErrorCode":0,"QueryResult":[]}`))
	}))
	defer other.Close()
	for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other.URL+r.URL.RequestURI(), code)
		}))
		for _, hc := range []*http.Client{nil, {}} {
			cl := &Client{BaseURL: srv.URL, SDKAppID: 1400000001, Admin: "administrator", Key: strings.Repeat("ab", 32), HTTP: hc}
			_, err := cl.Do(context.Background(), CmdQueryOnlineStatus, QueryOnlineStatusRequest{ToAccount: []string{"x"}}, nil)
			var ue *UnreachableError
			if !errors.As(err, &ue) || !ue.NotAPI || strings.Contains(err.Error(), "usersig") {
				t.Errorf("HTTP %d (own client %v): %v", code, hc != nil, err)
			}
		}
		srv.Close()
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the redirect's host got %d requests", n)
	}
}
