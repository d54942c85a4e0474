package rest_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"chatctl/pkg/rest"
	"chatctl/pkg/sig"
	"chatctl/pkg/wire"
)

// userIDCases are UserIDs at and around the one rule (wire.ValidateUserID).
var userIDCases = []string{
	"alice",
	"日本語ユーザー",                                            // non-ASCII: allowed
	"a.b-c_d@e!#$%^&*()+=[]{} ~'`|\\/",                   // punctuation and a space: allowed
	strings.Repeat("k", 32),                              // the longest
	strings.Repeat("k", 33),                              // one byte too long
	strings.Repeat("é", 17),                              // 34 bytes of 17 letters
	"a\x00b", "a\nb", "\x1b[31m", "a\u007fb", "a\u0085b", // control characters (C0, DEL, C1)
	"x\uFFFD", // what an escaped lone surrogate decodes to
}

// Escaped lone surrogates decode to U+FFFD: "x\ud800", "x\udfff" and
// "x\ufffd" named one user (all Imported after importing one), which the
// raw-byte check before decoding cannot see. Each is refused as the rule
// refuses U+FFFD.
func TestLoneSurrogateUserIDs(t *testing.T) {
	f := setup(t)
	for _, esc := range []string{`x\ud800`, `x\udfff`, `x\ufffd`, `x\ud800\udc00\ud800`} {
		if m := f.post(rest.CmdAccountImport, `{"UserID":"`+esc+`"}`); code(m) != 70402 {
			t.Errorf("account_import %s: %v", esc, m)
		}
		if m := f.post(rest.CmdAccountCheck, `{"CheckItem":[{"UserID":"`+esc+`"}]}`); !strings.Contains(fmt.Sprint(m["ResultItem"]), "70402") {
			t.Errorf("account_check %s: %v", esc, m)
		}
	}
}

// The REST API takes exactly the UserIDs wslogin takes, in every command
// and as the admin identifier; a refused one is 70402 (per user in the
// batch commands), the identifier's 60004.
func TestUserIDRuleEverywhere(t *testing.T) {
	f := setup(t)
	for _, u := range userIDCases {
		valid := wire.ValidateUserID(u) == nil
		ju, _ := json.Marshal(u)
		t.Run(strconv.Quote(u), func(t *testing.T) {
			// Whole-answer commands.
			for cmd, body := range map[string]string{
				rest.CmdAccountImport: `{"UserID":` + string(ju) + `}`,
				rest.CmdKick:          `{"UserID":` + string(ju) + `}`,
			} {
				m := f.post(cmd, body)
				if valid && code(m) == 70402 || !valid && code(m) != 70402 {
					t.Fatalf("%s %q: %v (valid %v)", cmd, u, m, valid)
				}
			}
			// Per-user answers of the batch commands.
			per := func(cmd, body, field string) string {
				b, _ := json.Marshal(f.post(cmd, body)[field])
				return string(b)
			}
			bad := func(s string) bool { return strings.Contains(s, "70402") }
			if s := per(rest.CmdMultiAccountImport, `{"Accounts":[`+string(ju)+`]}`, "FailAccounts"); (s != "[]") == valid {
				t.Fatalf("multiaccount_import %q: FailAccounts %s", u, s)
			}
			if s := per(rest.CmdQueryOnlineStatus, `{"To_Account":[`+string(ju)+`]}`, "ErrorList"); bad(s) == valid {
				t.Fatalf("query_online_status %q: ErrorList %s", u, s)
			}
			if s := per(rest.CmdAccountCheck, `{"CheckItem":[{"UserID":`+string(ju)+`}]}`, "ResultItem"); bad(s) == valid {
				t.Fatalf("account_check %q: %s", u, s)
			}
			if s := per(rest.CmdAccountDelete, `{"DeleteItem":[{"UserID":`+string(ju)+`}]}`, "ResultItem"); bad(s) == valid {
				t.Fatalf("account_delete %q: %s", u, s)
			}
			// The admin identifier: a bad one is 60004 before the UserSig is
			// looked at; a good one that is no admin is 60010.
			m := f.raw(http.MethodPost, rest.Prefix+rest.CmdAccountCheck, f.query(u), `{"CheckItem":[{"UserID":"x"}]}`)
			want := 60004
			if valid {
				want = 60010
			}
			wantCode(t, m, want)
		})
	}
	// The ErrorInfo of a refused identifier quotes at most MaxUserID bytes.
	q := f.query("administrator")
	q.Set("identifier", strings.Repeat("\x01", 100_000))
	m := f.raw(http.MethodPost, rest.Prefix+rest.CmdKick, q, `{}`)
	wantCode(t, m, 60004)
	if n := len(m["ErrorInfo"].(string)); n > 200 {
		t.Fatalf("ErrorInfo of %d bytes", n)
	}
}

