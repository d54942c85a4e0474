package rest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
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
