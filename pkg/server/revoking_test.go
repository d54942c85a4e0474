package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"path/filepath"
	"testing"
	"time"

	"chatctl/pkg/server/store"
	"chatctl/pkg/server/store/bolt"
	"chatctl/pkg/wire"
)

// blockedRevokes is a store whose RevokeInstance waits for release: the
// commit a kicked SDK's a2 re-login can outrun.
type blockedRevokes struct {
	store.Store
	entered, release chan struct{}
}

func (b *blockedRevokes) RevokeInstance(ctx context.Context, app, inst uint64, until time.Time, reason string) error {
	b.entered <- struct{}{}
	<-b.release
	return b.Store.RevokeInstance(ctx, app, inst, until, reason)
}

// From a kick's push until its revocation is committed, the instance reads
// as revoked (revokingReason, which loginA2 checks before the store); then
// the store says so, and the mark is gone.
func TestKickMarksRevokingUntilCommitted(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), StoreFile))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	b := &blockedRevokes{Store: st, entered: make(chan struct{}), release: make(chan struct{})}
	key := make([]byte, 16)
	rand.Read(key)
	s, err := New(Config{Apps: []AppConfig{{SDKAppID: 1400000001, Key: hex.EncodeToString(key), Admins: []string{"administrator"}}}, Store: b})
	if err != nil {
		t.Fatal(err)
	}
	in := store.Instance{App: 1400000001, User: "alice", InstID: 7, Platform: wire.PlatformWeb, LoginAt: time.Now(), Expires: time.Now().Add(time.Hour).Unix()}
	k := instKey{in.App, in.InstID}
	done := make(chan struct{})
	go func() {
		s.kick(context.Background(), []store.Victim{{Instance: in, KickType: wire.KickMultipleAccount}}, 8)
		close(done)
	}()
	<-b.entered // pushed, not yet committed
	if reason, ok := s.revokingReason(k); !ok || reason != wire.KickTypeName(wire.KickMultipleAccount) {
		t.Fatalf("during the commit: revoking %q %v, want multipleAccount", reason, ok)
	}
	close(b.release)
	<-done
	if _, ok := s.revokingReason(k); ok {
		t.Error("the mark outlived the commit")
	}
	if reason, revoked, err := st.Revoked(context.Background(), in.App, in.InstID); err != nil || !revoked || reason != wire.KickTypeName(wire.KickMultipleAccount) {
		t.Errorf("after the commit: store says %q %v %v", reason, revoked, err)
	}
}
