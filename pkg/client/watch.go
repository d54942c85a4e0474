package client

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"chatctl/pkg/wire"
)

// errLost ends one socket's life inside Watch: reconnect.
var errLost = errors.New("socket lost")

// Watch attaches the saved Session s (a2 re-login on a new socket), emits
// SDK_READY, and keeps the session alive like the SDK 3.6.6 until ctx ends
// or the session ends:
//
//   - heartbeat.alive after HeartbeatIdle without inbound frames; no reply
//     within HeartbeatTimeout → reconnect;
//   - wshello every HelloInterval (the server's, or Config.HelloInterval);
//   - kick push multipleAccount/multipleDevice → wslogout type 1, wait for
//     its reply (at most RequestTimeout), then KICKED_OUT + SDK_NOT_READY;
//     REST_API_Kick → KICKED_OUT + SDK_NOT_READY at once; ErrorCode
//     70001/20002 on any request → KICKED_OUT userSigExpired; ErrorCode
//     1002 with KickType on a reply → as the push of that type;
//   - StatSvc.KickOther push → a2 re-login on the same socket;
//   - socket lost → NET_STATE_CHANGE connecting, reconnect with backoff and
//     jitter (BackoffMin..BackoffMax) forever (with EndpointCloud each
//     attempt tries the SDK's hosts from the one after the host last
//     tried, as the SDK moves on), NET_STATE_CHANGE
//     disconnected after a failed attempt, connected on success, then an a2
//     re-login whose answer is checked: a refusal ends Watch with
//     KICKED_OUT + SDK_NOT_READY when it names a kick (70001:
//     userSigExpired; 1002: its KickType; 70002 "instance revoked: <type>",
//     kicked while away: that type), else with SDK_NOT_READY carrying the
//     code and info (e.g. 70002 after a logout elsewhere). A refusal that
//     names no kick is followed by one heartbeat on that socket: 70001 to
//     it means the UserSig ran out while away (KICKED_OUT userSigExpired).
//
// emit is called from Watch's own goroutine (the caller's), strictly in
// order; it should not block for long (heartbeats wait meanwhile).
//
// Watch returns nil when ctx ends (it closes the socket, it does not log
// out), *KickedError after KICKED_OUT, *ServerError after a refused
// re-login, an error wrapping ErrUnreachable when the first dial or first
// re-login fails on the network.
func Watch(ctx context.Context, cfg Config, s Session, emit func(Event)) error {
	cfg = cfg.withDefaults()
	if cfg.InstanceID == "" {
		cfg.InstanceID = NewInstanceID() // one SDK instance across reconnects
	}
	w := &watcher{cfg: cfg, s: s, emit: emit, seq: newSeqGen(0), hosts: newHostCursor(cfg.Endpoint, cfg.SDKAppID)}
	err := w.run(ctx)
	if ctx.Err() != nil && !isEnd(err) {
		return nil
	}
	return err
}

// isEnd reports whether err is a session-ending outcome that must be
// returned even if ctx ended at the same time.
func isEnd(err error) bool {
	var ke *KickedError
	var se *ServerError
	return errors.As(err, &ke) || errors.As(err, &se)
}

type watcher struct {
	cfg   Config
	s     Session
	emit  func(Event)
	seq   *seqGen
	hosts *hostCursor // where the next dial starts, as the SDK's current URL
	state string      // last NET_STATE_CHANGE state emitted
}

func (w *watcher) event(e Event) {
	e.Time = w.cfg.Now()
	w.emit(e)
}

func (w *watcher) netState(s string) {
	if s == w.state {
		return
	}
	w.state = s
	w.event(Event{Name: EventNetStateChange, State: s})
}

func (w *watcher) dial(ctx context.Context) (*Conn, error) {
	return dial(ctx, w.cfg, w.seq, w.hosts)
}