// A REST kick of an administrator (or the deletion of its account) refuses
// every UserSig it minted before, for every command, with 70009; a fresh
// one works, and other admins are not touched.
func TestKickedAdminRefused(t *testing.T) {
	f := setup(t)
	f.importUsers("administrator", "alice")
	old := f.query("administrator") // minted at T
	f.b.now = f.b.now.Add(time.Second)
	wantCode(t, f.raw(http.MethodPost, rest.Prefix+rest.CmdKick, old, `{"UserID":"administrator"}`), 0)
	type req struct{ cmd, body string }
	reqs := []req{ // in this order: the delete last
		{rest.CmdKick, `{"UserID":"alice"}`},
		{rest.CmdQueryOnlineStatus, `{"To_Account":["alice"]}`},
		{rest.CmdAccountImport, `{"UserID":"mallory"}`},
		{rest.CmdMultiAccountImport, `{"Accounts":["mallory"]}`},
		{rest.CmdAccountCheck, `{"CheckItem":[{"UserID":"alice"}]}`},
		{rest.CmdAccountDelete, `{"DeleteItem":[{"UserID":"alice"}]}`},
	}
	check := reqs[4]
	for _, r := range reqs {
		cmd, body := r.cmd, r.body
		m := f.raw(http.MethodPost, rest.Prefix+cmd, old, body)
		wantCode(t, m, wire.CodeSigKicked)
		if !strings.Contains(m["ErrorInfo"].(string), "REST kick") {
			t.Fatalf("%s: ErrorInfo %v", cmd, m["ErrorInfo"])
		}
	}
	if got := strings.Join(f.b.kicked, ","); got != "administrator" {
		t.Fatalf("a refused admin acted: kicked %s", got)
	}
	if ok, _ := f.b.st.AccountExists(context.Background(), appID, "mallory"); ok {
		t.Fatal("a refused admin imported an account")
	}
	// The client reports it as a rejected UserSig (chatctl admin: exit 5).
	stale := *f.cli
	stale.Now = func() time.Time { return f.b.now.Add(-time.Second) }
	_, err := stale.Do(context.Background(), rest.CmdAccountCheck, rest.AccountCheckRequest{CheckItem: []rest.UserRef{{UserID: "alice"}}}, nil)
	var re *rest.Error
	if !errors.As(err, &re) || !re.SigRejected() {
		t.Fatalf("stale admin UserSig through the client: %v", err)
	}
	// Fresh UserSigs (minted at T+1, the kick's second) work; so does the
	// other admin's old one.
	for _, r := range reqs {
		wantCode(t, f.post(r.cmd, r.body), 0)
	}
	wantCode(t, f.raw(http.MethodPost, rest.Prefix+check.cmd, f.query("ops"), check.body), 0)
}

// The watermark read is a store call: when the store is down the admin is
// answered 70169 (retry), never let through.
func TestAdminWatermarkStoreDown(t *testing.T) {
	f := setup(t)
	f.b.st.Close()
	wantCode(t, f.post(rest.CmdAccountCheck, `{"CheckItem":[{"UserID":"alice"}]}`), 70169)
}

