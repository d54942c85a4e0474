package session

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"chatctl/pkg/config"
	"chatctl/pkg/wire"
)

const (
	// FileName is the session file in the config dir.
	FileName = "sessions.json"
	// LockName is the lock file beside it.
	LockName = FileName + ".lock"
	// Version is the schema version this package reads and writes.
	Version = 1
	// DefaultLockTimeout bounds the wait for the lock when Store.LockTimeout
	// is zero.
	DefaultLockTimeout = 10 * time.Second
	// MaxNameLen is the longest profile name, in bytes.
	MaxNameLen = 64

	maxFileSize = 8 << 20
	// maxClockOffsetMS bounds a profile's clock offset: 100 years.
	maxClockOffsetMS = 100 * 365 * 24 * 3600 * 1000
)

var (
	// ErrCorrupt is wrapped by every error about a session file this
	// version cannot read; the message names the file.
	ErrCorrupt = errors.New("session file is corrupt")
	// ErrUnsupportedVersion is wrapped (with ErrCorrupt) when the file has
	// a newer schema version than Version.
	ErrUnsupportedVersion = errors.New("session file has an unsupported version")
	// ErrLockTimeout is wrapped when a lock was not obtained in time (a
	// *LockWaitError, which names the file).
	ErrLockTimeout = errors.New("timed out waiting for a lock")
	// ErrUnreadable is wrapped when the file is there but cannot be read
	// (a symlink loop, no permission), or its lock file cannot be made or
	// taken (its dir is not there or not writable).
	ErrUnreadable = errors.New("session file cannot be read")
	// ErrTooLarge is wrapped when a change would make the file larger than
	// this version reads: it is refused, and the file left as it was.
	ErrTooLarge = errors.New("session file would be too large")
	// ErrInvalidName is wrapped when a profile name is not valid.
	ErrInvalidName = errors.New("invalid profile name")
)

// State is the last known state of a profile's session.
type State string

// The states of a session.
const (
	StateReady     State = "ready"      // logged in (SDK_READY)
	StateKicked    State = "kicked"     // KICKED_OUT; see Profile.KickType
	StateExpired   State = "expired"    // KICKED_OUT userSigExpired
	StateLoggedOut State = "logged_out" // logged out on the server
)

func (s State) valid() bool {
	switch s {
	case StateReady, StateKicked, StateExpired, StateLoggedOut:
		return true
	}
	return false
}

// Profile is one named session. Its zero times are omitted from the file.
//
// fmt (every verb) and log/slog print it with the A2Key redacted;
// encoding/json does not (the file must hold it): marshal Redacted() for
// display.
type Profile struct {
	Endpoint string `json:"endpoint"`
	SDKAppID uint64 `json:"sdkappid"`
	UserID   string `json:"user_id"`
	A2Key    string `json:"a2_key,omitempty"` // secret
	TinyID   string `json:"tiny_id"`          // a string: values exceed 2^53
	InstID   uint64 `json:"inst_id"`
	Platform int    `json:"platform"`

	// Server clock: server time = local time + ClockOffsetMS, measured
	// with a round trip of ClockRTTMS at ClockMeasuredAt.
	ClockOffsetMS   int64     `json:"clock_offset_ms"`
	ClockRTTMS      int64     `json:"clock_rtt_ms"`
	ClockMeasuredAt time.Time `json:"clock_measured_at,omitzero"`

	LoginAt          time.Time `json:"login_at,omitzero"`
	SigExpiresAt     time.Time `json:"usersig_expires_at,omitzero"` // decoded from the UserSig
	HelloIntervalSec int       `json:"hello_interval_s"`

	State    State     `json:"state"`
	KickType string    `json:"kick_type,omitempty"` // KICKED_OUT type, or "revoked", when State is kicked
	StateAt  time.Time `json:"state_at,omitzero"`
	// CheckedAt is when the server last confirmed the session (the login,
	// or a later a2 re-login: whoami --check, server-time, status --check,
	// watch). Past it, a ready State is only what was last known.
	CheckedAt time.Time `json:"checked_at,omitzero"`
}

