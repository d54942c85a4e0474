package rest_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"chatctl/pkg/server/rest"
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
}

// The REST API takes exactly the UserIDs wslogin takes, in every command
// and as the admin identifier; a refused one is 70402 (per user in the
// batch commands), the identifier's 60004.
func TestUserIDRuleEverywhere(t *testing.T) {
	f := setup(t)
	for _, u := range userIDCases {
		valid := wire.ValidateUserID(u) == nil
		if err := rest.CheckUserID(u); (err == nil) != valid {
			t.Fatalf("CheckUserID(%q) = %v, ValidateUserID disagrees", u, err)
		}
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
