package cmd

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"chatctl/pkg/config"
	"chatctl/pkg/sig"
)

const (
	testSigKey   = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"
	testSigAppID = "1400000000"
	// The "basic" vector of testdata/sig/vectors.json.
	basicSig = "eAEArABT-3siVExTLnZlciI6IjIuMCIsIlRMUy5pZGVudGlmaWVyIjoieGlhb2p1biIsIlRMUy5zZGthcHBpZCI6MTQwMDAwMDAwMCwiVExTLmV4cGlyZSI6MTU1NTIwMDAsIlRMUy50aW1lIjoxNzAwMDAwMDAwLCJUTFMuc2lnIjoiTHZBN2QvSXc3Z1NzbnNrdlZ6QkRQT0NDRGJ1TkN3NEdId1RDMGJpcCtCND0ifQoBAAD--9-DMfw_"
)

type runResult struct {
	code           int
	stdout, stderr string
}

// runSig runs chatctl in-process with a fresh config dir and no key in the
// environment, and checks the secret key never reaches the output.
func runSig(t *testing.T, stdin string, args ...string) runResult {
	t.Helper()
	var out, errw bytes.Buffer
	code := Run(args, strings.NewReader(stdin), &out, &errw)
	r := runResult{code, out.String(), errw.String()}
	if strings.Contains(r.stdout, testSigKey) || strings.Contains(r.stderr, testSigKey) {
		t.Fatalf("secret key in output: %+v", r)
	}
	return r
}

