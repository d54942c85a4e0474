package redis_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	rstore "chatctl/pkg/server/store/redis"
	"chatctl/pkg/wire"
)

// The policy of pkg/server/registry.go's attach, applied across nodes.
func TestAttachPolicy(t *testing.T) {
	ctx := context.Background()
	ns, _ := openNodes(t, 2, "node1", "node2")
	n1, n2 := ns[0], ns[1]
	exp := time.Now().Add(time.Hour).Unix()
	base := time.Now().Add(-time.Minute)
	const (
		web, iphone, pc = 7, 1, 3
		acct, dev       = wire.KickMultipleAccount, wire.KickMultipleDevice
	)
	type login struct {
		inst uint64
		node string
		plat int
	}
	type want map[uint64]int // victim inst -> KickType
	cases := []struct {
		name   string
		policy rstore.Policy
		steps  []login
		wants  []want // victims of each step
	}{
		{"web limit 1 kicks the older across nodes", rstore.Policy{WebInstances: 1},
			[]login{{1, "node1", web}, {2, "node2", web}},
			[]want{{}, {1: acct}}},
		{"web limit 2 kicks the oldest", rstore.Policy{WebInstances: 2},
			[]login{{1, "node1", web}, {2, "node2", web}, {3, "node1", web}},
			[]want{{}, {}, {1: acct}}},
		{"same platform kicks multipleDevice", rstore.Policy{WebInstances: 1},
			[]login{{1, "node1", iphone}, {2, "node2", iphone}},
			[]want{{}, {1: dev}}},
		{"multi: platforms coexist", rstore.Policy{WebInstances: 1},
			[]login{{1, "node1", web}, {2, "node2", iphone}, {3, "node1", pc}},
			[]want{{}, {}, {}}},
		{"single: any other platform is kicked", rstore.Policy{WebInstances: 1, SingleDevice: true},
			[]login{{1, "node1", web}, {2, "node2", iphone}, {3, "node1", pc}},
			[]want{{}, {1: dev}, {2: dev}}},
		{"single + web limit", rstore.Policy{WebInstances: 1, SingleDevice: true},
			[]login{{1, "node1", iphone}, {2, "node2", web}, {3, "node1", web}},
			[]want{{}, {1: dev}, {2: acct}}},
		{"a re-attach of the same instance kicks nobody", rstore.Policy{WebInstances: 1},
			[]login{{1, "node1", web}, {1, "node2", web}},
			[]want{{}, {}}},
	}
	for ci, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			user := fmt.Sprint("u", ci)
			live := map[uint64]bool{}
			for i, st := range c.steps {
				s := map[string]*rstore.Store{"node1": n1, "node2": n2}[st.node]
				in := rstore.Instance{InstID: st.inst, Node: st.node, Platform: st.plat, LoginAt: base.Add(time.Duration(i) * time.Second), Expires: exp}
				c.policy.DetachedFor = time.Minute
				victims, err := s.Attach(ctx, 1, user, in, c.policy)
				if err != nil {
					t.Fatal(err)
				}
				got := want{}
				for _, v := range victims {
					got[v.InstID] = v.KickType
					delete(live, v.InstID)
				}
				if fmt.Sprint(got) != fmt.Sprint(c.wants[i]) {
					t.Fatalf("step %d: victims %v, want %v", i, got, c.wants[i])
				}
				live[st.inst] = true
			}
			// Both nodes see exactly the survivors.
			for _, s := range []*rstore.Store{n1, n2} {
				ins, err := s.Instances(ctx, 1, user)
				if err != nil {
					t.Fatal(err)
				}
				var ids, wantIDs []uint64
				for _, in := range ins {
					ids = append(ids, in.InstID)
				}
				for id := range live {
					wantIDs = append(wantIDs, id)
				}
				slices.Sort(wantIDs)
				if !slices.Equal(ids, wantIDs) {
					t.Fatalf("instances %v, want %v", ids, wantIDs)
				}
			}
		})
	}

	// Gone for good: a dead node's instance and one detached for too long
	// are dropped, not kicked.
	if err := n1.NodeHeartbeat(ctx, "node3", time.Minute); err != nil {
		t.Fatal(err)
	}
	p := rstore.Policy{WebInstances: 1, DetachedFor: time.Second}
	must := func(v []rstore.Victim, err error) []rstore.Victim {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	must(n1.Attach(ctx, 1, "gone", rstore.Instance{InstID: 1, Node: "node3", Platform: web, LoginAt: base, Expires: exp}, p))
	must(n1.Attach(ctx, 1, "gone", rstore.Instance{InstID: 2, Node: "node1", Platform: iphone, LoginAt: base, Expires: exp,
		Detached: time.Now().Add(-time.Minute)}, p))
	if err := n1.NodeLeave(ctx, "node3"); err != nil {
		t.Fatal(err)
	}
	if v := must(n2.Attach(ctx, 1, "gone", rstore.Instance{InstID: 3, Node: "node2", Platform: web, LoginAt: base, Expires: exp}, p)); len(v) != 0 {
		t.Fatalf("dead node's instance kicked: %+v", v)
	}
	if v := must(n2.Attach(ctx, 1, "gone", rstore.Instance{InstID: 4, Node: "node2", Platform: iphone, LoginAt: base, Expires: exp}, p)); len(v) != 0 {
		t.Fatalf("long-detached instance kicked: %+v", v)
	}
	ins, _ := n1.Instances(ctx, 1, "gone")
	if len(ins) != 2 || ins[0].InstID != 3 || ins[1].InstID != 4 {
		t.Fatalf("instances %+v; want 3 and 4", ins)
	}
	if _, err := n1.Attach(ctx, 1, "x", rstore.Instance{InstID: 1, Node: "node1", Platform: web, Expires: exp}, rstore.Policy{}); err == nil {
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
				v, err := s.Attach(ctx, 1, "alice", rstore.Instance{InstID: id, Node: fmt.Sprint("n", i), Platform: 7, LoginAt: time.Now(), Expires: exp},
					rstore.Policy{WebInstances: 1, DetachedFor: time.Minute})
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
