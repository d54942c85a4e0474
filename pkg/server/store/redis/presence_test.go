package redis_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"chatctl/pkg/server/store"
	rstore "chatctl/pkg/server/store/redis"
	"chatctl/pkg/server/store/redis/redistest"
)

// openNodes opens k stores (nodes) sharing one fresh key prefix of the
// test's Redis, closed when the test ends, and starts, for a minute, the
// heartbeat of each node named in live: the entries of those nodes count,
// those of any other node are a dead node's. It returns the stores and
// the prefix.
func openNodes(t *testing.T, k int, live ...string) ([]*rstore.Store, string) {
	t.Helper()
	url := redistest.URL(t)
	prefix := redistest.Prefix(t, url)
	ss := make([]*rstore.Store, k)
	for i := range ss {
		ss[i] = open(t, url, prefix)
		t.Cleanup(func() { ss[i].Close() })
	}
	for _, n := range live {
		if _, err := ss[0].NodeHeartbeat(context.Background(), n, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	return ss, prefix
}

// NodeHeartbeat says when the node's mark was gone before it: at the first
// call, after its TTL ran out, after NodeLeave; not while it is renewed.
func TestNodeHeartbeatLapsed(t *testing.T) {
	ctx := context.Background()
	ns, _ := openNodes(t, 1)
	s := ns[0]
	beat := func(ttl time.Duration, want bool) {
		t.Helper()
		if lapsed, err := s.NodeHeartbeat(ctx, "n", ttl); err != nil || lapsed != want {
			t.Fatalf("NodeHeartbeat: lapsed %v, %v; want %v", lapsed, err, want)
		}
	}
	beat(time.Minute, true)
	beat(100*time.Millisecond, false)
	time.Sleep(250 * time.Millisecond) // past the TTL: Redis reads the key as gone
	beat(time.Minute, true)
	beat(time.Minute, false)
	if err := s.NodeLeave(ctx, "n"); err != nil {
		t.Fatal(err)
	}
	beat(time.Minute, true)
}

func TestPresence(t *testing.T) {
	ctx := context.Background()
	ns, prefix := openNodes(t, 2, "node1")
	n1, n2 := ns[0], ns[1]
	exp := time.Now().Add(time.Hour).Unix()
	login := time.UnixMilli(time.Now().UnixMilli())
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := n2.NodeHeartbeat(ctx, "node2", 300*time.Millisecond) // node 2 soon dies
	must(err)
	a := store.Instance{InstID: 11, Node: "node1", Platform: 7, LoginAt: login, Expires: exp}
	b := store.Instance{InstID: 22, Node: "node2", Platform: 2, LoginAt: login.Add(time.Second), Expires: exp + 60, Detached: login.Add(2 * time.Second)}
	must(n1.PutInstance(ctx, on(1, "alice", a)))
	must(n2.PutInstance(ctx, on(1, "alice", b)))
	// Both nodes see both instances.
	for i, s := range []*rstore.Store{n1, n2} {
		got, err := s.Instances(ctx, 1, "alice")
		must(err)
		if len(got) != 2 || !equal(got[0], on(1, "alice", a)) || !equal(got[1], on(1, "alice", b)) {
			t.Fatalf("node %d sees %+v", i+1, got)
		}
	}
	// The hash expires with the latest UserSig.
	at, err := n1.Client().PExpireTime(ctx, prefix+"{1}:on:alice").Result()
	must(err)
	if at.Milliseconds() != (exp+61)*1000 {
		t.Fatalf("presence expires at %d, want %d", at.Milliseconds(), (exp+61)*1000)
	}
	// Node 2 stops its heartbeat (dies): its instance vanishes within its TTL.
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := n1.Instances(ctx, 1, "alice")
		must(err)
		if len(got) == 1 && got[0].InstID == 11 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a dead node's instance is still listed: %+v", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// and was deleted from the hash.
	if n, _ := n1.Client().HLen(ctx, prefix+"{1}:on:alice").Result(); n != 1 {
		t.Fatalf("hash has %d entries after the cleanup, want 1", n)
	}
	must(n1.RemoveInstance(ctx, 1, "alice", 11))
	if got, _ := n2.Instances(ctx, 1, "alice"); len(got) != 0 {
		t.Fatalf("after remove: %+v", got)
	}
	// A clean leave hides a node at once.
	must(n1.PutInstance(ctx, on(1, "bob", a)))
	must(n1.NodeLeave(ctx, "node1"))
	if got, _ := n2.Instances(ctx, 1, "bob"); len(got) != 0 {
		t.Fatalf("after leave: %+v", got)
	}
	pol := store.Policy{WebInstances: 1, DetachedFor: time.Minute}
	if _, err := n1.Attach(ctx, on(1, "bob", store.Instance{InstID: 1, Node: "a|b", Expires: exp}), pol); err == nil {
		t.Fatal("a node name with | was accepted")
	}
	n1.Close()
	if _, err := n1.Attach(ctx, on(1, "bob", a), pol); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("after Close: %v", err)
	}
}

// on is in as an instance of app's user.
func on(app uint64, user string, in store.Instance) store.Instance {
	in.App, in.User = app, user
	return in
}

func equal(a, b store.Instance) bool {
	return a.App == b.App && a.User == b.User && a.InstID == b.InstID && a.Node == b.Node && a.Platform == b.Platform &&
		a.LoginAt.Equal(b.LoginAt) && a.Expires == b.Expires && a.Detached.Equal(b.Detached)
}

// DetachInstance marks an entry detached only while the node still holds
// it: a reconnect on another node that took the instance over first is not
// overwritten by the old node noticing its socket is gone.
func TestDetachInstance(t *testing.T) {
	ctx := context.Background()
	ns, _ := openNodes(t, 1, "n1", "n2")
	st := ns[0]
	login := time.UnixMilli(time.Now().UnixMilli())
	in := store.Instance{InstID: 5, Node: "n1", Platform: 7, LoginAt: login, Expires: time.Now().Add(time.Hour).Unix()}
	if err := st.PutInstance(ctx, on(1, "alice", in)); err != nil {
		t.Fatal(err)
	}
	at := login.Add(time.Second)
	if ok, err := st.DetachInstance(ctx, 1, "alice", 5, "n2", at); ok || err != nil {
		t.Fatalf("detach by a node that does not hold it: %v %v", ok, err)
	}
	if ok, err := st.DetachInstance(ctx, 1, "alice", 6, "n1", at); ok || err != nil {
		t.Fatalf("detach of an unknown instance: %v %v", ok, err)
	}
	if ok, err := st.DetachInstance(ctx, 1, "alice", 5, "n1", at); !ok || err != nil {
		t.Fatalf("detach by its node: %v %v", ok, err)
	}
	got, err := st.Instances(ctx, 1, "alice")
	if err != nil || len(got) != 1 || !got[0].Detached.Equal(at) || got[0].Node != "n1" {
		t.Fatalf("after detach: %+v %v", got, err)
	}
	// Detached again (a second socket of it closing later): the later time.
	if ok, err := st.DetachInstance(ctx, 1, "alice", 5, "n1", at.Add(time.Second)); !ok || err != nil {
		t.Fatalf("second detach by its node: %v %v", ok, err)
	}
	got, err = st.Instances(ctx, 1, "alice")
	if err != nil || len(got) != 1 || !got[0].Detached.Equal(at.Add(time.Second)) || got[0].Platform != 7 || !got[0].LoginAt.Equal(login) {
		t.Fatalf("after the second detach: %+v %v", got, err)
	}
	// n2 takes it over (a reconnect): n1's late detach changes nothing.
	in.Node = "n2"
	if err := st.PutInstance(ctx, on(1, "alice", in)); err != nil {
		t.Fatal(err)
	}
	if ok, err := st.DetachInstance(ctx, 1, "alice", 5, "n1", at.Add(time.Second)); ok || err != nil {
		t.Fatalf("late detach by the old node: %v %v", ok, err)
	}
	got, err = st.Instances(ctx, 1, "alice")
	if err != nil || len(got) != 1 || !got[0].Detached.IsZero() || got[0].Node != "n2" {
		t.Fatalf("after the old node's late detach: %+v %v", got, err)
	}
}

// RestoreInstance writes a node's own entry back, but never one another
// node holds now.
func TestRestoreInstance(t *testing.T) {
	ctx := context.Background()
	ns, _ := openNodes(t, 1, "n1", "n2")
	st := ns[0]
	pol := store.Policy{WebInstances: 1, DetachedFor: time.Minute}
	in := store.Instance{InstID: 7, Node: "n1", Platform: 2, LoginAt: time.UnixMilli(time.Now().UnixMilli()),
		Expires: time.Now().Add(time.Hour).Unix()}
	if r, err := st.RestoreInstance(ctx, on(1, "alice", in), pol); r != rstore.Restored || err != nil { // absent: written
		t.Fatalf("restore of a lost entry: %v %v", r, err)
	}
	if r, err := st.RestoreInstance(ctx, on(1, "alice", in), pol); r != rstore.Restored || err != nil { // its own: written
		t.Fatalf("restore of its own entry: %v %v", r, err)
	}
	other := in
	other.Node = "n2"
	if err := st.PutInstance(ctx, on(1, "alice", other)); err != nil {
		t.Fatal(err)
	}
	if r, err := st.RestoreInstance(ctx, on(1, "alice", in), pol); r != rstore.HeldElsewhere || err != nil {
		t.Fatalf("restore over another node's entry: %v %v", r, err)
	}
	got, err := st.Instances(ctx, 1, "alice")
	if err != nil || len(got) != 1 || got[0].Node != "n2" {
		t.Fatalf("after the refused restore: %+v %v", got, err)
	}
	// RemoveOwnInstance leaves another node's entry alone, deletes its own.
	if ok, err := st.RemoveOwnInstance(ctx, 1, "alice", 7, "n1"); ok || err != nil {
		t.Fatalf("remove of another node's entry: %v %v", ok, err)
	}
	if ok, err := st.RemoveOwnInstance(ctx, 1, "alice", 7, "n2"); !ok || err != nil {
		t.Fatalf("remove of its own entry: %v %v", ok, err)
	}
	if got, err := st.Instances(ctx, 1, "alice"); err != nil || len(got) != 0 {
		t.Fatalf("after the removal: %+v %v", got, err)
	}
	// A REST kick later than the instance's A2Key: kicked (3), its own entry
	// deleted; one issued after the kick is restored.
	if r, err := st.RestoreInstance(ctx, on(1, "alice", in), pol); r != rstore.Restored || err != nil {
		t.Fatal(r, err)
	}
	if err := st.SetKickWatermark(ctx, 1, "alice", in.LoginAt.UnixMilli()+1); err != nil {
		t.Fatal(err)
	}
	if r, err := st.RestoreInstance(ctx, on(1, "alice", in), pol); r != 3 || err != nil {
		t.Fatalf("restore of an instance older than the REST kick: %v %v, want 3", r, err)
	}
	if got, err := st.Instances(ctx, 1, "alice"); err != nil || len(got) != 0 {
		t.Fatalf("after the REST-kicked restore: %+v %v", got, err)
	}
	newer := in
	newer.InstID, newer.LoginAt = 8, in.LoginAt.Add(time.Second)
	if r, err := st.RestoreInstance(ctx, on(1, "alice", newer), pol); r != rstore.Restored || err != nil {
		t.Fatalf("restore of an instance newer than the REST kick: %v %v", r, err)
	}
}

// A node's sweep of a dead node's entries never deletes an entry that
// another node rewrote meanwhile: here node B takes over instance W of a
// dead node while node C lists the user (which drops dead entries). Before
// the sweep compared values, about 3 rounds in 10 lost B's entry.
func TestInstancesSweepKeepsTakenOver(t *testing.T) {
	ctx := context.Background()
	ns, _ := openNodes(t, 2, "nodeB") // node A is dead
	b, c := ns[0], ns[1]
	exp := time.Now().Add(time.Hour).Unix()
	login := time.UnixMilli(time.Now().UnixMilli())
	for round := range 200 {
		user := "w" + strconv.Itoa(round)
		w := store.Instance{InstID: 7, Node: "deadA", Platform: 7, LoginAt: login, Expires: exp}
		if err := b.PutInstance(ctx, on(1, user, w)); err != nil {
			t.Fatal(err)
		}
		w.Node = "nodeB"
		done := make(chan error, 1)
		go func() { _, err := c.Instances(ctx, 1, user); done <- err }()
		if err := b.PutInstance(ctx, on(1, user, w)); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		got, err := b.Instances(ctx, 1, user)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Node != "nodeB" {
			t.Fatalf("round %d: node B's entry was swept: %+v", round, got)
		}
	}
}

// A REST kick removes the instances it listed, not one written since.
func TestRemoveInstances(t *testing.T) {
	ctx := context.Background()
	ns, _ := openNodes(t, 1, "n")
	s := ns[0]
	exp := time.Now().Add(time.Hour).Unix()
	for _, id := range []uint64{1, 2, 3} {
		if err := s.PutInstance(ctx, on(1, "bob", store.Instance{InstID: id, Node: "n", Platform: 7, LoginAt: time.UnixMilli(1), Expires: exp})); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RemoveInstances(ctx, 1, "bob", []uint64{1, 3}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Instances(ctx, 1, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].InstID != 2 {
		t.Fatalf("left %+v, want instance 2 only", got)
	}
	if err := s.RemoveInstances(ctx, 1, "bob", nil); err != nil {
		t.Fatal(err)
	}
}

// Of several nodes acknowledging one kick at once, exactly one is first
// (it pushes the kick again; the others do not).
func TestAckKickOnce(t *testing.T) {
	ctx := context.Background()
	ns, _ := openNodes(t, 2)
	a, b := ns[0], ns[1]
	for inst := uint64(1); inst <= 50; inst++ {
		if err := a.RevokeInstance(ctx, 1, inst, time.Now().Add(time.Hour), "multipleAccount"); err != nil {
			t.Fatal(err)
		}
		res := make(chan bool, 4)
		for _, s := range []*rstore.Store{a, b, a, b} {
			go func() {
				already, err := s.AckKick(ctx, 1, inst)
				if err != nil {
					t.Error(err)
				}
				res <- already
			}()
		}
		first := 0
		for range 4 {
			if !<-res {
				first++
			}
		}
		if first != 1 {
			t.Fatalf("instance %d: %d nodes were first to acknowledge", inst, first)
		}
	}
}
