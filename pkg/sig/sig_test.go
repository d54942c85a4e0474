package sig

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/sig/go_fixtures.json")

const testdata = "../../testdata/sig"

type vector struct {
	Name     string `json:"name"`
	Func     string `json:"func"`
	AppID    uint64 `json:"appid"`
	Key      string `json:"key"`
	User     string `json:"user"`
	Expire   int64  `json:"expire"`
	Time     int64  `json:"time"`
	UserBuf  string `json:"userbuf_b64"`
	RoomID   uint32 `json:"roomid"`
	RoomStr  string `json:"roomstr"`
	Priv     uint32 `json:"priv"`
	Sig      string `json:"sig"`
	Document string `json:"document"`
}

func loadVectors(t testing.TB) []vector {
	t.Helper()
	var vs []vector
	readJSON(t, filepath.Join(testdata, "vectors.json"), &vs)
	if len(vs) == 0 {
		t.Fatal("no vectors")
	}
	return vs
}

func readJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// mint reproduces a vector with our minting functions.
func (v vector) mint(t testing.TB) string {
	t.Helper()
	p := Params{SDKAppID: v.AppID, Key: v.Key, UserID: v.User, Expire: v.Expire}
	now := time.Unix(v.Time, 0)
	switch v.Func {
	case "GenUserSig":
		return Gen(p, now)
	case "GenUserSigWithBuf":
		b, err := base64.StdEncoding.DecodeString(v.UserBuf)
		if err != nil {
			t.Fatal(err)
		}
		p.UserBuf = b
		return Gen(p, now)
	case "GenPrivateMapKey":
		return GenPrivateMapKey(p, v.RoomID, v.Priv, now)
	case "GenPrivateMapKeyWithStringRoomID":
		return GenPrivateMapKeyWithStringRoomID(p, v.RoomStr, v.Priv, now)
	}
	t.Fatalf("%s: unknown func %q", v.Name, v.Func)
	return ""
}

func TestVectorsMint(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			if got := v.mint(t); got != v.Sig {
				t.Errorf("Gen = %s\nwant  %s", got, v.Sig)
			}
			vf := NewVerifier(v.AppID, v.Key)
			if v.Func == "GenUserSig" || v.Func == "GenUserSigWithBuf" {
				var buf []byte
				if v.Func == "GenUserSigWithBuf" {
					buf, _ = base64.StdEncoding.DecodeString(v.UserBuf)
				}
				if got := vf.Gen(v.User, v.Expire, buf, time.Unix(v.Time, 0)); got != v.Sig {
					t.Errorf("Verifier.Gen = %s\nwant  %s", got, v.Sig)
				}
			}
		})
	}
}

func TestVectorsDecodeVerify(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			c, err := Decode(v.Sig)
			if err != nil {
				t.Fatal(err)
			}
			if c.Version != "2.0" || c.Identifier != v.User || c.SDKAppID != v.AppID || c.Time != v.Time || c.Expire != v.Expire || len(c.MAC) != 32 {
				t.Errorf("Decode = %+v", c)
			}
			end, ok := c.ExpiresAt()
			if !ok || end.Unix() != v.Time+v.Expire {
				t.Errorf("ExpiresAt = %v %v", end, ok)
			}
			pm, isPM := c.PrivMap()
			switch v.Func {
			case "GenPrivateMapKey", "GenPrivateMapKeyWithStringRoomID":
				want := PrivMap{UserID: v.User, SDKAppID: uint32(v.AppID), RoomID: v.RoomID, RoomStr: v.RoomStr,
					ExpireAt: uint32(v.Time + v.Expire), Privilege: v.Priv}
				if v.RoomStr != "" {
					want.Version = 1
				}
				if !isPM || pm != want {
					t.Errorf("PrivMap = %+v %v, want %+v", pm, isPM, want)
				}
				if !bytes.Equal(pm.Encode(), c.UserBuf) {
					t.Error("PrivMap.Encode does not round-trip")
				}
			case "GenUserSigWithBuf":
				if got := base64.StdEncoding.EncodeToString(c.UserBuf); got != v.UserBuf || !c.HasUserBuf {
					t.Errorf("UserBuf = %q", got)
				}
			default:
				if c.HasUserBuf || isPM {
					t.Error("unexpected userbuf")
				}
			}
			// Valid from before its time (no not-before check) to its last second.
			for _, now := range []int64{v.Time - 3600, v.Time, v.Time + v.Expire} {
				info, err := Verify(v.AppID, v.Key, v.User, v.Sig, time.Unix(now, 0))
				if err != nil {
					t.Errorf("Verify at %d: %v", now, err)
				}
				if info != (Info{Time: v.Time, Expire: v.Expire}) {
					t.Errorf("Info = %+v", info)
				}
			}
			wantCode(t, "one second late", CodeExpired, verifyAt(v, v.User, v.Time+v.Expire+1))
			wantCode(t, "other user", CodeUserMismatch, verifyAt(v, v.User+"x", v.Time))
			_, err = Verify(v.AppID+1, v.Key, v.User, v.Sig, time.Unix(v.Time, 0))
			wantCode(t, "other app", CodeAppMismatch, err)
			_, err = Verify(v.AppID, v.Key+"0", v.User, v.Sig, time.Unix(v.Time, 0))
			wantCode(t, "other key", CodeBadSignature, err)
		})
	}
}

