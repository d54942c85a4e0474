package server

// Which browser origins may open a WebSocket (Config.AllowedOrigins).

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"chatctl/pkg/server/ui"
)

// checkOrigin allows requests without Origin (Node, native clients), from
// an allowed origin, or from the same host when that host is an IP or
// localhost: a DNS name that a hostile page rebinds to this server is the
// same host as that page, so a page under a name must be allowed by name.
// A request with more than one Origin is refused: no browser sends two,
// and a proxy that checked the other one would disagree with this check.
func (s *Server) checkOrigin(r *http.Request) bool {
	if len(r.Header.Values("Origin")) > 1 {
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" || s.anyOrigin {
		return true
	}
	if s.origins[originKey(o)] {
		return true
	}
	u, err := url.Parse(o)
	if err != nil {
		return false
	}
	return strings.EqualFold(u.Host, r.Host) && ui.LiteralHost(r.Host)
}

// CheckAllowedOrigin refuses an AllowedOrigins entry no browser would send
// as its Origin, scheme://host[:port]: one with a path, an empty one or
// "null" would silently never match.
func CheckAllowedOrigin(o string) error {
	if o == "*" {
		return nil
	}
	u, err := url.Parse(o)
	if err != nil || u.Scheme == "" || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("allowed origin %.80q: want scheme://host[:port], e.g. http://localhost:5173, or *", o)
	}
	return nil
}

// originKey is how an origin is compared: case and a trailing slash aside.
func originKey(o string) string { return strings.ToLower(strings.TrimSuffix(o, "/")) }
