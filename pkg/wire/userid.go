package wire

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// MaxUserIDLen is the longest UserID in bytes (Tencent's limit of 32).
const MaxUserIDLen = 32

// ErrUserID is wrapped by every ValidateUserID error.
var ErrUserID = errors.New("invalid UserID")

// ErrReplacementChar is wrapped too when the UserID holds U+FFFD, refused
// since chatctl's UserIDs were taken with it: what was saved with one
// (a session file's profile) may be read (pkg/session).
var ErrReplacementChar = errors.New("has U+FFFD (a lone surrogate escape decodes to it)")

// ValidateUserID is the one UserID rule of chatctl: `sig gen`, `login`,
// wslogin on the server and the REST API all apply it. A UserID is 1 to 32
// bytes of valid UTF-8 with no control characters and no U+FFFD: JSON
// decoders put that for an escaped lone surrogate ("\ud800", "\udfff"),
// so that different requests would name one user (raw invalid bytes are
// refused before decoding; an escape cannot be). Punctuation, spaces and
// non-ASCII letters stay allowed: the official TLSSigAPIv2 library signs
// any string, and UserSigs for such ids must stay byte-identical to its.
// The error never quotes more than the first 32 bytes of a hostile value.
func ValidateUserID(u string) error {
	switch {
	case u == "":
		return fmt.Errorf("%w: empty", ErrUserID)
	case len(u) > MaxUserIDLen:
		return fmt.Errorf("%w: %d bytes, at most %d", ErrUserID, len(u), MaxUserIDLen)
	case !utf8.ValidString(u):
		return fmt.Errorf("%w: not valid UTF-8", ErrUserID)
	}
	replacement := false
	for _, r := range u {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: %q has a control character", ErrUserID, u)
		}
		replacement = replacement || r == utf8.RuneError
	}
	if replacement {
		// Last: a reader that lets this one pass (pkg/session) must
		// not let anything else pass behind it.
		return fmt.Errorf("%w: %q %w", ErrUserID, u, ErrReplacementChar)
	}
	return nil
}
