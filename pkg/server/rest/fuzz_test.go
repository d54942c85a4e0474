package rest_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"chatctl/pkg/rest"
)

// FuzzHandler: whatever the command and body, the answer is HTTP 200 with a
// well-formed envelope, FAIL exactly when ErrorCode is not 0.
func FuzzHandler(f *testing.F) {
	for _, s := range []string{
		`{"UserID":"alice"}`, `{"Identifier":"bob"}`, `{"To_Account":["alice","x"],"IsNeedDetail":1}`,
		`{"CheckItem":[{"UserID":"alice"},{"Identifier":""}]}`, `{"DeleteItem":[{"UserID":"nobody"}]}`,
		`{"AccountList":[{"UserID":"a","Nick":"n"}]}`, `{"Accounts":["a",""]}`, ``, `[]`, `{`, `{"UserID":5}`,
		`{"IsNeedDetail":"1","To_Account":null}`, "{\"UserID\":\"\xff\"}", `{"CheckItem":{}}`,
	} {
		for i := range 7 {
			f.Add(uint8(i), s)
		}
	}
	fx := setup(f)
	fx.importUsers("alice", "bob")
	cmds := []string{rest.CmdKick, rest.CmdQueryOnlineStatus, rest.CmdAccountImport,
		rest.CmdMultiAccountImport, rest.CmdAccountDelete, rest.CmdAccountCheck, "openim/nosuch"}
	q := fx.query("administrator").Encode()
	f.Fuzz(func(t *testing.T, cmd uint8, body string) {
		path := rest.Prefix + cmds[int(cmd)%len(cmds)]
		rec := httptest.NewRecorder()
		fx.h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path+"?"+q, strings.NewReader(body)))
		if rec.Code != http.StatusOK {
			t.Fatalf("HTTP %d", rec.Code)
		}
		var env struct {
			ActionStatus *string
			ErrorCode    *int
			ErrorInfo    *string
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil || env.ActionStatus == nil || env.ErrorCode == nil || env.ErrorInfo == nil {
			t.Fatalf("answer %q: %v", rec.Body, err)
		}
		if (*env.ActionStatus == "OK") != (*env.ErrorCode == 0) || (*env.ActionStatus != "OK" && *env.ActionStatus != "FAIL") {
			t.Fatalf("answer %q", rec.Body)
		}
	})
}
