package server

import (
	"cmp"
	"context"
	"maps"
	"net/http"
	"slices"
	"time"

	"chatctl/pkg/server/store"
	"chatctl/pkg/server/ui"
	"chatctl/pkg/wire"
)

// feedKeep is how many lifecycle events the page's feed keeps in memory.
const feedKeep = 200

// noteLogin, noteLogout, noteKick, noteExpired and noteRefused put a
// lifecycle event in the feed. They never block (ui.Feed.Publish) and may
// be called with s.mu held.
func (s *Server) noteLogin(in store.Instance, form string) {
	s.feed.Publish(ui.Event{Kind: ui.KindLogin, App: in.App, User: in.User, Inst: in.InstID,
		Platform: in.Platform.String(), Form: form})
}

func (s *Server) noteLogout(in store.Instance) {
	s.feed.Publish(ui.Event{Kind: ui.KindLogout, App: in.App, User: in.User, Inst: in.InstID, Platform: platformName(in.Platform)})
}

func (s *Server) noteKick(v store.Victim, by uint64) {
	s.feed.Publish(ui.Event{Kind: ui.KindKick, App: v.App, User: v.User, Inst: v.InstID,
		Platform: platformName(v.Platform), KickType: wire.KickTypeName(v.KickType), By: by})
}

func (s *Server) noteExpired(in store.Instance) {
	s.feed.Publish(ui.Event{Kind: ui.KindExpired, App: in.App, User: in.User, Inst: in.InstID,
		Platform: platformName(in.Platform), Reason: wire.KickedUserSigExpired})
}

// noteRefused records a refused login: user is what the client sent (the
// feed bounds it), reason the refusal's words, never a credential.
func (s *Server) noteRefused(app uint64, user string, code int, reason string) {
	s.feed.Publish(ui.Event{Kind: ui.KindRefused, App: app, User: user, Code: code, Reason: reason})
}

// platformName is "" for an instance that has no platform (one read from
// an A2Key at logout), so that the feed leaves it out.
func platformName(p wire.Platform) string {
	if p == 0 {
		return ""
	}
	return p.String()
}

// uiBackend is the Server as the page's backend.
type uiBackend struct {
	s    *Server
	rest http.Handler
}

func (b *uiBackend) Feed() *ui.Feed { return b.s.feed }

// Source is r's limited source, or its IPv6 /48's (ui.Backend).
func (b *uiBackend) Source(r *http.Request) any {
	src := requestSource(r)
	if src == nil {
		return nil
	}
	if site := b.s.connLimit.siteOf(src); site != nil {
		return site
	}
	return src
}
func (b *uiBackend) REST() http.Handler { return b.rest }

// State takes a snapshot; the page's handler keeps one a second.
func (b *uiBackend) State() ui.State { return b.s.uiState() }

// EndInstance ends one instance of user held by this node, the page's
// per-instance action. The protocol has no push for a logout decided by
// the server, so the instance is kicked with REST_API_Kick, as a REST kick
// would, but alone: it leaves the user's list in the hub (its sockets
// hold it until deliverKick pushes to them), its A2Key is revoked, and no
// kick watermark is set, so the user's other instances and UserSigs stay
// valid.
func (b *uiBackend) EndInstance(ctx context.Context, app uint64, user string, inst uint64) bool {
	s := b.s
	e := s.hub.forget(userKey{app, user}, inst)
	if e == nil {
		return false
	}
	// Not the request's context: once the instance is out of the hub its
	// revocation must be written even if the browser goes away (on one
	// node a failed write is not retried later).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	s.kick(ctx, []store.Victim{{Instance: e.Instance, KickType: wire.KickRESTAPI}}, 0)
	s.presenceRemove(ctx, e.Instance)
	return true
}

// uiState is the page's state: the apps and their policy, and this node's
// instances (with several nodes, each node's page shows its own). It holds
// the hub's lock twice: to copy the user keys (the hub may be large), then
// to read the instances of the first ui.MaxUsers of them.
func (s *Server) uiState() ui.State {
	st := ui.State{HelloInterval: s.hello.String(), HeartbeatTimeout: s.hbTimeout.String(),
		Apps: []ui.App{}, Users: []ui.User{}}
	for _, a := range s.apps {
		st.Apps = append(st.Apps, ui.App{SDKAppID: a.SDKAppID, Admins: append([]string{}, a.Admins...),
			WebInstances: a.WebInstances, MultiDevice: a.MultiDevice})
	}
	slices.SortFunc(st.Apps, func(a, b ui.App) int { return cmp.Compare(a.SDKAppID, b.SDKAppID) })
	var keys []userKey
	s.hub.read(func(users map[userKey][]*entry) {
		keys = slices.Collect(maps.Keys(users))
	})
	slices.SortFunc(keys, func(a, b userKey) int {
		return cmp.Or(cmp.Compare(a.app, b.app), cmp.Compare(a.user, b.user))
	})
	st.UsersTotal = len(keys)
	now := s.now()
	s.hub.read(func(users map[userKey][]*entry) {
		for _, k := range keys[:min(len(keys), ui.MaxUsers)] {
			var insts []ui.Instance
			for _, o := range users[k] {
				if s.hub.gone(o, now) {
					continue // the next sweep forgets it
				}
				status := "online"
				if len(o.holders) == 0 {
					status = "detached"
				}
				insts = append(insts, ui.Instance{Inst: o.InstID, Platform: o.Platform.String(), Status: status,
					LoginAt: o.LoginAt.UTC(), Expires: time.Unix(o.Expires, 0).UTC()})
			}
			if len(insts) > 0 {
				st.Users = append(st.Users, ui.User{App: k.app, User: k.user, Instances: insts})
			}
		}
	})
	if len(keys) <= ui.MaxUsers {
		st.UsersTotal = len(st.Users) // every key looked at: exact
	}
	return st
}
