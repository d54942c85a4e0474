// Package store is the durable state of chatctl serve: accounts, kick
// watermarks, revoked instances, the A2Key secret and the instance-id
// sequence. The embedded implementation (bbolt) is the default for one node;
// a Redis implementation slots in behind the same interface for several.
package store

import (
	"context"
	"errors"
	"time"
)

// Account is an imported user.
type Account struct {
	UserID  string    `json:"user_id"`
	Nick    string    `json:"nick,omitempty"`
	FaceURL string    `json:"face_url,omitempty"`
	Created time.Time `json:"created"`
}

// SecretSize is the size of the A2Key signing secret every store keeps.
const SecretSize = 32

// maxExact is the largest integer a float64 holds exactly: a JS number,
// a Redis sorted set's score.
const maxExact = 1<<53 - 1

// MaxInstID bounds the instance ids a store hands out: the SDK keeps them
// in a JS number.
const MaxInstID = maxExact

// ErrEmptyUser refuses an account without a UserID.
var ErrEmptyUser = errors.New("empty UserID")

// BadWatermark reports whether ms cannot be a kick watermark: not after
// the epoch, or past 2^53 ms, which Redis's float scores would round.
func BadWatermark(ms int64) bool { return ms <= 0 || ms > maxExact }

// ErrUnavailable wraps failures that may pass (a closed store, a canceled
// or timed-out context, a network store that is down); the REST API answers
// them with 70169 (retry later). Any other store error is answered 70500.
var ErrUnavailable = errors.New("store unavailable")

// RevokedError is Presence.Attach's refusal of an instance that is revoked
// (logged out or kicked) by the time it would be written: nothing is
// written and nobody kicked.
type RevokedError struct{ Reason string }

func (e *RevokedError) Error() string { return "instance revoked: " + e.Reason }

// A2Kicked reports whether an A2Key issued at unix ms issuedMs is refused
// by the kick watermark wm (unix ms): it was issued before the user's last
// REST kick. The one rule for an a2 re-login and the presence's attach and
// restore (their Lua says it again, held equal by presencetest).
func A2Kicked(wm, issuedMs int64) bool { return wm > issuedMs }

// SigKicked reports whether a UserSig minted at unix second sigTime
// (TLS.time) is refused by the kick watermark wm (KickWatermark, unix ms):
// it was minted in an earlier second than the user's last REST kick. The
// one rule for every use of a UserSig: wslogin and the REST admin's.
func SigKicked(wm, sigTime int64) bool { return wm > 0 && sigTime < wm/1000 }

// Store is everything that must survive a restart. Every method is safe for
// concurrent use. A write returns only once it is durable, with one
// exception: LoginAccount's import of a new account (see there).
type Store interface {
	// ImportAccount adds or updates an account; created is false when it
	// existed. On an update a non-empty Nick or FaceURL replaces the stored
	// one and an empty one keeps it (a login's auto-import changes nothing);
	// Created stays the first import's. An empty UserID is an error.
	ImportAccount(ctx context.Context, app uint64, a Account) (created bool, err error)
	// LoginAccount is a login's store work: it reads user's kick watermark
	// wm and, when admit(wm), imports the account if it does not exist
	// (Created at, no Nick or FaceURL): a login's auto-import. It
	// returns admit(wm). admit must not call the store.
	//
	// Durability: the import is visible to every read of the store when
	// LoginAccount returns, and a later ImportAccount or DeleteAccount of
	// the user is ordered after it, but the embedded store (bolt) commits
	// it to disk only within its flush interval (bolt.DefaultFlushEvery), with
	// the other logins' imports of that interval in one transaction, and at
	// Close. A crash before that loses only the fact that the user was
	// imported: nothing a login's reply says depends on the account
	// (A2Key, TinyID and the instance id do not), and the user's next login,
	// a2 re-login included, imports it again. The Redis store writes it
	// before it returns, as every other write.
	LoginAccount(ctx context.Context, app uint64, user string, at time.Time, admit func(wm int64) bool) (admitted bool, err error)
	// AccountExists reports whether user is imported.
	AccountExists(ctx context.Context, app uint64, user string) (bool, error)
	// DeleteAccount removes user; existed is false when there was none.
	DeleteAccount(ctx context.Context, app uint64, user string) (existed bool, err error)

	// KickWatermark is the unix time in milliseconds of the user's last REST
	// kick (0 if none). UserSigs minted in an earlier second and A2Keys issued
	// earlier are refused.
	KickWatermark(ctx context.Context, app uint64, user string) (int64, error)
	// SetKickWatermark records a REST kick at unix milliseconds ms. The
	// watermark never moves back (a smaller ms keeps the stored one), and it
	// outlives DeleteAccount.
	SetKickWatermark(ctx context.Context, app uint64, user string, ms int64) error

	// RevokeInstance refuses the instance's A2Key from now until `until`
	// (its A2Key's own expiry; after that it is refused anyway). reason is
	// why: a KICKED_OUT type ("multipleAccount", "multipleDevice",
	// "REST_API_Kick") or "logout". A second revocation
	// of the same instance extends the first (taking its reason) but never
	// shortens it; an until already past records nothing.
	//
	// The reason matters because an instance may be kicked while it has no
	// socket (a `chatctl login` process has exited, an SDK is reconnecting).
	// When it comes back with an a2 re-login, the gateway refuses it with the
	// neutral code 70002 and puts the reason in ErrorInfo, e.g.
	// "instance revoked: multipleAccount", so a client that attaches later
	// still reports the right KICKED_OUT type (the official SDK ignores
	// ErrorInfo on that reply).
	RevokeInstance(ctx context.Context, app uint64, instID uint64, until time.Time, reason string) error
	// Revoked returns why instID was revoked, and false when it was not or
	// the revocation has run out.
	Revoked(ctx context.Context, app uint64, instID uint64) (reason string, revoked bool, err error)

	// Secret returns the server's A2Key signing secret, created once.
	Secret(ctx context.Context) ([]byte, error)
	// NextInstID returns a non-zero instance id, unique across restarts and
	// below 2^53 (the SDK keeps it in a JS number). Ids may be sequential
	// (bolt's are): the A2Key's MAC, not the id, is what cannot be guessed.
	NextInstID(ctx context.Context) (uint64, error)

	// Close releases the store; methods called after it fail with an error
	// wrapping ErrUnavailable. Calling it twice is harmless.
	Close() error
}
