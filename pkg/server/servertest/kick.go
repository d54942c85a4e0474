package servertest

import (
	"encoding/json"
	"testing"
	"time"

	"chatctl/pkg/client"
	"chatctl/pkg/wire"
)

// WaitKick waits (up to 10 s) for a stat_forceoffline push on c, skipping
// other pushes, and returns its KickType; it fails the test if none comes.
func WaitKick(t testing.TB, c *client.Conn) int {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case f := <-c.Pushes():
			if f.Head.ServCmd != wire.CmdForceOffline {
				continue
			}
			var p wire.KickPush
			if err := json.Unmarshal(f.Body, &p); err != nil {
				t.Fatal(err)
			}
			return p.KickType()
		case <-deadline:
			t.Fatal("no kick push")
			return 0
		}
	}
}
