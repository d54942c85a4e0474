package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"chatctl/pkg/client"
	"chatctl/pkg/config"
	"chatctl/pkg/rest"
	"chatctl/pkg/server/servertest"
	"chatctl/pkg/server/store"
	"chatctl/pkg/sig"
	"chatctl/pkg/wire"
)

// adminEnv is a real server and a config dir with its key in a file.
type adminEnv struct {
	t       *testing.T
	ts      *servertest.Server
	dir     string
	keyFile string
}

func newAdminEnv(t *testing.T) *adminEnv {
	t.Helper()
	checkLeaks(t) // before the server: its cleanup runs after the server's
	ts := servertest.Start(t)
	dir := t.TempDir()
	isolateEnv(t, dir)
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte(ts.App.Key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &adminEnv{t: t, ts: ts, dir: dir, keyFile: keyFile}
}

// run runs chatctl with the test app's credentials after args.
func (e *adminEnv) run(args ...string) (code int, stdout, stderr string) {
	e.t.Helper()
	args = append(args, "--endpoint", e.ts.WSURL, "--sdkappid", strconv.FormatUint(e.ts.App.SDKAppID, 10), "--key-file", e.keyFile)
	return e.runBare(args...)
}

func (e *adminEnv) runBare(args ...string) (code int, stdout, stderr string) {
	e.t.Helper()
	var out, errb bytes.Buffer
	code = Run(args, strings.NewReader(""), &out, &errb)
	noSecrets(e.t, e.ts.App.Key, out.String(), errb.String())
	return code, out.String(), errb.String()
}

// noSecrets fails when output holds the key or anything like a UserSig.
func noSecrets(t *testing.T, key string, outs ...string) {
	t.Helper()
	// Every UserSig starts with the base64 of a stored zlib stream.
	prefix := sig.Gen(sig.Params{SDKAppID: 1, Key: "k", UserID: "administrator", Expire: 1}, time.Now())[:4]
	for _, s := range outs {
		if strings.Contains(s, key) || strings.Contains(s, prefix) || strings.Contains(strings.ToLower(s), "usersig=") {
			t.Fatalf("output holds a secret:\n%s", s)
		}
	}
}

func (e *adminEnv) want(args []string, wantCode int, wantOut, wantErr string) {
	e.t.Helper()
	code, out, errs := e.run(args...)
	if code != wantCode || out != wantOut || errs != wantErr {
		e.t.Fatalf("chatctl %s\n exit %d, want %d\n stdout %q\n want   %q\n stderr %q\n want   %q",
			strings.Join(args, " "), code, wantCode, out, wantOut, errs, wantErr)
	}
}

func (e *adminEnv) exists(user string) bool {
	e.t.Helper()
	ok, err := e.ts.Store().AccountExists(context.Background(), e.ts.App.SDKAppID, user)
	if err != nil {
		e.t.Fatal(err)
	}
	return ok
}

func TestAdminImportCheckDelete(t *testing.T) {
	e := newAdminEnv(t)
	e.want([]string{"admin", "import", "alice", "--nick", "Alice", "--face-url", "http://x/a.png"}, 0, "alice\tImported\n", "")
	a, ok, err := e.ts.Store().Account(context.Background(), e.ts.App.SDKAppID, "alice")
	if err != nil || !ok || a.Nick != "Alice" || a.FaceURL != "http://x/a.png" {
		t.Fatalf("alice = %+v, %v, %v", a, ok, err)
	}
	e.want([]string{"admin", "import", "--batch", "bob", "carol"}, 0, "bob\tImported\ncarol\tImported\n", "")
	long := strings.Repeat("x", 33)
	e.want([]string{"admin", "import", "--batch", "dave", long}, 1, "dave\tImported\n",
		fmt.Sprintf("chatctl: admin import: %q: not imported (bad UserID?)\n", long))
	e.want([]string{"admin", "check", "alice", "nobody", "dave"}, 0, "alice\tImported\nnobody\tNotImported\ndave\tImported\n", "")
	e.want([]string{"admin", "check", long}, 1, "", fmt.Sprintf("chatctl: admin check: %q: 70402 invalid UserID: 33 bytes, at most 32\n", long))
	e.want([]string{"admin", "delete", "alice", "nobody", "bob"}, 1, "alice\tDeleted\nbob\tDeleted\n",
		"chatctl: admin delete: \"nobody\": 70107 account not imported\n")
	if e.exists("alice") || e.exists("bob") || !e.exists("carol") {
		t.Fatal("delete did not delete exactly alice and bob")
	}
	// A user named twice is asked once: its second delete failed 70107.
	e.want([]string{"admin", "delete", "dave", "dave"}, 0, "dave\tDeleted\n", "")
	// One USER is checked before asking, as login checks its own (exit 2);
	// a batch gets each user's 70402 from the server (exit 1, above).
	e.want([]string{"admin", "import", long}, 2, "", "chatctl: invalid UserID: 33 bytes, at most 32\n")
}

func TestAdminUsage(t *testing.T) {
	e := newAdminEnv(t)
	for _, args := range [][]string{
		{"admin", "import", "a", "b"},
		{"admin", "import", "--batch", "a", "--nick", "A"},
		{"admin", "kick"},
		{"admin", "kick", "a", "b"},
		{"admin", "online"},
		{"admin", "check"},
		{"admin", "delete"},
		{"admin"},
		{"admin", "kick", "a", "--rest-url", "ftp://x"},
		{"admin", "kick", "a", "--rest-url", "localhost:7468"},
		{"admin", "kick", "a", "--rest-url", "http://127.0.0.1:1/x?y"},
		{"admin", "kick", "a", "--rest-url", "http://127.0.0.1:1/?"},
		{"admin", "kick", "a", "--rest-url", "http://127.0.0.1:1#x"},
		{"admin", "kick", ""}, // the UserID rule, as login applies it
		{"admin", "kick", strings.Repeat("u", 33)},
		{"admin", "import", "a\nb"},
	} {
		code, out, errs := e.run(args...)
		if code != ExitUsage || out != "" || !strings.HasPrefix(errs, "chatctl: ") || strings.Count(errs, "\n") != 1 {
			t.Errorf("chatctl %v: exit %d, stdout %q, stderr %q; want exit 2 and one line", args, code, out, errs)
		}
	}
}

func TestAdminOnlineAndKick(t *testing.T) {
	e := newAdminEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := client.Dial(ctx, client.Config{Endpoint: e.ts.WSURL, SDKAppID: e.ts.App.SDKAppID})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Login(ctx, "alice", e.ts.Sig("alice", time.Hour)); err != nil {
		t.Fatal(err)
	}
	e.want([]string{"admin", "import", "bob"}, 0, "bob\tImported\n", "")

	e.want([]string{"admin", "online", "alice", "bob", "nobody"}, 0, "alice\tOnline\nbob\tOffline\nnobody\tNotImported\n", "")
	// A user ID is escaped in text as printable does it: a bidi override
	// (U+202E) would show the terminal another name.
	e.want([]string{"admin", "online", "\u202eevil"}, 0, `\u202eevil`+"\tNotImported\n", "")
	e.want([]string{"admin", "import", "--batch", "\u202eevil"}, 0, `\u202eevil`+"\tImported\n", "")
	e.want([]string{"admin", "online", "\u202eevil"}, 0, `\u202eevil`+"\tOffline\n", "")
	e.want([]string{"admin", "kick", "\u202eevil"}, 0, `\u202eevil`+"\tKicked\n", "")
	e.want([]string{"admin", "online", "alice", "bob", "--detail"}, 0, "alice\tOnline\tWeb:Online\nbob\tOffline\n", "")

	code, out, errs := e.run("admin", "online", "alice", "--detail", "-o", "json")
	var resp struct {
		ActionStatus string
		QueryResult  []struct {
			ToAccount string `json:"To_Account"`
			Status    string
			Detail    []struct{ Platform, Status string }
		}
	}
	if code != 0 || errs != "" || json.Unmarshal([]byte(out), &resp) != nil || strings.Count(out, "\n") != 1 {
		t.Fatalf("online -o json: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if resp.ActionStatus != "OK" || len(resp.QueryResult) != 1 || resp.QueryResult[0].Status != "Online" ||
		len(resp.QueryResult[0].Detail) != 1 || resp.QueryResult[0].Detail[0].Platform != "Web" {
		t.Fatalf("online -o json: %s", out)
	}

	e.want([]string{"admin", "kick", "alice"}, 0, "alice\tKicked\n", "")
	// The instance gets its REST_API_Kick push (the push's shape is the
	// gateway's to test).
	if kt := servertest.WaitKick(t, conn); kt != wire.KickRESTAPI {
		t.Fatalf("kick push KickType %d, want %d (REST_API_Kick)", kt, wire.KickRESTAPI)
	}
	// The kick is recorded (the gateway's tests check what it refuses).
	ms, err := e.ts.Store().KickWatermark(context.Background(), e.ts.App.SDKAppID, "alice")
	if err != nil || ms == 0 {
		t.Fatalf("watermark after kick: %d, %v", ms, err)
	}

	e.want([]string{"admin", "kick", "nobody"}, 1, "", "chatctl: admin kick: 70107 account not imported\n")
	code, out, errs = e.run("admin", "kick", "nobody", "-o", "json")
	if code != 1 || !strings.Contains(out, `"ErrorCode":70107`) || errs != "chatctl: admin kick: 70107 account not imported\n" {
		t.Fatalf("kick nobody -o json: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

// A user an OK answer leaves out is an item failure (exit 1, one line on
// stderr), as a user the answer refuses: it vanished without a word, and
// `admin online alice | grep -q Online` could not tell that from Offline.
func TestAdminMissingUsers(t *testing.T) {
	e := newAdminEnv(t)
	answers := map[string]string{
		rest.CmdQueryOnlineStatus: `{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","QueryResult":[{"To_Account":"alice","Status":"Online"}],` +
			`"ErrorList":[{"To_Account":"carol","ErrorCode":70107}]}`,
		rest.CmdAccountCheck:  `{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","ResultItem":[{"UserID":"alice","ResultCode":0,"ResultInfo":"","AccountStatus":"Imported"}]}`,
		rest.CmdAccountDelete: `{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","ResultItem":[{"UserID":"alice","ResultCode":0,"ResultInfo":""}]}`,
	}
	long := strings.Repeat("x", 5000) // a user of 5,000 bytes in an item failure: cut
	answers["long/"+rest.CmdAccountDelete] = `{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","ResultItem":[{"UserID":"` + long + `","ResultCode":70107,"ResultInfo":"no"}]}`
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(answers[strings.Replace(strings.TrimPrefix(r.URL.Path, "/"), "v4/", "", 1)]))
	}))
	defer fake.Close()
	rurl := []string{"--rest-url", fake.URL}
	e.want([]string{"admin", "delete", long, "--rest-url", fake.URL + "/long"}, 1, "",
		"chatctl: admin delete: \""+strings.Repeat("x", maxField)+"\": 70107 no\n")
	// An answer about a user nobody asked for, or a second one about a
	// user, is not printed (as Imported, or Deleted) and fails nothing;
	// a user asked twice is asked once.
	answers["extra/"+rest.CmdAccountCheck] = `{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","ResultItem":[{"UserID":"alice","AccountStatus":"Imported"},` +
		`{"UserID":"intruder","AccountStatus":"Imported"},{"UserID":"alice","ResultCode":70107}]}`
	answers["extra/"+rest.CmdMultiAccountImport] = `{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","FailAccounts":["intruder"]}`
	answers["extra/"+rest.CmdQueryOnlineStatus] = `{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","QueryResult":[{"To_Account":"alice","Status":"Online"},{"To_Account":"intruder","Status":"Online"}],` +
		`"ErrorList":[{"To_Account":"intruder","ErrorCode":90001},{"To_Account":"alice","ErrorCode":70107}]}`
	extra := []string{"--rest-url", fake.URL + "/extra"}
	e.want(append([]string{"admin", "check", "alice", "alice"}, extra...), 0, "alice\tImported\n", "")
	e.want(append([]string{"admin", "import", "--batch", "alice", "bob"}, extra...), 0, "alice\tImported\nbob\tImported\n", "")
	e.want(append([]string{"admin", "online", "alice"}, extra...), 0, "alice\tOnline\n", "")
	e.want(append([]string{"admin", "online", "alice", "bob", "carol", "bob"}, rurl...), 1, "alice\tOnline\ncarol\tNotImported\n",
		"chatctl: admin online: \"bob\": not in the server's answer\n")
	e.want(append([]string{"admin", "online", "dave", "erin"}, rurl...), 1, "",
		"chatctl: admin online: \"dave\": not in the server's answer\nchatctl: admin online: \"erin\": not in the server's answer\n")
	e.want(append([]string{"admin", "check", "alice", "bob"}, rurl...), 1, "alice\tImported\n",
		"chatctl: admin check: \"bob\": not in the server's answer\n")
	e.want(append([]string{"admin", "delete", "alice", "bob"}, rurl...), 1, "alice\tDeleted\n",
		"chatctl: admin delete: \"bob\": not in the server's answer\n")
	// -o json: the server's answer, with the error beside it.
	code, out, errs := e.run(append([]string{"admin", "online", "alice", "bob", "-o", "json"}, rurl...)...)
	var doc struct {
		QueryResult []json.RawMessage
		Error       struct {
			Code    int
			Kind    string
			Message string
		}
	}
	if code != 1 || json.Unmarshal([]byte(out), &doc) != nil || len(doc.QueryResult) != 1 || doc.Error.Code != 1 ||
		doc.Error.Kind != KindError || doc.Error.Message != "admin online: \"bob\": not in the server's answer" ||
		errs != "chatctl: admin online: \"bob\": not in the server's answer\n" {
		t.Fatalf("online -o json, bob left out: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

func TestAdminJSONAndChunks(t *testing.T) {
	e := newAdminEnv(t)
	users := make([]string, 150)
	for i := range users {
		users[i] = fmt.Sprintf("u%03d", i)
	}
	code, out, errs := e.run(append([]string{"admin", "import", "--batch"}, users...)...)
	if code != 0 || errs != "" || strings.Count(out, "\tImported\n") != 150 {
		t.Fatalf("import 150: exit %d, stderr %q, %d lines", code, errs, strings.Count(out, "\n"))
	}
	code, out, errs = e.run(append([]string{"admin", "check", "-o", "json"}, users...)...)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if code != 0 || errs != "" || len(lines) != 1 {
		t.Fatalf("check 150 -o json: exit %d, stderr %q, %d lines (want the answers of 100 and 50 merged in one)", code, errs, len(lines))
	}
	n := 0
	for _, l := range lines {
		var r struct {
			ActionStatus string
			ResultItem   []struct{ UserID, AccountStatus string }
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil || r.ActionStatus != "OK" {
			t.Fatalf("line %q: %v", l, err)
		}
		for _, it := range r.ResultItem {
			if it.AccountStatus != "Imported" {
				t.Fatalf("%s: %s", it.UserID, it.AccountStatus)
			}
			n++
		}
	}
	if n != 150 {
		t.Fatalf("%d results, want 150", n)
	}
	for _, u := range users {
		if ok, err := e.ts.Store().AccountExists(context.Background(), e.ts.App.SDKAppID, u); err != nil || !ok {
			t.Fatalf("%s: imported %v, %v", u, ok, err)
		}
	}
	code, out, _ = e.run(append([]string{"admin", "online"}, users...)...)
	if code != 0 || strings.Count(out, "\tOffline\n") != 150 {
		t.Fatalf("online 150: exit %d, %d lines", code, strings.Count(out, "\n"))
	}
}

func TestAdminSigRejected(t *testing.T) {
	e := newAdminEnv(t)
	bad := filepath.Join(e.dir, "bad-key")
	os.WriteFile(bad, []byte("not-the-key"), 0o600)
	code, out, errs := e.runBare("admin", "check", "alice", "--endpoint", e.ts.WSURL,
		"--sdkappid", strconv.FormatUint(e.ts.App.SDKAppID, 10), "--key-file", bad)
	if code != ExitSigRejected || out != "" || !strings.HasPrefix(errs, "chatctl: admin check: 70009 ") {
		t.Fatalf("wrong key: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	// An app the server does not know: 60006, exit 1.
	code, _, errs = e.runBare("admin", "check", "alice", "--endpoint", e.ts.WSURL, "--sdkappid", "1400009999", "--key-file", e.keyFile)
	if code != ExitFailure || !strings.HasPrefix(errs, "chatctl: admin check: 60006 ") {
		t.Fatalf("unknown app: exit %d, stderr %q", code, errs)
	}
	// A configured admin that is not one of the app's: 60010, exit 1.
	t.Setenv("CHATCTL_ADMIN", "alice")
	code, _, errs = e.run("admin", "check", "alice")
	if code != ExitFailure || !strings.HasPrefix(errs, "chatctl: admin check: 60010 ") {
		t.Fatalf("not an admin: exit %d, stderr %q", code, errs)
	}
}

func TestAdminUnreachable(t *testing.T) {
	e := newAdminEnv(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	code, out, errs := e.runBare("admin", "kick", "alice", "--endpoint", "ws://"+addr,
		"--sdkappid", strconv.FormatUint(e.ts.App.SDKAppID, 10), "--key-file", e.keyFile)
	if code != ExitUnreachable || out != "" || strings.Count(errs, "\n") != 1 ||
		!strings.Contains(errs, "http://"+addr+"/v4/im_open_login_svc/kick") || !strings.Contains(errs, "chatctl serve") {
		t.Fatalf("closed port: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

func TestAdminRESTURL(t *testing.T) {
	e := newAdminEnv(t)
	args := []string{"admin", "check", "alice", "--sdkappid", strconv.FormatUint(e.ts.App.SDKAppID, 10), "--key-file", e.keyFile}
	// --rest-url wins over a useless endpoint.
	if code, out, errs := e.runBare(append(args, "--endpoint", "ws://127.0.0.1:1", "--rest-url", e.ts.RESTURL+"/")...); code != 0 || out != "alice\tNotImported\n" {
		t.Fatalf("--rest-url: exit %d, %q, %q", code, out, errs)
	}
	// So does CHATCTL_REST_URL, and config rest_url.
	t.Setenv("CHATCTL_REST_URL", e.ts.RESTURL)
	if code, out, errs := e.runBare(append(args, "--endpoint", "ws://127.0.0.1:1")...); code != 0 || out != "alice\tNotImported\n" {
		t.Fatalf("CHATCTL_REST_URL: exit %d, %q, %q", code, out, errs)
	}
	// A path, query or fragment is refused, naming where it came from,
	// and user info is not shown (it may be a password): exit 2.
	t.Setenv("CHATCTL_REST_URL", "http://admin:s3cret@127.0.0.1:1/x?y")
	if code, out, errs := e.runBare(append(args, "--endpoint", "ws://127.0.0.1:1")...); code != ExitUsage || out != "" ||
		errs != `chatctl: CHATCTL_REST_URL "http://…@127.0.0.1:1/x?y": user info; want http(s)://host[:port][/prefix] (see 'chatctl admin check --help')`+"\n" {
		t.Fatalf("CHATCTL_REST_URL with user info and a query: exit %d, %q, %q", code, out, errs)
	}
	os.Unsetenv("CHATCTL_REST_URL")
	if err := os.WriteFile(filepath.Join(e.dir, "config.yaml"), []byte("rest_url: "+e.ts.RESTURL+"\nendpoint: ws://127.0.0.1:1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := e.runBare(args...); code != 0 || out != "alice\tNotImported\n" || errs != "" {
		t.Fatalf("config rest_url: exit %d, %q, %q", code, out, errs)
	}
}

func TestAdminDevApp(t *testing.T) {
	e := newAdminEnv(t)
	// With no key flags, the dev app `chatctl serve` wrote is used.
	b, _ := json.Marshal(config.DevApp{SDKAppID: e.ts.App.SDKAppID, SecretKey: e.ts.App.Key, Admin: servertest.Admin})
	if err := os.WriteFile(filepath.Join(e.dir, config.DevAppFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ts.Store().ImportAccount(context.Background(), e.ts.App.SDKAppID, store.Account{UserID: "alice"}); err != nil {
		t.Fatal(err)
	}
	code, out, errs := e.runBare("admin", "check", "alice", "--endpoint", e.ts.WSURL)
	if code != 0 || out != "alice\tImported\n" || errs != "" {
		t.Fatalf("dev app: exit %d, %q, %q", code, out, errs)
	}
}

func TestRESTBaseURL(t *testing.T) {
	for _, c := range []struct{ rest, endpoint, want string }{
		{"", "ws://127.0.0.1:7468", "http://127.0.0.1:7468"},
		{"", "wss://chat.example.com", "https://chat.example.com"},
		{"", "wss://chat.example.com:8443/binfo?x=1", "https://chat.example.com:8443"},
		{"", "http://[::1]:7468", "http://[::1]:7468"},
		{"https://console.tim.qq.com/", "ws://127.0.0.1:7468", "https://console.tim.qq.com"},
		{"http://h:1", "", "http://h:1"},
		{"", "ftp://x", ""},
		{"", "127.0.0.1:7468", ""},
		{"ws://x", "ws://x", ""},
		{"HTTP://Rest.Example:8080/", "", "http://Rest.Example:8080"},
		{"http://[::1]:7468/", "", "http://[::1]:7468"},
		// A path is a reverse proxy's prefix; the request URL is this +
		// "/v4/…?…", so a query or fragment would hold the command and the
		// UserSig.
		{"http://h:1/x?y", "ws://x", ""},
		{"http://h:1/x", "ws://x", "http://h:1/x"},
		{"https://h/chat/api/", "ws://x", "https://h/chat/api"},
		{"http://h:1//", "ws://x", "http://h:1"},
		{"http://h:1?y", "ws://x", ""},
		{"http://h:1/?", "ws://x", ""},
		{"http://h:1#f", "ws://x", ""},
		{"http://h:1/#", "ws://x", ""},
		{"http://:1", "ws://x", ""},
		{"http://h:0", "ws://x", ""},
		{"http://h:65536", "ws://x", ""},
		{"http:h", "ws://x", ""},
		// User info is refused, and its password never shown.
		{"http://u:s3cret@h:1", "ws://x", ""},
		{"http://u:s3cret@h:1/x?y", "ws://x", ""},
		{"http://u:s3cret@h:bad", "ws://x", ""},
		{"http://u:s3cret@h:1@x", "ws://x", ""},
		{"u:s3cret@h:1", "ws://x", ""},
	} {
		got, err := restBaseURL(c.rest, "--rest-url", c.endpoint)
		if got != c.want || (err != nil) != (c.want == "") {
			t.Errorf("restBaseURL(%q, %q) = %q, %v; want %q", c.rest, c.endpoint, got, err, c.want)
		}
		if err != nil && (strings.Contains(err.Error(), "s3cret") || c.rest != "" && !strings.HasPrefix(err.Error(), "--rest-url ")) {
			t.Errorf("restBaseURL(%q, %q): message %q shows the password, or does not name --rest-url", c.rest, c.endpoint, err)
		}
	}
}

// The admin subcommands' flags, into their options: the REST client built
// from the credentials and the REST URL, the users and flags.
func TestAdminFlags(t *testing.T) {
	key := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(key, []byte("the-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	creds := []string{"--sdkappid", "1400000001", "--key-file", key}
	o, code, _, stderr := parseArgsUnder(t, "admin", newAdminKickCmd, append([]string{"admin", "kick", "alice", "--endpoint", "ws://127.0.0.1:9/x"}, creds...)...)
	if code != 0 || o == nil || o.User != "alice" || o.Name != "admin kick" || o.REST.BaseURL != "http://127.0.0.1:9" ||
		o.REST.SDKAppID != 1400000001 || o.REST.Admin != "administrator" || o.REST.Key != "the-key" {
		t.Fatalf("exit %d %s: %+v", code, stderr, o)
	}
	on, code, _, stderr := parseArgsUnder(t, "admin", newAdminOnlineCmd, append([]string{"admin", "online", "a", "b", "--detail", "--rest-url", "https://rest.example/", "-o", "json"}, creds...)...)
	if code != 0 || on == nil || strings.Join(on.Users, ",") != "a,b" || !on.Detail || on.REST.BaseURL != "https://rest.example" || !on.IO.JSON() {
		t.Fatalf("exit %d %s: %+v", code, stderr, on)
	}
	im, code, _, stderr := parseArgsUnder(t, "admin", newAdminImportCmd, append([]string{"admin", "import", "a", "--nick", "A", "--face-url", "http://x/a.png"}, creds...)...)
	if code != 0 || im == nil || im.Batch || im.Nick != "A" || im.FaceURL != "http://x/a.png" || im.Name != "admin import" {
		t.Fatalf("exit %d %s: %+v", code, stderr, im)
	}
	dl, code, _, stderr := parseArgsUnder(t, "admin", newAdminDeleteCmd, append([]string{"admin", "delete", "a", "b"}, creds...)...)
	if code != 0 || dl == nil || len(dl.Users) != 2 || dl.Name != "admin delete" {
		t.Fatalf("exit %d %s: %+v", code, stderr, dl)
	}
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"admin", "import", "a", "b"}, "import takes one USER; use --batch for several (see 'chatctl admin import --help')"},
		{[]string{"admin", "import", "--batch", "a", "--nick", "A"}, "--nick and --face-url import one USER; they do not go with --batch (see 'chatctl admin import --help')"},
		{[]string{"admin", "import", "a", "--rest-url", "ftp://x"}, `--rest-url "ftp://x": scheme "ftp"; want http(s)://host[:port][/prefix] (see 'chatctl admin import --help')`},
		{[]string{"admin", "import", "a", "--rest-url", "http://u:pw@h:1/x?y"}, `--rest-url "http://…@h:1/x?y": user info; want http(s)://host[:port][/prefix] (see 'chatctl admin import --help')`},
		{[]string{"admin", "import", "a", "--rest-url", "http://h:1/x?y"}, `--rest-url "http://h:1/x?y": a query; want http(s)://host[:port][/prefix] (see 'chatctl admin import --help')`},
		{[]string{"admin", "import"}, "requires at least 1 arg(s), only received 0 (see 'chatctl admin import --help')"},
	} {
		o, code, stdout, stderr := parseArgsUnder(t, "admin", newAdminImportCmd, append(c.args, creds...)...)
		if o != nil || code != ExitUsage || stdout != "" || stderr != "chatctl: "+c.msg+"\n" {
			t.Errorf("%q: exit %d, ran %v\nstdout %q\nstderr %q\nwant   %q", c.args, code, o != nil, stdout, stderr, "chatctl: "+c.msg+"\n")
		}
	}
	// No key anywhere (and no dev app): exit 2 before any request.
	o, code, _, stderr = parseArgsUnder(t, "admin", newAdminKickCmd, "admin", "kick", "alice", "--sdkappid", "1400000001")
	if o != nil || code != ExitUsage || stderr != "chatctl: no secret key: use --key-file or CHATCTL_SECRET_KEY, or start `chatctl serve` once to create the dev app\n" {
		t.Errorf("no key: exit %d %q", code, stderr)
	}
}

// The run functions with a REST client to a real server: text lines, the
// -o json document, a FAIL answer (1), a rejected admin UserSig (5) and a
// closed port (6).
func adminRunTest(t *testing.T) {
	e := newSubEnv(t)
	ts := e.server()
	ctx := context.Background()
	cli := &rest.Client{BaseURL: ts.RESTURL, SDKAppID: ts.App.SDKAppID, Admin: servertest.Admin, Key: ts.App.Key}
	admin := func(name string) AdminOptions { return AdminOptions{IO: e.app, REST: cli, Name: name} }

	e.want(adminImportRun(ctx, &AdminImportOptions{AdminOptions: admin("admin import"), Users: []string{"alice", "bob"}, Batch: true}),
		0, "", "", "alice\tImported\nbob\tImported\n", "")
	e.want(adminOnlineRun(ctx, &AdminOnlineOptions{AdminOptions: admin("admin online"), Users: []string{"alice", "nobody"}}),
		0, "", "", "alice\tOffline\nnobody\tNotImported\n", "")
	// bob online on a socket this test holds: Online, on the Web.
	conn, err := client.Dial(ctx, client.Config{Endpoint: ts.WSURL, SDKAppID: ts.App.SDKAppID})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Login(ctx, "bob", ts.Sig("bob", time.Hour)); err != nil {
		t.Fatal(err)
	}
	e.want(adminOnlineRun(ctx, &AdminOnlineOptions{AdminOptions: admin("admin online"), Users: []string{"bob"}, Detail: true}),
		0, "", "", "bob\tOnline\tWeb:Online\n", "")
	e.login("default", "alice")
	e.want(adminKickRun(ctx, &AdminKickOptions{AdminOptions: admin("admin kick"), User: "alice"}), 0, "", "", "alice\tKicked\n", "")
	// The kicked session is over: whoami --check says REST_API_Kick.
	err = whoamiRun(ctx, &WhoamiOptions{lifecycleOptions: e.lifecycle("default", ""), Check: true})
	if o := classify(err); o.Code != ExitKicked || o.KickType != client.KickedRESTAPI {
		t.Errorf("after admin kick: exit %d kick %q: %v", o.Code, o.KickType, err)
	}
	e.reset()

	e.want(adminKickRun(ctx, &AdminKickOptions{AdminOptions: admin("admin kick"), User: "nobody"}),
		ExitFailure, KindServerRefused, "admin kick: 70107 account not imported", "", "")
	e.json()
	err = adminDeleteRun(ctx, &AdminUsersOptions{AdminOptions: admin("admin delete"), Users: []string{"bob", "nobody"}})
	var ee *ExitError
	if o := classify(err); o.Code != ExitFailure || !errors.As(err, &ee) || strings.TrimSpace(string(ee.Data.(json.RawMessage))) != `{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","ResultItem":[`+
		`{"ResultCode":0,"ResultInfo":"","UserID":"bob"},{"ResultCode":70107,"ResultInfo":"Err_TLS_PT_Open_Login_Account_Not_Exist","UserID":"nobody"}]}` {
		t.Errorf("delete nobody -o json: exit %d: %v %s", o.Code, err, ee.Data)
	}
	e.reset()
	e.want(adminCheckRun(ctx, &AdminUsersOptions{AdminOptions: admin("admin check"), Users: []string{"alice", "bob"}}), 0, "", "",
		`{"schema_version":1,"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","ResultItem":[`+
			`{"UserID":"alice","ResultCode":0,"ResultInfo":"","AccountStatus":"Imported"},`+
			`{"UserID":"bob","ResultCode":0,"ResultInfo":"","AccountStatus":"NotImported"}]}`+"\n", "")
	e.app.V.Set("output", "text")

	bad := *cli
	bad.Key = "not-the-key"
	err = adminKickRun(ctx, &AdminKickOptions{AdminOptions: AdminOptions{IO: e.app, REST: &bad, Name: "admin kick"}, User: "alice"})
	if o := classify(err); o.Code != ExitSigRejected || o.Kind != KindUserSigRejected || !strings.HasPrefix(err.Error(), "admin kick: 70009 ") {
		t.Errorf("wrong key: exit %d kind %q: %v", o.Code, o.Kind, err)
	}
	dead := *cli
	dead.BaseURL = "http" + strings.TrimPrefix(deadEndpoint(t), "ws")
	err = adminKickRun(ctx, &AdminKickOptions{AdminOptions: AdminOptions{IO: e.app, REST: &dead, Name: "admin kick"}, User: "alice"})
	if o := classify(err); o.Code != ExitUnreachable || !strings.Contains(err.Error(), "start it with `chatctl serve`") {
		t.Errorf("closed port: exit %d: %v", o.Code, err)
	}
}

// The REST answers make one object; keys chatctl's document owns are not
// taken from a server, which would give the document two of each.
func TestMergeAnswers(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{`{"ActionStatus":"OK","ErrorCode":0}`}, `{"ActionStatus":"OK","ErrorCode":0}`},
		{[]string{`{"ErrorCode":0,"schema_version":99,"error":{"kind":"fake"}}`}, `{"ErrorCode":0}`},
		{[]string{`{"QueryResult":[1],"ErrorCode":0}`, `{"QueryResult":[2],"ErrorCode":1}`}, `{"ErrorCode":1,"QueryResult":[1,2]}`},
		{[]string{`[1]`}, `{}`},
	} {
		var in []json.RawMessage
		for _, a := range c.in {
			in = append(in, json.RawMessage(a))
		}
		if got := string(mergeAnswers(in)); got != c.want {
			t.Errorf("mergeAnswers(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}
