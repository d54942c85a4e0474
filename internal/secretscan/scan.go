// Package secretscan finds UserSigs and A2Keys in text: the test suite's
// whole output is scanned with it (make test), so a secret that leaks into
// any log line or command output fails the build. It needs no key: a UserSig
// is anything pkg/sig decodes, an A2Key anything shaped like the server's
// (base64url of a version-1 payload, a dot, a 20-byte MAC).
package secretscan

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"regexp"

	"chatctl/pkg/sig"
)

// Finding is one secret-looking token.
type Finding struct {
	Line int
	Kind string // "UserSig" or "A2Key"
	Hint string // what it decodes to, without the secret
}

func (f Finding) String() string { return fmt.Sprintf("line %d: %s (%s)", f.Line, f.Kind, f.Hint) }

var (
	// UserSigs: zlib streams start with 0x78, so the base64 starts with "e".
	sigToken = regexp.MustCompile(`e[A-Za-z0-9*_+/=-]{80,}`)
	a2Token  = regexp.MustCompile(`[A-Za-z0-9_-]{55,}\.[A-Za-z0-9_-]{27}`)
)

// Scan reads r line by line and returns every secret-looking token.
func Scan(r io.Reader) ([]Finding, error) {
	var out []Finding
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		for _, t := range sigToken.FindAllString(line, -1) {
			if c, err := sig.Decode(t); err == nil {
				out = append(out, Finding{n, "UserSig", fmt.Sprintf("identifier %q, sdkappid %d", c.Identifier, c.SDKAppID)})
			}
		}
		for _, t := range a2Token.FindAllString(line, -1) {
			payload, _, _ := cut(t)
			if b, err := base64.RawURLEncoding.DecodeString(payload); err == nil && len(b) >= 41 && b[0] == 1 {
				out = append(out, Finding{n, "A2Key", fmt.Sprintf("%d-byte payload", len(b))})
			}
		}
	}
	return out, sc.Err()
}

func cut(s string) (before, after string, ok bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}
