package redis_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"chatctl/pkg/server/store"
)

// The multi-instance policy's table is pkg/server/presencetest's, which
// pkg/server/cluster runs on Redis. Attach refuses a policy without a Web
// instance.
func TestAttachBadPolicy(t *testing.T) {
	ns, _ := openNodes(t, 1, "node1")
	exp := time.Now().Add(time.Hour).Unix()
	if _, err := ns[0].Attach(context.Background(), on(1, "x", store.Instance{InstID: 1, Node: "node1", Platform: 7, Expires: exp}), store.Policy{}); err == nil {
		t.Fatal("a policy with WebInstances 0 was accepted")
	}
}

// Concurrent Web logins of one user on two nodes with WebInstances 1:
// whatever the interleaving, exactly one instance survives and every other
// was a victim exactly once.
func TestAttachConcurrent(t *testing.T) {
	ctx := context.Background()
	nodes, _ := openNodes(t, 2, "n0", "n1")
	exp := time.Now().Add(time.Hour).Unix()
	const each = 50
	kicked := make(chan uint64, 2*each)
	errs := make(chan error, 2)
	for i, s := range nodes {
		go func() {
			for j := range each {
				id := uint64(i*each + j + 1)
				v, err := s.Attach(ctx, on(1, "alice", store.Instance{InstID: id, Node: fmt.Sprint("n", i), Platform: 7, LoginAt: time.Now(), Expires: exp}), store.Policy{WebInstances: 1, DetachedFor: time.Minute})
				if err != nil {
					errs <- err
					return
				}
				for _, k := range v {
					kicked <- k.InstID
				}
			}
			errs <- nil
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	close(kicked)
	seen := map[uint64]bool{}
	for id := range kicked {
		if seen[id] {
			t.Fatalf("instance %d kicked twice", id)
		}
		seen[id] = true
	}
	ins, err := nodes[0].Instances(ctx, 1, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != 1 || seen[ins[0].InstID] || len(seen) != 2*each-1 {
		t.Fatalf("survivors %+v, %d kicked; want one survivor and %d kicked", ins, len(seen), 2*each-1)
	}
}

// A user's hash holding thousands of entries that Attach deletes (long
// detached ones, as another tool with access to Redis may write them or as
// they may pile up; or live Web ones past WebInstances, its victims):
// Attach deletes them all and attaches. Lua's unpack takes some 8,000
// values at most, so one HDEL of them all failed every login of the user.
func TestAttachManyDeleted(t *testing.T) {
	ctx := context.Background()
	ns, prefix := openNodes(t, 1, "node1")
	s := ns[0]
	const many = 9000
	exp := time.Now().Add(time.Hour).Unix()
	for _, c := range []struct {
		user, value string
		victims     int
	}{
		{"detached", "node1|7|1000|4102444800|1000", 0},
		{"webs", fmt.Sprintf("node1|7|1000|%d", exp), many},
	} {
		key := prefix + "{1}:on:" + c.user
		err := s.Client().Eval(ctx, `for i = 1, tonumber(ARGV[2]) do redis.call('HSET', KEYS[1], tostring(1000 + i), ARGV[1]) end return 1`,
			[]string{key}, c.value, many).Err()
		if err != nil {
			t.Fatal(err)
		}
		v, err := s.Attach(ctx, on(1, c.user, store.Instance{InstID: 1, Node: "node1", Platform: 7, LoginAt: time.Now(), Expires: exp}), store.Policy{WebInstances: 1, DetachedFor: time.Minute})
		if err != nil || len(v) != c.victims {
			t.Fatalf("%s: Attach next to %d such entries = %d victims, %v; want attached, %d victims", c.user, many, len(v), err, c.victims)
		}
		if n, err := s.Client().HLen(ctx, key).Result(); err != nil || n != 1 {
			t.Fatalf("%s: hash holds %d entries, %v; want the new one alone", c.user, n, err)
		}
	}
}
