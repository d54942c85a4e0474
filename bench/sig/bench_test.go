package sigbench

import (
	"testing"
	"time"

	"chatctl/pkg/sig"

	official "github.com/tencentyun/tls-sig-api-v2-golang/tencentyun"
)

// Side by side, same inputs: an app key from the console, a 7-byte
// identifier, 180 days. Both minters read the clock (the official one
// cannot be given one).
const (
	appID  = 1400000000
	key    = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"
	user   = "xiaojun"
	expire = 180 * 86400
)

func BenchmarkMint(b *testing.B) {
	b.Run("official", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := official.GenUserSig(appID, key, user, expire); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("chatctl", func(b *testing.B) {
		p := sig.Params{SDKAppID: appID, Key: key, UserID: user, Expire: expire}
		b.ReportAllocs()
		for b.Loop() {
			sig.Gen(p, time.Now())
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	s, err := official.GenUserSig(appID, key, user, expire)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	b.Run("official", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := official.VerifyUserSig(appID, key, user, s, now); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("chatctl", func(b *testing.B) {
		v := sig.NewVerifier(appID, key)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(user, s, now); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("chatctl-func", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := sig.Verify(appID, key, user, s, now); err != nil {
				b.Fatal(err)
			}
		}
	})
}
