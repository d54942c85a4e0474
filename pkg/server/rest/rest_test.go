package rest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"chatctl/pkg/rest"
	srvrest "chatctl/pkg/server/rest"
	"chatctl/pkg/server/store"
	"chatctl/pkg/server/store/bolt"
	"chatctl/pkg/sig"
)

const (
	appID  = 1400000001
	appKey = "test-secret-key-0123456789abcdef0123456789abcdef"
)

// testBackend is the smallest srvrest.Backend over a real bolt store: the
// gateway's real one (sockets, kick pushes) is tested end to end in
// pkg/server. Online and Kick act on a map of pretend instances.
type testBackend struct {
	st  *bolt.Store
	now time.Time

	mu      sync.Mutex
	online  map[string][]srvrest.Instance
	kicked  []string
	kickErr error
}

func (b *testBackend) App(id uint64) (string, []string, bool) {
	if id != appID {
		return "", nil, false
	}
	return appKey, []string{"administrator", "ops"}, true
}
func (b *testBackend) Store() store.Store { return b.st }
func (b *testBackend) Now() time.Time     { return b.now }
func (b *testBackend) Kick(ctx context.Context, app uint64, user string) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.kickErr != nil {
		return 0, b.kickErr
	}
	b.kicked = append(b.kicked, user)
	n := len(b.online[user])
	delete(b.online, user)
	return n, b.st.SetKickWatermark(ctx, app, user, b.now.UnixMilli())
}
func (b *testBackend) Online(_ context.Context, _ uint64, user string) ([]srvrest.Instance, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.online[user], nil
}

type fixture struct {
	t    testing.TB
	b    *testBackend
	h    http.Handler
	srv  *httptest.Server
	logs *bytes.Buffer
	cli  *rest.Client
}

func setup(t testing.TB) *fixture {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "chatctl.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b := &testBackend{st: st, now: time.Now().Truncate(time.Second), online: map[string][]srvrest.Instance{}}
	logs := &lockedBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := srvrest.Handler(b, log)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	f := &fixture{t: t, b: b, h: h, srv: srv, logs: &logs.Buffer,
		cli: &rest.Client{BaseURL: srv.URL, SDKAppID: appID, Admin: "administrator", Key: appKey, Now: b.Now}}
	t.Cleanup(func() {
		srv.Close()
		// No answer, whatever it was, may put a UserSig in the log.
		logs.mu.Lock()
		defer logs.mu.Unlock()
		if strings.Contains(logs.String(), "usersig=") || strings.Contains(logs.String(), f.sig("administrator")) {
			t.Errorf("a UserSig reached the log:\n%s", logs.String())
		}
	})
	return f
}

type lockedBuffer struct {
	mu sync.Mutex
	bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.Buffer.Write(p)
}

func (f *fixture) sig(user string) string {
	return sig.Gen(sig.Params{SDKAppID: appID, Key: appKey, UserID: user, Expire: 3600}, f.b.now)
}

func (f *fixture) query(admin string) url.Values {
	q := url.Values{}
	q.Set("sdkappid", strconv.Itoa(appID))
	q.Set("identifier", admin)
	q.Set("usersig", f.sig(admin))
	q.Set("random", "12345")
	q.Set("contenttype", "json")
	return q
}

