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
}

// MaxSubscribers bounds the open event streams.
const MaxSubscribers = 64

type handler struct {
	b     Backend
	files http.Handler

	snapMu sync.Mutex
	snapAt time.Time // when snap was taken; zero: none yet
	snap   State
	snapJS []byte // snap as JSON
}

// stateFresh is how long one snapshot of the state, and its JSON, serves
// every stream and request: a snapshot walks the hub under its lock, and
// its JSON is some 100 KB with 500 users. Marshalled per stream after each
// burst of events, 64 streams made a flood of refused logins cost a core
// (docs/RELIABILITY.md, finding 22).
const stateFresh = time.Second

// snapshot is the state, taken at most once per stateFresh, and its JSON.
func (h *handler) snapshot() (State, []byte) {
	h.snapMu.Lock()
	defer h.snapMu.Unlock()
	if now := time.Now(); h.snapAt.IsZero() || now.Sub(h.snapAt) >= stateFresh || now.Before(h.snapAt) {
		st := h.b.State()
		st.Events = nil // the handler's
		js, err := json.Marshal(st)
		if err != nil {
			js = nil
		}
		h.snap, h.snapJS, h.snapAt = st, js, now
	}
	return h.snap, h.snapJS
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

func (h *handler) state(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "use GET", http.StatusMethodNotAllowed)
		return
	}
	_, js := h.snapshot()
	events, err := json.Marshal(h.b.Feed().Recent())
	if js == nil || err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	// The snapshot's JSON with the recent events spliced in as the last
	// field (State.Events), not the whole state marshalled per request.
	b := make([]byte, 0, len(js)+len(events)+16)
	b = append(b, js[:len(js)-1]...)
	if string(events) != "null" && string(events) != "[]" {
		b = append(append(b, `,"events":`...), events...)
	}
	b = append(b, "}\n"...)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// sseWriteTimeout bounds each write to an event stream: a client that
// stops reading is dropped.
const sseWriteTimeout = 10 * time.Second

// statePoll is how often a stream looks at the state for changes that come
// with no lifecycle event (a socket gone, a detached instance forgotten);
// keepAlive how often an idle stream gets a comment line, so that a client
// gone away is noticed by a failed write.
const (
	statePoll = 2 * time.Second
	keepAlive = 25 * time.Second
)

// events is the server-sent event stream: "hello" (the state and the
// recent events), then "lifecycle" per event, and "state" whenever the
// state changed (after each burst of events, or seen at a poll). One
// goroutine per subscriber (this handler) with a bounded queue: a
// subscriber that falls behind is dropped by the feed, never waited for.
func (h *handler) events(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "use GET", http.StatusMethodNotAllowed)
		return
	}
	if r.Body != http.NoBody {
		// A stream lifts its read deadline (below), and net/http reads a
		// body it was promised at the first write: one that never comes
		// would hold the stream's slot for good. EventSource sends none.
		http.Error(w, "an event stream takes no body", http.StatusBadRequest)
		return
	}
	feed := h.b.Feed()
	sub, ok := feed.Subscribe()
	if !ok {
		http.Error(w, "too many event streams, or shutting down", http.StatusServiceUnavailable)
		return
	}
	defer feed.Unsubscribe(sub)
	rc := http.NewResponseController(w)
	// A stream outlives the server's bound on a request: net/http's
	// read for the client going away would end it at the read deadline.
	// Each write has its own deadline (write).
	rc.SetReadDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	lastWrite := time.Now()
	write := func(s string) bool {
		rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
		if _, err := io.WriteString(w, s); err != nil || rc.Flush() != nil {
			return false
		}
		lastWrite = time.Now()
		return true
	}
	send := func(event string, v any) bool {
		b, err := json.Marshal(v)
		return err == nil && write("event: "+event+"\ndata: "+string(b)+"\n\n")
	}
	// The state the client has: the snapshot's own bytes, so that a
	// snapshot it has is recognised by its address, not compared.
	hello, last := h.snapshot()
	sendState := func() bool {
		_, b := h.snapshot()
		if b == nil || len(b) == len(last) && (len(b) == 0 || &b[0] == &last[0]) || bytes.Equal(b, last) {
			return b != nil
		}
		last = b
		return write("event: state\ndata: " + string(b) + "\n\n")
	}
	hello.Events = feed.Recent()
	if !send("hello", hello) {
		return
	}
	tick := time.NewTicker(statePoll)
	defer tick.Stop()
	for {
		select {
		case e, ok := <-sub.C:
			if !ok {
				return // dropped (too slow) or shutting down
			}
			if !send("lifecycle", e) {
				return
			}
			// The rest of a burst, then the state once.
			for drained := false; !drained; {
				select {
				case e, ok := <-sub.C:
					if !ok || !send("lifecycle", e) {
						return
					}
				default:
					drained = true
				}
			}
			if !sendState() {
				return
			}
		case <-tick.C:
			if !sendState() {
				return
			}
			if time.Since(lastWrite) >= keepAlive && !write(": keep-alive\n\n") {
				return
			}
		case <-r.Context().Done():
			return
		}
	}
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
