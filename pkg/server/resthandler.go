package server

import (
	"log/slog"
	"net/http"

	"chatctl/pkg/server/rest"
	"chatctl/pkg/wire"
)

// restHandler is the REST API mounted on /v4/; the Server is its Backend.
// Its log lines go through the server's logger (values bounded, logbound.go),
// and those of requests refused before an administrator was recognized
// through the server's limiter of unauthenticated failures.
func (s *Server) restHandler() http.Handler {
	return rest.Handler(s, slog.New(unauthHandler{s.log.Handler(), s, restUnauthFailure}))
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