func (w *watcher) run(ctx context.Context) error {
	c, err := w.dial(ctx)
	if err != nil {
		return err
	}
	res, err := c.Relogin(ctx, w.s)
	if err != nil {
		err = c.explainRefusal(ctx, err)
		c.Close()
		return w.loginFailed(err)
	}
	w.s.InstID = res.InstID
	w.event(Event{Name: EventSDKReady})
	for {
		err := w.serve(ctx, c, res)
		c.Close()
		if !errors.Is(err, errLost) || ctx.Err() != nil {
			return err
		}
		c, res, err = w.reconnect(ctx)
		if err != nil {
			return err
		}
	}
}

// kicked emits KICKED_OUT and SDK_NOT_READY like the SDK and returns the
// error that ends Watch.
func (w *watcher) kicked(typ string) error {
	w.event(Event{Name: EventKickedOut, Type: typ})
	w.event(Event{Name: EventSDKNotReady})
	return &KickedError{Type: typ}
}

// loginFailed handles a failed a2 re-login: the SDK ignores a refusal,
// Watch surfaces it.
func (w *watcher) loginFailed(err error) error {
	var se *ServerError
	if !errors.As(err, &se) {
		return err
	}
	if typ := se.KickedType(); typ != "" {
		return w.kicked(typ)
	}
	w.event(Event{Name: EventSDKNotReady, Code: se.Code, Info: se.Info})
	return se
}

// reconnect dials until a socket is up and the a2 re-login answered.
func (w *watcher) reconnect(ctx context.Context) (*Conn, LoginResult, error) {
	w.state = ""
	w.netState(StateConnecting)
	b := Backoff{Min: w.cfg.BackoffMin, Max: w.cfg.BackoffMax}
	for {
		c, err := w.dial(ctx)
		if err == nil {
			w.netState(StateConnected)
			res, err := c.Relogin(ctx, w.s)
			if err == nil {
				w.s.InstID = res.InstID
				return c, res, nil
			}
			err = c.explainRefusal(ctx, err)
			c.Close()
			var se *ServerError
			if errors.As(err, &se) {
				return nil, LoginResult{}, w.loginFailed(err)
			}
		}
		if ctx.Err() != nil {
			return nil, LoginResult{}, ctx.Err()
		}
		w.cfg.Logger.Debug("client: reconnect attempt failed", "err", err)
		w.netState(StateDisconnected)
		t := time.NewTimer(b.Next())
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, LoginResult{}, ctx.Err()
		}
	}
}

// pushKickType returns the KickType of a kick push, or 0.
func pushKickType(f wire.Frame) int {
	switch cmdTail(f.Head.ServCmd) {
	case "stat_forceoffline", "msg_push":
	default:
		return 0
	}
	var p wire.KickPush
	if json.Unmarshal(f.Body, &p) != nil {
		return 0
	}
	return p.KickType()
}

// cmdTail is the part of a servcmd after the first dot (the SDK picks its
// key table by it, PROTOCOL.md 2.2).
func cmdTail(cmd string) string {
	for i := 0; i < len(cmd); i++ {
		if cmd[i] == '.' {
			return cmd[i+1:]
		}
	}
	return ""
}

