package client

import (
	"testing"
	"time"

	"chatctl/pkg/wire"
)

// FuzzInbound feeds arbitrary server frames through the reader's dispatch,
// the reply decoding and the push classification: nothing may panic, and a
// frame answers at most the one request it names.
func FuzzInbound(f *testing.F) {
	for _, s := range []string{
		`{"head":{"servcmd":"im_open_status.wslogin","seq":7},"body":` + okLogin + `}`,
		`{"head":{"servcmd":"im_open_status.wslogin","seq":"7"},"body":{"ErrorCode":70002,"ErrorInfo":"instance revoked: multipleAccount"}}`,
		`{"head":{"servcmd":"im_open_status.wslogin","seq":7},"body":{"TimeStamp":1795626047.25,"TinyId":144115000000000001}}`,
		`{"head":{"servcmd":"im_open_status.stat_forceoffline","seq":0},"body":{"EventArray":[{"Event":9,"C2cNotifyMsgArray":[{"KickoutMsgNotify":{"KickType":3}}]}]}}`,
		`{"head":{"servcmd":"StatSvc.KickOther","seq":0},"body":{}}`,
		`{"head":{"servcmd":"im_open_status.wslogin","seq":7},"body":null}`,
		`{"head":{"seq":-1}}`, `[]`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &Conn{cfg: Config{}.withDefaults(), pend: newPendingTable(), pushes: make(chan wire.Frame, 1)}
		call := &pendingCall{Cmd: wire.CmdLogin, Seq: 7, done: make(chan reply, 1)}
		if err := c.pend.add(call); err != nil {
			t.Fatal(err)
		}
		c.dispatch(data, time.Now())
		select {
		case r := <-call.done:
			if err := replyErr(call.Cmd, r); err == nil {
				_, _ = parseLogin(r, call, c.cfg.Now(), true)
			} else if se, ok := err.(*ServerError); ok {
				_, _ = se.KickedType(), se.RevokedReason()
			}
			select {
			case p := <-c.pushes:
				t.Fatalf("one frame was both a reply and a push: %+v", p.Head)
			default:
			}
		case p := <-c.pushes:
			_ = pushKickType(p)
		default:
		}
	})
}
