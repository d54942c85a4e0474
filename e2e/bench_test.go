package e2e

import (
	"context"
	"testing"
	"time"

	"chatctl/pkg/client"
	"chatctl/pkg/server/servertest"
)

// BenchmarkHeartbeat: one heartbeat.alive round trip on a logged-in socket.
func BenchmarkHeartbeat(b *testing.B) {
	ts := servertest.Start(b, servertest.Unpaced()) // b.N frames on one socket: measure the server, not its pacing
	ctx := context.Background()
	c, err := client.Dial(ctx, client.Config{Endpoint: ts.WSURL, SDKAppID: ts.App.SDKAppID})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Login(ctx, "bench", ts.Sig("bench", time.Hour)); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := c.Heartbeat(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProbe: what `whoami --check` and `server-time` cost on the wire:
// dial, a2 re-login, close.
func BenchmarkProbe(b *testing.B) {
	ts := servertest.Start(b, servertest.Unpaced()) // b.N re-logins of one user
	ctx := context.Background()
	cfg := client.Config{Endpoint: ts.WSURL, SDKAppID: ts.App.SDKAppID}
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	res, err := c.Login(ctx, "bench", ts.Sig("bench", time.Hour))
	c.Close()
	if err != nil {
		b.Fatal(err)
	}
	s := res.Session()
	for b.Loop() {
		if _, err := client.Probe(ctx, cfg, s); err != nil {
			b.Fatal(err)
		}
	}
}
