// Package session keeps chatctl's persisted login sessions: one JSON file,
// sessions.json, in the config dir the caller passes to Open.
//
// # File format
//
// The file is a JSON object with a schema version and named profiles:
//
//	{
//	  "version": 1,
//	  "profiles": {
//	    "default": {
//	      "endpoint": "ws://127.0.0.1:7468",
//	      "sdkappid": 1400000000,
//	      "user_id": "alice",
//	      "a2_key": "…",
//	      "tiny_id": "144115212345678901",
//	      "inst_id": 1,
//	      "platform": 7,
//	      "clock_offset_ms": -412,
//	      "clock_rtt_ms": 3,
//	      "clock_measured_at": "2026-11-25T17:50:00.123Z",
//	      "login_at": "2026-11-25T17:50:00.120Z",
//	      "usersig_expires_at": "2026-12-02T17:50:00Z",
//	      "hello_interval_s": 30,
//	      "checked_at": "2026-11-25T17:52:00.004Z",
//	      "state": "kicked",
//	      "kick_type": "multipleAccount",
//	      "state_at": "2026-11-25T17:55:12.5Z"
//	    }
//	  }
//	}
//
// Times are RFC 3339; a zero time is left out. "state" is one of ready,
// kicked, expired and logged_out; "kick_type" is the SDK's KICKED_OUT type
// that ended the session (multipleAccount, multipleDevice, REST_API_Kick or
// unknown with kicked; userSigExpired with expired), or "revoked" with
// kicked when the server refused the session without naming a kick, and
// "state_at" when the state was reached. "checked_at" is when a server last
// confirmed the session (whoami --check and the like). Profile names are 1 to 64 bytes of [A-Za-z0-9._-]. The UserSig is
// never stored; the A2Key is (the session cannot be resumed without it), so
// the file is a secret: 0600 in a 0700 dir. [Profile] never prints its A2Key
// through fmt or log/slog; use [Profile.Redacted] for any other display.
//
// A missing file is an empty store. A file that is not valid JSON, lacks a
// version, has an invalid profile name, a profile without a valid user_id
// (as login takes one; U+FFFD, which older versions took, passes) or
// sdkappid, or an unknown state, or has a version newer than
// [Version] is refused with an error that names it and wraps [ErrCorrupt]
// (and [ErrUnsupportedVersion] for a newer version); it is never rewritten
// until the user fixes or removes it. Fields this version does not know are
// ignored on read and dropped on the next write; incompatible changes bump
// the version.
//
// # Locking and writing
//
// Every access takes an flock(2) lock on sessions.json.lock, beside the data
// file (a symlink's target, so that every link to one file takes one lock;
// never in /tmp, never removed). [Store.Update] holds one exclusive
// lock across the whole read-modify-write, so concurrent chatctl processes
// never lose each other's changes; [Store.Get] and [Store.List] hold a shared
// lock. Waiting for that lock is bounded by Store.LockTimeout (default
// [DefaultLockTimeout]) and by the context; [Store.LockLogin]'s wait by the
// context, else two minutes. On timeout the error is a [*LockWaitError]
// (wrapping [ErrLockTimeout], and the context's error when that ended it)
// naming the lock file. The kernel drops the lock when its
// holder exits, so a crashed process never leaves the store locked. If the
// dir is read-only and has no lock file, reads go ahead unlocked (safe: the
// data file is only ever replaced by rename).
//
// A write goes to a temp file in the same dir (0600), is fsynced, renamed
// over sessions.json, and the dir is fsynced (best effort). A failed write
// leaves the old file as it was. An Update that changes nothing writes
// nothing.
package session