// Redacted returns a copy of p without its A2Key, for display.
func (p Profile) Redacted() Profile {
	p.A2Key = ""
	return p
}

// LoggedIn says whether the last known state is ready.
func (p Profile) LoggedIn() bool { return p.State == StateReady }

// SameSession reports whether p and q hold the same login: a command that
// read p and learnt something of its session (it ended, it was confirmed)
// saves it only if the profile still holds that session. Instance IDs
// alone do not tell: they are per server, and a server started on a fresh
// data dir hands out 1 again.
func (p Profile) SameSession(q Profile) bool {
	return p.A2Key == q.A2Key && p.InstID == q.InstID && p.UserID == q.UserID &&
		p.SDKAppID == q.SDKAppID && p.Endpoint == q.Endpoint
}

// redactedProfile has Profile's fields and none of its methods.
type redactedProfile Profile

const redactedMark = "<redacted>"

func (p Profile) display() redactedProfile {
	if p.A2Key != "" {
		p.A2Key = redactedMark
	}
	return redactedProfile(p)
}

// Format prints p with any verb and flags, the A2Key replaced by a mark.
func (p Profile) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, fmt.FormatString(f, verb), p.display())
}

// String is p as %v prints it, without the A2Key.
func (p Profile) String() string { return fmt.Sprintf("%v", p.display()) }

// LogValue keeps the A2Key out of log/slog output.
func (p Profile) LogValue() slog.Value { return slog.AnyValue(p.display()) }

// ServerNow is the server's time at localNow, by p's saved clock offset.
func ServerNow(p Profile, localNow time.Time) time.Time {
	return localNow.Add(time.Duration(p.ClockOffsetMS) * time.Millisecond)
}

// File is the content of the session file.
type File struct {
	Version  int                `json:"version"`
	Profiles map[string]Profile `json:"profiles"`
}

// LogValue keeps the A2Keys out of log/slog output.
func (f File) LogValue() slog.Value {
	ps := make(map[string]redactedProfile, len(f.Profiles))
	for name, p := range f.Profiles {
		ps[name] = p.display()
	}
	return slog.AnyValue(struct {
		Version  int                        `json:"version"`
		Profiles map[string]redactedProfile `json:"profiles"`
	}{f.Version, ps})
}

// ValidateName checks a profile name: 1 to MaxNameLen bytes of
// [A-Za-z0-9._-]. Its error wraps ErrInvalidName.
func ValidateName(name string) error {
	ok := name != "" && len(name) <= MaxNameLen
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '.' || c == '_' || c == '-'
	}
	if !ok {
		return fmt.Errorf("%w %q: use 1 to %d letters, digits, '.', '_' or '-'", ErrInvalidName, name, MaxNameLen)
	}
	return nil
}

// Store is the session file in one dir. Its methods are safe for concurrent
// use by goroutines and processes.
type Store struct {
	dir  string
	path string
	// LockTimeout bounds each wait for the lock; zero means
	// DefaultLockTimeout. The context can end the wait sooner.
	LockTimeout time.Duration
}

// Open returns the store in dir (the config dir). It does no I/O; the dir
// is created (0700) by the first Update or Put. Reads never create it.
func Open(dir string) *Store {
	return &Store{dir: dir, path: filepath.Join(dir, FileName)}
}

// Path is the session file's path.
func (s *Store) Path() string { return s.path }

func (s *Store) timeout() time.Duration {
	if s.LockTimeout > 0 {
		return s.LockTimeout
	}
	return DefaultLockTimeout
}

// Get returns the named profile; ok is false when there is none.
func (s *Store) Get(ctx context.Context, profile string) (p Profile, ok bool, err error) {
	if err := ValidateName(profile); err != nil {
		return Profile{}, false, err
	}
	f, err := s.read(ctx)
	if err != nil {
		return Profile{}, false, err
	}
	p, ok = f.Profiles[profile]
	return p, ok, nil
}

// List returns every profile by name (an empty, non-nil map when there are
// none).
func (s *Store) List(ctx context.Context) (map[string]Profile, error) {
	f, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	return f.Profiles, nil
}

