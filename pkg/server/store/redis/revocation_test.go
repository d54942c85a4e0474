package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"chatctl/pkg/server/store"
)

// The one table of revocation values that Go (Revoked) and the attach
// script read: each value, as another tool with access to Redis may write
// it, is read the same way by both. A value RevokeInstance cannot have
// written is malformed and fails each of them until a new revocation
// replaces it. It used to be read two ways: Go refused 2^63 and took
// "-1:", Lua took 2^63 (a revocation for ever) and ignored "-1:".
func TestCorruptRevocation(t *testing.T) {
	ctx := context.Background()
	ns, prefix := openNodes(t, 1, "node1")
	s := ns[0]
	pol := store.Policy{WebInstances: 10, DetachedFor: time.Minute}
	now := time.Now().UnixMilli()
	future := fmt.Sprint(now + time.Hour.Milliseconds())
	const (
		malformed = iota
		running
		ended
	)
	for i, c := range []struct {
		value string
		want  int
	}{
		{future + ":multipleAccount", running},
		{future + ":", running},
		{future + ":a:b", running},
		{"0" + future + ":x", running},
		{"1:x", ended},
		{fmt.Sprint(now-1000) + ":x", ended},
		{"9007199254740991:x", running},
		{"9007199254740992:x", malformed}, // 2^53
		{"9223372036854775808:x", malformed},
		{"00000000000000001:x", malformed}, // 17 digits
		{"0:x", malformed},
		{"-1:x", malformed},
		{"+" + future + ":x", malformed},
		{" " + future + ":x", malformed},
		{future, malformed},
		{":x", malformed},
		{"", malformed},
		{strings.Repeat("9", 1000) + ":x", malformed},
		{future + ":" + strings.Repeat("r", 5000), running}, // its reason read cut to 64 bytes
	} {
		inst := uint64(100 + i)
		if err := s.Client().Set(ctx, fmt.Sprintf("%s{1}:rev:%d", prefix, inst), c.value, time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
		// Go.
		why, revoked, err := s.Revoked(ctx, 1, inst)
		switch {
		case c.want == malformed && (err == nil || errors.Is(err, store.ErrUnavailable) || strings.Contains(err.Error(), c.value[:min(len(c.value), 20)]) && c.value != ""):
			t.Errorf("%q: Revoked = %v; want an error (malformed) that does not quote the value", c.value, err)
		case c.want != malformed && (err != nil || revoked != (c.want == running)):
			t.Errorf("%q: Revoked = %q, %v, %v; want revoked %v", c.value, why, revoked, err, c.want == running)
		case c.want == running && why != trunc(c.value[strings.Index(c.value, ":")+1:], 64):
			t.Errorf("%q: Revoked's reason %q", c.value, why)
		}
		// Lua.
		user := fmt.Sprint("r", i)
		_, err = s.Attach(ctx, on(1, user, store.Instance{InstID: inst, Node: "node1", Platform: 7, LoginAt: time.Now(), Expires: time.Now().Add(time.Hour).Unix()}), pol)
		var re *store.RevokedError
		switch c.want {
		case malformed:
			if err == nil || errors.Is(err, store.ErrUnavailable) || errors.As(err, &re) {
				t.Errorf("%q: Attach = %v; want an error (malformed)", c.value, err)
			}
		case running:
			if !errors.As(err, &re) || re.Reason != why {
				t.Errorf("%q: Attach = %v; want revoked (%q)", c.value, err, why)
			}
		case ended:
			if err != nil {
				t.Errorf("%q: Attach = %v; want attached", c.value, err)
			}
		}
		if n, err := s.Client().HLen(ctx, prefix+"{1}:on:"+user).Result(); err != nil || (n == 1) != (c.want == ended) {
			t.Errorf("%q: %d entries written, %v", c.value, n, err)
		}
		// A new revocation replaces a malformed one; a valid one only
		// moves forward.
		later := time.UnixMilli(now + 2*time.Hour.Milliseconds())
		if err := s.RevokeInstance(ctx, 1, inst, later, "REST_API_Kick"); err != nil {
			t.Errorf("%q: RevokeInstance: %v", c.value, err)
		}
		want := "REST_API_Kick"
		if strings.HasPrefix(c.value, "9007199254740991:") { // runs longer still
			want = "x"
		}
		if why, revoked, err := s.Revoked(ctx, 1, inst); err != nil || !revoked || why != want {
			t.Errorf("%q: after a later revocation, Revoked = %q, %v, %v; want %q", c.value, why, revoked, err, want)
		}
	}
}

func trunc(s string, n int) string { return s[:min(len(s), n)] }