// sigEnv gives the test a config dir and a key file; it returns the
// --key-file flag pair.
func sigEnv(t *testing.T) []string {
	t.Helper()
	dir := t.TempDir()
	isolateEnv(t, dir)
	kf := filepath.Join(dir, "app.key")
	if err := os.WriteFile(kf, []byte(testSigKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"--key-file", kf, "--sdkappid", testSigAppID}
}

func TestSigGenMatchesVector(t *testing.T) {
	key := sigEnv(t)
	r := runSig(t, "", append([]string{"sig", "gen", "--user", "xiaojun", "--expire", "180d", "--now", "2023-11-14T22:13:20Z"}, key...)...)
	if r.code != 0 || r.stdout != basicSig+"\n" || r.stderr != "" {
		t.Fatalf("gen: %+v", r)
	}
	// Plain seconds and unix --now give the same UserSig.
	r = runSig(t, "", append([]string{"sig", "gen", "--user", "xiaojun", "--expire", "15552000", "--now", "1700000000"}, key...)...)
	if r.stdout != basicSig+"\n" {
		t.Fatalf("gen: %+v", r)
	}
}

func TestSigGenJSON(t *testing.T) {
	key := sigEnv(t)
	r := runSig(t, "", append([]string{"sig", "gen", "-o", "json", "--user", "bob", "--expire", "1d12h", "--now", "1700000000", "--userbuf", "YWJj"}, key...)...)
	if r.code != 0 {
		t.Fatalf("%+v", r)
	}
	var got struct {
		Sig        string  `json:"sig"`
		Identifier string  `json:"identifier"`
		SDKAppID   uint64  `json:"sdkappid"`
		Time       int64   `json:"time"`
		Expire     int64   `json:"expire"`
		ExpiresAt  string  `json:"expires_at"`
		UserBuf    *string `json:"userbuf"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatal(err)
	}
	if got.Identifier != "bob" || got.SDKAppID != 1400000000 || got.Time != 1700000000 || got.Expire != 36*3600 ||
		got.ExpiresAt != "2023-11-16T10:13:20.000Z" || got.UserBuf == nil || *got.UserBuf != "YWJj" || got.Sig == "" {
		t.Fatalf("gen -o json = %s", r.stdout)
	}
	r = runSig(t, "", append([]string{"sig", "verify", "--user", "bob", "--now", "1700000001", got.Sig}, key...)...)
	if r.code != 0 {
		t.Fatalf("verify of gen output: %+v", r)
	}
}

func TestSigGenVerifyRoundTrip(t *testing.T) {
	key := sigEnv(t)
	r := runSig(t, "", append([]string{"sig", "gen", "--user", "alice", "--expire", "3s"}, key...)...)
	if r.code != 0 {
		t.Fatalf("%+v", r)
	}
	s := strings.TrimSpace(r.stdout)
	// From stdin (no argument, and "-").
	for _, args := range [][]string{{"sig", "verify", "--user", "alice"}, {"sig", "verify", "--user", "alice", "-"}} {
		r = runSig(t, s+"\n", append(args, key...)...)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "valid: alice in app 1400000000 until ") || r.stderr != "" {
			t.Fatalf("verify %v: %+v", args, r)
		}
	}
	// Expired at --now: exit 5, one line with code and reason on stderr.
	r = runSig(t, "", append([]string{"sig", "verify", "--user", "alice", "--now", "2100-01-01T00:00:00Z", s}, key...)...)
	if r.code != ExitSigRejected || r.stdout != "" || r.stderr != "chatctl: usersig rejected (70001): usersig expired\n" {
		t.Fatalf("expired: %+v", r)
	}
	r = runSig(t, "", append([]string{"sig", "verify", "--user", "mallory", s}, key...)...)
	if r.code != ExitSigRejected || !strings.Contains(r.stderr, "(70013)") {
		t.Fatalf("other user: %+v", r)
	}
}

func TestSigVerifyJSON(t *testing.T) {
	key := sigEnv(t)
	// The vector with another key: bad signature.
	other := filepath.Join(t.TempDir(), "other.key")
	os.WriteFile(other, []byte("not-the-key"), 0o600)
	r := runSig(t, "", "sig", "verify", "-o", "json", "--key-file", other, "--sdkappid", testSigAppID, "--user", "xiaojun", "--now", "1700000000", basicSig)
	if r.code != ExitSigRejected || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "70009") {
		t.Fatalf("%+v", r)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatal(err)
	}
	if res["valid"] != false || res["code"] != float64(70009) || res["reason"] != "signature mismatch" {
		t.Fatalf("verify -o json = %s", r.stdout)
	}
	r = runSig(t, "", append([]string{"sig", "verify", "-o", "json", "--user", "xiaojun", "--now", "1700000000", basicSig}, key...)...)
	res = nil
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != 0 {
		t.Fatalf("%+v", r)
	}
	if res["valid"] != true || res["expires_at"] != "2024-05-12T22:13:20.000Z" || res["expire"] != float64(15552000) {
		t.Fatalf("verify -o json = %s", r.stdout)
	}
	// A valid UserSig's times are there when they are 0 too (a script
	// reads .expire); a failure has none.
	r = runSig(t, "", append([]string{"sig", "gen", "--user", "xiaojun", "--expire", "0", "--now", "0"}, key...)...)
	zero := strings.TrimSpace(r.stdout)
	r = runSig(t, "", append([]string{"sig", "verify", "-o", "json", "--user", "xiaojun", "--now", "0", zero}, key...)...)
	res = nil
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != 0 || res["time"] != float64(0) || res["expire"] != float64(0) {
		t.Errorf("verify -o json of a UserSig made at 0 for 0 s = %+v", r)
	}
	r = runSig(t, "", append([]string{"sig", "verify", "-o", "json", "--user", "mallory", zero}, key...)...)
	if r.code != ExitSigRejected || !strings.Contains(r.stdout, `"valid":false`) || strings.Contains(r.stdout, `"time"`) || strings.Contains(r.stdout, `"expire"`) {
		t.Errorf("a failed verify -o json has times: %+v", r)
	}
	for _, c := range []struct {
		sig  string
		code string
	}{{"", "70002"}, {"eAEA", "70003"}, {"not base64!", "70003"}} {
		r = runSig(t, c.sig, append([]string{"sig", "verify", "--user", "xiaojun", "-"}, key...)...)
		if r.code != ExitSigRejected || !strings.Contains(r.stderr, c.code) {
			t.Fatalf("verify %q: %+v", c.sig, r)
		}
	}
}

func TestSigKeySources(t *testing.T) {
	sigEnv(t)
	args := []string{"sig", "gen", "--user", "xiaojun", "--expire", "180d", "--now", "1700000000", "--sdkappid", testSigAppID}
	// --key works but warns; the warning does not echo the key.
	r := runSig(t, "", append(args, "--key", testSigKey)...)
	if r.code != 0 || r.stdout != basicSig+"\n" || !strings.Contains(r.stderr, "warning: --key puts the secret key in argv") {
		t.Fatalf("--key: %+v", r)
	}
	// The environment.
	t.Setenv("CHATCTL_SECRET_KEY", testSigKey)
	r = runSig(t, "", args...)
	if r.code != 0 || r.stdout != basicSig+"\n" || r.stderr != "" {
		t.Fatalf("CHATCTL_SECRET_KEY: %+v", r)
	}
	// No key anywhere, no dev app: usage error. (Set but empty is
	// another error: TestConfigValuesNotOfTheirKind.)
	os.Unsetenv("CHATCTL_SECRET_KEY")
	r = runSig(t, "", args...)
	if r.code != ExitUsage || !strings.Contains(r.stderr, "no secret key") {
		t.Fatalf("no key: %+v", r)
	}
	// The dev app of `chatctl serve`.
	dir := os.Getenv("CHATCTL_CONFIG_DIR")
	if _, _, err := config.LoadOrCreateDevApp(dir, func() config.DevApp {
		return config.DevApp{SDKAppID: 1400000000, SecretKey: testSigKey, Admin: "administrator"}
	}); err != nil {
		t.Fatal(err)
	}
	r = runSig(t, "", "sig", "gen", "--user", "xiaojun", "--now", "1700000000")
	if r.code != 0 || r.stdout != basicSig+"\n" {
		t.Fatalf("dev app: %+v", r)
	}
}

func TestSigDecodeVectors(t *testing.T) {
	sigEnv(t)
	b, err := os.ReadFile("../testdata/sig/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []struct {
		Name, Func, User, Sig, RoomStr string
		AppID                          uint64 `json:"appid"`
		Time, Expire                   int64
		RoomID, Priv                   uint32
	}
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		// Argument, and stdin; -o text still prints JSON.
		for _, in := range [][2]string{{"", v.Sig}, {v.Sig + "\n", "-"}} {
			r := runSig(t, in[0], "sig", "decode", "-o", "text", in[1])
			var got struct {
				Version    string `json:"version"`
				Identifier string `json:"identifier"`
				SDKAppID   uint64 `json:"sdkappid"`
				Time       int64  `json:"time"`
				Expire     int64  `json:"expire"`
				ExpiresAt  string `json:"expires_at"`
				PrivMap    *struct {
					RoomID    uint32 `json:"roomid"`
					RoomStr   string `json:"roomstr"`
					Privilege uint32 `json:"privilege"`
					ExpireAt  int64  `json:"expire_at"`
				} `json:"privmap"`
			}
			if r.code != 0 || json.Unmarshal([]byte(r.stdout), &got) != nil {
				t.Fatalf("%s: %+v", v.Name, r)
			}
			if got.Version != "2.0" || got.Identifier != v.User || got.SDKAppID != v.AppID || got.Time != v.Time || got.Expire != v.Expire || got.ExpiresAt == "" {
				t.Errorf("%s: decode = %s", v.Name, r.stdout)
			}
			if strings.Contains(r.stdout, "TLS.sig") {
				t.Errorf("%s: decode prints the MAC", v.Name)
			}
			isPM := strings.HasPrefix(v.Func, "GenPrivateMapKey")
			if isPM != (got.PrivMap != nil) {
				t.Fatalf("%s: privmap = %s", v.Name, r.stdout)
			}
			if isPM && (got.PrivMap.RoomID != v.RoomID || got.PrivMap.RoomStr != v.RoomStr || got.PrivMap.Privilege != v.Priv || got.PrivMap.ExpireAt != v.Time+v.Expire) {
				t.Errorf("%s: privmap = %s", v.Name, r.stdout)
			}
		}
	}
	// Official outputs verify with `chatctl sig verify`.
	for _, v := range vs {
		r := runSig(t, v.Sig, "sig", "verify", "--key", testSigKey, "--sdkappid", testSigAppID, "--user", v.User, "--now", strconv.FormatInt(v.Time, 10))
		if r.code != 0 || !strings.HasPrefix(r.stdout, "valid: "+v.User+" ") {
			t.Errorf("%s: verify: %+v", v.Name, r)
		}
	}
	r := runSig(t, "", "sig", "decode", "garbage")
	if r.code != ExitSigRejected || r.stdout != "" || !strings.Contains(r.stderr, "70003") {
		t.Fatalf("decode garbage: %+v", r)
	}
}

func TestSigPrivmap(t *testing.T) {
	key := sigEnv(t)
	base := append([]string{"sig", "privmap", "--user", "xiaojun", "--now", "1700000000", "--expire", "180d"}, key...)
	// The privmap vectors.
	r := runSig(t, "", append(base, "--room", "10000")...)
	var vs []struct{ Name, Sig string }
	b, _ := os.ReadFile("../testdata/sig/vectors.json")
	json.Unmarshal(b, &vs)
	want := map[string]string{}
	for _, v := range vs {
		want[v.Name] = v.Sig
	}
	if r.code != 0 || r.stdout != want["privmap-roomid"]+"\n" {
		t.Fatalf("privmap --room: %+v", r)
	}
	r = runSig(t, "", append(base, "--room-str", "1000000040", "--priv", "255")...)
	if r.code != 0 || r.stdout != want["privmap-roomstr"]+"\n" {
		t.Fatalf("privmap --room-str: %+v", r)
	}
	for _, bad := range [][]string{{}, {"--room", "1", "--room-str", "a"}, {"--room-str", ""}} {
		r = runSig(t, "", append(append([]string{}, base...), bad...)...)
		if r.code != ExitUsage || r.stdout != "" {
			t.Fatalf("privmap %v: %+v", bad, r)
		}
	}
}

func TestSigUsageErrors(t *testing.T) {
	key := sigEnv(t)
	for _, args := range [][]string{
		{"sig", "gen"}, // --user required
		{"sig", "gen", "--user", "a", "--expire", "soon"},
		{"sig", "gen", "--user", "a", "--expire", "1.5s"},
		{"sig", "gen", "--user", "a", "--now", "yesterday"},
		{"sig", "gen", "--user", "a", "--userbuf", "%%%"},
		{"sig", "verify", "a", "b"},
		{"sig", "verify", "--user", "", "abc"}, // the one UserID rule, as gen
		{"sig", "verify", "--user", "a\nb", "abc"},
	} {
		r := runSig(t, "", append(args, key...)...)
		if r.code != ExitUsage || r.stdout != "" || !strings.HasPrefix(r.stderr, "chatctl: ") {
			t.Errorf("%v: %+v", args, r)
		}
	}
	// stdin for both the UserSig and the key (from review: the UserSig was
	// taken for the key, and the key found empty).
	for _, stdin := range []string{"-", "/dev/stdin", "/dev/fd/0"} {
		r := runSig(t, "sig\n", "sig", "verify", "--user", "a", "--sdkappid", testSigAppID, "--key-file", stdin)
		if r.code != ExitUsage || !strings.Contains(r.stderr, "not both") {
			t.Errorf("--key-file %s with the UserSig on stdin: %+v", stdin, r)
		}
	}
}

func TestParseSigDuration(t *testing.T) {
	for in, want := range map[string]int64{
		"180d": 180 * 86400, "3s": 3, "12h": 43200, "1d12h": 129600, "86400": 86400, "0": 0, "-1": -1, "-2d": -2 * 86400, "0d": 0,
	} {
		if got, err := parseSigDuration(in); err != nil || got != want {
			t.Errorf("parseSigDuration(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "1.5d", "1d-3h", "1500ms", "x1d", "3 days"} {
		if _, err := parseSigDuration(in); err == nil {
			t.Errorf("parseSigDuration(%q) accepted", in)
		}
	}
}

// The sig subcommands' flags, into their options.
func TestSigFlags(t *testing.T) {
	dir := t.TempDir()
	kf := filepath.Join(dir, "app.key")
	if err := os.WriteFile(kf, []byte(testSigKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key := []string{"--key-file", kf, "--sdkappid", testSigAppID}
	g, code, _, stderr := parseArgsUnder(t, "sig", newSigGenCmd, append([]string{"sig", "gen", "--user", "xiaojun", "--expire", "1d12h", "--now", "1700000000", "--userbuf", "YWJj"}, key...)...)
	if code != 0 || g == nil || g.Params.UserID != "xiaojun" || g.Params.SDKAppID != 1400000000 || g.Params.Key != testSigKey ||
		g.Params.Expire != 36*3600 || string(g.Params.UserBuf) != "abc" || g.Now.Unix() != 1700000000 {
		t.Fatalf("gen: exit %d %s", code, stderr)
	}
	p, code, _, stderr := parseArgsUnder(t, "sig", newSigPrivmapCmd, append([]string{"sig", "privmap", "--user", "u", "--room-str", "r1", "--priv", "3"}, key...)...)
	if code != 0 || p == nil || p.RoomStr != "r1" || p.Room != 0 || p.Priv != 3 || p.Params.Expire != 180*86400 {
		t.Fatalf("privmap: exit %d %s", code, stderr)
	}
	v, code, _, stderr := parseArgsUnder(t, "sig", newSigVerifyCmd, append([]string{"sig", "verify", "--user", "xiaojun", "--now", "2023-11-14T22:13:20Z", basicSig}, key...)...)
	if code != 0 || v == nil || v.Sig != basicSig || v.User != "xiaojun" || v.Creds.SDKAppID != 1400000000 || v.Creds.Key != testSigKey || v.Now.Unix() != 1700000000 {
		t.Fatalf("verify: exit %d %s", code, stderr)
	}
	d, code, _, stderr := parseArgsUnder(t, "sig", newSigDecodeCmd, "sig", "decode", basicSig)
	if code != 0 || d == nil || d.Sig != basicSig {
		t.Fatalf("decode: exit %d %s", code, stderr)
	}
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"sig", "privmap", "--user", "u"}, "give exactly one of --room and --room-str"},
		{[]string{"sig", "privmap", "--user", "u", "--room", "1", "--room-str", "r"}, "give exactly one of --room and --room-str"},
		{[]string{"sig", "privmap", "--user", "u", "--room-str", ""}, "--room-str must not be empty"},
		{[]string{"sig", "privmap", "--room", "1"}, `required flag(s) "user" not set (see 'chatctl sig privmap --help')`},
		{[]string{"sig", "privmap", "--user", "u", "--room", "1", "--expire", "soon"}, "--expire: " + func() string { _, err := parseSigDuration("soon"); return err.Error() }()},
	} {
		o, code, stdout, stderr := parseArgsUnder(t, "sig", newSigPrivmapCmd, append(c.args, key...)...)
		if o != nil || code != ExitUsage || stdout != "" || stderr != "chatctl: "+c.msg+"\n" {
			t.Errorf("%q: exit %d, ran %v\nstdout %q\nstderr %q\nwant   %q", c.args, code, o != nil, stdout, stderr, "chatctl: "+c.msg+"\n")
		}
	}
}

// The sig run functions: the vector minted exactly, and verify's answers.
func TestSigRun(t *testing.T) {
	e := newRunEnv(t)
	ctx := context.Background()
	params := sig.Params{SDKAppID: 1400000000, Key: testSigKey, UserID: "xiaojun", Expire: 15552000}
	now := time.Unix(1700000000, 0)
	e.want(sigGenRun(ctx, &SigMintOptions{IO: e.app, Params: params, Now: now}), 0, "", "", basicSig+"\n", "")
	creds := appCreds{SDKAppID: 1400000000, Key: testSigKey}
	e.want(sigVerifyRun(ctx, &SigVerifyOptions{IO: e.app, Creds: creds, User: "xiaojun", Sig: basicSig, Now: now}), 0, "", "",
		"valid: xiaojun in app 1400000000 until 2024-05-12T22:13:20.000Z\n", "")
	err := sigVerifyRun(ctx, &SigVerifyOptions{IO: e.app, Creds: creds, User: "bob", Sig: basicSig, Now: now})
	if o := classify(err); o.Code != ExitSigRejected || o.Kind != KindUserSigRejected || o.TencentCode != 70013 {
		t.Errorf("another user: exit %d kind %q code %d: %v", o.Code, o.Kind, o.TencentCode, err)
	}
	err = sigVerifyRun(ctx, &SigVerifyOptions{IO: e.app, Creds: creds, User: "xiaojun", Sig: basicSig, Now: now.Add(200 * 24 * time.Hour)})
	if o := classify(err); o.Code != ExitSigRejected || o.Kind != KindUserSigExpired {
		t.Errorf("expired: exit %d kind %q: %v", o.Code, o.Kind, err)
	}
	e.want(nil, 0, "", "", "", "")
}

// Every time sig prints is RFC 3339 or null: a UserSig's time and expiry
// are any int64, and years past 9999 have no RFC 3339 form. A --now
// before 1970 is refused.
func TestSigTimesOutOfRange(t *testing.T) {
	key := sigEnv(t)
	for _, c := range []struct {
		args []string
		want string // a substring of stdout
	}{
		{[]string{"sig", "gen", "--user", "a", "--now", "9999-12-31T23:59:59Z", "--expire", "1d"}, `"expires_at":null`},
		{[]string{"sig", "gen", "--user", "a", "--now", "1700000000", "--expire", "-9223372036854775808"}, `"expires_at":null`},
		{[]string{"sig", "gen", "--user", "a", "--now", "1700000000", "--expire", "1d"}, `"expires_at":"2023-11-15T22:13:20.000Z"`},
	} {
		r := runSig(t, "", append(append(c.args, "-o", "json"), key...)...)
		if r.code != 0 || !strings.Contains(r.stdout, c.want) || strings.Contains(r.stdout, `"-"`) || strings.Contains(r.stdout, `"10000-`) {
			t.Errorf("%q: %+v", c.args, r)
		}
	}
	for _, now := range []string{"-1", "1969-12-31T23:59:59Z", "0001-01-01T00:00:00Z"} {
		r := runSig(t, "", append([]string{"sig", "gen", "--user", "a", "--now", now}, key...)...)
		if r.code != ExitUsage || !strings.Contains(r.stderr, "before 1970") {
			t.Errorf("--now %s: %+v", now, r)
		}
	}
}

