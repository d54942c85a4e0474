package redis_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"chatctl/pkg/server/store"
)

// The one table of kick watermark scores that Go (KickWatermark,
// LoginAccount) and the scripts (Attach, RestoreInstance) read: each
// score, as another tool with access to Redis may write it, is read the
// same way by all four. A score SetKickWatermark cannot have written is
// corrupt and fails each of them (70500, not 70169: retrying does not
// help) until a REST kick (SetKickWatermark) replaces it. It used to be read two ways: +inf was MinInt64 ("never kicked")
// in Go and infinity ("kicked") in Lua, so every login of the user was
// answered, then kicked REST_API_Kick at once.
var watermarkScores = []struct {
	score string
	ms    int64 // the watermark read; 0: corrupt
}{
	{"1", 1},
	{"1700000000123", 1_700_000_000_123},
	{"9007199254740991", 1<<53 - 1},
	{"+inf", 0},
	{"-inf", 0},
	{"9223372036854775808", 0}, // 2^63: int64() of it is MinInt64 on amd64
	{"1e300", 0},
	{"9007199254740992", 0}, // 2^53: past what SetKickWatermark takes
	{"1700000000123.5", 0},
	{"0", 0},
	{"-1700000000123", 0},
}

func TestCorruptWatermark(t *testing.T) {
	ctx := context.Background()
	ns, prefix := openNodes(t, 1, "node1")
	s := ns[0]
	pol := store.Policy{WebInstances: 10, DetachedFor: time.Minute}
	exp := time.Now().Add(time.Hour).Unix()
	id := uint64(0)
	for i, c := range watermarkScores {
		user := fmt.Sprint("w", i)
		if err := s.Client().Do(ctx, "ZADD", prefix+"{1}:wm", c.score, user).Err(); err != nil {
			t.Fatalf("ZADD %s: %v", c.score, err)
		}
		corrupt := func(what string, err error) {
			t.Helper()
			if err == nil || errors.Is(err, store.ErrUnavailable) {
				t.Errorf("score %s: %s: %v; want an error (corrupt), not store.ErrUnavailable", c.score, what, err)
			}
		}
		// Go.
		ms, err := s.KickWatermark(ctx, 1, user)
		if c.ms == 0 {
			corrupt("KickWatermark", err)
		} else if err != nil || ms != c.ms {
			t.Errorf("score %s: KickWatermark = %d, %v; want %d", c.score, ms, err, c.ms)
		}
		var seen []int64
		_, err = s.LoginAccount(ctx, 1, user, time.Now(), func(wm int64) bool { seen = append(seen, wm); return true })
		if c.ms == 0 {
			corrupt("LoginAccount", err)
			if len(seen) != 0 {
				t.Errorf("score %s: LoginAccount's admit saw %v", c.score, seen)
			}
		} else if err != nil || len(seen) != 1 || seen[0] != c.ms {
			t.Errorf("score %s: LoginAccount: admit saw %v, %v; want [%d]", c.score, seen, err, c.ms)
		}
		// Lua: an A2Key issued just before, at and after the watermark.
		issued := []int64{1_700_000_000_000}
		if c.ms != 0 {
			issued = []int64{c.ms - 1, c.ms, c.ms + 1}
		}
		for _, at := range issued {
			id++
			in := on(1, user, store.Instance{InstID: id, Node: "node1", Platform: 7, LoginAt: time.UnixMilli(at), Expires: exp})
			v, err := s.Attach(ctx, in, pol)
			if c.ms == 0 {
				corrupt("Attach", err)
			} else if kicked := len(v) == 1 && v[0].InstID == id && v[0].KickType == 3; err != nil || kicked != store.A2Kicked(c.ms, at) {
				t.Errorf("score %s: Attach of an A2Key issued at %d = %+v, %v; want kicked REST_API_Kick: %v", c.score, at, v, err, store.A2Kicked(c.ms, at))
			}
			id++
			in.InstID = id
			n, err := s.RestoreInstance(ctx, in, pol)
			if c.ms == 0 {
				corrupt("RestoreInstance", err)
			} else if err != nil || (n == 3) != store.A2Kicked(c.ms, at) {
				t.Errorf("score %s: RestoreInstance of an A2Key issued at %d = %d, %v; want 3: %v", c.score, at, n, err, store.A2Kicked(c.ms, at))
			}
		}
		if c.ms == 0 {
			if n, err := s.Client().HLen(ctx, prefix+"{1}:on:"+user).Result(); err != nil || n != 0 {
				t.Errorf("score %s: %d entries written, %v; want none", c.score, n, err)
			}
		}
		// A REST kick replaces a corrupt watermark; a valid one only
		// moves forward.
		kick := int64(1_700_000_000_500)
		if err := s.SetKickWatermark(ctx, 1, user, kick); err != nil {
			t.Errorf("score %s: SetKickWatermark: %v", c.score, err)
		}
		if ms, err := s.KickWatermark(ctx, 1, user); err != nil || ms != max(c.ms, kick) {
			t.Errorf("score %s: after a kick at %d, KickWatermark = %d, %v; want %d", c.score, kick, ms, err, max(c.ms, kick))
		}
	}
}
