package benchcmp

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"chatctl/pkg/wire"

	"github.com/gorilla/websocket"
)

// SimpleLogins is the simple generator that `chatctl bench logins --close
// reset` is held to (its goal: read at least what this reads against the
// same server): per user a gorilla Dialer's upgrade, the wslogin frame,
// its reply, then a TCP reset, conc at a time. It returns the logins per
// second from the first dial to the last reply, as chatctl bench counts.
func SimpleLogins(ctx context.Context, endpoint string, sdkappid uint64, users, sigs []string, conc int) (float64, error) {
	u := endpoint + "/binfo?sdkappid=" + strconv.FormatUint(sdkappid, 10) + "&platform=7&instanceid=1&sdkversion=" + url.QueryEscape(wire.SDKVersion)
	body := json.RawMessage(`{"State":"Online","is_web_uniapp":0,"InstType":0,"CustomInfo":""}`)
	d := &websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	var next, failed atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(users) {
					return
				}
				if err := simpleLogin(ctx, d, u, sdkappid, body, users[i], sigs[i]); err != nil {
					failed.Add(1)
					once.Do(func() { first = err })
				}
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	if n := failed.Load(); n > 0 {
		return 0, fmt.Errorf("%d of %d simple logins failed, the first: %w", n, len(users), first)
	}
	return float64(len(users)) / wall.Seconds(), ctx.Err()
}

func simpleLogin(ctx context.Context, d *websocket.Dialer, u string, sdkappid uint64, body json.RawMessage, user, sig string) error {
	c, _, err := d.DialContext(ctx, u, nil)
	if err != nil {
		return err
	}
	defer func() {
		if tc, ok := c.NetConn().(*net.TCPConn); ok {
			tc.SetLinger(0) // the reset: no close frame, no FIN
		}
		c.Close()
	}()
	req := wire.NewRequest(wire.CmdLogin, 1, sdkappid, 7, body)
	req.Head.Identifier, req.Head.UserSig = user, sig
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := c.WriteJSON(req); err != nil {
		return err
	}
	var reply struct {
		Head struct {
			ServCmd string `json:"servcmd"`
		} `json:"head"`
		Body wire.Envelope `json:"body"`
	}
	for {
		if err := c.ReadJSON(&reply); err != nil {
			return err
		}
		if reply.Head.ServCmd != wire.CmdLogin {
			continue
		}
		if reply.Body.ErrorCode != 0 {
			return fmt.Errorf("login refused: %d %s", reply.Body.ErrorCode, reply.Body.ErrorInfo)
		}
		return nil
	}
}