// Deleting an admin's account is a kick of it too: its earlier UserSigs
// lose their REST power.
func TestDeletedAdminRefused(t *testing.T) {
	f := setup(t)
	f.importUsers("ops")
	old := f.query("ops")
	f.b.now = f.b.now.Add(time.Second)
	wantCode(t, f.post(rest.CmdAccountDelete, `{"DeleteItem":[{"UserID":"ops"}]}`), 0)
	wantCode(t, f.raw(http.MethodPost, rest.Prefix+rest.CmdAccountCheck, old, `{"CheckItem":[{"UserID":"alice"}]}`), wire.CodeSigKicked)
}

// account_delete kicks before it deletes: when the kick fails nothing is
// deleted (the request can be retried whole).
func TestAccountDeleteKickFails(t *testing.T) {
	f := setup(t)
	f.importUsers("alice")
	f.b.kickErr = errors.New("bus down")
	wantCode(t, f.post(rest.CmdAccountDelete, `{"DeleteItem":[{"UserID":"alice"}]}`), 70500)
	if ok, _ := f.b.st.AccountExists(context.Background(), appID, "alice"); !ok {
		t.Fatal("deleted although its kick failed")
	}
	f.b.kickErr = nil
	m := f.post(rest.CmdAccountDelete, `{"DeleteItem":[{"UserID":"alice"}]}`)
	if b, _ := json.Marshal(m["ResultItem"]); string(b) != `[{"ResultCode":0,"ResultInfo":"","UserID":"alice"}]` {
		t.Fatalf("retry: %s", b)
	}
}

// Every query parameter: missing, empty, huge, non-numeric, negative, out
// of range, repeated. The identity parameters are read once and only once.
func TestQueryParameters(t *testing.T) {
	f := setup(t)
	body := `{"CheckItem":[{"UserID":"alice"}]}`
	with := func(edit func(q url.Values)) url.Values {
		q := f.query("administrator")
		edit(q)
		return q
	}
	huge := strings.Repeat("9", 100_000)
	cases := []struct {
		name string
		q    url.Values
		want int
	}{
		{"sdkappid empty", with(func(q url.Values) { q.Set("sdkappid", "") }), 60006},
		{"sdkappid zero", with(func(q url.Values) { q.Set("sdkappid", "0") }), 60006},
		{"sdkappid negative", with(func(q url.Values) { q.Set("sdkappid", "-1400000001") }), 60006},
		{"sdkappid plus sign", with(func(q url.Values) { q.Set("sdkappid", "+1400000001") }), 60006},
		{"sdkappid float", with(func(q url.Values) { q.Set("sdkappid", "1400000001.0") }), 60006},
		{"sdkappid hex", with(func(q url.Values) { q.Set("sdkappid", "0x5f5e1001") }), 60006},
		{"sdkappid spaces", with(func(q url.Values) { q.Set("sdkappid", " 1400000001") }), 60006},
		{"sdkappid 2^64", with(func(q url.Values) { q.Set("sdkappid", "18446744073709551616") }), 60006},
		{"sdkappid 2^64-1", with(func(q url.Values) { q.Set("sdkappid", "18446744073709551615") }), 60006},
		{"sdkappid 2^32+app", with(func(q url.Values) { q.Set("sdkappid", strconv.FormatUint(1<<32+appID, 10)) }), 60006},
		{"sdkappid huge", with(func(q url.Values) { q.Set("sdkappid", huge) }), 60006},
		{"sdkappid leading zeros", with(func(q url.Values) { q.Set("sdkappid", "0001400000001") }), 0},
		{"sdkappid repeated, same", with(func(q url.Values) { q.Add("sdkappid", strconv.Itoa(appID)) }), 60006},
		{"sdkappid repeated, other", with(func(q url.Values) { q.Add("sdkappid", "1") }), 60006},
		{"identifier empty", with(func(q url.Values) { q.Set("identifier", "") }), 60004},
		{"identifier huge", with(func(q url.Values) { q.Set("identifier", huge) }), 60004},
		{"identifier repeated", with(func(q url.Values) { q.Add("identifier", "ops") }), 60004},
		{"identifier repeated, same", with(func(q url.Values) { q.Add("identifier", "administrator") }), 60004},
		{"usersig empty", with(func(q url.Values) { q.Set("usersig", "") }), 60005},
		{"usersig huge", with(func(q url.Values) { q.Set("usersig", strings.Repeat("A", 500_000)) }), 70003},
		{"usersig repeated", with(func(q url.Values) { q.Add("usersig", f.sig("administrator")) }), 60005},
		{"usersig of the admin, wrong case identifier", with(func(q url.Values) { q.Set("identifier", "Administrator") }), 70013},
		// random and contenttype are accepted and ignored, whatever they
		// hold: they are neither stored nor logged.
		{"random missing", with(func(q url.Values) { q.Del("random") }), 0},
		{"random negative", with(func(q url.Values) { q.Set("random", "-1") }), 0},
		{"random huge", with(func(q url.Values) { q.Set("random", huge) }), 0},
		{"random repeated", with(func(q url.Values) { q.Add("random", "x") }), 0},
		{"contenttype other", with(func(q url.Values) { q.Set("contenttype", "xml") }), 0},
		{"unknown parameter", with(func(q url.Values) { q.Set("x", huge) }), 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantCode(t, f.raw(http.MethodPost, rest.Prefix+rest.CmdAccountCheck, c.q, body), c.want)
		})
	}
	// A query that does not parse ("%zz") loses the bad pair: the
	// parameter is missing.
	u := f.srv.URL + rest.Prefix + rest.CmdAccountCheck + "?" + f.query("administrator").Encode() + "&sdkappid=%zz"
	resp, err := http.Post(u, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `"ErrorCode":0`) && !strings.Contains(string(b), `"ErrorCode":60006`) {
		t.Fatalf("bad escape: %s", b)
	}
}