// Put saves p as the named profile, replacing any earlier one.
func (s *Store) Put(ctx context.Context, profile string, p Profile) error {
	if err := ValidateName(profile); err != nil {
		return err
	}
	return s.Update(ctx, func(f *File) error {
		f.Profiles[profile] = p
		return nil
	})
}

// Delete removes the named profile; existed says whether there was one.
func (s *Store) Delete(ctx context.Context, profile string) (existed bool, err error) {
	if err := ValidateName(profile); err != nil {
		return false, err
	}
	if _, err := os.Stat(s.dir); errors.Is(err, os.ErrNotExist) {
		return false, ctx.Err() // nothing to delete; do not create the dir
	}
	err = s.Update(ctx, func(f *File) error {
		_, existed = f.Profiles[profile]
		delete(f.Profiles, profile)
		return nil
	})
	return existed && err == nil, err
}

// Update is the locked read-modify-write. It creates the dir (0700) and the
// lock file if needed, then, under the exclusive lock, reads the file (a
// missing file is empty; f.Profiles is never nil), calls fn, and writes the
// result if it changed. If fn returns an error, or the file cannot be read,
// or a profile name or state is invalid, nothing is written and the error is
// returned. fn runs with the lock held: keep it quick and do no network I/O
// in it, since other processes give up after their LockTimeout.
func (s *Store) Update(ctx context.Context, fn func(f *File) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("cannot create the config dir for %s: %w", s.path, err)
	}
	unlock, file, err := s.lock(ctx, true)
	if err != nil {
		return err
	}
	defer unlock()

	f, err := s.load(file)
	if err != nil {
		return err
	}
	before, err := encode(f)
	if err != nil {
		return err
	}
	if err := fn(f); err != nil {
		return err
	}
	if f.Profiles == nil {
		f.Profiles = map[string]Profile{}
	}
	f.Version = Version
	if err := checkProfiles(f); err != nil {
		return err
	}
	after, err := encode(f)
	if err != nil {
		return err
	}
	if bytes.Equal(before, after) {
		return nil
	}
	if len(after) > maxFileSize {
		// Written, it would be refused by every later read as corrupt.
		return fmt.Errorf("cannot save %s (left unchanged): %w: %d bytes, more than the %d bytes it may hold; remove profiles with `chatctl logout`",
			s.path, ErrTooLarge, len(after), maxFileSize)
	}
	// Under the exclusive lock: WriteLockedFile also deletes the temp files
	// of writers killed before their rename (they may hold A2Keys).
	if err := config.WriteLockedFile(file, after); err != nil {
		return fmt.Errorf("cannot save %s (left unchanged): %w", s.path, err)
	}
	return nil
}

// read loads the file under a shared lock.
func (s *Store) read(ctx context.Context) (*File, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(s.dir); errors.Is(err, os.ErrNotExist) {
		return &File{Version: Version, Profiles: map[string]Profile{}}, nil
	}
	unlock, file, err := s.lock(ctx, false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return s.load(file)
}

func encode(f *File) ([]byte, error) {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// load reads and checks the file; the caller holds the lock.
func (s *Store) load(file string) (*File, error) {
	// config.ReadRegular: a FIFO put in the file's place would block the
	// open until some writer came, and the lock's bound with it.
	b, err := config.ReadRegular(file, maxFileSize)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return &File{Version: Version, Profiles: map[string]Profile{}}, nil
	case errors.Is(err, config.ErrNotRegular):
		return nil, &corruptError{path: s.path, why: "is not a regular file"}
	case errors.Is(err, config.ErrTooLarge):
		return nil, &corruptError{path: s.path, why: fmt.Sprintf("is corrupt (larger than %d bytes)", maxFileSize)}
	case err != nil:
		// A symlink loop, no permission: the file is there but unusable,
		// which a script must tell from other failures as it tells a
		// corrupt one.
		return nil, fmt.Errorf("cannot read %s: %w (%w)", s.path, err, ErrUnreadable)
	}
	return decode(s.path, b)
}

// corruptError names the file and why it cannot be read.
type corruptError struct {
	path, why string
	newer     bool
}

func (e *corruptError) Error() string {
	return fmt.Sprintf("session file %s %s; it was left unchanged: fix or remove it", e.path, e.why)
}

func (e *corruptError) Is(target error) bool {
	return target == ErrCorrupt || e.newer && target == ErrUnsupportedVersion
}

func decode(path string, b []byte) (*File, error) {
	bad := func(format string, a ...any) error {
		return &corruptError{path: path, why: fmt.Sprintf(format, a...)}
	}
	if len(b) > maxFileSize {
		return nil, bad("is corrupt (larger than %d bytes)", maxFileSize)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, bad("is corrupt (empty)")
	}
	if f, ok := decodeFast(b); ok && f.Version >= 1 && f.Version <= Version {
		return checkNames(f, bad)
	}
	var head struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, bad("is corrupt (%s)", jsonProblem(err))
	}
	switch {
	case head.Version == nil:
		return nil, bad("is corrupt (no version)")
	case *head.Version > Version:
		return nil, &corruptError{path: path, newer: true,
			why: fmt.Sprintf("has version %d but this chatctl reads version %d (upgrade chatctl)", *head.Version, Version)}
	case *head.Version < 1:
		return nil, bad("is corrupt (version %d)", *head.Version)
	}
	var f File
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, bad("is corrupt (%s)", jsonProblem(err))
	}
	return checkNames(&f, bad)
}