// raw sends one request and returns the decoded JSON answer, checking the
// HTTP side every answer shares.
func (f *fixture) raw(method, path string, q url.Values, body string) map[string]any {
	f.t.Helper()
	u := f.srv.URL + path
	if q != nil {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		f.t.Fatalf("%s %s: HTTP %d, want 200", method, path, resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		f.t.Fatalf("Content-Type %q", ct)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		f.t.Fatalf("%s %s: answer is not JSON: %q", method, path, b)
	}
	for _, k := range []string{"ActionStatus", "ErrorCode", "ErrorInfo"} {
		if _, ok := m[k]; !ok {
			f.t.Fatalf("%s %s: answer %s lacks %s", method, path, b, k)
		}
	}
	return m
}

// post is an admin's request to command.
func (f *fixture) post(command, body string) map[string]any {
	f.t.Helper()
	return f.raw(http.MethodPost, rest.Prefix+command, f.query("administrator"), body)
}

func code(m map[string]any) int { n, _ := m["ErrorCode"].(float64); return int(n) }

func wantCode(t testing.TB, m map[string]any, want int) {
	t.Helper()
	if code(m) != want {
		t.Fatalf("ErrorCode %d, want %d (answer %v)", code(m), want, m)
	}
	status := "OK"
	if want != 0 {
		status = "FAIL"
	}
	if m["ActionStatus"] != status {
		t.Fatalf("ActionStatus %v, want %s", m["ActionStatus"], status)
	}
}

func (f *fixture) importUsers(users ...string) {
	f.t.Helper()
	for _, u := range users {
		if _, err := f.b.st.ImportAccount(context.Background(), appID, store.Account{UserID: u}); err != nil {
			f.t.Fatal(err)
		}
	}
}

// imported is how many of users have an account.
func (f *fixture) imported(users ...string) int {
	f.t.Helper()
	n := 0
	for _, u := range users {
		ok, err := f.b.st.AccountExists(context.Background(), appID, u)
		if err != nil {
			f.t.Fatal(err)
		}
		if ok {
			n++
		}
	}
	return n
}

// names is prefix0 … prefix(n-1).
func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

func TestAdminIdentity(t *testing.T) {
	f := setup(t)
	path := rest.Prefix + rest.CmdAccountCheck
	body := `{"CheckItem":[{"UserID":"alice"}]}`
	with := func(edit func(q url.Values)) url.Values {
		q := f.query("administrator")
		edit(q)
		return q
	}
	expired := sig.Gen(sig.Params{SDKAppID: appID, Key: appKey, UserID: "administrator", Expire: 60}, f.b.now.Add(-time.Hour))
	cases := []struct {
		name string
		q    url.Values
		want int
	}{
		{"no sdkappid", with(func(q url.Values) { q.Del("sdkappid") }), 60006},
		{"sdkappid not a number", with(func(q url.Values) { q.Set("sdkappid", "abc") }), 60006},
		{"unknown sdkappid", with(func(q url.Values) { q.Set("sdkappid", "1400000002") }), 60006},
		{"no identifier", with(func(q url.Values) { q.Del("identifier") }), 60004},
		{"no usersig", with(func(q url.Values) { q.Del("usersig") }), 60005},
		{"expired usersig", with(func(q url.Values) { q.Set("usersig", expired) }), 70001},
		{"malformed usersig", with(func(q url.Values) { q.Set("usersig", "not-a-sig") }), 70003},
		{"wrong key", with(func(q url.Values) {
			q.Set("usersig", sig.Gen(sig.Params{SDKAppID: appID, Key: "other", UserID: "administrator", Expire: 60}, f.b.now))
		}), 70009},
		{"usersig of another user", with(func(q url.Values) { q.Set("usersig", f.sig("ops")) }), 70013},
		{"usersig of another app", with(func(q url.Values) {
			q.Set("usersig", sig.Gen(sig.Params{SDKAppID: appID + 1, Key: appKey, UserID: "administrator", Expire: 60}, f.b.now))
		}), 70014},
		{"not an admin", f.query("alice"), 60010},
		{"second admin", f.query("ops"), 0},
		{"admin", f.query("administrator"), 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantCode(t, f.raw(http.MethodPost, path, c.q, body), c.want)
		})
	}
}