// Paths and methods: only POST to a command's literal path.
func TestPathsAndMethods(t *testing.T) {
	f := setup(t)
	q := f.query("administrator").Encode()
	for _, c := range []struct {
		method, path string
		want         int
	}{
		{http.MethodPost, "/v4/im_open_login_svc%2Fkick", 60002},
		{http.MethodPost, "/v4/im_open_login_svc/%6Bick", 60002},
		{http.MethodPost, "/v4/./im_open_login_svc/kick", 60002},
		{http.MethodPost, "/v4/x/../im_open_login_svc/kick", 60002},
		{http.MethodPost, "//v4/im_open_login_svc/kick", 60002},
		{http.MethodPost, "/V4/im_open_login_svc/kick", 60002},
		{http.MethodPost, "/v4/IM_OPEN_LOGIN_SVC/KICK", 60002},
		{http.MethodPost, "/v4/im_open_login_svc/kick/", 60002},
		{http.MethodPost, "/v4/" + strings.Repeat("a/", 20_000), 60002},
		{http.MethodHead, "/v4/im_open_login_svc/kick", 60002},
		{http.MethodOptions, "/v4/im_open_login_svc/kick", 60002},
		{http.MethodDelete, "/v4/im_open_login_svc/kick", 60002},
		{"PATCH", "/v4/im_open_login_svc/kick", 60002},
		{strings.Repeat("X", 5000), "/v4/im_open_login_svc/kick", 60002},
		{http.MethodPost, "/v4/im_open_login_svc/kick", 70107},
	} {
		req, err := http.NewRequest(c.method, f.srv.URL+"/", strings.NewReader(`{"UserID":"nobody"}`))
		if err != nil {
			t.Fatal(err)
		}
		req.URL.Opaque = c.path // sent as written, not cleaned or re-escaped
		req.URL.RawQuery = q
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if c.method == http.MethodHead {
			if resp.StatusCode != 200 || len(b) != 0 {
				t.Fatalf("HEAD: HTTP %d %q", resp.StatusCode, b)
			}
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s %.60s: %q", c.method, c.path, b)
		}
		wantCode(t, m, c.want)
		if n := len(m["ErrorInfo"].(string)); n > 200 {
			t.Fatalf("%.20s %.60s: ErrorInfo of %d bytes quotes the request", c.method, c.path, n)
		}
	}
}

