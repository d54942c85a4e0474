package sig

import (
	"bytes"
	"compress/zlib"
	"math"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestExpiryPolicy(t *testing.T) {
	const appID, user = 1400000000, "u"
	v := NewVerifier(appID, fixtureKey)
	at := func(t0, expire, now int64) error {
		s := v.Gen(user, expire, nil, time.Unix(t0, 0))
		_, err := v.Verify(user, s, time.Unix(now, 0))
		return err
	}
	const t0 = 1700000000
	wantCode(t, "expire 0 at its second", 0, at(t0, 0, t0))
	wantCode(t, "expire 0 a second later", CodeExpired, at(t0, 0, t0+1))
	wantCode(t, "minted a day in the future (no not-before check)", 0, at(t0+86400, 60, t0))
	wantCode(t, "negative expire, even minted in the future", CodeExpired, at(t0+86400, -1, t0))
	wantCode(t, "time+expire overflows", CodeExpired, at(t0, math.MaxInt64, t0))
	wantCode(t, "largest expire that does not overflow", 0, at(t0, math.MaxInt64-t0, t0))
	wantCode(t, "negative time", 0, at(-100, 200, 50))
	c, _ := Decode(v.Gen(user, math.MaxInt64, nil, time.Unix(t0, 0)))
	if _, ok := c.ExpiresAt(); ok {
		t.Error("ExpiresAt of an overflowing UserSig is ok")
	}
}

// zsig wraps a document as a UserSig at a zlib level.
func zsig(t *testing.T, doc []byte, level int) string {
	var b bytes.Buffer
	w, err := zlib.NewWriterLevel(&b, level)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(doc)
	w.Close()
	return sigEncoding.EncodeToString(b.Bytes())
}

// TestInflateCap: a document of MaxInflated bytes is read, one more byte
// is refused, stored or compressed.
func TestInflateCap(t *testing.T) {
	s := Gen(Params{SDKAppID: 1, Key: fixtureKey, UserID: "u", Expire: 60}, time.Unix(1700000000, 0))
	doc := bytes.TrimRight(vectorDoc(t, s), "\n")
	// pad makes an n-byte document: spaces after the object are allowed.
	pad := func(n int) []byte { return append(bytes.Clone(doc), bytes.Repeat([]byte(" "), n-len(doc))...) }
	for _, level := range []int{zlib.NoCompression, zlib.BestCompression} {
		if _, err := Verify(1, fixtureKey, "u", zsig(t, pad(MaxInflated), level), time.Unix(1700000000, 0)); err != nil {
			t.Errorf("level %d: %d bytes: %v", level, MaxInflated, err)
		}
		_, err := Verify(1, fixtureKey, "u", zsig(t, pad(MaxInflated+1), level), time.Unix(1700000000, 0))
		wantCode(t, "one byte over the cap", CodeMalformed, err)
	}
}

// vectorDoc inflates a UserSig with compress/zlib.
func vectorDoc(t *testing.T, s string) []byte {
	zr, err := zlib.NewReader(bytes.NewReader(mustRaw(t, s)))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.ReadFrom(zr)
	return b.Bytes()
}

func TestZlibFraming(t *testing.T) {
	v := loadVectors(t)[0]
	raw := mustRaw(t, v.Sig)
	check := func(name string, z []byte, code int) {
		t.Helper()
		_, err := Verify(v.AppID, v.Key, v.User, sigEncoding.EncodeToString(z), time.Unix(v.Time, 0))
		wantCode(t, name, code, err)
	}
	check("as minted", raw, 0)
	check("junk after the stream", append(bytes.Clone(raw), 0), CodeMalformed)
	check("no checksum", raw[:len(raw)-4], CodeMalformed)
	bad := bytes.Clone(raw)
	bad[len(bad)-1] ^= 1
	check("bad checksum", bad, CodeMalformed)
	bad = bytes.Clone(raw)
	bad[1] = 0x01 | 0x20 // FDICT
	bad[1] += byte(31 - (uint16(bad[0])<<8|uint16(bad[1]))%31)
	check("preset dictionary", bad, CodeMalformed)
	bad = bytes.Clone(raw)
	bad[0] = 0x79 // CM 9
	check("not deflate", bad, CodeMalformed)
	bad = bytes.Clone(raw)
	bad[3] ^= 0xff // stored block LEN no longer matches NLEN: flate rejects it too
	check("stored LEN/NLEN mismatch", bad, CodeMalformed)
	// Padding bits after a stored block's header are ignored, as flate does.
	bad = bytes.Clone(raw)
	bad[2] |= 0xf8
	check("stored header padding bits", bad, 0)
	check("header only", raw[:2], CodeMalformed)
}

func TestBase64Alphabets(t *testing.T) {
	v := loadVectors(t)[0]
	std := strings.NewReplacer("*", "+", "-", "/", "_", "=").Replace(v.Sig)
	for name, s := range map[string]string{"std": std, "mixed": v.Sig[:20] + std[20:]} {
		if _, err := Verify(v.AppID, v.Key, v.User, s, time.Unix(v.Time, 0)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	_, err := Verify(v.AppID, v.Key, v.User, strings.TrimRight(v.Sig, "_"), time.Unix(v.Time, 0))
	wantCode(t, "padding missing", CodeMalformed, err)
}

// TestConcurrent: Verifiers and the package-level functions with two
// alternating keys (the last-key cache) are safe for concurrent use.
func TestConcurrent(t *testing.T) {
	keys := []string{fixtureKey, "another key"}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				key := keys[(g+i)%2]
				now := time.Unix(1700000000+int64(i), 0)
				s := Gen(Params{SDKAppID: 7, Key: key, UserID: "u", Expire: 10}, now)
				if _, err := Verify(7, key, "u", s, now); err != nil {
					t.Error(err)
					return
				}
				if _, err := NewVerifier(7, keys[(g+i+1)%2]).Verify("u", s, now); err == nil {
					t.Error("verified with the other key")
					return
				}
			}
		}()
	}
	wg.Wait()
}
