package cmd

import (
	"errors"

	"chatctl/pkg/client"
	"chatctl/pkg/rest"
	"chatctl/pkg/session"
	"chatctl/pkg/sig"
	"chatctl/pkg/wire"
)

// Error kinds: the stable, machine-readable `error.kind` of the JSON error
// document (docs/OUTPUT.md). Each has one exit code (kindCodes).
const (
	KindError           = "error"            // 1: anything else
	KindUsage           = "usage"            // 2: bad flag, argument or config value
	KindNotLoggedIn     = "not_logged_in"    // 3: no session in the profile
	KindLoggedOut       = "logged_out"       // 3: the session was logged out elsewhere
	KindKicked          = "kicked"           // 4: KICKED_OUT (error.kick_type says which)
	KindRevoked         = "revoked"          // 4: the server refused the session's A2Key
	KindUserSigExpired  = "usersig_expired"  // 5: KICKED_OUT userSigExpired, or an expired UserSig
	KindUserSigRejected = "usersig_rejected" // 5: bad signature, wrong user or app, locked
	KindUnreachable     = "unreachable"      // 6: no answer, or no chat server there
	KindServerRefused   = "server_refused"   // 1: the server answered with an error code
	KindTimeout         = "timeout"          // 1: watch --until gave up
	KindSessionFile     = "session_file"     // 1: the session file is corrupt, newer, locked, unreadable or would be too large
	KindConflict        = "conflict"         // 1: the profile holds another user, or another login won
	KindInterrupted     = "interrupted"      // 129, 130, 143: stopped by SIGHUP, SIGINT, SIGTERM (signals.go)
)

// kindCodes is the exit code of each kind; a kind not listed is 1, but
// for interrupted, whose code is its signal's.
var kindCodes = map[string]int{
	KindUsage:           ExitUsage,
	KindNotLoggedIn:     ExitNotLoggedIn,
	KindLoggedOut:       ExitNotLoggedIn,
	KindKicked:          ExitKicked,
	KindRevoked:         ExitKicked,
	KindUserSigExpired:  ExitSigRejected,
	KindUserSigRejected: ExitSigRejected,
	KindUnreachable:     ExitUnreachable,
}

// codeKinds is the kind of an ExitError that names none.
var codeKinds = map[int]string{
	ExitUsage:       KindUsage,
	ExitNotLoggedIn: KindNotLoggedIn,
	ExitKicked:      KindKicked,
	ExitSigRejected: KindUserSigRejected,
	ExitUnreachable: KindUnreachable,
}

// outcome is what an error means to a script: its exit code and kind, and
// what it says about the profile's session.
type outcome struct {
	Code        int
	Kind        string
	KickType    string        // KICKED_OUT type, or revokedType
	State       session.State // the session's end it stands for; "" when it says none
	TencentCode int           // the server's error code, when it gave one
	Tried       []string      // the URLs tried, for unreachable
}

// ended names the session's end o stands for: its state and, if any, its
// kick type ("kicked: multipleAccount").
func (o outcome) ended() string {
	if o.KickType == "" {
		return string(o.State)
	}
	return string(o.State) + ": " + o.KickType
}

// revokedType is the kick type saved when the server refuses a session's
// a2 re-login without naming a kick (its A2Key is from another server, or
// was refused for a reason this chatctl does not know).
const revokedType = "revoked"

// a2Error marks an error of an a2 re-login (Probe, LogoutSession, Watch):
// there any refusal with 70002 ends the session, as "revoked"; on a first
// login 70002 means an empty UserSig instead.
type a2Error struct{ error }

func (e a2Error) Unwrap() error { return e.error }

// a2 marks err as the result of an a2 re-login (nil stays nil).
func a2(err error) error {
	if err == nil {
		return nil
	}
	return a2Error{err}
}

