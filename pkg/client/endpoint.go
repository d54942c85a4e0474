package client

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// ErrBadEndpoint is wrapped by NormalizeEndpoint's errors.
var ErrBadEndpoint = errors.New("bad endpoint")

// NormalizeEndpoint returns the one spelling of a chat server's endpoint,
// so that two spellings of one server are stored and compared as one:
// scheme ws or wss (http and https map to them), host in lower case, the
// scheme's default port dropped, no trailing slash. "cloud" (any case) is
// Tencent's own hosts. A path is kept (a proxy may serve the socket under
// one); a query, fragment or user info is refused, as is anything without a
// ws, wss, http or https scheme and a host.
func NormalizeEndpoint(s string) (string, error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, EndpointCloud) {
		return EndpointCloud, nil
	}
	bad := func(why string) error {
		return fmt.Errorf("%w %.80q: %s; want ws://HOST[:PORT], wss://HOST[:PORT], http(s)://… or cloud", ErrBadEndpoint, HideUserInfo(s), why)
	}
	if !strings.Contains(s, "://") {
		return "", bad("no scheme")
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", bad("not a URL")
	}
	scheme := strings.ToLower(u.Scheme)
	switch scheme {
	case "ws", "http":
		scheme = "ws"
	case "wss", "https":
		scheme = "wss"
	default:
		return "", bad("scheme " + strconv.Quote(u.Scheme))
	}
	switch {
	case u.Hostname() == "":
		return "", bad("no host")
	case u.User != nil:
		return "", bad("user info")
	case u.RawQuery != "" || u.ForceQuery:
		return "", bad("a query")
	case u.Fragment != "":
		return "", bad("a fragment")
	}
	host := strings.ToLower(u.Hostname())
	if port := u.Port(); port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return "", bad("port " + strconv.Quote(port))
		}
		if !(scheme == "ws" && n == 80 || scheme == "wss" && n == 443) {
			host = net.JoinHostPort(host, strconv.Itoa(n))
		} else if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]" // IPv6 without a port
	}
	return scheme + "://" + host + strings.TrimRight(u.EscapedPath(), "/"), nil
}

// HideUserInfo is s with the user info of a URL (user:password@, with or
// without a scheme before it) replaced by "…@", for messages; s as it is
// when it has none.
func HideUserInfo(s string) string {
	start := 0 // where the authority begins: after the scheme, if any
	if i := strings.Index(s, "://"); i >= 0 {
		start = i + len("://")
	}
	auth := s[start:]
	if j := strings.IndexAny(auth, "/?#"); j >= 0 {
		auth = auth[:j]
	}
	at := strings.LastIndex(auth, "@")
	if at < 0 {
		return s
	}
	return s[:start] + "…@" + s[start+at+1:]
}
