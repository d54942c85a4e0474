package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"chatctl/internal/leaktest"
	"chatctl/pkg/server/servertest"
	"chatctl/pkg/server/ui"
	"chatctl/pkg/wire"
)

// uiGet GETs a path of the page over loopback and decodes its JSON.
func uiGet(t *testing.T, ts *servertest.Server, path string, v any) *http.Response {
	t.Helper()
	res, err := http.Get(ts.RESTURL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET %s: %v: %s", path, err, b)
		}
	}
	return res
}

// uiAct POSTs an action of the page over loopback with the admin's UserSig
// (header may replace it): the HTTP status and the answer's raw JSON.
func uiAct(t *testing.T, ts *servertest.Server, name, user string, header http.Header) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, ts.RESTURL+"/ui/api/"+name,
		strings.NewReader(`{"sdkappid":`+strconv.Itoa(servertest.SDKAppID)+`,"user":`+strconv.Quote(user)+`}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+ts.Sig(servertest.Admin, time.Hour))
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]any
	b, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("%s %s: %v: %s", name, user, err, b)
	}
	return res.StatusCode, body
}

func findUser(st ui.State, user string) *ui.User {
	for i := range st.Users {
		if st.Users[i].User == user {
			return &st.Users[i]
		}
	}
	return nil
}

func TestUIStateShowsAppsUsersAndEvents(t *testing.T) {
	leaktest.Check(t)
	ts := servertest.Start(t, servertest.WebInstances(2), servertest.MultiDevice("single"))
	sig := ts.Sig("alice", time.Hour)
	c := dial(t, ts, "/binfo?platform=web")
	c.mustLogin("alice", sig)
	bad := dial(t, ts, "/binfo")
	if r := bad.login("mallory\x01"+strings.Repeat("x", 100), "not-a-usersig"); r.code() == 0 {
		t.Fatalf("a bad UserSig logged in: %s", r.Raw)
	}

	var st ui.State
	res := uiGet(t, ts, "/ui/api/state", &st)
	raw, _ := json.Marshal(st)
	if res.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("state Cache-Control = %q", res.Header.Get("Cache-Control"))
	}
	if len(st.Apps) != 1 || st.Apps[0].SDKAppID != servertest.SDKAppID || st.Apps[0].WebInstances != 2 ||
		st.Apps[0].MultiDevice != "single" || st.Apps[0].Admins[0] != servertest.Admin {
		t.Errorf("apps = %+v", st.Apps)
	}
	u := findUser(st, "alice")
	if u == nil || len(u.Instances) != 1 || u.Instances[0].Inst != c.inst ||
		u.Instances[0].Platform != "Web" || u.Instances[0].Status != "online" || st.UsersTotal != 1 {
		t.Fatalf("alice not shown online on Web: %s", raw)
	}
	var login, refused *ui.Event
	for i, e := range st.Events {
		switch e.Kind {
		case ui.KindLogin:
			login = &st.Events[i]
		case ui.KindRefused:
			refused = &st.Events[i]
		}
	}
	if login == nil || login.User != "alice" || login.Inst != c.inst || login.Platform != "Web" || login.Form != "usersig" {
		t.Errorf("login event = %+v", login)
	}
	if refused == nil || refused.Code == 0 || len(refused.User) > ui.MaxUser || strings.ContainsRune(refused.User, 1) ||
		!strings.HasPrefix(refused.User, "mallory") {
		t.Errorf("refusal event unbounded or missing: %+v", refused)
	}
	for _, secret := range []string{sig, c.a2, ts.App.Key} {
		if strings.Contains(string(raw), secret) {
			t.Fatalf("the state holds a secret: %s", raw)
		}
	}
}

func TestUIPageServed(t *testing.T) {
	leaktest.Check(t)
	ts := servertest.Start(t)
	res := uiGet(t, ts, "/ui/", nil)
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(res.Header.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Errorf("/ui/: %d %v", res.StatusCode, res.Header)
	}
	if res := uiGet(t, ts, "/ui/app.js", nil); res.StatusCode != 200 || !strings.Contains(res.Header.Get("Content-Type"), "javascript") {
		t.Errorf("/ui/app.js: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	// A Range of thousands of parts (54 ms of CPU each, a 206 of a
	// megabyte): the whole file instead.
	req, _ := http.NewRequest(http.MethodGet, ts.RESTURL+"/ui/app.js", nil)
	req.Header.Set("Range", "bytes="+strings.TrimSuffix(strings.Repeat("0-0,", 5000), ","))
	if res, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || strings.Contains(res.Header.Get("Content-Type"), "multipart") || int64(len(b)) != res.ContentLength {
			t.Errorf("/ui/app.js with 5,000 ranges: %d %q, %d bytes", res.StatusCode, res.Header.Get("Content-Type"), len(b))
		}
	}
	if res := uiGet(t, ts, "/ui/api/nothing", nil); res.StatusCode != 404 {
		t.Errorf("/ui/api/nothing: %d", res.StatusCode)
	}
	cl := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := cl.Get(ts.RESTURL + "/ui")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != "/ui/" {
		t.Errorf("/ui: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
}

// sse reads one server-sent event stream.
type sse struct {
	res *http.Response
	r   *bufio.Reader
}

// openSSE opens an event stream; a stream still open after a minute (an
// awaited event that never comes) ends, failing its reader.
func openSSE(t *testing.T, url string) *sse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		res.Body.Close()
		t.Fatalf("event stream: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	t.Cleanup(func() { res.Body.Close() })
	return &sse{res: res, r: bufio.NewReader(res.Body)}
}

// next is the next event's name and data; err at the stream's end.
func (s *sse) next() (string, []byte, error) {
	var name string
	var data []byte
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return "", nil, err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "" && name != "":
			return name, data, nil
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = []byte(strings.TrimPrefix(line, "data: "))
		}
	}
}

func TestUIStreamGetsLoginKickAndState(t *testing.T) {
	leaktest.Check(t)
	ts := servertest.Start(t)
	s := openSSE(t, ts.RESTURL+"/ui/api/events")
	name, data, err := s.next()
	if err != nil || name != "hello" {
		t.Fatalf("first event %q %s %v", name, data, err)
	}
	var hello ui.State
	if err := json.Unmarshal(data, &hello); err != nil || len(hello.Apps) != 1 || len(hello.Users) != 0 {
		t.Fatalf("hello: %s", data)
	}
	c := dial(t, ts, "/binfo?platform=android")
	c.mustLogin("bob", ts.Sig("bob", time.Hour))
	// The stream's reader below is the only wait: each read blocks until
	// the server has sent the next event.
	var sawLogin, sawState bool
	for !sawLogin || !sawState {
		name, data, err := s.next()
		if err != nil {
			t.Fatalf("stream ended: %v", err)
		}
		switch name {
		case "lifecycle":
			var e ui.Event
			json.Unmarshal(data, &e)
			sawLogin = sawLogin || (e.Kind == ui.KindLogin && e.User == "bob" && e.Platform == "Android" && e.Inst == c.inst)
		case "state":
			var st ui.State
			json.Unmarshal(data, &st)
			sawState = sawLogin && findUser(st, "bob") != nil
		}
	}
	if code, body := uiAct(t, ts, "kick", "bob", nil); code != 200 || body["ActionStatus"] != "OK" {
		t.Fatalf("kick: %d %v", code, body)
	}
	if p := c.awaitPush(wire.CmdForceOffline); p.kickType() != wire.KickRESTAPI {
		t.Fatalf("push after the page's kick: %s", p.Raw)
	}
	for {
		name, data, err := s.next()
		if err != nil {
			t.Fatalf("stream ended: %v", err)
		}
		var e ui.Event
		if name == "lifecycle" && json.Unmarshal(data, &e) == nil && e.Kind == ui.KindKick {
			if e.User != "bob" || e.KickType != "REST_API_Kick" || e.Inst != c.inst {
				t.Fatalf("kick event: %s", data)
			}
			break
		}
	}
	// A shutdown ends the stream (it does not wait for it).
	ts.Close()
	for {
		if _, _, err := s.next(); err != nil {
			break
		}
	}
}

// A socket that goes away sends no lifecycle event; the stream shows its
// instance detached all the same.
func TestUIStreamShowsADetachedInstance(t *testing.T) {
	leaktest.Check(t)
	ts := servertest.Start(t)
	c := dial(t, ts, "/binfo?platform=pc")
	c.mustLogin("dan", ts.Sig("dan", time.Hour))
	s := openSSE(t, ts.RESTURL+"/ui/api/events")
	if name, data, err := s.next(); err != nil || name != "hello" || !strings.Contains(string(data), `"status":"online"`) {
		t.Fatalf("hello: %q %s %v", name, data, err)
	}
	c.ws.Close()
	for {
		name, data, err := s.next()
		if err != nil {
			t.Fatalf("stream ended: %v", err)
		}
		var st ui.State
		if name == "state" && json.Unmarshal(data, &st) == nil {
			if u := findUser(st, "dan"); u != nil && u.Instances[0].Status == "detached" && u.Instances[0].Platform == "PC" {
				return
			}
		}
	}
}

func TestUIActionsGoThroughREST(t *testing.T) {
	leaktest.Check(t)
	ts := servertest.Start(t)
	if code, body := uiAct(t, ts, "kick", "nobody", nil); code != 200 || body["ErrorCode"] != float64(wire.CodeNotImported) {
		t.Errorf("kick of an account never imported: %d %v", code, body)
	}
	if code, body := uiAct(t, ts, "import", "carol", nil); code != 200 || body["ActionStatus"] != "OK" {
		t.Fatalf("import: %d %v", code, body)
	}
	if ok, err := ts.Store().AccountExists(context.Background(), servertest.SDKAppID, "carol"); err != nil || !ok {
		t.Fatalf("carol not imported: %v %v", ok, err)
	}
	if code, body := uiAct(t, ts, "import", strings.Repeat("x", 33), nil); code != 200 || body["ErrorCode"] != float64(wire.CodeBadParam) {
		t.Errorf("import of a 33-byte UserID: %d %v", code, body)
	}
	code, body := uiAct(t, ts, "delete", "carol", nil)
	items, _ := body["ResultItem"].([]any)
	if code != 200 || len(items) != 1 || items[0].(map[string]any)["ResultCode"] != float64(0) {
		t.Fatalf("delete: %d %v", code, body)
	}
	code, body = uiAct(t, ts, "delete", "carol", nil)
	items, _ = body["ResultItem"].([]any)
	if code != 200 || len(items) != 1 || items[0].(map[string]any)["ResultCode"] != float64(wire.CodeNotImported) {
		t.Errorf("second delete: %d %v", code, body)
	}
	// Loopback proves nothing (a reverse proxy on the host, another user
	// of the machine): no action without the admin's UserSig.
	if code, body := uiAct(t, ts, "import", "dave", http.Header{"Authorization": nil}); code != http.StatusForbidden {
		t.Errorf("import without credentials over loopback: %d %v", code, body)
	}
	// Two Authorization headers, the admin's first: refused, as a proxy
	// may have checked the other (the first was used).
	if code, body := uiAct(t, ts, "import", "dave", http.Header{"Authorization": {"Bearer " + ts.Sig(servertest.Admin, time.Hour), "Bearer x"}}); code != http.StatusBadRequest {
		t.Errorf("import with two Authorization headers: %d %v", code, body)
	}
	req, _ := http.NewRequest(http.MethodPost, ts.RESTURL+"/ui/api/import", strings.NewReader(`{"sdkappid":1400000001,"user":"dave"}`))
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("Authorization", "Bearer "+ts.Sig(servertest.Admin, time.Hour))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain import: %d", res.StatusCode)
	}
	if ok, _ := ts.Store().AccountExists(context.Background(), servertest.SDKAppID, "dave"); ok {
		t.Error("a refused action imported dave")
	}
}

// uiEnd POSTs /ui/api/end for one instance over loopback.
func uiEnd(t *testing.T, ts *servertest.Server, user string, inst uint64) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, ts.RESTURL+"/ui/api/end", strings.NewReader(
		`{"sdkappid":`+strconv.Itoa(servertest.SDKAppID)+`,"user":`+strconv.Quote(user)+`,"inst":`+strconv.FormatUint(inst, 10)+`}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+ts.Sig(servertest.Admin, time.Hour))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]any
	json.NewDecoder(res.Body).Decode(&body)
	return res.StatusCode, body
}

