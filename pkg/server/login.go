package server

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"chatctl/pkg/server/store"
	"chatctl/pkg/sig"
	"chatctl/pkg/wire"
)

// storeFail answers a store error: 70169 on a timeout or a store that is
// down (store.ErrUnavailable), else 70500.
func (c *conn) storeFail(h *wire.Head, op string, err error) {
	c.log.Error("store failed", "op", op, "err", err)
	code := wire.CodeInternal
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, store.ErrUnavailable) {
		code = wire.CodeTimeout // 70169: the store is down or slow, try again
	}
	c.reply(h.ServCmd, h.Seq, failBody(code, "server store unavailable"))
}

// onAlive answers heartbeat.alive and wshello. Neither is authenticated;
// the only check is whether this socket's own session has expired, which is
// answered once with 70001 (userSigExpired, PROTOCOL.md 4.6).
func (c *conn) onAlive(h *wire.Head) {
	s := c.s
	expired, e := s.hub.expired(c, s.now())
	if e != nil {
		s.noteExpired(e.Instance)
	}
	if expired {
		c.log.Info("usersig expired", "servcmd", h.ServCmd)
		c.reply(h.ServCmd, h.Seq, failBody(wire.CodeSigExpired, "usersig expired"))
		return
	}
	c.reply(h.ServCmd, h.Seq, okBody)
}

// refuseLogin answers a wslogin the client got wrong (not a failure of
// the server's) with code and info, logs it through the limiter of
// unauthenticated failures (attrs after the usual ones), and records it
// in the page's feed (noteRefused); the reader charges it failedLoginCost
// (pace.go).
func (c *conn) refuseLogin(h *wire.Head, app uint64, user string, code int, reason, info string, attrs ...any) {
	c.s.unauthLog(c.log, slog.LevelInfo, "login refused",
		append([]any{"app", app, "user", user, "code", code, "reason", reason}, attrs...)...)
	c.s.noteRefused(app, user, code, reason)
	c.loginRefused = true
	c.reply(h.ServCmd, h.Seq, failBody(code, info))
}

func (c *conn) onLogin(f *wire.Frame) {
	c.loggingIn.Store(true)
	defer c.loggingIn.Store(false)
	h := &f.Head
	appID := h.SDKAppID
	if appID == 0 {
		appID = c.urlApp
	}
	if appID == 0 && h.UserSig == "" && h.A2 != "" {
		if cl, err := parseA2(c.s.secret, h.A2); err == nil {
			appID = cl.App
		}
	}
	app := c.s.apps[appID]
	if app == nil {
		c.refuseLogin(h, appID, h.Identifier, wire.CodeAppNotFound, "sdkappid not served here", "sdkappid "+strconv.FormatUint(appID, 10)+" is not served here")
		return
	}
	ctx := newStoreCtx(time.Now(), storeTimeout)
	defer ctx.end()
	if h.UserSig == "" && h.A2 != "" {
		c.loginA2(ctx, h, app)
		return
	}
	c.loginSig(ctx, h, app)
}

func (c *conn) platformOf(h *wire.Head) wire.Platform {
	if c.platform != 0 {
		return c.platform
	}
	if p := wire.Platform(h.Platform); p.Known() {
		return p
	}
	return wire.PlatformWeb
}

// loginSig is the first login: identifier + usersig.
func (c *conn) loginSig(ctx context.Context, h *wire.Head, app *AppConfig) {
	s := c.s
	now := s.now()
	user := h.Identifier
	// The one UserID rule first: an id the REST API could not name is
	// refused before it reaches the lockout table or a log line.
	if err := wire.ValidateUserID(user); err != nil {
		c.refuseLogin(h, app.SDKAppID, user, wire.CodeBadParam, "bad identifier", "identifier: "+err.Error())
		return
	}
	uk := userKey{app.SDKAppID, user}
	// The UserSig is checked even while the user is locked, and a valid
	// one logs in: a UserSig (an HMAC) cannot be guessed, so refusing
	// valid ones protected nothing and let anyone lock a named user out
	// with ten frames a minute (docs/RELIABILITY.md, finding 23). The
	// lock hides why a failing one failed.
	info, err := s.verifiers[app.SDKAppID].Verify(user, h.UserSig, now)
	if err != nil {
		if s.locks.locked(uk, now) {
			c.refuseLogin(h, app.SDKAppID, user, wire.CodeLocked, "too many failed logins: locked", "too many failed logins: locked for a minute")
			return
		}
		code, reason := wire.CodeSigMalformed, "usersig rejected"
		var se *sig.Error
		if errors.As(err, &se) {
			code, reason = se.Code, se.Reason
		}
		locked := s.locks.fail(uk, now)
		c.refuseLogin(h, app.SDKAppID, user, code, reason, reason, "locked", locked)
		return
	}
	// The watermark and the auto-import of a new account in one read; the
	// import is committed after the reply (store.Store.LoginAccount).
	admitted, err := s.store.LoginAccount(ctx, app.SDKAppID, user, now,
		func(wm int64) bool { return !store.SigKicked(wm, info.Time) })
	if err != nil {
		c.storeFail(h, "login account", err)
		return
	}
	if !admitted {
		c.refuseLogin(h, app.SDKAppID, user, wire.CodeSigKicked, "usersig older than REST kick", "usersig invalidated by a REST kick: mint a new one")
		return
	}
	s.locks.ok(uk)
	inst, err := s.store.NextInstID(ctx)
	if err != nil {
		c.storeFail(h, "instid", err)
		return
	}
	expires := info.End()
	cl := a2Claims{
		App:      app.SDKAppID,
		TinyID:   tinyID(s.secret, app.SDKAppID, user),
		InstID:   inst,
		IssuedMs: now.UnixMilli(),
		Expires:  expires,
		User:     user,
	}
	c.finishLogin(ctx, h, cl, cl.encode(s.secret), "usersig")
}

