package fault

import (
	"encoding/json"
	"testing"
	"time"
	"unicode/utf8"

	"chatctl/pkg/server"
	"chatctl/pkg/server/servertest"
	"chatctl/pkg/wire"

	"github.com/gorilla/websocket"
)

// FuzzServerFrame sends any frame (binary on /binfo, text on /info) to a
// real server and checks the answer: every frame up to 12 KB gets exactly
// one reply (but a text one that is not UTF-8: close 1007, no reply), a
// JSON frame with head.servcmd and a body object; when the
// request decodes, the reply names its servcmd and seq; the server lives on
// (the socket stays usable). A socket serves at most 40 inputs, and is
// replaced after 10 s idle (the server closes silent sockets).
func FuzzServerFrame(f *testing.F) {
	for _, s := range []string{
		`{"head":{"servcmd":"heartbeat.alive","seq":1},"body":{}}`,
		`{"head":{"servcmd":"im_open_status.wshello","seq":2},"body":{}}`,
		`{"head":{"servcmd":"im_open_status.wslogin","seq":3,"sdkappid":1400000001,"identifier":"alice","usersig":"eJw"},"body":{}}`,
		`{"head":{"servcmd":"im_open_status.wslogin","seq":4,"a2":"AQ.AA","tinyid":"1","status_instid":7},"body":{}}`,
		`{"head":{"servcmd":"im_open_status.wslogout","seq":5},"body":{"type":0}}`,
		`{"head":{"servcmd":"im_open_status.wslogout","seq":6},"body":{"type":1}}`,
		`{"head":{"servcmd":"openim.pushlist","seq":7},"body":{}}`,
		`{"head":{"servcmd":"no.such","seq":"8"},"body":null}`,
		`{"head":{"seq":9}}`,
		`{"body":{},"head":{"servcmd":"heartbeat.alive","seq":10}}`,
		`{"head":{"servcmd":"heartbeat.alive","seq":18446744073709551615}}`,
		`{"head":{"servcmd":"heartbeat.alive","seq":-1}}`,
		`[]`, `null`, `"x"`, `{`, ``, "\xff\xfe",
	} {
		f.Add(false, []byte(s))
		f.Add(true, []byte(s))
	}
	// Unpaced: mutated wslogins are refused and cost 10 pacing tokens
	// each, so a paced socket made the fuzzer wait seconds per input (runs
	// stalled at 0 execs/s for up to a minute); pacing has its own tests.
	ts := servertest.Start(f, servertest.HelloInterval(time.Second), servertest.Unpaced())
	type held struct {
		ws   *websocket.Conn
		uses int
		last time.Time
	}
	socks := map[bool]*held{}
	defer func() {
		for _, h := range socks {
			h.ws.Close()
		}
	}()
	f.Fuzz(func(t *testing.T, text bool, data []byte) {
		if len(data) > wire.MaxFrameSize {
			return // TestOversizedFrame (pkg/server) covers those
		}
		path, mt := "/binfo", websocket.BinaryMessage
		if text {
			path, mt = "/info", websocket.TextMessage
		}
		h := socks[text]
		// A socket idle for 10 s may have been closed by the server's
		// heartbeat timeout meanwhile (the fuzzer pauses to minimize).
		if h == nil || h.uses >= 40 || time.Since(h.last) > 10*time.Second {
			if h != nil {
				h.ws.Close()
			}
			ws, _, err := websocket.DefaultDialer.Dial(ts.WSURL+path, nil)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			h = &held{ws: ws}
			socks[text] = h
		}
		h.uses++
		h.last = time.Now()
		ws := h.ws
		ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if err := ws.WriteMessage(mt, data); err != nil {
			t.Fatalf("write: %v", err)
		}
		ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, reply, err := ws.ReadMessage()
		if text && !utf8.Valid(data) {
			// Not text: the socket fails with 1007, unanswered.
			if !websocket.IsCloseError(err, websocket.CloseInvalidFramePayloadData) {
				t.Fatalf("text %q that is not UTF-8: %q, %v; want close 1007", data, reply, err)
			}
			ws.Close()
			delete(socks, text)
			return
		}
		if err != nil {
			t.Fatalf("no reply to %q: %v", data, err)
		}
		var r struct {
			Head struct {
				ServCmd *string   `json:"servcmd"`
				Seq     *wire.Seq `json:"seq"`
			} `json:"head"`
			Body map[string]json.RawMessage `json:"body"`
		}
		if err := json.Unmarshal(reply, &r); err != nil || r.Head.ServCmd == nil || r.Head.Seq == nil || r.Body == nil {
			t.Fatalf("reply to %q is not a frame: %q (%v)", data, reply, err)
		}
		if code, ok := r.Body["ErrorCode"]; ok {
			var n int
			if json.Unmarshal(code, &n) != nil {
				t.Fatalf("reply to %q: ErrorCode %s", data, code)
			}
		}
		var req wire.Frame
		if json.Unmarshal(data, &req) == nil && req.Head.ServCmd != "" {
			if *r.Head.ServCmd != server.EchoedServCmd(req.Head.ServCmd) || *r.Head.Seq != req.Head.Seq {
				t.Fatalf("reply to %q names %q %d", data, *r.Head.ServCmd, *r.Head.Seq)
			}
		}
	})
}
