package server

import (
	"encoding/json"
	"strings"
	"testing"
)

// appendCmd echoes a servcmd the SDK could have sent, as encoding/json
// would write it, and anything else as "": never more than maxEchoCmd
// bytes, whatever the request's.
func TestAppendCmd(t *testing.T) {
	long := strings.Repeat("a", maxEchoCmd)
	for _, tc := range []struct{ cmd, want string }{
		{"", ""},
		{"heartbeat.alive", "heartbeat.alive"},
		{"im_open_status.wshello", "im_open_status.wshello"},
		{"StatSvc.KickOther", "StatSvc.KickOther"},
		{"million_group_open_http_svc.get_joined_group_list", "million_group_open_http_svc.get_joined_group_list"},
		{"a-b_9.Z", "a-b_9.Z"},
		{long, long},
		{long + "a", ""},
		{strings.Repeat("<", 12000), ""},
		{"a b", ""}, {`q"uote`, ""}, {`back\slash`, ""}, {"<tag>&", ""}, {"tab\there", ""},
		{"nul\x00", ""}, {"é", ""}, {"\xff\xfe", ""}, {"del\x7f", ""}, {"~", ""},
	} {
		want, _ := json.Marshal(tc.want)
		if got := string(appendCmd([]byte("x"), tc.cmd)); got != "x"+string(want) {
			t.Errorf("appendCmd(%.40q) = %.60s, want x%s", tc.cmd, got, want)
		}
		var f struct {
			Head struct {
				ServCmd string `json:"servcmd"`
				Seq     uint64 `json:"seq"`
			} `json:"head"`
			Body json.RawMessage `json:"body"`
		}
		if err := json.Unmarshal(frame(tc.cmd, 7, okBody), &f); err != nil || f.Head.Seq != 7 || f.Head.ServCmd != tc.want || string(f.Body) != string(okBody) {
			t.Errorf("frame(%.40q): %+v %v", tc.cmd, f, err)
		}
	}
}