// loginA2 is the re-login after a reconnect: a2 + tinyid. Any refusal is
// 70002 (wire.CodeA2Rejected): the SDK does not react to it.
func (c *conn) loginA2(ctx context.Context, h *wire.Head, app *AppConfig) {
	s := c.s
	now := s.now()
	refuse := func(info string) {
		c.refuseLogin(h, app.SDKAppID, "", wire.CodeA2Rejected, info, info, "form", "a2")
	}
	cl, err := parseA2(s.secret, h.A2)
	// An A2Key of a UserID the rule refuses (minted before the rule) is
	// refused too: such a user could not be kicked, queried or deleted.
	if err != nil || cl.App != app.SDKAppID || wire.ValidateUserID(cl.User) != nil {
		refuse("a2 invalid")
		return
	}
	if h.TinyID != "" && h.TinyID != strconv.FormatUint(cl.TinyID, 10) {
		refuse("a2 invalid: tinyid mismatch")
		return
	}
	if now.Unix() > cl.Expires {
		// The UserSig ran out while the SDK was away: its next heartbeat
		// gets 70001, so the app sees KICKED_OUT userSigExpired.
		s.hub.expireNext(c)
		refuse("a2 expired")
		return
	}
	reason, revoked, err := s.revoked(ctx, instKey{cl.App, cl.InstID})
	if err != nil {
		c.storeFail(h, "revoked", err)
		return
	}
	if revoked {
		c.refuseRevoked(ctx, h, instKey{cl.App, cl.InstID}, reason)
		return
	}
	// An A2Key issued before the user's last REST kick is refused. An
	// admitted one imports its account if absent: a crash may have lost
	// the import of its UserSig login (store.Store.LoginAccount).
	admitted, err := s.store.LoginAccount(ctx, app.SDKAppID, cl.User, now,
		func(wm int64) bool { return !store.A2Kicked(wm, cl.IssuedMs) })
	if err != nil {
		c.storeFail(h, "login account", err)
		return
	}
	if !admitted {
		refuse("instance revoked: " + wire.KickTypeName(wire.KickRESTAPI))
		c.tellRESTKickLate(ctx, cl)
		return
	}
	c.finishLogin(ctx, h, cl, h.A2, "a2")
}

// revoked reads instance ik's revocation: the mark of one being committed
// (revokingReason), else the store.
func (s *Server) revoked(ctx context.Context, ik instKey) (reason string, revoked bool, err error) {
	if reason, ok := s.revokingReason(ik); ok {
		return reason, true, nil
	}
	return s.store.Revoked(ctx, ik.app, ik.inst)
}

// refuseRevoked refuses the a2 re-login of revoked instance ik and pushes
// the kick it missed, if reason is one and no socket got its push.
func (c *conn) refuseRevoked(ctx context.Context, h *wire.Head, ik instKey, reason string) {
	info := "instance revoked: " + reason
	c.refuseLogin(h, ik.app, "", wire.CodeA2Rejected, info, info, "form", "a2")
	c.pushMissed(ctx, ik, reason)
}

