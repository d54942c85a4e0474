package server

import (
	"encoding/json"
	"strings"
	"testing"

	"chatctl/pkg/wire"
)

var fuzzSecret = []byte("0123456789abcdef0123456789abcdef")

// FuzzParseA2: parsing never panics, and whatever parses is exactly what
// encode produced (no other input carries a valid MAC).
func FuzzParseA2(f *testing.F) {
	good := a2Claims{App: 1400000001, TinyID: 144115000000000001, InstID: 7, IssuedMs: 1795626047000, Expires: 1795629647, User: "alice"}
	f.Add(good.encode(fuzzSecret))
	f.Add("")
	f.Add(".")
	f.Add("AQ.AA")
	f.Add(good.encode([]byte("another secret, another key....")))
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseA2(fuzzSecret, s)
		if err != nil {
			return
		}
		if c.InstID == 0 || c.User == "" {
			t.Fatalf("accepted empty claims %+v", c)
		}
		again, err := parseA2(fuzzSecret, c.encode(fuzzSecret))
		if err != nil || again != c {
			t.Fatalf("round trip of %+v: %+v, %v", c, again, err)
		}
	})
}

// FuzzSniffHead: never panics, and agrees with a full decode of any frame
// that decodes.
func FuzzSniffHead(f *testing.F) {
	f.Add([]byte(`{"head":{"servcmd":"heartbeat.alive","seq":17057998},"body":{}}`))
	f.Add([]byte(`{"body":{},"head":{"servcmd":"x","seq":"12"}}`))
	f.Add([]byte(`{"head":{"servcmd":"openim.sendmsg","seq":99},"body":{"Text":"xxxx`))
	f.Add([]byte(`not json`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		cmd, seq := sniffHead(b)
		var fr wire.Frame
		if json.Unmarshal(b, &fr) != nil {
			return
		}
		// Duplicate "head" keys: json keeps the last, sniffHead the first.
		var keys map[string]json.RawMessage
		if json.Unmarshal(b, &keys) != nil {
			return
		}
		if cmd != fr.Head.ServCmd || seq != fr.Head.Seq {
			if countHeads(b) > 1 {
				return
			}
			t.Fatalf("sniffHead(%q) = %q %d, decode = %q %d", b, cmd, seq, fr.Head.ServCmd, fr.Head.Seq)
		}
	})
}

func countHeads(b []byte) int {
	n := 0
	for i := 0; i+6 <= len(b); i++ {
		if strings.EqualFold(string(b[i:i+6]), `"head"`) {
			n++
		}
	}
	return n
}