// Headers: none is needed, none changes what the body means, and a
// declared length over the cap is refused before a byte is read.
func TestHeaders(t *testing.T) {
	f := setup(t)
	f.importUsers("alice")
	u := f.srv.URL + rest.Prefix + rest.CmdAccountCheck + "?" + f.query("administrator").Encode()
	body := `{"CheckItem":[{"UserID":"alice"}]}`
	do := func(h map[string]string, body io.Reader, length int64) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, u, body)
		req.ContentLength = length
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		b, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%v: %q", h, b)
		}
		return m
	}
	n := int64(len(body))
	wantCode(t, do(nil, strings.NewReader(body), n), 0)
	wantCode(t, do(map[string]string{"Content-Type": "text/plain"}, strings.NewReader(body), n), 0)
	wantCode(t, do(map[string]string{"Content-Type": strings.Repeat("x", 10_000)}, strings.NewReader(body), n), 0)
	// The body is never decompressed: gzip is not JSON.
	wantCode(t, do(map[string]string{"Content-Encoding": "gzip"}, strings.NewReader("\x1f\x8b\x08\x00"), 4), 60003)
	// Chunked (no length) over the cap: cut at MaxBody.
	wantCode(t, do(nil, io.MultiReader(strings.NewReader(`{"CheckItem":[],"x":"`), strings.NewReader(strings.Repeat("x", 2*rest.MaxBody))), -1), 60003)

	// A declared Content-Length over the cap is answered at once, though the
	// client never sends the body.
	conn, err := net.Dial("tcp", f.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	path := strings.TrimPrefix(u, f.srv.URL)
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", path, int64(1)<<40)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a 1 TiB Content-Length: %v", err)
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if !strings.Contains(string(b), `"ErrorCode":60003`) {
		t.Fatalf("1 TiB Content-Length: %s", b)
	}
}

