package server

import (
	"log/slog"
	"net/http"
	"time"

	"chatctl/pkg/server/rest"
	"chatctl/pkg/wire"
)

// restTimeout bounds the reading of one REST request (its body) and the
// writing of its answer. http.Server has no ReadTimeout (it would also cut
// the WebSocket upgrades), so without this a client that sends its headers
// and then trickles the body a byte at a time would hold a connection and
// a goroutine for as long as it likes (docs/RELIABILITY.md, slow-loris).
var restTimeout = 30 * time.Second

// restHandler is the REST API mounted on /v4/; the Server is its Backend.
// Its log lines go through the server's logger (values bounded, logbound.go),
// and those of requests refused before an administrator was recognized
// through the server's limiter of unauthenticated failures.
func (s *Server) restHandler() http.Handler {
	h := rest.Handler(s, slog.New(unauthHandler{s.log.Handler(), s, restUnauthFailure}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		deadline := time.Now().Add(restTimeout)
		rc.SetReadDeadline(deadline)  // not supported (httptest recorder): no bound
		rc.SetWriteDeadline(deadline) // idem
		h.ServeHTTP(w, r)
	})
}

// restUnauthFailure tells the REST handler's line of a request refused
// before its administrator was recognized: a bad URL or method, a bad
// SDKAppID, a missing identifier or UserSig, a rejected UserSig, or a
// non-administrator (docs/CODES.md, checks 1 to 5).
func restUnauthFailure(r slog.Record) bool {
	if r.Message != "rest" {
		return false
	}
	unauth := false
	r.Attrs(func(a slog.Attr) bool {
		if a.Key != "code" {
			return true
		}
		if v := a.Value.Resolve(); v.Kind() == slog.KindInt64 {
			switch n := v.Int64(); {
			case n == wire.CodeBadURL, n == wire.CodeBadIdentifier, n == wire.CodeBadUserSig,
				n == wire.CodeBadSDKAppID, n == wire.CodeNotAdmin,
				n >= wire.CodeSigExpired && n <= wire.CodeNoKey:
				unauth = true
			}
		}
		return false
	})
	return unauth
}