// tellRESTKickLate follows the refusal of an a2 re-login whose A2Key a
// REST kick's watermark refuses (Kick writes nothing else): the instance
// may have had no socket at the kick, or a dead one. It is revoked now,
// so that its next re-login takes the revoked branch of loginA2, and
// pushed the kick once: re-logins of one instance are serialized on this
// node and the revocation is checked again under that lock; AckKick
// after the revocation lets one node of several push.
func (c *conn) tellRESTKickLate(ctx context.Context, cl a2Claims) {
	s := c.s
	ik := instKey{cl.App, cl.InstID}
	reason := wire.KickTypeName(wire.KickRESTAPI)
	mu := s.instLock(cl.InstID)
	mu.Lock()
	defer mu.Unlock()
	if _, revoked, err := s.store.Revoked(ctx, cl.App, cl.InstID); err == nil && revoked {
		// Another re-login of it got here first, or it was revoked since.
		c.pushMissed(ctx, ik, reason)
		return
	}
	s.revokeOne(ctx, cl.instance(), reason)
	if already, err := s.presence.AckKick(ctx, cl.App, cl.InstID); err == nil && already {
		return
	}
	// The kick it missed, as pushMissed pushes one; but also when AckKick
	// failed (pushMissed then pushes nothing): this refusal must be told why.
	s.pushKick(ik, wire.KickRESTAPI, 0, c)
}

// finishLogin registers the instance, kicks whom the policy says, answers.
func (c *conn) finishLogin(ctx context.Context, h *wire.Head, cl a2Claims, a2 string, form string) {
	s := c.s
	now := s.now()
	in := cl.instance()
	in.Node, in.Platform = s.presence.Node(), c.platformOf(h)
	victims, replaced, others, kept, err := s.attach(ctx, c, &entry{Instance: in})
	var re *store.RevokedError
	if errors.As(err, &re) {
		// Revoked since loginA2's check (a logout, or a kick by another
		// login): refused as it would be now, with nobody kicked, where
		// kicking the login that kicked it left the user offline.
		c.refuseRevoked(ctx, h, instKey{in.App, in.InstID}, re.Reason)
		return
	}
	if err != nil {
		c.storeFail(h, "attach", err)
		return
	}
	if replaced != nil {
		// The socket's earlier instance is logged out, as by a wslogout.
		c.log.Info("logout", "app", replaced.App, "user", replaced.User, "inst", replaced.InstID, "by", "login")
		s.endLoggedOut(ctx, replaced.Instance, others)
	}
	// A REST kick after this login's watermark check: the attach saw its
	// watermark and returned the instance itself, not written to the
	// presence. It is kicked as the REST kick would have kicked it, its
	// push after the reply below (kickpush.go).
	restKicked := false
	if i := slices.IndexFunc(victims, func(v store.Victim) bool { return v.InstID == in.InstID }); i >= 0 {
		s.kick(ctx, victims[i:i+1], 0)
		victims, restKicked = slices.Delete(victims, i, i+1), true
	}
	s.kick(ctx, victims, in.InstID)
	if form == "a2" && !restKicked && c.revokedSinceCheck(ctx, h, in) {
		return
	}
	if kept != nil {
		// Kicked while being attached (two logins of the user at once,
		// in a cluster): answered OK, then pushed the kick, held until
		// the reply is taken, as on one node. A kick decided before this
		// login's presence write (an a2 re-login's instance) has had it
		// written back: taken out again.
		s.deliverKick(*kept)
		s.presenceRemove(ctx, in)
	}
	c.paceUser.Store(&userKey{in.App, in.User})
	c.log.Info("login", "app", in.App, "user", in.User, "inst", in.InstID,
		"platform", in.Platform.String(), "form", form, "kicked", len(victims))
	s.noteLogin(in, form)
	body, _ := json.Marshal(wire.LoginResponse{
		Envelope:      wire.OK(),
		A2Key:         a2,
		TinyID:        strconv.FormatUint(cl.TinyID, 10),
		InstID:        in.InstID,
		HelloInterval: int(s.hello / time.Second),
		TimeStamp:     now.Unix(),
	})
	c.reply(h.ServCmd, h.Seq, body)
	// Kick pushes that came meanwhile go after the reply, once the SDK has
	// taken it (kickpush.go).
	s.loginReplied(c, a2, form)
}

