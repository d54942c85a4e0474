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

// maxEchoCmd bounds the servcmd a reply echoes: the SDK's longest is 51
// bytes (million_group_open_http_svc.get_joined_group_list).
const maxEchoCmd = 64

// appendCmd appends servcmd as a JSON string when the SDK could have sent
// it: at most maxEchoCmd bytes of letters, digits, '_', '.' and '-'.
// Anything else is answered with "": a reply is matched by servcmd and seq,
// and no request has that servcmd, so echoing it serves nobody, and
// escaped as JSON a 12 KB one of '<' came back as a 72 KB reply, six bytes
// out for each byte in (docs/RELIABILITY.md, finding 29).
func appendCmd(b []byte, servcmd string) []byte {
	b = append(b, '"')
	b = append(b, EchoedServCmd(servcmd)...)
	return append(b, '"')
}

// EchoedServCmd is the servcmd a reply to a request with servcmd names:
// servcmd itself when the SDK could have sent it, else "" (appendCmd).
func EchoedServCmd(servcmd string) string {
	if len(servcmd) > maxEchoCmd {
		return ""
	}
	for i := 0; i < len(servcmd); i++ {
		switch c := servcmd[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '.', c == '-':
		default:
			return ""
		}
	}
	return servcmd
}

var okBody = []byte(`{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":""}`)

func failBody(code int, info string) []byte {
	b, _ := json.Marshal(wire.Fail(code, info))
	return b
}
