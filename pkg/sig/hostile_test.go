package sig

import (
	"bytes"
	"compress/zlib"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

const hostileApp, hostileUser = 1400000000, "u"

// macOver is the MAC a key holder would put on these field values (the
// decimal texts as the MAC input writes them).
func macOver(app, t, expire string) string {
	m := hmac.New(sha256.New, []byte(fixtureKey))
	m.Write([]byte("TLS.identifier:" + hostileUser + "\nTLS.sdkappid:" + app + "\nTLS.time:" + t + "\nTLS.expire:" + expire + "\n"))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// docSig is a UserSig whose TLS.sdkappid, TLS.time and TLS.expire are the
// raw JSON texts given, signed as if they were those numbers: what a key
// holder (or an attacker who has the key) can write.
func docSig(t *testing.T, ver, app, tm, expire string) string {
	doc := `{"TLS.ver":` + ver + `,"TLS.identifier":"` + hostileUser + `","TLS.sdkappid":` + app +
		`,"TLS.expire":` + expire + `,"TLS.time":` + tm + `,"TLS.sig":"` + macOver(app, tm, expire) + `"}`
	return zsig(t, []byte(doc), zlib.NoCompression)
}

// Every integer field of a UserSig, and TLS.ver: negative, zero, huge,
// float, string, out of range, far past and future. Each is either a
// clean rejection with its code or a UserSig the official verifier would
// accept too.
func TestHostileIntegerFields(t *testing.T) {
	const now = 1700000000
	v := NewVerifier(hostileApp, fixtureKey)
	app, tm, exp := strconv.Itoa(hostileApp), strconv.Itoa(now), "3600"
	for _, c := range []struct {
		name            string
		ver, a, t, e    string
		code            int
		wantEnd, wantOK int64 // Info.End when valid (0: not checked)
	}{
		{"as minted", `"2.0"`, app, tm, exp, 0, now + 3600, 0},
		// TLS.ver is not checked (as the official verifier), but must be a string.
		{"ver a number", `2`, app, tm, exp, CodeMalformed, 0, 0},
		{"ver null", `null`, app, tm, exp, 0, 0, 0},
		{"ver huge", `"` + strings.Repeat("9", 3000) + `"`, app, tm, exp, 0, 0, 0},
		{"ver an object", `{"a":[[[[1]]]]}`, app, tm, exp, CodeMalformed, 0, 0},
		// TLS.sdkappid: a uint64, compared whole (no truncation to 32 bits).
		{"sdkappid negative", `"2.0"`, "-" + app, tm, exp, CodeMalformed, 0, 0},
		{"sdkappid -0", `"2.0"`, "-0", tm, exp, CodeMalformed, 0, 0},
		{"sdkappid zero", `"2.0"`, "0", tm, exp, CodeAppMismatch, 0, 0},
		{"sdkappid + 2^32", `"2.0"`, strconv.FormatUint(hostileApp+1<<32, 10), tm, exp, CodeAppMismatch, 0, 0},
		{"sdkappid 2^64-1", `"2.0"`, "18446744073709551615", tm, exp, CodeAppMismatch, 0, 0},
		{"sdkappid 2^64", `"2.0"`, "18446744073709551616", tm, exp, CodeMalformed, 0, 0},
		{"sdkappid float", `"2.0"`, "1.4e9", tm, exp, CodeMalformed, 0, 0},
		{"sdkappid x.0", `"2.0"`, app + ".0", tm, exp, CodeMalformed, 0, 0},
		{"sdkappid string", `"2.0"`, `"` + app + `"`, tm, exp, CodeMalformed, 0, 0},
		{"sdkappid leading zero", `"2.0"`, "0" + app, tm, exp, CodeMalformed, 0, 0},
		{"sdkappid 400 digits", `"2.0"`, strings.Repeat("9", 400), tm, exp, CodeMalformed, 0, 0},
		// TLS.time: any int64; no not-before check.
		{"time zero, long expire", `"2.0"`, app, "0", strconv.Itoa(now + 10), 0, now + 10, 0},
		{"time negative, long expire", `"2.0"`, app, "-100", strconv.Itoa(now + 200), 0, now + 100, 0},
		{"time -2^63, expire 2^63-1", `"2.0"`, app, "-9223372036854775808", "9223372036854775807", CodeExpired, 0, 0},
		{"time far future", `"2.0"`, app, "4000000000000000000", "0", 0, MaxEnd, 0},
		{"time 2^63-1, expire 0", `"2.0"`, app, "9223372036854775807", "0", 0, MaxEnd, 0},
		{"time 2^63", `"2.0"`, app, "9223372036854775808", "0", CodeMalformed, 0, 0},
		{"time far past", `"2.0"`, app, "-4000000000000000000", exp, CodeExpired, 0, 0},
		{"time float", `"2.0"`, app, "1.7e9", exp, CodeMalformed, 0, 0},
		{"time string", `"2.0"`, app, `"` + tm + `"`, exp, CodeMalformed, 0, 0},
		{"time exponent", `"2.0"`, app, "17e8", exp, CodeMalformed, 0, 0},
		// TLS.expire: negative is expired; an overflowing end is expired;
		// a valid end past the year 9999 is reported as MaxEnd.
		{"expire negative", `"2.0"`, app, tm, "-1", CodeExpired, 0, 0},
		{"expire -2^63", `"2.0"`, app, tm, "-9223372036854775808", CodeExpired, 0, 0},
		{"expire zero", `"2.0"`, app, tm, "0", 0, now, 0},
		{"expire overflows time+expire", `"2.0"`, app, tm, "9223372036854775807", CodeExpired, 0, 0},
		{"expire largest", `"2.0"`, app, tm, strconv.FormatInt(math.MaxInt64-now, 10), 0, MaxEnd, 0},
		{"expire to 9999-12-31", `"2.0"`, app, tm, strconv.FormatInt(MaxEnd-now, 10), 0, MaxEnd, 0},
		{"expire 2^63", `"2.0"`, app, tm, "9223372036854775808", CodeMalformed, 0, 0},
		{"expire float", `"2.0"`, app, tm, "3600.5", CodeMalformed, 0, 0},
		{"expire string", `"2.0"`, app, tm, `"3600"`, CodeMalformed, 0, 0},
		{"expire null", `"2.0"`, app, tm, "null", CodeBadSignature, 0, 0}, // read as absent (0): the MAC covered "null"
	} {
		t.Run(c.name, func(t *testing.T) {
			info, err := v.Verify(hostileUser, docSig(t, c.ver, c.a, c.t, c.e), time.Unix(now, 0))
			wantCode(t, c.name, c.code, err)
			if err == nil && c.wantEnd != 0 && info.End() != c.wantEnd {
				t.Errorf("End() = %d, want %d", info.End(), c.wantEnd)
			}
		})
	}
}

// Info.End never overflows and never passes MaxEnd, whatever Verify let
// through or a caller built.
func TestInfoEnd(t *testing.T) {
	for _, c := range []struct{ t, e, want int64 }{
		{1700000000, 60, 1700000060},
		{MaxEnd, 0, MaxEnd},
		{MaxEnd, 1, MaxEnd},
		{0, math.MaxInt64, MaxEnd},
		{math.MaxInt64, math.MaxInt64, MaxEnd}, // overflow
		{-100, 50, -50},
	} {
		if got := (Info{Time: c.t, Expire: c.e}).End(); got != c.want {
			t.Errorf("Info{%d, %d}.End() = %d, want %d", c.t, c.e, got, c.want)
		}
	}
	// MaxEnd survives the arithmetic a server does with it.
	if end := time.Unix(MaxEnd+1, 0); end.UnixMilli()/1000 != MaxEnd+1 {
		t.Fatalf("MaxEnd+1 s in ms: %d", end.UnixMilli())
	}
}

// hostileInputs are UserSigs that fit MaxLen but inflate to megabytes, and
// inputs over MaxLen, each with the most a verify of it may allocate.
func hostileInputs(t testing.TB) []struct {
	name, sig string
	maxBytes  uint64
} {
	// The best deflate ratio is about 1:1032: 4 MiB of one byte.
	var z bytes.Buffer
	w, _ := zlib.NewWriterLevel(&z, zlib.BestCompression)
	w.Write(bytes.Repeat([]byte{' '}, 4<<20))
	w.Close()
	bomb := sigEncoding.EncodeToString(z.Bytes())
	if len(bomb) > MaxLen {
		t.Fatalf("bomb of %d chars does not fit MaxLen %d", len(bomb), MaxLen)
	}
	huge := strings.Repeat("A", 64<<20)
	return []struct {
		name, sig string
		maxBytes  uint64
	}{
		{"4 MiB zlib bomb", bomb, 64 << 10},
		{"64 MiB of base64", huge, 1 << 10},
		{"MaxLen+1", huge[:MaxLen+1], 1 << 10},
		{"MaxLen of junk", huge[:MaxLen], 64 << 10},
	}
}

// Compression bombs and huge inputs are refused (70003), having inflated
// at most MaxInflated+1 bytes (TestHostileInputsDoNotAllocate: and copied
// nothing big).
func TestBombsAndHugeInputs(t *testing.T) {
	v := NewVerifier(hostileApp, fixtureKey)
	now := time.Unix(1700000000, 0)
	for _, c := range hostileInputs(t) {
		_, err := v.Verify(hostileUser, c.sig, now)
		wantCode(t, c.name, CodeMalformed, err)
	}
	// A stream of 500 empty stored blocks before the document is
	// deflate all the same: accepted (flate accepts it), at no cost.
	s := v.Gen(hostileUser, 60, nil, now)
	raw := mustRaw(t, s)
	var many []byte
	many = append(many, raw[:2]...)
	for range 500 {
		many = append(many, 0x00, 0x00, 0x00, 0xff, 0xff)
	}
	many = append(many, raw[2:]...)
	_, err := v.Verify(hostileUser, sigEncoding.EncodeToString(many), now)
	wantCode(t, "500 empty stored blocks", 0, err)
}