// revokedSinceCheck undoes the a2 re-login of in, if it is revoked now,
// and refuses it. The attach refuses one revoked before it
// (store.RevokedError); this is for a revocation written between the
// presence's write and the hub's, whose notice on the bus found no socket
// here yet. Once attached, either it is seen here, or it comes later and
// its notice finds this socket (TestA2ReloginDuringLogout).
func (c *conn) revokedSinceCheck(ctx context.Context, h *wire.Head, in store.Instance) bool {
	s := c.s
	ik := instKey{in.App, in.InstID}
	reason, revoked, err := s.revoked(ctx, ik)
	if err != nil || !revoked {
		return false // as before the attach: a store that fails now is no answer
	}
	holders := othersThan(s.hub.kick(in.App, in.User, in.InstID), c)
	s.presenceRemove(ctx, in)
	s.hub.closeIdle(holders)
	c.refuseRevoked(ctx, h, ik, reason)
	s.releasePushes(c, nil)
	return true
}

// onLogout answers wslogout. Type 0 (logout) ends this socket's instance, or
// the one of the head's a2 when the socket holds none (a logout re-sent
// after a reconnect), and revokes it. Type 1 acknowledges a kick: the
// instance is already gone; the socket stays open.
func (c *conn) onLogout(f *wire.Frame) {
	s := c.s
	h := &f.Head
	var req wire.LogoutRequest
	if len(f.Body) > 0 {
		json.Unmarshal(f.Body, &req) // a missing or odd body is a plain logout
	}
	if req.LogoutType == wire.LogoutKickAck {
		if cl, err := parseA2(s.secret, h.A2); err == nil {
			s.ackKick(c, instKey{cl.App, cl.InstID})
		} else {
			s.mu.Lock()
			s.kickAckedLocked(c, instKey{})
			s.mu.Unlock()
		}
		c.reply(h.ServCmd, h.Seq, okBody)
		return
	}
	// The instance this socket holds or, when it holds none (a logout
	// sent again after a reconnect), the one of the head's a2.
	var in store.Instance
	var k userKey
	cl, a2err := parseA2(s.secret, h.A2)
	if a2err == nil {
		k, in = userKey{cl.App, cl.User}, cl.instance()
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	e, others := s.hub.logout(c, k, in.InstID)
	if e != nil {
		in = e.Instance
	} else if in.InstID != 0 {
		// Held by no socket here: a logout sent again after a reconnect,
		// or an A2Key already logged out sent over and over (each was a
		// store write, a log line, a feed event and a bus message).
		if _, revoked, err := s.revoked(ctx, instKey{in.App, in.InstID}); err == nil && revoked {
			c.reply(h.ServCmd, h.Seq, okBody)
			return
		}
	}
	if in.InstID != 0 { // (others is empty when it is 0: no entry here)
		c.log.Info("logout", "app", in.App, "user", in.User, "inst", in.InstID)
		s.endLoggedOut(ctx, in, others)
	}
	c.reply(h.ServCmd, h.Seq, okBody)
}

// endLoggedOut ends instance in as logged out (a wslogout, or a login of
// another instance on the socket that held it). A failed revocation is
// answered OK all the same (the SDK forgets its A2Key whatever the
// answer); in a cluster retried when the store is back (repair.go, "Writes
// that failed"). Its other sockets (a `chatctl watch` of the profile that
// logged out) are closed once it is revoked: their a2 re-login then hears
// that it was logged out (70002 "instance revoked: logout"), where they
// stayed open holding nothing, told of no later kick. This node's (others)
// at once; other nodes' through the bus (deliverKick).
func (s *Server) endLoggedOut(ctx context.Context, in store.Instance, others []*conn) {
	s.revokeOne(ctx, in, "logout")
	s.presenceRemove(ctx, in)
	s.noteLogout(in)
	if len(others) > 0 {
		s.hub.closeIdle(others)
	}
	s.bus.Publish(Kick{App: in.App, User: in.User, InstID: in.InstID, Logout: true})
}

// pushMissed tells instance ik, kicked while it had no socket, why its a2
// re-login was refused (revoked for reason): after the 70002 (which the
// SDK ignores) it gets the stat_forceoffline push it missed, so the app
// sees KICKED_OUT with the right type. A kick is missed (the push may have
// gone to a socket that was already dead, or there was no socket) until
// the SDK acknowledges it: whichever node it re-logs in on pushes it once
// more and records it as acknowledged (presenceAck), so that an instance
// whose socket got the push is not pushed again (the SDK would report a
// second KICKED_OUT). A multipleAccount or multipleDevice kick is
// acknowledged by wslogout type 1; the SDK never re-logs in after a
// REST_API_Kick push it received. A reason that is no kick (a logout)
// pushes nothing. Like every kick push it is repeated until acknowledged
// (kickpush.go).
func (c *conn) pushMissed(ctx context.Context, ik instKey, reason string) {
	if t, ok := kickTypeOf(reason); ok && !c.s.presenceAck(ctx, ik) {
		c.s.pushKick(ik, t, 0, c)
	}
}
