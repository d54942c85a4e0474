package sigbench

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"flag"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"chatctl/pkg/sig"

	official "github.com/tencentyun/tls-sig-api-v2-golang/tencentyun"
)

var (
	seed  = flag.Uint64("seed", 0, "random seed (0: from the clock; the seed is logged)")
	iters = flag.Int("iters", 3000, "random cases per test")
)

func newRand(t *testing.T) *rand.Rand {
	s := *seed
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -seed=%d)", s, s)
	return rand.New(rand.NewPCG(s, s^0x5eed))
}

// inputs are random mint inputs, biased towards the edges: empty and
// non-ASCII identifiers, characters JSON escapes, invalid UTF-8, zero and
// negative expiries, nil/empty/binary userbufs.
type inputs struct {
	appID   uint64
	key     string
	user    string
	expire  int64
	userBuf []byte
}

func randString(r *rand.Rand, alphabet string, max int) string {
	n := r.IntN(max + 1)
	var b strings.Builder
	runes := []rune(alphabet)
	for range n {
		b.WriteRune(runes[r.IntN(len(runes))])
	}
	return b.String()
}

func randInputs(r *rand.Rand) inputs {
	in := inputs{key: randString(r, "0123456789abcdef", 64)}
	if r.IntN(8) == 0 {
		in.key = randString(r, "abcXYZ 中\"\\", 100)
	}
	switch r.IntN(4) {
	case 0:
		in.appID = uint64(r.IntN(3))
	case 1:
		in.appID = 1400000000 + uint64(r.IntN(1e8))
	default:
		in.appID = r.Uint64() >> 1 // the official API takes an int
	}
	switch r.IntN(6) {
	case 0:
		in.user = randString(r, "abcXYZ019_-", 32)
	case 1:
		in.user = randString(r, "a<>&\"\\/\n\t\x00\x1f\u2028é中😀 ", 12)
	case 2:
		in.user = ""
	case 3:
		in.user = randString(r, "ab", 3) + string([]byte{byte(0x80 + r.IntN(0x80))}) // invalid UTF-8
	default:
		in.user = randString(r, "abcdefghijklmnopqrstuvwxyz0123456789", 32)
	}
	switch r.IntN(6) {
	case 0:
		in.expire = 0
	case 1:
		in.expire = -int64(r.IntN(1000))
	case 2:
		in.expire = math.MaxInt64 - int64(r.IntN(10))
	default:
		in.expire = int64(r.IntN(400 * 86400))
	}
	switch r.IntN(4) {
	case 0:
		in.userBuf = []byte{}
	case 1:
		in.userBuf = make([]byte, 1+r.IntN(300))
		for i := range in.userBuf {
			in.userBuf[i] = byte(r.Uint32())
		}
	default:
		in.userBuf = nil
	}
	return in
}

// mintBoth mints with the official library (which reads the clock) and
// with ours at the same second; it retries when the second changed
// mid-call.
func mintBoth(t *testing.T, official func() (string, error), ours func(time.Time) string) (string, string, time.Time) {
	t.Helper()
	for {
		before := time.Now()
		o, err := official()
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().Unix() != before.Unix() {
			continue
		}
		return o, ours(time.Unix(before.Unix(), 0)), time.Unix(before.Unix(), 0)
	}
}

// ourPolicyAccepts is whether our verifier should accept a fresh UserSig
// from these inputs at its mint time.
func ourPolicyAccepts(in inputs) bool {
	now := time.Now().Unix()
	return in.expire >= 0 && in.expire <= math.MaxInt64-now-10 &&
		(in.userBuf == nil || len(in.userBuf) > 0) && utf8.ValidString(in.user)
}

func TestMintEqualsOfficial(t *testing.T) {
	r := newRand(t)
	for range *iters {
		in := randInputs(r)
		var o, ours string
		var now time.Time
		p := sig.Params{SDKAppID: in.appID, Key: in.key, UserID: in.user, Expire: in.expire, UserBuf: in.userBuf}
		if in.userBuf == nil {
			o, ours, now = mintBoth(t, func() (string, error) {
				return official.GenUserSig(int(in.appID), in.key, in.user, int(in.expire))
			}, func(now time.Time) string { return sig.Gen(p, now) })
		} else {
			o, ours, now = mintBoth(t, func() (string, error) {
				return official.GenUserSigWithBuf(int(in.appID), in.key, in.user, int(in.expire), in.userBuf)
			}, func(now time.Time) string { return sig.Gen(p, now) })
		}
		if o != ours {
			t.Fatalf("inputs %+v: official %s\nours     %s", in, o, ours)
		}
		if v := sig.NewVerifier(in.appID, in.key).Gen(in.user, in.expire, in.userBuf, now); v != o {
			t.Fatalf("inputs %+v: Verifier.Gen differs", in)
		}
		checkCrossVerify(t, in, o, now)
	}
}

