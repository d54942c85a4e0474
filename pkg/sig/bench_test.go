package sig

import (
	"testing"
	"time"
)

// The benchmark inputs: the "basic" vector (level 0, as every Go minter
// writes) and a level-6 C-zlib UserSig (as the Python port writes).
const (
	benchAppID = 1400000000
	benchKey   = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"
	benchUser  = "xiaojun"
)

var benchNow = time.Unix(1700000000, 0)

func BenchmarkGen(b *testing.B) {
	p := Params{SDKAppID: benchAppID, Key: benchKey, UserID: benchUser, Expire: 180 * 86400}
	b.ReportAllocs()
	for b.Loop() {
		Gen(p, benchNow)
	}
}

func BenchmarkVerifierGen(b *testing.B) {
	v := NewVerifier(benchAppID, benchKey)
	b.ReportAllocs()
	for b.Loop() {
		v.Gen(benchUser, 180*86400, nil, benchNow)
	}
}

func BenchmarkVerifierVerify(b *testing.B) {
	v := NewVerifier(benchAppID, benchKey)
	s := v.Gen(benchUser, 180*86400, nil, benchNow)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(benchUser, s, benchNow); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifierVerifyLevel6(b *testing.B) {
	var s string
	for _, f := range loadFixtures(b) {
		if f.Name == "py-level6" {
			s = f.Sig
		}
	}
	v := NewVerifier(benchAppID, benchKey)
	now := time.Unix(1700000100, 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify("pyuser", s, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	s := Gen(Params{SDKAppID: benchAppID, Key: benchKey, UserID: benchUser, Expire: 180 * 86400}, benchNow)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(benchAppID, benchKey, benchUser, s, benchNow); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	s := Gen(Params{SDKAppID: benchAppID, Key: benchKey, UserID: benchUser, Expire: 180 * 86400}, benchNow)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(s); err != nil {
			b.Fatal(err)
		}
	}
}
