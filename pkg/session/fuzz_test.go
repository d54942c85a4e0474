package session

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// FuzzDecode: any bytes either decode to a file that encodes to a fixed
// point, or give an error that wraps ErrCorrupt and names the file.
func FuzzDecode(f *testing.F) {
	good, err := encode(&File{Version: Version, Profiles: map[string]Profile{"default": sample("a"), "b": {UserID: "b", SDKAppID: 1}}})
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		string(good), "", "null", "{}", `{"version":1}`, `{"version":1,"profiles":null}`,
		`{"version":2}`, `{"version":1,"profiles":{"x y":{}}}`, `{"version":1,"profiles":{"a":{"state_at":"2026-01-01T00:00:00+01:00"}}}`,
	} {
		f.Add([]byte(seed))
	}
	const path = "/cfg/sessions.json"
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := decode(path, b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not wrap ErrCorrupt and name the file", err)
			}
			return
		}
		if file.Profiles == nil {
			t.Fatal("nil Profiles")
		}
		enc, err := encode(file)
		if err != nil {
			return // e.g. a time that cannot be written back: Update reports it
		}
		again, err := decode(path, enc)
		if err != nil {
			t.Fatalf("re-decoding our own output: %v\n%s", err, enc)
		}
		enc2, err := encode(again)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not a fixed point: %v\n%s\n%s", err, enc, enc2)
		}
	})
}

// FuzzDecodeFast: whatever decodeFast accepts, encoding/json decodes to the
// same File; and our own output is always accepted (the fast path is the
// common one).
func FuzzDecodeFast(f *testing.F) {
	good, err := encode(&File{Version: Version, Profiles: map[string]Profile{"default": sample("a"), "b": {UserID: "b", SDKAppID: 1}}})
	if err != nil {
		f.Fatal(err)
	}
	if _, ok := decodeFast(good); !ok {
		f.Fatalf("decodeFast refuses encode's output:\n%s", good)
	}
	for _, seed := range []string{
		string(good), "", "null", "{}", `{"version":1}`, `{"version":1,"profiles":null}`, `{"version":-0,"profiles":{}}`,
		`{"version":1,"profiles":{"a":{"sdkappid":1e3}}}`, `{"version":1,"profiles":{"a":{"User_ID":"x"}}}`,
		`{"version":1,"profiles":{"a":{"user_id":"x\u0041"}}}`, `{"version":1,"profiles":{"a":{},"a":{"inst_id":2}}}`,
		`{"version":1,"profiles":{"a":{"state_at":"2026-01-01T00:00:00+01:00","platform":-7}}} `,
		`{"version":1,"profiles":{"a":{"sdkappid":18446744073709551616}}}`, `{"version":1,"profiles":{"a":{"tiny_id":"\xff"}}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := decodeFast(b)
		if !ok {
			return
		}
		var slow File
		if err := json.Unmarshal(b, &slow); err != nil {
			t.Fatalf("decodeFast accepted what encoding/json refuses (%v): %q", err, b)
		}
		if !reflect.DeepEqual(fast, &slow) {
			t.Fatalf("decodeFast and encoding/json differ on %q:\n%+v\n%+v", b, fast, slow)
		}
	})
}