func verifyAt(v vector, user string, now int64) error {
	_, err := NewVerifier(v.AppID, v.Key).Verify(user, v.Sig, time.Unix(now, 0))
	return err
}

func wantCode(t *testing.T, what string, code int, err error) {
	t.Helper()
	var e *Error
	if code == 0 {
		if err != nil {
			t.Errorf("%s: %v, want valid", what, err)
		}
		return
	}
	if !errors.As(err, &e) || e.Code != code {
		t.Errorf("%s: err = %v, want code %d", what, err, code)
	}
}

// fixture is a UserSig in one of the forms some official port or some
// attacker produces; code 0 means valid.
type fixture struct {
	Name  string `json:"name"`
	AppID uint64 `json:"appid"`
	User  string `json:"user"`
	Now   int64  `json:"now"`
	Sig   string `json:"sig"`
	Code  int    `json:"code"`
	Note  string `json:"note,omitempty"`
}

const fixtureKey = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"

func loadFixtures(t testing.TB) []fixture {
	var all, fs []fixture
	readJSON(t, filepath.Join(testdata, "czlib_fixtures.json"), &fs)
	all = append(all, fs...)
	fs = nil
	readJSON(t, filepath.Join(testdata, "go_fixtures.json"), &fs)
	return append(all, fs...)
}

func TestFixtures(t *testing.T) {
	fs := loadFixtures(t)
	if len(fs) < 40 {
		t.Fatalf("only %d fixtures", len(fs))
	}
	for _, f := range fs {
		t.Run(f.Name, func(t *testing.T) {
			info, err := NewVerifier(f.AppID, fixtureKey).Verify(f.User, f.Sig, time.Unix(f.Now, 0))
			wantCode(t, "Verify", f.Code, err)
			c, derr := Decode(f.Sig)
			if f.Code == CodeMalformed || f.Code == CodeEmpty {
				wantCode(t, "Decode", f.Code, derr)
				return
			}
			if derr != nil {
				t.Fatalf("Decode: %v", derr)
			}
			if f.Code == 0 && (c.Time != info.Time || c.Expire != info.Expire || c.Identifier != f.User) {
				t.Errorf("Decode = %+v, Verify = %+v", c, info)
			}
		})
	}
}

// goFixtures are the Go compress/zlib forms: every level, a sync flush
// mixing compressed and stored blocks, several stored blocks.
func goFixtures(t testing.TB) []fixture {
	const appID, user, tm = 1400000000, "gouser", 1700000000
	doc := func(user string) []byte {
		s := Gen(Params{SDKAppID: appID, Key: fixtureKey, UserID: user, Expire: 86400}, time.Unix(tm, 0))
		c, err := Decode(s)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(map[string]any{"TLS.ver": "2.0", "TLS.identifier": c.Identifier,
			"TLS.sdkappid": c.SDKAppID, "TLS.expire": c.Expire, "TLS.time": c.Time, "TLS.sig": c.MAC})
		return append(b, '\n')
	}
	z := func(level int, parts ...[]byte) string {
		var b bytes.Buffer
		w, err := zlib.NewWriterLevel(&b, level)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range parts {
			w.Write(p)
			if i < len(parts)-1 {
				w.Flush()
			}
		}
		w.Close()
		return sigEncoding.EncodeToString(b.Bytes())
	}
	d := doc(user)
	var fs []fixture
	add := func(name, u, sig string, code int, note string) {
		fs = append(fs, fixture{Name: name, AppID: appID, User: u, Now: tm + 100, Sig: sig, Code: code, Note: note})
	}
	for _, l := range []int{zlib.NoCompression, zlib.BestSpeed, zlib.DefaultCompression, 6, zlib.BestCompression, zlib.HuffmanOnly} {
		add("go-level"+strings.ReplaceAll(itoa(l), "-", "m"), user, z(l, d), 0, "Go compress/zlib, sorted keys")
	}
	add("go-flush-mixed", user, z(6, d[:40], d[40:]), 0, "compressed block, sync flush, more")
	add("go-stored-split", user, z(zlib.NoCompression, d[:40], d[40:80], d[80:]), 0, "three stored blocks")
	add("go-html-escaped-user", "a<b>&c", z(6, doc("a<b>&c")), 0, "\\u003c escapes")
	add("go-invalid-utf8-user", "a\xffb", z(6, doc("a\xffb")), CodeBadSignature, "encoding/json replaces bad UTF-8 with U+FFFD: identifier differs")
	add("go-std-alphabet", user, base64.StdEncoding.EncodeToString(mustRaw(t, z(0, d))), 0, "+/= alphabet, accepted like the official decoder")
	add("go-not-base64", user, "eAE!", CodeMalformed, "")
	add("go-too-long", user, strings.Repeat("A", MaxLen+4), CodeMalformed, "")
	add("go-empty", user, "", CodeEmpty, "")
	return fs
}

func mustRaw(t testing.TB, s string) []byte {
	b, err := sigEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// TestGoFixtures checks go_fixtures.json is what goFixtures makes now;
// `go test ./pkg/sig -run TestGoFixtures -update` rewrites it.
func TestGoFixtures(t *testing.T) {
	path := filepath.Join(testdata, "go_fixtures.json")
	b, err := json.MarshalIndent(goFixtures(t), "", " ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	if *update {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(old, b) {
		t.Error("go_fixtures.json is stale: go test ./pkg/sig -run TestGoFixtures -update")
	}
}
