package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"strings"
	"sync"
	"testing"
)

// The pooled keyed hashes (macFor) give what a fresh hmac.New gives: the
// tinyIDs and A2Keys already issued stay valid across the change and a
// restart. Several secrets at once, from concurrent goroutines, replace
// the pool under each other's feet; a hash that kept state from its last
// use, or that kept another secret, would show here.
func TestPooledMACsMatchHMAC(t *testing.T) {
	plain := func(secret []byte, parts ...[]byte) []byte {
		h := hmac.New(sha256.New, secret)
		for _, p := range parts {
			h.Write(p)
		}
		return h.Sum(nil)
	}
	secrets := [][]byte{[]byte("0123456789abcdef0123456789abcdef"), []byte("another secret, another key....."), []byte("a third one, 16+")}
	users := []string{"u", "xiaojun", strings.Repeat("long-user-", 40)}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				secret := secrets[(g+i)%len(secrets)]
				user := users[i%len(users)]
				app := uint64(1400000000 + i)
				want := 144115000000000000 + binary.BigEndian.Uint64(plain(secret, []byte("chatctl-tinyid\x00"),
					binary.BigEndian.AppendUint64(nil, app), []byte(user)))%1_000_000_000_000
				if got := tinyID(secret, app, user); got != want {
					t.Errorf("tinyID(%q, %d, %q) = %d, want %d", secret, app, user, got, want)
					return
				}
				cl := a2Claims{App: app, TinyID: want, InstID: uint64(i + 1), IssuedMs: int64(i), Expires: int64(i), User: user}
				key := cl.encode(secret)
				p, m, _ := strings.Cut(key, ".")
				payload, _ := a2Enc.DecodeString(p)
				if mac := a2Enc.EncodeToString(plain(secret, []byte("chatctl-a2\x00"), payload)[:a2MACLen]); m != mac {
					t.Errorf("A2Key MAC %s, want %s", m, mac)
					return
				}
				if back, err := parseA2(secret, key); err != nil || back != cl {
					t.Errorf("parseA2 = %+v, %v; want %+v", back, err, cl)
					return
				}
				other := secrets[(g+i+1)%len(secrets)]
				if _, err := parseA2(other, key); err == nil {
					t.Errorf("an A2Key of %q verified with %q", secret, other)
					return
				}
			}
		})
	}
	wg.Wait()
}
