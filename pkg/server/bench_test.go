package server_test

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"chatctl/pkg/server/servertest"
	"chatctl/pkg/wire"
)

// rawConn is a minimal WebSocket client with no goroutine and no buffers
// of its own, so that memory measured around it is the server's.
type rawConn struct{ net.Conn }

func rawDial(addr string) (*rawConn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(c, "GET /binfo?platform=7 HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", addr)
	var last [4]byte
	var b [1]byte
	for string(last[:]) != "\r\n\r\n" {
		if _, err := c.Read(b[:]); err != nil {
			c.Close()
			return nil, err
		}
		copy(last[:], last[1:])
		last[3] = b[0]
	}
	return &rawConn{c}, nil
}

// send writes one binary frame with a zero mask.
func (c *rawConn) send(payload []byte) error {
	h := []byte{0x82}
	switch n := len(payload); {
	case n < 126:
		h = append(h, 0x80|byte(n))
	default:
		h = append(h, 0x80|126)
		h = binary.BigEndian.AppendUint16(h, uint16(n))
	}
	h = append(h, 0, 0, 0, 0)
	_, err := c.Write(append(h, payload...))
	return err
}

// recv reads one unmasked server frame.
func (c *rawConn) recv() ([]byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(c, h[:]); err != nil {
		return nil, err
	}
	n := int(h[1] & 0x7f)
	if n == 126 {
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return nil, err
		}
		n = int(binary.BigEndian.Uint16(l[:]))
	}
	p := make([]byte, n)
	_, err := io.ReadFull(c, p)
	return p, err
}

// heldProfile: BenchmarkHeldSession writes a heap profile of every
// allocation still live (MemProfileRate 1) to this file and the
// goroutines' stacks to this file + ".goroutines", while the sessions are
// held.
var heldProfile = flag.String("heldprofile", "", "BenchmarkHeldSession: write the held sessions' heap profile here")

// BenchmarkHeldSession measures the memory (heap + goroutine stacks) one
// logged-in, idle session costs the server, as B/session. The raw clients
// add a few hundred bytes each (their sockets). With -heldprofile it also
// writes what the sessions hold (docs/BENCHMARKS.md, "What an idle
// session holds"):
//
//	go test -run '^$' -bench HeldSession -benchtime 2000x ./pkg/server
//	go test -run '^$' -bench HeldSession -benchtime 5000x -heldprofile heap.out ./pkg/server
//	go tool pprof -sample_index inuse_space -top heap.out
func BenchmarkHeldSession(b *testing.B) {
	if *heldProfile != "" {
		defer func(r int) { runtime.MemProfileRate = r }(runtime.MemProfileRate)
		runtime.MemProfileRate = 1
	}
	ts := servertest.Start(b, servertest.HelloInterval(time.Minute))
	sigs := make([]string, b.N)
	for i := range sigs {
		sigs[i] = ts.Sig(fmt.Sprintf("u%d", i), time.Hour)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	conns := make([]*rawConn, 0, b.N)
	for i := 0; i < b.N; i++ {
		c, err := rawDial(ts.Addr)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
		req, _ := json.Marshal(map[string]any{"head": map[string]any{"servcmd": wire.CmdLogin, "seq": i + 1,
			"sdkappid": servertest.SDKAppID, "identifier": fmt.Sprintf("u%d", i), "usersig": sigs[i]}, "body": map[string]any{}})
		if err := c.send(req); err != nil {
			b.Fatal(err)
		}
		reply, err := c.recv()
		if err != nil || !strings.Contains(string(reply), `"ErrorCode":0`) {
			b.Fatalf("login %d: %s %v", i, reply, err)
		}
	}
	b.StopTimer()
	for i := 0; i < 4; i++ { // each GC may halve idle goroutine stacks
		runtime.GC()
	}
	runtime.ReadMemStats(&after)
	used := float64(after.HeapInuse+after.StackInuse) - float64(before.HeapInuse+before.StackInuse)
	b.ReportMetric(used/float64(b.N), "B/session")
	b.ReportMetric((float64(after.StackInuse)-float64(before.StackInuse))/float64(b.N), "stackB/session")
	b.ReportMetric(float64(runtime.NumGoroutine())/float64(b.N), "goroutines/session")
	if *heldProfile != "" {
		writeProfile(b, *heldProfile, "heap", 0)
		writeProfile(b, *heldProfile+".goroutines", "goroutine", 1)
	}
	for _, c := range conns {
		c.Close()
	}
}

// BenchmarkHeartbeat is one heartbeat.alive round trip on a held socket.
func BenchmarkHeartbeat(b *testing.B) {
	ts := servertest.Start(b, servertest.Unpaced()) // b.N frames on one socket
	c, err := rawDial(ts.Addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	login, _ := json.Marshal(map[string]any{"head": map[string]any{"servcmd": wire.CmdLogin, "seq": 0,
		"sdkappid": servertest.SDKAppID, "identifier": "hb", "usersig": ts.Sig("hb", time.Hour)}, "body": map[string]any{}})
	if err := c.send(login); err != nil {
		b.Fatal(err)
	}
	if r, err := c.recv(); err != nil || !strings.Contains(string(r), `"ErrorCode":0`) {
		b.Fatalf("login: %s %v", r, err)
	}
	req := []byte(`{"head":{"servcmd":"heartbeat.alive","seq":1},"body":{}}`)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.send(req); err != nil {
			b.Fatal(err)
		}
		if _, err := c.recv(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLogin is a first login (UserSig verified, account imported,
// instance id, A2Key) of a new user on an open socket. The sockets are
// opened (and closed) with the timer stopped, loginChunk at a time: both
// ends are in this process, and b.N of them at once would pass this
// machine's open-file limit.
func BenchmarkLogin(b *testing.B) {
	const loginChunk = 4096
	ts := servertest.Start(b, servertest.WebInstances(1<<20))
	reqs := make([][]byte, b.N)
	for i := range reqs {
		u := fmt.Sprintf("b%d", i)
		reqs[i], _ = json.Marshal(map[string]any{"head": map[string]any{"servcmd": wire.CmdLogin, "seq": i,
			"sdkappid": servertest.SDKAppID, "identifier": u, "usersig": ts.Sig(u, time.Hour)}, "body": map[string]any{}})
	}
	conns := make([]*rawConn, 0, min(b.N, loginChunk))
	b.ResetTimer()
	for start := 0; start < b.N; start += loginChunk {
		b.StopTimer()
		for _, c := range conns {
			c.Close()
		}
		conns = conns[:0]
		for range min(loginChunk, b.N-start) {
			c, err := rawDial(ts.Addr)
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, c)
		}
		b.StartTimer()
		for i, c := range conns {
			if err := c.send(reqs[start+i]); err != nil {
				b.Fatal(err)
			}
			if r, err := c.recv(); err != nil || !strings.Contains(string(r), `"ErrorCode":0`) {
				b.Fatalf("%s %v", r, err)
			}
		}
	}
	b.StopTimer()
	for _, c := range conns {
		c.Close()
	}
}

func writeProfile(b *testing.B, file, name string, debug int) {
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup(name).WriteTo(f, debug); err != nil {
		b.Fatal(err)
	}
}