func TestURLAndMethod(t *testing.T) {
	f := setup(t)
	q := f.query("administrator")
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, rest.Prefix + rest.CmdAccountCheck},
		{http.MethodPut, rest.Prefix + rest.CmdKick},
		{http.MethodPost, rest.Prefix + "im_open_login_svc/nosuch"},
		{http.MethodPost, rest.Prefix + "openim/sendmsg"},
		{http.MethodPost, rest.Prefix},
		{http.MethodPost, "/v5/" + rest.CmdKick},
		{http.MethodPost, rest.Prefix + rest.CmdKick + "/x"},
	} {
		m := f.raw(c.method, c.path, q, `{"UserID":"alice"}`)
		wantCode(t, m, 60002)
	}
	// The URL is checked before the identity.
	wantCode(t, f.raw(http.MethodPost, rest.Prefix+"x/y", nil, `{}`), 60002)
	wantCode(t, f.raw(http.MethodGet, rest.Prefix+rest.CmdKick, nil, ``), 60002)
}

func TestBody(t *testing.T) {
	f := setup(t)
	f.importUsers("alice")
	for _, c := range []struct {
		name, body string
		want       int
	}{
		{"empty", "", 60003},
		{"blank", " \n\t", 60003},
		{"array", `[{"UserID":"alice"}]`, 60003},
		{"string", `"alice"`, 60003},
		{"broken", `{"UserID":"alice"`, 60003},
		{"trailing garbage", `{"UserID":"alice"} x`, 60003},
		{"wrong type", `{"UserID":5}`, 70402},
		{"wrong list type", `{"UserID":["alice"]}`, 70402},
		{"empty object", `{}`, 70402},
		{"ok", `{"UserID":"alice"}`, 0},
	} {
		t.Run(c.name, func(t *testing.T) { wantCode(t, f.post(rest.CmdKick, c.body), c.want) })
	}
	// Over 1 MiB: refused, whatever it holds.
	big := `{"UserID":"alice","Pad":"` + strings.Repeat("x", rest.MaxBody) + `"}`
	wantCode(t, f.post(rest.CmdKick, big), 60003)
	// Just under: fine (unknown fields are ignored, as Tencent does).
	fits := `{"UserID":"alice","Pad":"` + strings.Repeat("x", rest.MaxBody-40) + `"}`
	wantCode(t, f.post(rest.CmdKick, fits), 0)
}

func TestKick(t *testing.T) {
	f := setup(t)
	long := strings.Repeat("k", rest.MaxUserID)
	f.importUsers("alice", "bob", long)
	f.b.online["alice"] = []srvrest.Instance{{Platform: "Web", Status: "Online"}}

	wantCode(t, f.post(rest.CmdKick, `{"UserID":"alice"}`), 0)
	wantCode(t, f.post(rest.CmdKick, `{"Identifier":"bob"}`), 0)
	wantCode(t, f.post(rest.CmdKick, `{"UserID":"`+long+`"}`), 0)
	if got := strings.Join(f.b.kicked, ","); got != "alice,bob,"+long {
		t.Fatalf("kicked %s", got)
	}
	if ms, _ := f.b.st.KickWatermark(context.Background(), appID, "alice"); ms != f.b.now.UnixMilli() {
		t.Fatalf("watermark %d, want %d", ms, f.b.now.UnixMilli())
	}
	if len(f.b.online["alice"]) != 0 {
		t.Fatal("alice still online")
	}

	for _, c := range []struct {
		body string
		want int
	}{
		{`{"UserID":"nobody"}`, 70107},
		{`{"UserID":""}`, 70402},
		{`{"UserID":"` + long + `x"}`, 70402},
		{`{"UserID":"a\u0000b"}`, 70402},
	} {
		wantCode(t, f.post(rest.CmdKick, c.body), c.want)
	}
	if len(f.b.kicked) != 3 {
		t.Fatalf("refused kicks reached the backend: %v", f.b.kicked)
	}

	// A backend failure is 70500; the details stay in the log.
	f.b.kickErr = errors.New("disk on fire at /secret/path")
	m := f.post(rest.CmdKick, `{"UserID":"alice"}`)
	wantCode(t, m, 70500)
	if strings.Contains(m["ErrorInfo"].(string), "/secret/path") {
		t.Fatalf("ErrorInfo leaks the cause: %v", m["ErrorInfo"])
	}
	if !strings.Contains(f.logs.String(), "disk on fire") {
		t.Fatal("the backend failure is not logged")
	}
}

