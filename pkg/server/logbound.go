package server

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Log lines of the server carry values that came from the network: user
// ids, servcmds, paths, query parameters, error texts that quote them. Every
// string value of every line the server (and the REST handler, which logs
// through the same logger) writes is bounded to MaxLogField bytes and
// escaped (boundHandler); the lines of unauthenticated failures are
// rate-limited besides (unauthLog), so that neither a huge value nor a
// flood of failed requests can fill the disk (docs/RELIABILITY.md).

// MaxLogField is the most bytes of one logged string value; a longer one is
// cut and says how long it was.
const MaxLogField = 128

// Unauthenticated failures (failed logins, refused upgrades, bad frames,
// REST requests refused before their admin UserSig was accepted) are logged
// at most UnauthLogBurst lines at once, then UnauthLogRate a second; the
// next line written after some were dropped says how many ("suppressed").
const (
	UnauthLogRate  = 10
	UnauthLogBurst = 50
)

// logField is s bounded and escaped for a log line: at most MaxLogField
// bytes of it, control characters and invalid UTF-8 escaped as Go quotes
// them, and the original length when it was cut. A short, clean value is
// returned as it is (the common case costs nothing).
func logField(s string) string {
	if len(s) <= MaxLogField && clean(s) {
		return s
	}
	cut := s
	if len(cut) > MaxLogField {
		n := MaxLogField
		for i := 0; i < utf8.UTFMax-1 && !utf8.RuneStart(s[n]); i++ {
			n-- // do not split a rune
		}
		cut = s[:n]
	}
	q := strconv.Quote(cut)
	q = q[1 : len(q)-1]
	if len(q) > 2*MaxLogField { // escapes grow it: bound the result too
		q = q[:2*MaxLogField]
	}
	if len(cut) < len(s) {
		q += "…(" + strconv.Itoa(len(s)) + " bytes)"
	}
	return q
}

// clean reports whether s is valid UTF-8 that strconv.Quote leaves as it
// is: no control characters, and no invisible format characters either
// (U+200B zero-width space, U+202E right-to-left override, U+FEFF), with
// which "administrator\u200b" or "evil\u202egnp.exe" would read in a log
// as what they are not.
func clean(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < ' ' || b == 0x7f {
			return false
		} else if b >= utf8.RuneSelf {
			if !utf8.ValidString(s[i:]) {
				return false
			}
			for _, r := range s[i:] {
				if !strconv.IsPrint(r) {
					return false
				}
			}
			return true
		}
	}
	return true
}

// boundHandler wraps the server's slog.Handler: every string value (and
// error text) of a record and of its With attributes goes through logField.
type boundHandler struct{ h slog.Handler }

func (b boundHandler) Enabled(ctx context.Context, l slog.Level) bool { return b.h.Enabled(ctx, l) }

func (b boundHandler) Handle(ctx context.Context, r slog.Record) error {
	nr := slog.NewRecord(r.Time, r.Level, logField(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		nr.AddAttrs(boundAttr(a))
		return true
	})
	return b.h.Handle(ctx, nr)
}

func (b boundHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return boundHandler{b.h.WithAttrs(boundAttrs(as))}
}

func (b boundHandler) WithGroup(name string) slog.Handler {
	return boundHandler{b.h.WithGroup(logField(name))}
}

func boundAttr(a slog.Attr) slog.Attr {
	a.Key = logField(a.Key)
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		a.Value = slog.StringValue(logField(v.String()))
	case slog.KindGroup:
		a.Value = slog.GroupValue(boundAttrs(v.Group())...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			a.Value = slog.StringValue(logField(x.Error()))
		case []byte:
			a.Value = slog.StringValue(logField(string(x)))
		default:
			// Our own lines log numbers, strings and errors; anything else
			// is formatted by the handler as it likes, then bounded.
			a.Value = slog.StringValue(logField(v.String()))
		}
	default:
		a.Value = v
	}
	return a
}

func boundAttrs(as []slog.Attr) []slog.Attr {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = boundAttr(a)
	}
	return out
}

// lineLimiter is a token bucket of log lines (UnauthLogBurst, then
// UnauthLogRate a second).
type lineLimiter struct {
	mu         sync.Mutex
	b          bucket
	suppressed int
}

// allow reports whether a line may be written at now, and how many lines
// were suppressed since the last one written.
func (l *lineLimiter) allow(now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.level(now, UnauthLogRate, UnauthLogBurst) < 1 {
		l.suppressed++
		return false, 0
	}
	l.b.spend(now, 1, UnauthLogRate, UnauthLogBurst)
	n := l.suppressed
	l.suppressed = 0
	return true, n
}

// unauthLog writes one line about an unauthenticated failure through the
// server-wide limiter (shared by the WebSocket and REST sides).
func (s *Server) unauthLog(log *slog.Logger, level slog.Level, msg string, args ...any) {
	slog.New(unauthHandler{log.Handler(), s, nil}).Log(context.Background(), level, msg, args...)
}

// unauthHandler rate-limits, through the server's limiter, the records
// that report an unauthenticated failure, as told by unauth (nil: all of
// them).
type unauthHandler struct {
	slog.Handler
	s      *Server
	unauth func(slog.Record) bool
}

func (u unauthHandler) Handle(ctx context.Context, r slog.Record) error {
	if u.unauth != nil && !u.unauth(r) {
		return u.Handler.Handle(ctx, r)
	}
	ok, n := u.s.unauthLines.allow(time.Now())
	if !ok {
		return nil
	}
	if n > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("suppressed", n))
	}
	return u.Handler.Handle(ctx, r)
}

func (u unauthHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return unauthHandler{u.Handler.WithAttrs(as), u.s, u.unauth}
}

func (u unauthHandler) WithGroup(name string) slog.Handler {
	return unauthHandler{u.Handler.WithGroup(name), u.s, u.unauth}
}