// jsonProblem says in words what encoding/json found wrong with a file,
// without Go's type names.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("not valid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		want := "a " + typ.Type.Kind().String()
		switch typ.Type.Kind() {
		case reflect.Struct, reflect.Map:
			want = "an object"
		case reflect.Int, reflect.Int64, reflect.Uint64, reflect.Uint, reflect.Int32:
			want = "a whole number"
		case reflect.Slice:
			want = "an array"
		}
		if typ.Field == "" {
			return fmt.Sprintf("the file holds %s, not %s", article(typ.Value), want)
		}
		return fmt.Sprintf("%q is %s, not %s", typ.Field, article(typ.Value), want)
	}
	return "not a session file"
}

// article puts "a" or "an" before a JSON value's kind ("array", "string").
func article(kind string) string {
	if kind != "" && strings.ContainsRune("aeiou", rune(kind[0])) {
		return "an " + kind
	}
	return "a " + kind
}

// checkNames gives f an empty Profiles map when it has none and refuses
// invalid profile names.
func checkNames(f *File, bad func(format string, a ...any) error) (*File, error) {
	if f.Profiles == nil {
		f.Profiles = map[string]Profile{}
	}
	if err := checkProfiles(f); err != nil {
		return nil, bad("is corrupt (%v)", err)
	}
	return f, nil
}

// checkProfiles is the one rule of a file's profiles, read (decode) or
// about to be written (Update): valid names, a user and an app (login
// writes both), and known states. A state read from the file but unknown
// used to pass as "not logged in" (exit 3); a profile without its user
// made whoami print an empty line with exit 0, and a hand-written user
// with a control character wrote it to the terminal.
func checkProfiles(f *File) error {
	for name, p := range f.Profiles {
		if err := ValidateName(name); err != nil {
			return err
		}
		// A user ID with U+FFFD passed the rule before it refused it: a
		// profile saved with one stays readable (the server now refuses
		// its session), where it failed every command over one profile.
		if err := wire.ValidateUserID(p.UserID); err != nil && !errors.Is(err, wire.ErrReplacementChar) {
			return fmt.Errorf("profile %q: user_id: %v", name, err)
		}
		if p.SDKAppID == 0 {
			return fmt.Errorf("profile %q: no sdkappid", name)
		}
		if p.State != "" && !p.State.valid() {
			return fmt.Errorf("profile %q: unknown state %q (want ready, kicked, expired or logged_out)", name, p.State)
		}
		if p.ClockOffsetMS > maxClockOffsetMS || p.ClockOffsetMS < -maxClockOffsetMS {
			// Past it time.Duration overflows: server-time printed 2013.
			return fmt.Errorf("profile %q: clock offset of %d ms", name, p.ClockOffsetMS)
		}
	}
	return nil
}
