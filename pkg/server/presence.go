package server

import (
	"context"
	"time"

	"chatctl/pkg/server/store"
)

// Presence is the cluster-wide list of every user's online instances, for
// several nodes sharing one state (docs/MULTINODE.md): the multi-instance
// policy, REST kicks and query_online_status then see the instances of
// every node. Sockets stay per node. MemoryPresence keeps the list in one
// node's memory (Config.Presence nil); pkg/server/cluster implements it on
// Redis (presence hashes and node heartbeats, pkg/server/store/redis).
// pkg/server/presencetest holds both to one behaviour.
type Presence interface {
	// Node is this node's id, as written in its instances' entries.
	Node() string
	// Attach records in (a login, or a reconnect of the same instance on
	// any node) and applies p to in.User's other instances on every live
	// node, atomically: it returns those to kick, already removed. The same
	// InstID again replaces its entry and kicks nobody. An instance whose
	// A2Key was issued (LoginAt) before the user's kick watermark (a REST
	// kick that came after the login checked it) is not written, and kicks
	// nobody: it is returned as the one victim, wire.KickRESTAPI. In the
	// same step, so that a REST kick either lists the entry or the attach
	// sees its watermark.
	Attach(ctx context.Context, in store.Instance, p store.Policy) ([]store.Victim, error)
	// Restore rewrites this node's in (a resync after an outage), unless
	// another node holds it now (left alone, 0). In one atomic step: an
	// instance whose A2Key was issued (LoginAt) before the user's kick
	// watermark is removed and gets wire.KickRESTAPI; when its entry is
	// gone (dropped while this node was dead to the others), p is applied
	// against the user's instances present now: if in does not fit, nothing
	// is written and the KickType in gets is returned
	// (wire.KickMultipleAccount/KickMultipleDevice); else 0.
	Restore(ctx context.Context, in store.Instance, p store.Policy) (kickType int, err error)
	// Detach marks instance inst as detached since at, if this node still
	// holds it (a reconnect on another node may have taken it over).
	Detach(ctx context.Context, app uint64, user string, inst uint64, at time.Time) error
	// Remove deletes one instance (logged out, replaced, expired).
	Remove(ctx context.Context, app uint64, user string, inst uint64) error
	// RemoveOwn is Remove only if this node holds the entry (a removal
	// retried late must not delete another node's).
	RemoveOwn(ctx context.Context, app uint64, user string, inst uint64) error
	// Instances lists user's instances on live nodes, detached ones too.
	Instances(ctx context.Context, app uint64, user string) ([]store.Instance, error)
	// RemoveInstances deletes the instances insts of user (a REST kick:
	// those Instances listed); an entry written since stays.
	RemoveInstances(ctx context.Context, app uint64, user string, insts []uint64) error
	// AckKick records that the kicked instance inst was told of its kick
	// (its SDK acknowledged the push, or a node pushed it again after a
	// refused re-login), for as long as its revocation runs; it reports
	// whether that was recorded already (check and set in one step).
	AckKick(ctx context.Context, app uint64, inst uint64) (already bool, err error)
}
