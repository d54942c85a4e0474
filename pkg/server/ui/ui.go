// Package ui is the page of `chatctl serve` at /ui/ (docs/SERVER.md, "The
// page"): the apps, the online users, the policy in force and a live feed
// of lifecycle events, with actions (kick a user, end one instance, import
// or delete an account) that go through the server's REST API as the app's
// administrator. The page is plain HTML, CSS and JavaScript embedded in
// the binary: no build step, nothing fetched from elsewhere.
package ui

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"chatctl/pkg/rest"
	"chatctl/pkg/sig"
)

//go:embed static
var static embed.FS

// Prefix is where Handler serves: mount it at "/ui/".
const Prefix = "/ui/"

// MaxUsers bounds the users a State lists (UsersTotal counts them all).
const MaxUsers = 500

// State is what the page shows. Nothing in it is secret.
type State struct {
	HelloInterval    string  `json:"hello_interval"`
	HeartbeatTimeout string  `json:"heartbeat_timeout"`
	Apps             []App   `json:"apps"`
	Users            []User  `json:"users"`            // at most MaxUsers, by app then user
	UsersTotal       int     `json:"users_total"`      // this node's users: beyond MaxUsers, some may be gone and not yet swept
	Events           []Event `json:"events,omitempty"` // the feed's last events, oldest first
}

// App is one app and its policy.
type App struct {
	SDKAppID     uint64   `json:"sdkappid"`
	Admins       []string `json:"admins"`
	WebInstances int      `json:"web_instances"`
	MultiDevice  string   `json:"multi_device"`
}

// User is an online user of this node.
type User struct {
	App       uint64     `json:"sdkappid"`
	User      string     `json:"user"`
	Instances []Instance `json:"instances"`
}

// Instance is one instance of a user.
type Instance struct {
	Inst     uint64    `json:"inst"`
	Platform string    `json:"platform"`
	Status   string    `json:"status"` // "online", or "detached" (socket gone, within the heartbeat timeout)
	LoginAt  time.Time `json:"login_at"`
	Expires  time.Time `json:"expires"`
}

// Backend is what the page needs from the server.
type Backend interface {
	// State is the apps, the policy and the online users (Events are the
	// handler's).
	State() State
	// Feed is the lifecycle events.
	Feed() *Feed
	// REST is the server's REST handler, the one on /v4/.
	REST() http.Handler
	// EndInstance ends one instance of user that this node holds: it gets
	// KICKED_OUT REST_API_Kick, the user's other instances and UserSigs
	// stay. False when there is no such instance here.
	EndInstance(ctx context.Context, app uint64, user string, inst uint64) bool
	// Source is what r's event streams are counted under: its source as
	// the server's per-source limits see it (an IPv6 one by its /48), so
	// that one rule says what a source is and which are exempt; nil when
	// they do not cover r's (loopback, by default).
	Source(r *http.Request) any
}

// MaxSubscribers bounds the open event streams, and MaxStreamsPerSource
// those of one source the per-source limits cover (Backend.Source; a page
// per tab, and then some): one client that opened 64 and never read kept
// every other out.
const (
	MaxSubscribers      = 64
	MaxStreamsPerSource = 8
)

type handler struct {
	b     Backend
	files http.Handler

	snapMu sync.Mutex
	snapAt time.Time // when snapJS was taken; zero: none yet
	snapJS []byte    // the state as JSON, without Events

	streamsMu sync.Mutex
	streams   map[any]int // open event streams per source (Backend.Source)
}