func TestStoreUnavailable(t *testing.T) {
	f := setup(t)
	f.importUsers("alice")
	f.b.st.Close()
	for cmd, body := range map[string]string{
		rest.CmdKick:               `{"UserID":"alice"}`,
		rest.CmdAccountImport:      `{"UserID":"alice"}`,
		rest.CmdMultiAccountImport: `{"Accounts":["alice"]}`,
		rest.CmdAccountCheck:       `{"CheckItem":[{"UserID":"alice"}]}`,
		rest.CmdAccountDelete:      `{"DeleteItem":[{"UserID":"alice"}]}`,
		rest.CmdQueryOnlineStatus:  `{"To_Account":["alice"]}`,
	} {
		t.Run(cmd, func(t *testing.T) { wantCode(t, f.post(cmd, body), 70169) })
	}
}

func TestQueryOnlineStatus(t *testing.T) {
	f := setup(t)
	f.importUsers("alice", "bob", "carol")
	f.b.online["alice"] = []srvrest.Instance{{Platform: "iPhone", Status: "PushOnline"}, {Platform: "Web", Status: "Online"}}
	f.b.online["carol"] = []srvrest.Instance{{Platform: "Android", Status: "PushOnline"}}

	var got rest.QueryOnlineStatusResponse
	raw, err := f.cli.Do(context.Background(), rest.CmdQueryOnlineStatus,
		rest.QueryOnlineStatusRequest{IsNeedDetail: true, ToAccount: []string{"alice", "bob", "carol", "dave", ""}}, &got)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"",` +
		`"QueryResult":[{"To_Account":"alice","Status":"Online","Detail":[{"Platform":"iPhone","Status":"PushOnline"},{"Platform":"Web","Status":"Online"}]},` +
		`{"To_Account":"bob","Status":"Offline"},` +
		`{"To_Account":"carol","Status":"PushOnline","Detail":[{"Platform":"Android","Status":"PushOnline"}]}],` +
		`"ErrorList":[{"To_Account":"dave","ErrorCode":70107},{"To_Account":"","ErrorCode":70402}]}` + "\n"
	if string(raw) != want {
		t.Fatalf("answer\n%s\nwant\n%s", raw, want)
	}

	// Without IsNeedDetail (absent, 0 or false) there is no Detail.
	for _, body := range []string{`{"To_Account":["alice","carol"]}`, `{"IsNeedDetail":0,"To_Account":["alice","carol"]}`, `{"IsNeedDetail":false,"To_Account":["alice","carol"]}`} {
		m := f.post(rest.CmdQueryOnlineStatus, body)
		wantCode(t, m, 0)
		b, _ := json.Marshal(m["QueryResult"])
		if string(b) != `[{"Status":"Online","To_Account":"alice"},{"Status":"PushOnline","To_Account":"carol"}]` {
			t.Fatalf("%s: QueryResult %s", body, b)
		}
		if el, _ := m["ErrorList"].([]any); el == nil || len(el) != 0 {
			t.Fatalf("ErrorList %v, want []", m["ErrorList"])
		}
	}
	// IsNeedDetail true works like 1.
	m := f.post(rest.CmdQueryOnlineStatus, `{"IsNeedDetail":true,"To_Account":["carol"]}`)
	if b, _ := json.Marshal(m["QueryResult"]); !strings.Contains(string(b), "Detail") {
		t.Fatalf("IsNeedDetail true: %s", b)
	}
	wantCode(t, f.post(rest.CmdQueryOnlineStatus, `{"IsNeedDetail":"yes","To_Account":["carol"]}`), 70402)

	// Limits: 1..500.
	wantCode(t, f.post(rest.CmdQueryOnlineStatus, `{"To_Account":[]}`), 70206)
	wantCode(t, f.post(rest.CmdQueryOnlineStatus, `{}`), 70206)
	wantCode(t, f.post(rest.CmdQueryOnlineStatus, users("To_Account", 501, false)), 70206)
	m = f.post(rest.CmdQueryOnlineStatus, users("To_Account", 500, false))
	wantCode(t, m, 0)
	if n := len(m["ErrorList"].([]any)); n != 500 {
		t.Fatalf("500 unknown users: %d in ErrorList", n)
	}
}

// users is a body {"<field>":[...n users...]}, as strings or {"UserID":...}.
func users(field string, n int, items bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, `{%q:[`, field)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		if items {
			fmt.Fprintf(&b, `{"UserID":"u%d"}`, i)
		} else {
			fmt.Fprintf(&b, `"u%d"`, i)
		}
	}
	b.WriteString("]}")
	return b.String()
}

func TestAccountImport(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	wantCode(t, f.post(rest.CmdAccountImport, `{"UserID":"alice","Nick":"Alice","FaceUrl":"http://x/a.png"}`), 0)
	wantCode(t, f.post(rest.CmdAccountImport, `{"Identifier":"bob"}`), 0)
	wantCode(t, f.post(rest.CmdAccountImport, `{"UserID":"alice","Nick":"Al"}`), 0) // again: an update
	a, ok, err := f.b.st.Account(ctx, appID, "alice")
	if err != nil || !ok || a.Nick != "Al" || a.FaceURL != "http://x/a.png" || !a.Created.Equal(f.b.now) {
		t.Fatalf("alice = %+v, %v, %v", a, ok, err)
	}
	if ok, _ := f.b.st.AccountExists(ctx, appID, "bob"); !ok {
		t.Fatal("bob (Identifier form) not imported")
	}
	wantCode(t, f.post(rest.CmdAccountImport, `{"UserID":"`+strings.Repeat("a", 32)+`"}`), 0)
	for _, body := range []string{
		`{"UserID":"` + strings.Repeat("a", 33) + `"}`,
		`{"UserID":""}`,
		`{"Nick":"x"}`,
		`{"UserID":"x\n"}`,
		`{"UserID":"x","Nick":"` + strings.Repeat("n", rest.MaxNick+1) + `"}`,
		`{"UserID":"x","FaceUrl":"` + strings.Repeat("f", rest.MaxFaceURL+1) + `"}`,
	} {
		wantCode(t, f.post(rest.CmdAccountImport, body), 70402)
	}
	if n := f.imported("alice", "bob", strings.Repeat("a", 32), strings.Repeat("a", 33), "", "x", "x\n"); n != 3 {
		t.Fatalf("%d accounts, want 3", n)
	}
}

func TestMultiAccountImport(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	m := f.post(rest.CmdMultiAccountImport, `{"AccountList":[{"UserID":"a","Nick":"A"},{"UserID":"`+strings.Repeat("b", 33)+`"},{"UserID":"c","FaceUrl":"http://x/c"}]}`)
	wantCode(t, m, 0)
	if b, _ := json.Marshal(m["FailAccounts"]); string(b) != `["`+strings.Repeat("b", 33)+`"]` {
		t.Fatalf("FailAccounts %s", b)
	}
	if a, _, _ := f.b.st.Account(ctx, appID, "a"); a.Nick != "A" {
		t.Fatalf("a = %+v", a)
	}
	m = f.post(rest.CmdMultiAccountImport, `{"Accounts":["d","e",""]}`)
	wantCode(t, m, 0)
	if b, _ := json.Marshal(m["FailAccounts"]); string(b) != `[""]` {
		t.Fatalf("old form FailAccounts %s", b)
	}
	m = f.post(rest.CmdMultiAccountImport, `{"Accounts":["f"]}`)
	if b, _ := json.Marshal(m["FailAccounts"]); string(b) != `[]` {
		t.Fatalf("no failure: FailAccounts %s, want []", b)
	}
	five := []string{"a", strings.Repeat("b", 33), "c", "d", "e", "", "f"}
	if n := f.imported(five...); n != 5 {
		t.Fatalf("%d accounts, want 5 (a c d e f)", n)
	}
	wantCode(t, f.post(rest.CmdMultiAccountImport, `{}`), 70206)
	wantCode(t, f.post(rest.CmdMultiAccountImport, `{"AccountList":[]}`), 70206)
	wantCode(t, f.post(rest.CmdMultiAccountImport, users("Accounts", 101, false)), 70206)
	wantCode(t, f.post(rest.CmdMultiAccountImport, users("AccountList", 101, true)), 70206)
	wantCode(t, f.post(rest.CmdMultiAccountImport, users("AccountList", 100, true)), 0)
	if n := f.imported(append(five, names("u", 101)...)...); n != 105 {
		t.Fatalf("%d accounts, want 105", n)
	}
	wantCode(t, f.post(rest.CmdMultiAccountImport, `{"Accounts":"a"}`), 70402)
}

func TestAccountDelete(t *testing.T) {
	f := setup(t)
	f.importUsers("u1", "u3")
	var got rest.AccountDeleteResponse
	raw, err := f.cli.Do(context.Background(), rest.CmdAccountDelete,
		rest.AccountDeleteRequest{DeleteItem: []rest.UserRef{{UserID: "u1"}, {UserID: "u2"}, {Identifier: "u3"}, {}}}, &got)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","ResultItem":[` +
		`{"ResultCode":0,"ResultInfo":"","UserID":"u1"},` +
		`{"ResultCode":70107,"ResultInfo":"Err_TLS_PT_Open_Login_Account_Not_Exist","UserID":"u2"},` +
		`{"ResultCode":0,"ResultInfo":"","UserID":"u3"},` +
		`{"ResultCode":70402,"ResultInfo":"invalid UserID: empty","UserID":""}]}` + "\n"
	if string(raw) != want {
		t.Fatalf("answer\n%s\nwant\n%s", raw, want)
	}
	if n := f.imported("u1", "u2", "u3"); n != 0 {
		t.Fatalf("%d accounts left", n)
	}
	// Each deleted account was kicked first (its sessions end, its
	// credentials are refused); the one that did not exist was not.
	if got := strings.Join(f.b.kicked, ","); got != "u1,u3" {
		t.Fatalf("kicked %q, want u1,u3", got)
	}
	wantCode(t, f.post(rest.CmdAccountDelete, `{"DeleteItem":[]}`), 70206)
	wantCode(t, f.post(rest.CmdAccountDelete, users("DeleteItem", 101, true)), 70206)
	m := f.post(rest.CmdAccountDelete, users("DeleteItem", 100, true))
	wantCode(t, m, 0)
	if n := len(m["ResultItem"].([]any)); n != 100 {
		t.Fatalf("%d results, want 100", n)
	}
}

func TestAccountCheck(t *testing.T) {
	f := setup(t)
	f.importUsers("u1")
	var got rest.AccountCheckResponse
	raw, err := f.cli.Do(context.Background(), rest.CmdAccountCheck,
		rest.AccountCheckRequest{CheckItem: []rest.UserRef{{UserID: "u1"}, {UserID: "u2"}, {Identifier: "u1"}}}, &got)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","ResultItem":[` +
		`{"UserID":"u1","ResultCode":0,"ResultInfo":"","AccountStatus":"Imported"},` +
		`{"UserID":"u2","ResultCode":0,"ResultInfo":"","AccountStatus":"NotImported"},` +
		`{"UserID":"u1","ResultCode":0,"ResultInfo":"","AccountStatus":"Imported"}]}` + "\n"
	if string(raw) != want {
		t.Fatalf("answer\n%s\nwant\n%s", raw, want)
	}
	m := f.post(rest.CmdAccountCheck, `{"CheckItem":[{"UserID":"`+strings.Repeat("x", 33)+`"}]}`)
	if b, _ := json.Marshal(m["ResultItem"]); !strings.Contains(string(b), `"ResultCode":70402`) {
		t.Fatalf("oversized UserID: %s", b)
	}
	wantCode(t, f.post(rest.CmdAccountCheck, `{}`), 70206)
	wantCode(t, f.post(rest.CmdAccountCheck, users("CheckItem", 101, true)), 70206)
	wantCode(t, f.post(rest.CmdAccountCheck, users("CheckItem", 100, true)), 0)
}

func TestClient(t *testing.T) {
	f := setup(t)
	// A FAIL answer is a *rest.Error, with the raw answer.
	raw, err := f.cli.Do(context.Background(), rest.CmdKick, rest.KickRequest{UserID: "nobody"}, nil)
	var re *rest.Error
	if !errors.As(err, &re) || re.Code != 70107 || re.SigRejected() {
		t.Fatalf("kick nobody: %v", err)
	}
	if !strings.Contains(string(raw), `"ErrorCode":70107`) {
		t.Fatalf("raw %s", raw)
	}
	bad := *f.cli
	bad.Key = "wrong"
	_, err = bad.Do(context.Background(), rest.CmdKick, rest.KickRequest{UserID: "nobody"}, nil)
	if !errors.As(err, &re) || re.Code != 70009 || !re.SigRejected() {
		t.Fatalf("wrong key: %v", err)
	}

	// No server: an UnreachableError naming the URL but not the UserSig.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	gone := *f.cli
	gone.BaseURL = "http://" + addr
	_, err = gone.Do(context.Background(), rest.CmdKick, rest.KickRequest{UserID: "alice"}, nil)
	var ue *rest.UnreachableError
	if !errors.As(err, &ue) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("closed port: %v", err)
	}
	if strings.Contains(err.Error(), "usersig") || !strings.Contains(err.Error(), addr) {
		t.Fatalf("error text %q", err)
	}

	// Something that is not the REST API: as unreachable (docs/OUTPUT.md,
	// exit 6: "not a chat server").
	other := httptest.NewServer(http.NotFoundHandler())
	defer other.Close()
	notREST := *f.cli
	notREST.BaseURL = other.URL
	_, err = notREST.Do(context.Background(), rest.CmdKick, rest.KickRequest{UserID: "alice"}, nil)
	if !errors.As(err, &ue) || !ue.NotAPI || errors.As(err, &re) || !strings.Contains(err.Error(), "HTTP 404") || !strings.Contains(err.Error(), "is not a chat server") {
		t.Fatalf("not the REST API: %v", err)
	}
}

