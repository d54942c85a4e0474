package server

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"chatctl/pkg/wire"
)

// Building and sniffing frames: the replies' and pushes' minimal head, and
// the head of a frame that does not decode.

// sniffHead recovers servcmd and seq from a frame that does not decode
// (bad JSON, or cut at 12 KB): the SDK writes the head first.
func sniffHead(data []byte) (string, wire.Seq) {
	d := json.NewDecoder(bytes.NewReader(data))
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return "", 0
	}
	for d.More() {
		k, err := d.Token()
		if err != nil {
			return "", 0
		}
		if k, _ := k.(string); strings.EqualFold(k, "head") { // as encoding/json matches keys
			var h struct {
				ServCmd string   `json:"servcmd"`
				Seq     wire.Seq `json:"seq"`
			}
			if d.Decode(&h) != nil {
				return "", 0
			}
			return h.ServCmd, h.Seq
		}
		var skip json.RawMessage
		if d.Decode(&skip) != nil {
			return "", 0
		}
	}
	return "", 0
}

// frame builds a reply (or push) with the minimal head {servcmd, seq}.
func frame(servcmd string, seq wire.Seq, body []byte) []byte {
	b := make([]byte, 0, 42+len(servcmd)+len(body))
	b = append(b, `{"head":{"servcmd":`...)
	b = appendCmd(b, servcmd)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, uint64(seq), 10)
	b = append(b, `},"body":`...)
	b = append(b, body...)
	return append(b, '}')
}

// appendCmd appends servcmd as a JSON string. The SDK's servcmds are
// plain ASCII and go as they are; anything else (a client's echoed
// garbage) goes through encoding/json.
func appendCmd(b []byte, servcmd string) []byte {
	for i := 0; i < len(servcmd); i++ {
		if c := servcmd[i]; c < ' ' || c > '~' || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			cmd, _ := json.Marshal(servcmd)
			return append(b, cmd...)
		}
	}
	b = append(b, '"')
	b = append(b, servcmd...)
	return append(b, '"')
}

var okBody = []byte(`{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":""}`)

func failBody(code int, info string) []byte {
	b, _ := json.Marshal(wire.Fail(code, info))
	return b
}