// serve runs one logged-in socket until it is lost (errLost), the session
// ends (KICKED_OUT...), or ctx ends.
func (w *watcher) serve(ctx context.Context, c *Conn, res LoginResult) error {
	cfg := w.cfg
	hello := cfg.HelloInterval
	if hello <= 0 {
		hello = res.HelloInterval
	}
	tick := time.NewTicker(cfg.Tick)
	defer tick.Stop()
	nextHello := time.Now().Add(hello)

	var (
		hb, hi, ack, rl                 *pendingCall
		hbDead, hiDead, ackDead, rlDead time.Time
		kickType                        int
	)
	ch := func(call *pendingCall) <-chan reply {
		if call == nil {
			return nil
		}
		return call.done
	}
	// onKick starts the wslogout type 1 acknowledgement, or ends at once.
	onKick := func(kt int) error {
		if kt == wire.KickRESTAPI {
			return w.kicked(KickedRESTAPI)
		}
		if ack != nil {
			return nil
		}
		kickType = kt
		call, err := c.start(wire.CmdLogout, wire.LogoutRequest{LogoutType: wire.LogoutKickAck}, reqOpts{})
		if err != nil { // socket already gone: the kick stands
			return w.kicked(wire.KickTypeName(kt))
		}
		ack, ackDead = call, time.Now().Add(cfg.RequestTimeout)
		return nil
	}
	// onErr handles a failed reply; a nil return means "only log it".
	onErr := func(err error) error {
		var se *ServerError
		if !errors.As(err, &se) {
			return nil // transport: Done fires next
		}
		switch {
		case se.SigExpired():
			return w.kicked(KickedUserSigExpired)
		case se.Code == wire.CodeKickedByReply && se.KickType != 0:
			return onKick(se.KickType)
		}
		cfg.Logger.Warn("client: request failed", "servcmd", se.Cmd, "code", se.Code)
		return nil
	}

	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.Done():
			if ack != nil { // kicked; the server dropped us before answering
				return w.kicked(wire.KickTypeName(kickType))
			}
			cfg.Logger.Debug("client: socket lost", "err", c.Err())
			return errLost
		case f := <-c.Pushes():
			if kt := pushKickType(f); kt != 0 {
				if err := onKick(kt); err != nil {
					return err
				}
				continue
			}
			if f.Head.ServCmd == wire.CmdKickOther && rl == nil {
				if call, err := c.start(wire.CmdLogin, loginBody, reqOpts{}); err == nil {
					rl, rlDead = call, time.Now().Add(cfg.LoginTimeout)
				}
				continue
			}
			cfg.Logger.Debug("client: push ignored", "servcmd", f.Head.ServCmd)
		case r := <-ch(hb):
			hb = nil
			if err := onErr(replyErr(wire.CmdHeartbeat, r)); err != nil {
				return err
			}
		case r := <-ch(hi):
			hi = nil
			if err := onErr(replyErr(wire.CmdHello, r)); err != nil {
				return err
			}
		case <-ch(ack):
			return w.kicked(wire.KickTypeName(kickType))
		case r := <-ch(rl):
			rl = nil
			err := replyErr(wire.CmdLogin, r)
			var se *ServerError
			if errors.As(err, &se) {
				return w.loginFailed(c.explainRefusal(ctx, err))
			}
			var lr loginReply
			if err == nil && json.Unmarshal(r.body, &lr) == nil && lr.InstID != 0 {
				w.s.InstID = lr.InstID
				c.mu.Lock()
				c.cred.instID = lr.InstID
				c.mu.Unlock()
			}
		case now := <-tick.C:
			if ack != nil && now.After(ackDead) {
				c.forget(ack)
				return w.kicked(wire.KickTypeName(kickType))
			}
			if hb != nil && now.After(hbDead) {
				cfg.Logger.Info("client: heartbeat unanswered, reconnecting")
				c.forget(hb)
				return errLost
			}
			if hi != nil && now.After(hiDead) {
				c.forget(hi)
				hi = nil
			}
			if rl != nil && now.After(rlDead) {
				c.forget(rl)
				rl = nil
			}
			if hb == nil && now.Sub(c.LastInbound()) >= cfg.HeartbeatIdle {
				if call, err := c.start(wire.CmdHeartbeat, struct{}{}, reqOpts{}); err == nil {
					hb, hbDead = call, now.Add(cfg.HeartbeatTimeout)
				}
			}
			if hello > 0 && !now.Before(nextHello) {
				if hi == nil && ack == nil {
					if call, err := c.start(wire.CmdHello, wire.HelloRequest{}, reqOpts{}); err == nil {
						hi, hiDead = call, now.Add(cfg.RequestTimeout)
					}
				}
				nextHello = now.Add(hello)
			}
		}
	}
}
