package sig

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"testing"
	"time"
)

func fuzzSeeds(f *testing.F) (sigs []string) {
	for _, v := range loadVectors(f) {
		sigs = append(sigs, v.Sig, v.Document)
	}
	for _, x := range loadFixtures(f) {
		sigs = append(sigs, x.Sig)
	}
	return sigs
}

// FuzzDecode: Decode never panics, and on any document the fast JSON
// scanner, when it accepts, agrees with encoding/json.
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"TLS.sig":"","TLS.time":-9223372036854775808,"TLS.sdkappid":18446744073709551615}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Decode(string(data))
		if err == nil && c.MAC == nil {
			t.Fatal("decoded without a MAC")
		}
		if err != nil {
			if e, ok := err.(*Error); !ok || (e.Code != CodeMalformed && e.Code != CodeEmpty) {
				t.Fatalf("Decode error %v", err)
			}
		}
		if len(data) > MaxInflated {
			return
		}
		fast, slow := getScratch(), getScratch()
		defer putScratch(fast)
		defer putScratch(slow)
		if !fast.scanJSON(data) {
			return
		}
		if reason := slow.slowJSON(data); reason != "" {
			t.Fatalf("scanJSON accepted what encoding/json rejects (%s): %q", reason, data)
		}
		a, b := fast.f, slow.f
		if !bytes.Equal(a.ver, b.ver) || !bytes.Equal(a.ident, b.ident) || a.appID != b.appID || a.time != b.time ||
			a.expire != b.expire || a.hasUserBuf != b.hasUserBuf || !bytes.Equal(a.userBuf, b.userBuf) ||
			!bytes.Equal(a.mac, b.mac) || (a.mac == nil) != (b.mac == nil) {
			t.Fatalf("scanJSON and encoding/json differ on %q:\n%+v\n%+v", data, a, b)
		}
	})
}

// FuzzVerify: Verify never panics, and accepts only what the key signed:
// when it accepts, an HMAC computed here from the decoded fields equals the
// UserSig's MAC, and re-minting from those fields verifies too. With wrap,
// s is a JSON document to wrap in zlib and base64 first, so the fuzzer
// explores documents directly.
func FuzzVerify(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s, "xiaojun", int64(1700000000), false)
		f.Add(s, "pyuser", int64(1700000100), false)
	}
	for _, v := range loadVectors(f) {
		f.Add(v.Document, v.User, v.Time, true)
	}
	v := NewVerifier(1400000000, fixtureKey)
	f.Fuzz(func(t *testing.T, s, user string, now int64, wrap bool) {
		if wrap {
			s = sigEncoding.EncodeToString(appendStoredZlib(nil, []byte(s)))
		}
		info, err := v.Verify(user, s, time.Unix(now, 0))
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %T %v", err, err)
			}
			return
		}
		c, err := Decode(s)
		if err != nil {
			t.Fatalf("Verify accepted what Decode rejects: %v", err)
		}
		if c.Identifier != user || c.SDKAppID != 1400000000 || c.Time != info.Time || c.Expire != info.Expire {
			t.Fatalf("accepted %+v for %q, info %+v", c, user, info)
		}
		if c.Expire < 0 || now > c.Time+c.Expire {
			t.Fatalf("accepted an expired UserSig %+v at %d", c, now)
		}
		h := hmac.New(sha256.New, []byte(fixtureKey))
		h.Write(appendMACInput(nil, c.Identifier, c.SDKAppID, c.Time, c.Expire, c.UserBuf, c.HasUserBuf))
		if !bytes.Equal(h.Sum(nil), c.MAC) {
			t.Fatalf("accepted a MAC the key did not make: %q", s)
		}
		p := Params{SDKAppID: c.SDKAppID, Key: fixtureKey, UserID: c.Identifier, Expire: c.Expire, UserBuf: c.UserBuf}
		if _, err := v.Verify(user, Gen(p, time.Unix(c.Time, 0)), time.Unix(now, 0)); err != nil {
			t.Fatalf("re-minted UserSig rejected: %v", err)
		}
	})
}
