package secretscan

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"chatctl/pkg/sig"
)

func TestScanFindsUserSigsAndA2Keys(t *testing.T) {
	s := sig.Gen(sig.Params{SDKAppID: 1400000000, Key: "k", UserID: "alice", Expire: 60}, time.Now())
	payload := append([]byte{1}, make([]byte, 45)...)
	a2 := base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 20))
	text := "ok\n" +
		`{"msg":"login","usersig":"` + s + `"}` + "\n" +
		"a2=" + a2 + " tail\n" +
		"sig with std alphabet: " + strings.NewReplacer("*", "+", "-", "/", "_", "=").Replace(s) + "\n"
	got, err := Scan(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	want := []Finding{{2, "UserSig", ""}, {3, "A2Key", ""}, {4, "UserSig", ""}}
	if len(got) != len(want) {
		t.Fatalf("findings %v, want %d", got, len(want))
	}
	for i, f := range got {
		if f.Line != want[i].Line || f.Kind != want[i].Kind {
			t.Errorf("finding %d = %v, want line %d %s", i, f, want[i].Line, want[i].Kind)
		}
		if strings.Contains(f.String(), s) || strings.Contains(f.String(), a2) {
			t.Errorf("a finding repeats the secret: %v", f)
		}
	}
}

func TestScanIgnoresLookalikes(t *testing.T) {
	text := "instanceid=c97fc8705a84a405b17f7bd617c77e6e\n" +
		"tiny 144115366931907524 " + strings.Repeat("e", 120) + "\n" +
		"a2 with version 2: " + base64.RawURLEncoding.EncodeToString(append([]byte{2}, make([]byte, 45)...)) + "." + strings.Repeat("A", 27) + "\n" +
		"--- PASS: TestX (0.00s)\n"
	got, err := Scan(strings.NewReader(text))
	if err != nil || len(got) != 0 {
		t.Fatalf("Scan = %v, %v; want nothing", got, err)
	}
}
