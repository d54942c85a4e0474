package server

import (
	"net/http"
	"time"

	"chatctl/pkg/server/rest"
)

// restTimeout bounds the reading of one REST request (its body) and the
// writing of its answer. http.Server has no ReadTimeout (it would also cut
// the WebSocket upgrades), so without this a client that sends its headers
// and then trickles the body a byte at a time would hold a connection and
// a goroutine for as long as it likes (docs/RELIABILITY.md, slow-loris).
var restTimeout = 30 * time.Second

// restHandler is the REST API mounted on /v4/; the Server is its Backend.
func (s *Server) restHandler() http.Handler {
	h := rest.Handler(s, s.log)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		deadline := time.Now().Add(restTimeout)
		rc.SetReadDeadline(deadline)  // not supported (httptest recorder): no bound
		rc.SetWriteDeadline(deadline) // idem
		h.ServeHTTP(w, r)
	})
}

var _ rest.Backend = (*Server)(nil)