// A UserSig that its input makes longer than sig.MaxLen is refused before
// it is printed, exit 2 with -o json or without: chatctl's own verify,
// and any server, refuse it (and -o json's decode of it exited 5).
func TestSigMintTooLong(t *testing.T) {
	key := sigEnv(t)
	buf := make([]byte, 4000)
	for i := range buf {
		buf[i] = byte(i * 7919 >> 3) // does not compress away
	}
	long := base64.StdEncoding.EncodeToString(buf)
	for _, args := range [][]string{
		{"sig", "gen", "--user", "alice", "--userbuf", long},
		{"sig", "gen", "--user", "alice", "--userbuf", long, "-o", "json"},
		{"sig", "privmap", "--user", "alice", "--room-str", strings.Repeat("r", 70000)},
		{"sig", "privmap", "--user", "alice", "--room-str", long, "-o", "json"},
		// Within sig.MaxLen, but its document inflates past sig.MaxInflated.
		{"sig", "privmap", "--user", "alice", "--room-str", strings.Repeat("r", 2920)},
	} {
		r := runSig(t, "", append(args, key...)...)
		if r.code != ExitUsage || !strings.Contains(r.stderr, "refused by any server") || strings.Contains(r.stdout, "eJ") {
			t.Errorf("%.40q: %+v", args, r)
		}
	}
	r := runSig(t, "", append([]string{"sig", "gen", "--user", "alice", "--userbuf", long[:2000]}, key...)...)
	if r.code != 0 {
		t.Errorf("a UserSig within the bound: %+v", r)
	}
}
