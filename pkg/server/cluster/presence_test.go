package cluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"chatctl/pkg/server/cluster"
	"chatctl/pkg/server/presencetest"
	"chatctl/pkg/server/store/redis/redistest"
)

// The Redis presence (its policy in Lua: attachScript, restoreScript)
// passes the Presence suite that server.MemoryPresence passes, on two
// nodes of a real redis-server.
func TestPresenceConformance(t *testing.T) {
	url := redistest.URL(t)
	presencetest.Run(t, func(t *testing.T) presencetest.Harness {
		ctx := context.Background()
		prefix := redistest.Prefix(t, url)
		cls := make([]*cluster.Cluster, 2)
		killed := make([]bool, len(cls))
		h := presencetest.Harness{}
		for i := range cls {
			cl, err := cluster.Open(ctx, url, cluster.Options{Prefix: prefix, NodeID: fmt.Sprint("n", i)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if !killed[i] {
					cl.Close(ctx)
				}
			})
			cls[i] = cl
			h.Nodes = append(h.Nodes, cl.Presence())
		}
		h.Revoke = func(app, inst uint64, until time.Time) {
			if err := cls[0].Store.RevokeInstance(ctx, app, inst, until, "multipleAccount"); err != nil {
				t.Fatal(err)
			}
		}
		h.SetWatermark = func(app uint64, user string, ms int64) {
			if err := cls[0].Store.SetKickWatermark(ctx, app, user, ms); err != nil {
				t.Fatal(err)
			}
		}
		h.Kill = func(i int) {
			// As SIGKILL, and its heartbeat expired at once.
			cls[i].Kill()
			killed[i] = true
			if err := cls[1-i].Store.NodeLeave(ctx, cls[i].NodeID()); err != nil {
				t.Fatal(err)
			}
		}
		return h
	})
}