// Ending one instance kicks it alone with REST_API_Kick: the user's other
// instance stays, and the user's UserSig still logs in (no watermark).
func TestUIEndOneInstance(t *testing.T) {
	leaktest.Check(t)
	ts := servertest.Start(t)
	sig := ts.Sig("gus", time.Hour)
	web := dial(t, ts, "/binfo?platform=web")
	web.mustLogin("gus", sig)
	phone := dial(t, ts, "/binfo?platform=android")
	phone.mustLogin("gus", sig)

	if code, body := uiEnd(t, ts, "gus", web.inst); code != 200 || body["ActionStatus"] != "OK" {
		t.Fatalf("end: %d %v", code, body)
	}
	if p := web.awaitPush(wire.CmdForceOffline); p.kickType() != wire.KickRESTAPI {
		t.Fatalf("push to the ended instance: %s", p.Raw)
	}
	if r := web.relogin(); r.code() == 0 {
		t.Errorf("the ended instance's A2Key still logs in: %s", r.Raw)
	}
	var st ui.State
	uiGet(t, ts, "/ui/api/state", &st)
	u := findUser(st, "gus")
	if u == nil || len(u.Instances) != 1 || u.Instances[0].Inst != phone.inst {
		t.Fatalf("after ending the web instance: %+v", u)
	}
	again := dial(t, ts, "/binfo?platform=web")
	again.mustLogin("gus", sig)

	if code, body := uiEnd(t, ts, "gus", web.inst); code != http.StatusNotFound {
		t.Errorf("ending it twice: %d %v", code, body)
	}
	if code, body := uiEnd(t, ts, strings.Repeat("x", 33), 1); code != 200 || body["ResultItem"] == nil {
		t.Errorf("a 33-byte UserID: %d %v (want REST's account_check answer)", code, body)
	}
	// Beyond loopback, a user who is no admin gets REST's 60010 and ends nothing.
	req := httptest.NewRequest(http.MethodPost, "/ui/api/end", strings.NewReader(
		`{"sdkappid":1400000001,"user":"gus","inst":`+strconv.FormatUint(phone.inst, 10)+`}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+ts.Sig("gus", time.Hour))
	rec := beyond(ts, req)
	if !strings.Contains(rec.Body.String(), `"ErrorCode":60010`) {
		t.Errorf("a non-admin ending an instance: %d %s", rec.Code, rec.Body)
	}
	st = ui.State{}
	uiGet(t, ts, "/ui/api/state", &st)
	if u := findUser(st, "gus"); u == nil || !slices.ContainsFunc(u.Instances, func(in ui.Instance) bool { return in.Inst == phone.inst }) {
		t.Errorf("the refused end ended the instance: %+v", u)
	}
}

// beyond serves req on the server's handler as if it had come in on a
// non-loopback address of the server (192.0.2.2): the read-only rule's input.
func beyond(ts *servertest.Server, req *http.Request) *httptest.ResponseRecorder {
	if req.Host == "example.com" { // httptest's default: the address instead
		req.Host = "192.0.2.2:7468"
	}
	ctx := context.WithValue(req.Context(), http.LocalAddrContextKey, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 2), Port: 7468})
	rec := httptest.NewRecorder()
	ts.Server().Handler().ServeHTTP(rec, req.WithContext(ctx))
	return rec
}

func TestUIReadOnlyBeyondLoopback(t *testing.T) {
	leaktest.Check(t)
	ts := servertest.Start(t)
	var st ui.State
	rec := beyond(ts, httptest.NewRequest(http.MethodGet, "/ui/api/state", nil))
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil || len(st.Apps) != 1 {
		t.Fatalf("state beyond loopback: %v: %s", err, rec.Body)
	}
	// A DNS name (rebound to this server by a hostile site) gets nothing.
	req := httptest.NewRequest(http.MethodGet, "/ui/api/state", nil)
	req.Host = "attacker.example:7468"
	if rec := beyond(ts, req); rec.Code != http.StatusForbidden {
		t.Errorf("state for Host attacker.example: %d", rec.Code)
	}
	act := func(auth string) (int, map[string]any) {
		req := httptest.NewRequest(http.MethodPost, "/ui/api/import", strings.NewReader(`{"sdkappid":1400000001,"user":"erin"}`))
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := beyond(ts, req)
		var body map[string]any
		json.Unmarshal(rec.Body.Bytes(), &body)
		return rec.Code, body
	}
	if code, body := act(""); code != http.StatusForbidden {
		t.Errorf("no credentials: %d %v", code, body)
	}
	if code, body := act("Bearer not-a-usersig"); code != http.StatusUnauthorized {
		t.Errorf("garbage credentials: %d %v", code, body)
	}
	// Verified by the REST API as it verifies its usersig: a user who is
	// no admin gets its code, an admin's UserSig acts.
	if code, body := act("Bearer " + ts.Sig("erin", time.Hour)); code != 200 || body["ErrorCode"] != float64(wire.CodeNotAdmin) {
		t.Errorf("a non-admin's UserSig: %d %v", code, body)
	}
	if code, body := act("Bearer " + ts.Sig(servertest.Admin, -time.Hour)); code != 200 || body["ErrorCode"] != float64(wire.CodeSigExpired) {
		t.Errorf("an expired admin UserSig: %d %v", code, body)
	}
	if code, body := act("Bearer " + ts.Sig(servertest.Admin, time.Hour)); code != 200 || body["ActionStatus"] != "OK" {
		t.Errorf("the admin's UserSig: %d %v", code, body)
	}
	if ok, _ := ts.Store().AccountExists(context.Background(), servertest.SDKAppID, "erin"); !ok {
		t.Error("the admin's import did not import erin")
	}

	// The same through a real listener on a local address that is not
	// loopback, when the machine has one.
	ip := nonLoopbackIP()
	if ip == nil {
		t.Log("no non-loopback local address: the real-listener part is skipped")
		return
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		t.Logf("listen on %s: %v: the real-listener part is skipped", ip, err)
		return
	}
	go ts.Server().Serve(ln) // ends with the server's Shutdown
	res, err := http.Get("http://" + ln.Addr().String() + "/ui/api/state")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	st = ui.State{}
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil || len(st.Apps) != 1 {
		t.Errorf("state on %s: %v", ln.Addr(), err)
	}
	req, _ = http.NewRequest(http.MethodPost, "http://"+ln.Addr().String()+"/ui/api/import", strings.NewReader(`{"sdkappid":1400000001,"user":"fay"}`))
	req.Header.Set("Content-Type", "application/json")
	res2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res2.Body.Close()
	if res2.StatusCode != http.StatusForbidden {
		t.Errorf("import on %s without credentials: %d", ln.Addr(), res2.StatusCode)
	}
}

// nonLoopbackIP is a local IPv4 address that is not loopback, or nil.
func nonLoopbackIP() net.IP {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			return n.IP
		}
	}
	return nil
}

// The page's event streams per source are counted by the server's own
// rule of what a source is: loopback is counted only with
// ConnLimitLoopback (--conn-limit-loopback), which takeStream ignored (the
// second network pass), and an IPv6 address by its /48 (TestUISource).
func TestUIStreamsPerSource(t *testing.T) {
	status := func(ts *servertest.Server) int {
		res, err := http.Get(ts.RESTURL + "/ui/api/events")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Body.Close() })
		return res.StatusCode
	}
	for _, limited := range []bool{false, true} {
		ts := servertest.Start(t, servertest.ConnLimit(1000, 1000, limited))
		for i := range ui.MaxStreamsPerSource {
			if code := status(ts); code != 200 {
				t.Fatalf("limited %v: stream %d: %d", limited, i+1, code)
			}
		}
		want := 200
		if limited {
			want = http.StatusServiceUnavailable
		}
		if code := status(ts); code != want {
			t.Errorf("loopback limited %v: a stream past %d: %d, want %d", limited, ui.MaxStreamsPerSource, code, want)
		}
	}
}
