package server_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"chatctl/internal/leaktest"
	"chatctl/pkg/server"
	"chatctl/pkg/server/servertest"
	"chatctl/pkg/wire"
)

// Pushes to an idle socket start a writer of their own; they go out in
// order, and the socket's replies still go out after them.
func TestPushesGoOutInOrder(t *testing.T) {
	leaktest.Check(t)
	ts := servertest.Start(t)
	c := dial(t, ts, "/binfo")
	c.mustLogin("pia", ts.Sig("pia", time.Hour))
	const n = 20           // within the send queue
	for round := range 2 { // a second burst once the first has gone out
		for i := range n {
			server.Push(ts.Server(), fmt.Appendf(nil, `{"head":{"servcmd":"test.push","seq":%d},"body":{}}`, i))
		}
		for i := range n {
			r := c.read()
			if r.Head["servcmd"] != "test.push" || r.Head["seq"] != float64(i) {
				t.Fatalf("round %d: push %d: got %s", round, i, r.Raw)
			}
		}
		if r := c.call(wire.CmdHeartbeat, nil, nil); r.code() != 0 {
			t.Fatalf("round %d: heartbeat after the pushes: %s", round, r.Raw)
		}
	}
}

// A client that does not read, pushed more than its socket's buffers and
// its send queue hold, is dropped, and the pushes never wait for it.
func TestFullSendQueueDropsTheClient(t *testing.T) {
	leaktest.Check(t)
	// Writes to it would time out after a minute: the queue fills first.
	ts := servertest.Start(t, servertest.WriteTimeout(time.Minute))
	slow := dialSlowReader(t, ts)
	// Push goes to the sockets the server has registered, which it does
	// just after its 101: on a loaded machine the pushes came first and
	// went to nobody, and the test waited 30 s for a drop.
	for deadline := time.Now().Add(20 * time.Second); ts.Server().Stats(false).Sockets != 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the server never registered the socket")
		}
	}
	big := []byte(`{"head":{"servcmd":"test.push","seq":0},"body":{"x":"` + string(bytes.Repeat([]byte{'x'}, 256<<10)) + `"}}`)
	for range 200 { // 50 MB
		server.Push(ts.Server(), big)
	}
	// What the buffers held can be read; then the socket ends.
	slow.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		if _, _, err := slow.ReadMessage(); err != nil {
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
				t.Fatalf("the client was not dropped: %v", err)
			}
			break
		}
	}
}
