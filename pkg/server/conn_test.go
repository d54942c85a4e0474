package server_test

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
	"time"

	"chatctl/internal/leaktest"
	"chatctl/pkg/server/servertest"
	"chatctl/pkg/wire"

	"github.com/gorilla/websocket"
)

// readers counts the goroutines in a socket's reader, and of those the
// ones at work on a frame.
func readers() (all, busy int) {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte("server.(*conn).read(")) {
			all++
			if bytes.Contains(g, []byte("server.(*conn).frame(")) {
				busy++
			}
		}
	}
	return all, busy
}

// A socket's reader passes from goroutine to goroutine (a new one after
// each frame answered on it) without ever two reading at once: pipelined
// keep-alives, pings, a frame longer than a pooled read and a login are
// all answered in order, and the idle socket is left with one reader.
func TestOneReaderPerSocket(t *testing.T) {
	leaktest.Check(t)
	ts := servertest.Start(t, servertest.Unpaced())
	c := dial(t, ts, "/binfo")
	c.mustLogin("reader", ts.Sig("reader", time.Hour))

	pongs := make(chan string, 8)
	c.ws.SetPongHandler(func(s string) error { pongs <- s; return nil })
	var seqs []uint64
	for i := 0; i < 5; i++ {
		seqs = append(seqs, c.send(wire.CmdHeartbeat, nil, nil))
		if err := c.ws.WriteControl(websocket.PingMessage, []byte{byte('0' + i)}, time.Now().Add(5*time.Second)); err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, c.send(wire.CmdHello, nil, nil))
	}
	long := c.send("openim.no_such_cmd", nil, map[string]any{"pad": strings.Repeat("x", 9000)})
	relogin := c.send(wire.CmdLogin, map[string]any{"identifier": "reader", "usersig": ts.Sig("reader", time.Hour)}, nil)
	for _, seq := range seqs {
		r := c.read()
		if r.Head["seq"] != float64(seq) || r.code() != 0 {
			t.Fatalf("reply %v (code %d), want seq %d answered 0, in order", r.Head, r.code(), seq)
		}
	}
	if r := c.read(); r.Head["seq"] != float64(long) || r.code() != wire.CodeUnknownCommand {
		t.Fatalf("the long frame: %v (code %d), want seq %d answered %d", r.Head, r.code(), long, wire.CodeUnknownCommand)
	}
	if r := c.read(); r.Head["seq"] != float64(relogin) || r.code() != 0 {
		t.Fatalf("the login: %v (code %d), want seq %d answered 0", r.Head, r.code(), relogin)
	}
	for i := 0; i < 5; i++ {
		select {
		case p := <-pongs:
			if p != string(rune('0'+i)) {
				t.Fatalf("pong %q, want %q", p, string(rune('0'+i)))
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("pong %d not received", i)
		}
	}

	deadline := time.Now().Add(10 * time.Second)
	for {
		all, busy := readers()
		if all == 1 && busy == 0 {
			break
		}
		if all > 1 && busy > 0 {
			t.Fatalf("%d reader goroutines, %d of them at work: two read at once", all, busy)
		}
		if time.Now().After(deadline) {
			t.Fatalf("idle socket: %d reader goroutines (%d at work), want 1 waiting", all, busy)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