func TestPrivateMapKeyEqualsOfficial(t *testing.T) {
	r := newRand(t)
	for range *iters / 2 {
		in := randInputs(r)
		in.appID &= math.MaxUint32 // the layout holds 32 bits; keep the doc's appid equal
		in.expire = int64(r.IntN(400 * 86400))
		p := sig.Params{SDKAppID: in.appID, Key: in.key, UserID: in.user, Expire: in.expire}
		priv := uint32(r.IntN(256))
		if r.IntN(2) == 0 {
			room := r.Uint32()
			o, ours, _ := mintBoth(t, func() (string, error) {
				return official.GenPrivateMapKey(int(in.appID), in.key, in.user, int(in.expire), room, priv)
			}, func(now time.Time) string { return sig.GenPrivateMapKey(p, room, priv, now) })
			if o != ours {
				t.Fatalf("GenPrivateMapKey %+v room %d: official %s\nours     %s", in, room, o, ours)
			}
		} else {
			room := randString(r, "0123456789abc_", 20) // may be empty: numeric layout
			o, ours, _ := mintBoth(t, func() (string, error) {
				return official.GenPrivateMapKeyWithStringRoomID(int(in.appID), in.key, in.user, int(in.expire), room, priv)
			}, func(now time.Time) string { return sig.GenPrivateMapKeyWithStringRoomID(p, room, priv, now) })
			if o != ours {
				t.Fatalf("GenPrivateMapKeyWithStringRoomID %+v room %q: official %s\nours     %s", in, room, o, ours)
			}
			c, err := sig.Decode(o)
			if err != nil {
				t.Fatal(err)
			}
			m, ok := c.PrivMap()
			if !ok || m.RoomStr != room || m.Privilege != priv || m.UserID != in.user {
				t.Fatalf("PrivMap of official %+v %v", m, ok)
			}
		}
	}
}

// checkCrossVerify: an official UserSig (o, equal to ours) verifies with
// our verifier when our policy accepts it, and with the official
// verifier; so does the same document at zlib level 6 (as other ports
// write it).
func checkCrossVerify(t *testing.T, in inputs, o string, now time.Time) {
	t.Helper()
	level6 := recompress(t, o, zlib.DefaultCompression)
	for _, s := range []string{o, level6} {
		_, err := sig.Verify(in.appID, in.key, in.user, s, now)
		if want := ourPolicyAccepts(in); want != (err == nil) {
			t.Fatalf("inputs %+v: our Verify = %v, want valid=%v", in, err, want)
		}
		if err != nil {
			continue
		}
		if in.userBuf == nil {
			err = official.VerifyUserSig(in.appID, in.key, in.user, s, now)
		} else {
			err = official.VerifyUserSigWithBuf(in.appID, in.key, in.user, s, now, in.userBuf)
		}
		if err != nil {
			t.Fatalf("inputs %+v: official rejects what we accept: %v", in, err)
		}
	}
}

func recompress(t *testing.T, s string, level int) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(strings.NewReplacer("*", "+", "-", "/", "_", "=").Replace(s))
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zlib.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var doc bytes.Buffer
	if _, err := doc.ReadFrom(zr); err != nil {
		t.Fatal(err)
	}
	var z bytes.Buffer
	w, _ := zlib.NewWriterLevel(&z, level)
	w.Write(doc.Bytes())
	w.Close()
	return strings.NewReplacer("+", "*", "/", "-", "=", "_").Replace(base64.StdEncoding.EncodeToString(z.Bytes()))
}

// TestNeverMoreLenient mutates valid UserSigs (one character, truncation,
// appended junk) and checks that whatever our verifier accepts, the
// official one accepts too.
func TestNeverMoreLenient(t *testing.T) {
	r := newRand(t)
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789*-_"
	for range *iters {
		in := randInputs(r)
		in.userBuf, in.expire = nil, int64(r.IntN(86400))
		now := time.Now()
		s := sig.Gen(sig.Params{SDKAppID: in.appID, Key: in.key, UserID: in.user, Expire: in.expire}, now)
		b := []byte(s)
		switch r.IntN(3) {
		case 0:
			b[r.IntN(len(b))] = alphabet[r.IntN(len(alphabet))]
		case 1:
			b = b[:r.IntN(len(b))]
		default:
			b = append(b, alphabet[r.IntN(len(alphabet))])
		}
		if _, err := sig.Verify(in.appID, in.key, in.user, string(b), now); err == nil {
			if err := official.VerifyUserSig(in.appID, in.key, in.user, string(b), now); err != nil {
				t.Fatalf("we accept %q, official says %v", b, err)
			}
		}
	}
}

// TestVectorsVerifyWithOfficial: the shared vectors verify with the
// official verifier and with ours.
func TestVectorsVerifyWithOfficial(t *testing.T) {
	const key = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"
	s := sig.Gen(sig.Params{SDKAppID: 1400000000, Key: key, UserID: "xiaojun", Expire: 86400}, time.Unix(1700000000, 0))
	now := time.Unix(1700000000, 0)
	if err := official.VerifyUserSig(1400000000, key, "xiaojun", s, now); err != nil {
		t.Fatal(err)
	}
	if err := official.VerifyUserSig(1400000000, key, "xiaojun", s, now.Add(86401*time.Second)); err != official.ErrExpired {
		t.Fatalf("official on expired: %v", err)
	}
}