// classify is the one place that maps an error to its exit code, kind and
// session state. An *ExitError's code (and kind, when it names one) wins
// over what the errors it wraps say; their kick type, Tencent code and
// hosts tried are kept.
func classify(err error) outcome {
	o := outcome{Code: ExitFailure, Kind: KindError}
	if err == nil {
		return outcome{Code: ExitOK}
	}
	var (
		ke  *client.KickedError
		se  *client.ServerError
		sge *sig.Error
		re  *rest.Error
		rue *rest.UnreachableError
		ue  *client.UnreachableError
		a2e a2Error
		ee0 *endedError
	)
	switch {
	case errors.As(err, &ee0):
		o.State, o.KickType = ee0.state, ee0.kick
		switch {
		case ee0.state == session.StateExpired:
			o.Kind = KindUserSigExpired
		case ee0.state == session.StateLoggedOut:
			o.Kind, o.KickType = KindLoggedOut, ""
		case isKickType(ee0.kick):
			o.Kind = KindKicked
		default:
			o.Kind = KindRevoked
		}
	case errors.As(err, &ke):
		o.Kind, o.KickType, o.State = KindKicked, ke.Type, session.StateKicked
		if ke.Type == client.KickedUserSigExpired {
			o.Kind, o.State = KindUserSigExpired, session.StateExpired
		}
	case errors.As(err, &se):
		o.TencentCode = se.Code
		o.Kind = KindServerRefused
		switch t := se.KickedType(); {
		case t == client.KickedUserSigExpired:
			o.Kind, o.KickType, o.State = KindUserSigExpired, t, session.StateExpired
		case t != "":
			o.Kind, o.KickType, o.State = KindKicked, t, session.StateKicked
		case se.RevokedReason() == "logout":
			o.Kind, o.State = KindLoggedOut, session.StateLoggedOut
		case se.RevokedReason() != "":
			o.Kind, o.KickType, o.State = KindRevoked, se.RevokedReason(), session.StateKicked
		case se.Code == wire.CodeA2Rejected && errors.As(err, &a2e):
			o.Kind, o.KickType, o.State = KindRevoked, revokedType, session.StateKicked
		case sigCode(se.Code):
			o.Kind = KindUserSigRejected
		}
	case errors.As(err, &sge):
		o.Kind, o.TencentCode = KindUserSigRejected, sge.Code
		if sge.Code == wire.CodeSigExpired {
			o.Kind = KindUserSigExpired
		}
	case errors.As(err, &re):
		o.Kind, o.TencentCode = KindServerRefused, re.Code
		if re.SigRejected() {
			o.Kind = KindUserSigRejected
		}
	case errors.As(err, &rue), errors.Is(err, client.ErrUnreachable), errors.Is(err, client.ErrHandshake):
		o.Kind = KindUnreachable
	case errors.Is(err, session.ErrInvalidName):
		o.Kind = KindUsage
	case errors.Is(err, session.ErrCorrupt), errors.Is(err, session.ErrLockTimeout),
		errors.Is(err, session.ErrTooLarge), errors.Is(err, session.ErrUnreadable):
		o.Kind = KindSessionFile
	}
	if errors.As(err, &ue) && len(ue.Tried) > 1 {
		o.Tried = ue.Tried
	}
	if code, ok := kindCodes[o.Kind]; ok {
		o.Code = code
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		switch {
		case ee.Kind != "":
			o.Kind = ee.Kind
		case kindCodes[o.Kind] != ee.Code && !(ee.Code == ExitFailure && kindCodes[o.Kind] == 0):
			o.Kind = codeKinds[ee.Code]
			if o.Kind == "" {
				o.Kind = KindError
			}
		}
		o.Code = ee.Code
		switch o.Kind {
		case KindKicked, KindRevoked, KindUserSigExpired, KindLoggedOut:
		default:
			// The run is told as another kind (another endpoint's refusal,
			// server_refused): the error it wraps does not end the
			// session, and its document has no kick_type.
			o.KickType, o.State = "", ""
		}
	}
	return o
}

// isKickType reports whether t is a KICKED_OUT type other than
// userSigExpired (which has its own kind), "unknown" (a KickType this
// version does not know) included, so that whoami reads a recorded kick
// as watch saw it. A revocation's reason (revokedType) is not.
func isKickType(t string) bool {
	switch t {
	case client.KickedMultipleAccount, client.KickedMultipleDevice, client.KickedRESTAPI, client.KickedUnknown:
		return true
	}
	return false
}

// sigCode reports whether a wslogin error code rejects the UserSig (or the
// user, app or account it names): exit 5.
func sigCode(code int) bool {
	return code >= 70001 && code <= 70020 || code == wire.CodeLocked || code == wire.CodeBlocklisted
}

// exitCode is classify's exit code.
func exitCode(err error) int { return classify(err).Code }