// Handler serves the page under Prefix. The server bounds each request's
// body and answer in time (pkg/server's httpTimeout), the event stream's
// writes included; the stream lifts the read deadline (events).
func Handler(b Backend) http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // embedded at build time
	}
	return &handler{b: b, files: http.StripPrefix(strings.TrimSuffix(Prefix, "/"), http.FileServerFS(sub))}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
	w.Header().Set("Referrer-Policy", "no-referrer")
	// A DNS name rebound to this server would make a hostile site the
	// page's own origin, able to read the state and the feed: only an IP
	// literal or localhost is served.
	if !LiteralHost(r.Host) {
		http.Error(w, "the page answers only at an IP address or localhost (not a DNS name)", http.StatusForbidden)
		return
	}
	if r.URL.Path == strings.TrimSuffix(Prefix, "/") {
		http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
		return
	}
	switch p := strings.TrimPrefix(r.URL.Path, Prefix); p {
	case "api/state":
		h.state(w, r)
	case "api/events":
		h.events(w, r)
	case "api/kick", "api/import", "api/delete", "api/end":
		h.action(w, r, strings.TrimPrefix(p, "api/"))
	default:
		if strings.HasPrefix(p, "api/") || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		// Whole files only: net/http honours a Range of thousands of
		// parts (bounded in bytes, not in parts), some 60 ms of CPU a
		// request for a 28 KB header, and four such clients made
		// everyone's logins 7–13× slower (RELIABILITY 40). The page's
		// files are small.
		// (It still says Accept-Ranges: bytes, which net/http sets over
		// ours; a server may ignore a Range, RFC 9110 14.2.)
		r.Header.Del("Range")
		h.files.ServeHTTP(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// ActionRequest is the body of POST /ui/api/kick, /ui/api/import,
// /ui/api/delete and /ui/api/end.
type ActionRequest struct {
	SDKAppID uint64 `json:"sdkappid"`
	User     string `json:"user"`
	Nick     string `json:"nick,omitempty"` // import only
	Inst     uint64 `json:"inst,omitempty"` // end only
}

// maxActionBody bounds an action's body.
const maxActionBody = 4096

// ErrorBody is the answer of a request the page refused before the REST
// API saw it (HTTP 4xx); the REST API's own answers come as they are.
type ErrorBody struct {
	Error string `json:"error"`
}

// action runs one action through the REST handler with the request's own
// "Authorization: Bearer <admin UserSig>", which the REST handler verifies
// as it verifies its usersig parameter. There is no action without it: a
// request from loopback proves nothing (a reverse proxy on the host, or
// another user of the machine, comes from loopback too).
func (h *handler) action(w http.ResponseWriter, r *http.Request, name string) {
	if r.Method != http.MethodPost {
		writeJSON(w, http.StatusMethodNotAllowed, ErrorBody{"use POST"})
		return
	}
	// One of each: with two, a proxy in front may check one copy and
	// this another (as a repeated Origin, or identifier).
	if len(r.Header.Values("Authorization")) > 1 || len(r.Header.Values("Content-Type")) > 1 {
		writeJSON(w, http.StatusBadRequest, ErrorBody{"send one Authorization and one Content-Type header"})
		return
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		writeJSON(w, http.StatusForbidden, ErrorBody{"actions need Authorization: Bearer <admin UserSig> (chatctl sig gen --user ADMIN)"})
		return
	}
	if len(tok) > sig.MaxLen {
		writeJSON(w, http.StatusUnauthorized, ErrorBody{"the UserSig is too long"})
		return
	}
	cl, err := sig.Decode(tok)
	if err != nil {
		writeJSON(w, http.StatusUnauthorized, ErrorBody{"the Authorization header holds no UserSig"})
		return
	}
	if ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); !strings.EqualFold(strings.TrimSpace(ct), "application/json") {
		writeJSON(w, http.StatusUnsupportedMediaType, ErrorBody{"send Content-Type: application/json"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxActionBody))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, ErrorBody{fmt.Sprintf("the body is unreadable or over %d bytes", maxActionBody)})
		return
	}
	var req ActionRequest
	if err := json.Unmarshal(body, &req); err != nil || req.SDKAppID == 0 {
		writeJSON(w, http.StatusBadRequest, ErrorBody{`send {"sdkappid":N,"user":"..."}`})
		return
	}
	var cmd string
	var restBody any
	switch name {
	case "kick":
		cmd, restBody = rest.CmdKick, rest.KickRequest{UserID: req.User}
	case "import":
		cmd, restBody = rest.CmdAccountImport, rest.AccountImportRequest{UserID: req.User, Nick: req.Nick}
	case "delete":
		cmd, restBody = rest.CmdAccountDelete, rest.AccountDeleteRequest{DeleteItem: []rest.UserRef{{UserID: req.User}}}
	case "end":
		// The REST API has no command for one instance: account_check is
		// the REST call that authorizes the caller as an administrator of
		// the app and checks the UserID, with REST's codes; then the
		// instance is ended here.
		cmd, restBody = rest.CmdAccountCheck, rest.AccountCheckRequest{CheckItem: []rest.UserRef{{UserID: req.User}}}
	}
	answer, err := h.callREST(r, req.SDKAppID, cl.Identifier, tok, cmd, restBody)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, ErrorBody{"internal error"})
		return
	}
	if name == "end" {
		var check rest.AccountCheckResponse
		if json.Unmarshal(answer, &check) == nil && check.Err() == nil &&
			len(check.ResultItem) == 1 && check.ResultItem[0].ResultCode == 0 {
			if !h.b.EndInstance(r.Context(), req.SDKAppID, req.User, req.Inst) {
				writeJSON(w, http.StatusNotFound, ErrorBody{fmt.Sprintf("instance %d of that user is not on this server", req.Inst)})
				return
			}
			answer, _ = json.Marshal(rest.Envelope{ActionStatus: rest.ActionOK})
		}
		// else: REST's refusal (not an admin, a bad UserID) as it is.
	}
	writeJSON(w, http.StatusOK, json.RawMessage(answer))
}

// LiteralHost reports whether a request's Host is an IP literal or
// localhost (any port): a host that DNS rebinding cannot make a hostile
// site's own, as it can any name that resolves.
func LiteralHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return strings.EqualFold(host, "localhost") || net.ParseIP(host) != nil
}

// callREST runs one REST command through the server's REST handler, as
// `chatctl admin` would over HTTP, and returns its JSON answer.
func (h *handler) callREST(r *http.Request, app uint64, admin, usersig, cmd string, body any) ([]byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, rest.Prefix+cmd+"?"+rest.Query(app, admin, usersig), bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	rec := &recorder{header: http.Header{}}
	h.b.REST().ServeHTTP(rec, req)
	if rec.status != 0 && rec.status != http.StatusOK {
		return nil, errors.New("REST answered HTTP " + strconv.Itoa(rec.status))
	}
	return rec.body.Bytes(), nil
}

// recorder is the http.ResponseWriter of an internal REST call.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (rr *recorder) Header() http.Header { return rr.header }
func (rr *recorder) WriteHeader(code int) {
	if rr.status == 0 {
		rr.status = code
	}
}
func (rr *recorder) Write(b []byte) (int, error) {
	rr.WriteHeader(http.StatusOK)
	return rr.body.Write(b)
}
