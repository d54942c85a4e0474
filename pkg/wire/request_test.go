package wire

import (
	"encoding/json"
	"testing"
)

// The head and cs of a wshello as the real SDK 3.6.6 sent it
// (docs/PROTOCOL.md appendix A).
func TestNewRequestMatchesTheSDK(t *testing.T) {
	r := NewRequest(CmdHello, 17058011, 1400000001, 7, json.RawMessage(`{"is_web_uniapp":0}`))
	if r.Head.CS != 2608808264 {
		t.Errorf("cs = %d, want the SDK's 2608808264", r.Head.CS)
	}
	r.Head.A2, r.Head.TinyID, r.Head.StatusInstID, r.Head.ReqTime = "a2-alice-1", "144115000000000001", 1001, 1795626050
	got, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"head":{"ver":"v4","platform":7,"websdkappid":537048168,"websdkversion":"1.7.3","a2":"a2-alice-1","tinyid":"144115000000000001","status_instid":1001,"sdkappid":1400000001,"contenttype":"json","reqtime":1795626050,"sdkability":75689843,"sdkability_ext":"","cappid":0,"cs":2608808264,"servcmd":"im_open_status.wshello","seq":17058011},"body":{"is_web_uniapp":0}}`
	if string(got) != want {
		t.Errorf("request\n got %s\nwant %s", got, want)
	}
	for _, cmd := range []string{CmdHeartbeat, CmdLogin, CmdLogout} {
		if cs := NewRequest(cmd, 1, 1, 7, json.RawMessage(`{"x":1}`)).Head.CS; cs != 0 {
			t.Errorf("%s: cs = %d, want 0 (PROTOCOL.md 2.3)", cmd, cs)
		}
	}
}
