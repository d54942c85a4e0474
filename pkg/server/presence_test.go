package server_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"chatctl/pkg/server"
	"chatctl/pkg/server/presencetest"
	"chatctl/pkg/server/store/bolt"
)

// MemoryPresence passes the Presence suite, the Redis presence's too
// (pkg/server/cluster): one policy in Go and in Lua.
func TestMemoryPresenceConformance(t *testing.T) {
	presencetest.Run(t, func(t *testing.T) presencetest.Harness {
		st, err := bolt.Open(filepath.Join(t.TempDir(), server.StoreFile))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		ctx := context.Background()
		return presencetest.Harness{
			Nodes: []server.Presence{server.NewMemoryPresence(st, nil)},
			Revoke: func(app, inst uint64, until time.Time) {
				if err := st.RevokeInstance(ctx, app, inst, until, "multipleAccount"); err != nil {
					t.Fatal(err)
				}
			},
			SetWatermark: func(app uint64, user string, ms int64) {
				if err := st.SetKickWatermark(ctx, app, user, ms); err != nil {
					t.Fatal(err)
				}
			},
		}
	})
}