func TestConcurrentRequests(t *testing.T) {
	f := setup(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5 {
				u := fmt.Sprintf("w%d-%d", w, i)
				if _, err := f.cli.Do(context.Background(), rest.CmdAccountImport, rest.AccountImportRequest{UserID: u}, nil); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var all []string
	for w := range 4 {
		all = append(all, names(fmt.Sprintf("w%d-", w), 5)...)
	}
	if n := f.imported(all...); n != 20 {
		t.Fatalf("%d accounts, want 20", n)
	}
}

func TestLogs(t *testing.T) {
	f := setup(t)
	f.post(rest.CmdKick, `{"UserID":"nobody"}`)
	q := f.query("administrator")
	q.Set("usersig", "eJxSECRETSECRET")
	f.raw(http.MethodPost, rest.Prefix+rest.CmdKick, q, `{}`)
	logs := f.logs.String()
	if !strings.Contains(logs, `"command":"im_open_login_svc/kick"`) || !strings.Contains(logs, `"code":70107`) || !strings.Contains(logs, `"code":70003`) {
		t.Fatalf("logs lack the requests:\n%s", logs)
	}
	if strings.Contains(logs, "SECRET") || strings.Contains(logs, f.sig("administrator")) {
		t.Fatalf("a UserSig reached the log:\n%s", logs)
	}
}
