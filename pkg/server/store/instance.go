package store

import (
	"time"

	"chatctl/pkg/wire"
)

// Instance is one logged-in instance of a user, as every part of the
// server sees it: the node's hub, the presence of one node
// (server.MemoryPresence) or of several (the Redis store's entries), kicks
// and their victims. It lives here, in the package both pkg/server and its
// stores import, so that there is one shape and nothing converts it.
type Instance struct {
	App      uint64
	User     string
	InstID   uint64
	Node     string // the node holding its socket
	Platform wire.Platform
	LoginAt  time.Time // first (UserSig) login: when its A2Key was issued
	Expires  int64     // unix seconds: the UserSig's expiry, valid up to and including it
	// Detached is when its last socket closed (zero while one holds it):
	// the node keeps it for the heartbeat timeout so that a reconnect
	// finds it.
	Detached time.Time
}

// RevokeUntil is how long a revocation of the instance must last: past
// its A2Key's expiry the key is refused anyway.
func (in Instance) RevokeUntil() time.Time { return time.Unix(in.Expires+1, 0) }

// Policy is an app's multi-instance policy as a presence applies it
// (server.AppConfig).
type Policy struct {
	WebInstances int  // Web instances a user may have online (≥ 1)
	SingleDevice bool // MultiDevice "single": one platform at a time
	// DetachedFor: a detached instance older than this is gone for good
	// (the heartbeat timeout).
	DetachedFor time.Duration
}

// Victim is an instance a login displaced, or one a kick takes.
type Victim struct {
	Instance
	KickType int // wire.KickMultipleAccount, KickMultipleDevice or KickRESTAPI
}
