package server

import (
	"encoding/json"
	"testing"
)

// appendCmd writes what encoding/json writes, whatever the servcmd.
func TestAppendCmdAsJSON(t *testing.T) {
	for _, cmd := range []string{"", "heartbeat.alive", "im_open_status.wshello", "a b", `q"uote`, `back\slash`,
		"<tag>&", "tab\there", "nul\x00", "é", "\xff\xfe", "del\x7f", "~"} {
		want, _ := json.Marshal(cmd)
		if got := string(appendCmd([]byte("x"), cmd)); got != "x"+string(want) {
			t.Errorf("appendCmd(%q) = %s, want x%s", cmd, got, want)
		}
		var f struct {
			Head struct {
				ServCmd string `json:"servcmd"`
				Seq     uint64 `json:"seq"`
			} `json:"head"`
			Body json.RawMessage `json:"body"`
		}
		if err := json.Unmarshal(frame(cmd, 7, okBody), &f); err != nil || f.Head.Seq != 7 || string(f.Body) != string(okBody) {
			t.Errorf("frame(%q): %+v %v", cmd, f, err)
		}
	}
}