// Bodies: non-UTF-8, deep nesting, huge arrays, wrong types, duplicate
// keys, null.
func TestHostileBodies(t *testing.T) {
	f := setup(t)
	f.importUsers("alice", "bob", "\uFFFD")
	deep := `{"UserID":` + strings.Repeat("[", 400_000) + strings.Repeat("]", 400_000) + `}`
	many := func(n int) string {
		var b strings.Builder
		b.WriteString(`{"To_Account":[`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`"u` + strconv.Itoa(i) + `"`)
		}
		b.WriteString(`]}`)
		return b.String()
	}
	for _, c := range []struct {
		name, cmd, body string
		want            int
	}{
		{"invalid UTF-8 in a UserID", rest.CmdKick, "{\"UserID\":\"\xff\"}", 60003},
		{"invalid UTF-8 outside strings", rest.CmdKick, "{\"UserID\":\"alice\"}\xff", 60003},
		{"invalid UTF-8 in a Nick", rest.CmdAccountImport, "{\"UserID\":\"carol\",\"Nick\":\"\xc0\xaf\"}", 60003},
		// U+FFFD is what a lone surrogate escape decodes to: no name
		// (TestLoneSurrogateUserIDs)
		{"escaped U+FFFD", rest.CmdKick, `{"UserID":"\ufffd"}`, 70402},
		{"NUL escaped", rest.CmdKick, `{"UserID":"\u0000"}`, 70402},
		{"deep nesting", rest.CmdKick, deep, 60003},
		{"deep nesting in an unknown field", rest.CmdKick, `{"UserID":"alice","x":` + strings.Repeat("[", 20_000) + strings.Repeat("]", 20_000) + `}`, 60003},
		{"100k To_Account", rest.CmdQueryOnlineStatus, many(100_000), 70206},
		{"501 To_Account", rest.CmdQueryOnlineStatus, many(501), 70206},
		{"500 To_Account", rest.CmdQueryOnlineStatus, many(500), 0},
		{"To_Account null", rest.CmdQueryOnlineStatus, `{"To_Account":null}`, 70206},
		{"To_Account an object", rest.CmdQueryOnlineStatus, `{"To_Account":{"a":1}}`, 70402},
		{"To_Account of numbers", rest.CmdQueryOnlineStatus, `{"To_Account":[1,2]}`, 70402},
		{"IsNeedDetail huge", rest.CmdQueryOnlineStatus, `{"IsNeedDetail":1e999,"To_Account":["alice"]}`, 70402},
		{"IsNeedDetail a string", rest.CmdQueryOnlineStatus, `{"IsNeedDetail":"1","To_Account":["alice"]}`, 70402},
		{"UserID null", rest.CmdKick, `{"UserID":null}`, 70402},
		{"UserID a number", rest.CmdKick, `{"UserID":1e400}`, 70402},
		{"UserID an object", rest.CmdKick, `{"UserID":{"x":"alice"}}`, 70402},
		{"DeleteItem of strings", rest.CmdAccountDelete, `{"DeleteItem":["alice"]}`, 70402},
		{"Nick over 500 bytes", rest.CmdAccountImport, `{"UserID":"carol","Nick":"` + strings.Repeat("n", 501) + `"}`, 70402},
		{"FaceUrl over 500 bytes", rest.CmdAccountImport, `{"UserID":"carol","FaceUrl":"` + strings.Repeat("n", 501) + `"}`, 70402},
		{"a number as the body", rest.CmdKick, `5`, 60003},
		{"two objects", rest.CmdKick, `{"UserID":"alice"}{"UserID":"bob"}`, 60003},
		{"BOM", rest.CmdKick, "\uFEFF{\"UserID\":\"alice\"}", 60003},
	} {
		t.Run(c.name, func(t *testing.T) { wantCode(t, f.post(c.cmd, c.body), c.want) })
	}
	// Duplicate keys: the last wins, as encoding/json (and the UserSig
	// decoder) reads them; UserID wins over Identifier whatever the order.
	f.b.kicked = nil
	wantCode(t, f.post(rest.CmdKick, `{"UserID":"nobody","UserID":"alice"}`), 0)
	wantCode(t, f.post(rest.CmdKick, `{"UserID":"bob","Identifier":"alice"}`), 0)
	wantCode(t, f.post(rest.CmdKick, `{"Identifier":"alice","UserID":"bob"}`), 0)
	if got := strings.Join(f.b.kicked, ","); got != "alice,bob,bob" {
		t.Fatalf("kicked %s, want alice,bob,bob", got)
	}
}

// UserSig values of the admin that the REST API must refuse before it acts.
func TestAdminUserSigFields(t *testing.T) {
	f := setup(t)
	body := `{"CheckItem":[{"UserID":"alice"}]}`
	now := f.b.now
	for _, c := range []struct {
		name   string
		expire int64
		at     time.Time
		want   int
	}{
		{"expire 0, its second", 0, now, 0},
		{"expire 0, a second old", 0, now.Add(-time.Second), 70001},
		{"negative expire", -1, now, 70001},
		{"time+expire overflows", 1<<63 - 1, now, 70001},
		{"minted far in the past, huge expire", 1<<62 + 1<<61, time.Unix(-1<<62, 0), 0},
		{"minted in the far past, expired", 3600, time.Unix(0, 0), 70001},
		{"minted in the future", 60, now.Add(24 * time.Hour), 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			q := f.query("administrator")
			q.Set("usersig", sig.Gen(sig.Params{SDKAppID: appID, Key: appKey, UserID: "administrator", Expire: c.expire}, c.at))
			wantCode(t, f.raw(http.MethodPost, rest.Prefix+rest.CmdAccountCheck, q, body), c.want)
		})
	}
}
