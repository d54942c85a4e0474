package fault

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chatctl/pkg/server/servertest"
	"chatctl/pkg/wire"
)

// The floods of docs/RELIABILITY.md ("Floods"), against the real binary:
// frame floods of every kind (WebSocket pings and pongs, background
// commands, wslogout type 1 without a session, heartbeats of logged-in
// users), failed wslogins with 12,000-byte identifiers, unauthenticated REST
// requests with 900 KB and 30 KB identifiers, and connections sending 1 MiB
// request heads or holding 30 KB ones. `make test` runs them all at once at
// a small scale; one at a time with FAULT_FLOOD=kind and FAULT_IDLE=10000
// they give the figures of docs/RELIABILITY.md ("Floods").

// attackerIP is the source address of every flood (FAULT_ATTACKER_ADDR,
// default 127.0.0.2: Linux routes all of 127/8 to lo), so that the
// server's per-source limit tells it from the good client on 127.0.0.1.
func attackerIP() net.IP {
	a := os.Getenv("FAULT_ATTACKER_ADDR")
	if a == "" {
		a = "127.0.0.2"
	}
	return net.ParseIP(a)
}

// attackerDialer dials from attackerIP.
func attackerDialer() *net.Dialer {
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: attackerIP()}}
}

func reqFrame(servcmd string, head map[string]any, body any) []byte {
	return servertest.Frame(servcmd, 1, head, body)
}

// flooder runs the floods against one server.
type flooder struct {
	srv  *serveProc
	stop chan struct{}
	wg   sync.WaitGroup
	// dials ends the attackers' dials at the end: a source the server's
	// kernel blocks (pkg/server/synfilter.go) has its SYNs dropped, and
	// its dial would otherwise wait for minutes of retransmissions.
	dials      context.Context
	cancelDial context.CancelFunc

	frames  atomic.Int64 // answers the frame floods got (pongs, replies): what the server processed
	unauth  atomic.Int64 // unauthenticated requests answered (failed logins, REST)
	heads   atomic.Int64 // request heads the server refused or timed out
	conns   atomic.Int64 // WebSockets the floods opened
	refused atomic.Int64 // WebSocket dials that failed: reset by the per-source limit
	stalled atomic.Int64 // WebSocket dials still waiting at the end: SYNs dropped by the kernel
}

func newFlooder(srv *serveProc) *flooder {
	f := &flooder{srv: srv, stop: make(chan struct{})}
	f.dials, f.cancelDial = context.WithCancel(context.Background())
	return f
}

func (f *flooder) stopped() bool {
	select {
	case <-f.stop:
		return true
	default:
		return false
	}
}

// sockets runs k workers, each opening a socket, handing it to use, and
// closing it, again, until the floods end; a dial the server refuses (its
// per-source limit resets it) is tried again at once, as an attacker
// would; one whose SYNs the server's kernel drops waits, at most until the
// floods end. use reports false to stop its worker.
func (f *flooder) sockets(t testing.TB, k int, use func(i int, c *servertest.RawWS) bool) {
	refusedPause, _ := time.ParseDuration(os.Getenv("FAULT_REFUSED_PAUSE"))
	for i := range k {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			for !f.stopped() {
				c, err := servertest.DialRaw(f.dials, attackerDialer(), f.srv.Addr, "/binfo", "")
				if err != nil {
					if f.dials.Err() != nil {
						f.stalled.Add(1)
						continue
					}
					f.refused.Add(1)
					// FAULT_REFUSED_PAUSE (e.g. 1ms) slows the retries,
					// to tell the cost of the refusals from the rest.
					if refusedPause > 0 {
						time.Sleep(refusedPause)
					}
					continue
				}
				f.conns.Add(1)
				ok := use(i, c)
				c.Close()
				if !ok {
					return
				}
			}
		}()
	}
}

// frameFlood floods from k sockets: each writes batches of frame as fast
// as the server reads them, after login (if set) answered OK; a socket the
// server closes is replaced.
func (f *flooder) frameFlood(t testing.TB, k int, frame []byte, login func(i int) []byte) {
	batch := slices.Repeat(frame, 100)
	f.sockets(t, k, func(i int, c *servertest.RawWS) bool {
		if login != nil {
			c.Write(servertest.RawFrame(servertest.OpBinary, login(i), false))
			if _, p, err := c.Next(0); err != nil || !strings.Contains(string(p), `"ErrorCode":0`) {
				t.Errorf("flooder login: %s %v", p, err)
				return false
			}
		}
		go func() {
			for {
				if _, _, err := c.Next(0); err != nil {
					return
				}
				f.frames.Add(1)
			}
		}()
		f.writeUntilStopped(c, batch)
		return true
	})
}

// writeUntilStopped writes batch to c again and again, as fast as the
// server reads it, until the flood stops or c fails.
func (f *flooder) writeUntilStopped(c *servertest.RawWS, batch []byte) {
	for !f.stopped() {
		c.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := c.Write(batch); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue // held back by the server's pacing
			}
			return
		}
	}
}

// emptyFragments floods from k sockets with one message that never ends:
// its first frame, then empty continuation frames (6 bytes each on the
// wire), which gorilla parses inside one read (RELIABILITY.md finding 18).
func (f *flooder) emptyFragments(t testing.TB, k int) {
	batch := slices.Repeat(servertest.RawFrame(servertest.OpCont, nil, true), 1000)
	f.sockets(t, k, func(_ int, c *servertest.RawWS) bool {
		c.Write(servertest.RawFrame(servertest.OpBinary, []byte("{"), true))
		f.writeUntilStopped(c, batch)
		return true
	})
}

// badLogins: k workers each open a socket, send perConn wslogins with
// 12,000-byte identifiers, read the answers, close, again (5 per socket
// is what the server's pacing lets through at once). The frames are
// encoded once, so that the attacker, on the same two cores, spends its
// CPU on sending rather than on JSON.
func (f *flooder) badLogins(t testing.TB, k, perConn int) {
	var batch []byte
	for i := range perConn {
		id := fmt.Sprintf("%012d", i) + strings.Repeat("x", 12000-12)
		batch = append(batch, servertest.RawFrame(servertest.OpBinary, reqFrame(wire.CmdLogin,
			map[string]any{"sdkappid": f.srv.dev.SDKAppID, "identifier": id, "usersig": "eJyrVkrOzEvMS8ksSg"}, nil), false)...)
	}
	f.sockets(t, k, func(_ int, c *servertest.RawWS) bool {
		c.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Write(batch); err != nil {
			return true
		}
		for range perConn {
			if _, _, err := c.Next(0); err != nil {
				break
			}
			f.unauth.Add(1)
		}
		return true
	})
}

// restLog: k workers POST unauthenticated REST kicks whose identifier is
// 900 KB (over the header cap) or 30 KB, alternately.
func (f *flooder) restLog(t testing.TB, k int) {
	tr := &http.Transport{MaxIdleConnsPerHost: k, DialContext: func(_ context.Context, network, addr string) (net.Conn, error) {
		return attackerDialer().DialContext(f.dials, network, addr)
	}}
	cl := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	for i := range k {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer tr.CloseIdleConnections()
			for j := 0; !f.stopped(); j++ {
				size := 900_000
				if (i+j)%2 == 1 {
					size = 30_000
				}
				u := fmt.Sprintf("%s/v4/im_open_login_svc/kick?sdkappid=%d&identifier=%s&usersig=x",
					f.srv.REST, f.srv.dev.SDKAppID, strings.Repeat("i", size))
				resp, err := cl.Post(u, "application/json", strings.NewReader(`{"UserID":"bob"}`))
				if err != nil {
					continue // cut while sending the 900 KB: refused
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				f.unauth.Add(1)
			}
		}()
	}
}

// hugeHeads: k connections each send a request line and then header
// lines, up to size bytes, without ending the head, and hold the
// connection until the server closes it; a second later another takes
// its place. 1 MiB is refused at the cap (431); 30 KB, under it, is held
// until the server's header timeout.
func (f *flooder) hugeHeads(t testing.TB, k, size int) {
	line := "X-Pad: " + strings.Repeat("p", 1000) + "\r\n"
	for i := range k {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			for !f.stopped() {
				c, err := attackerDialer().DialContext(f.dials, "tcp", f.srv.Addr)
				if err != nil {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				path := "/healthz"
				if i%2 == 1 {
					path = "/v4/im_open_login_svc/kick?sdkappid=1"
				}
				fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n", path)
				for sent := 0; sent < size && !f.stopped(); {
					c.SetWriteDeadline(time.Now().Add(time.Second))
					n, err := io.WriteString(c, line)
					sent += n
					if err != nil {
						if ne, ok := err.(net.Error); ok && ne.Timeout() {
							continue
						}
						break
					}
				}
				done := make(chan struct{})
				go func() {
					io.Copy(io.Discard, c)
					close(done)
				}()
				select {
				case <-done:
					f.heads.Add(1)
				case <-f.stop:
				}
				c.Close()
				<-done
				select {
				case <-f.stop:
				case <-time.After(time.Second):
				}
			}
		}()
	}
}

func (f *flooder) end() {
	close(f.stop)
	f.cancelDial()
	f.wg.Wait()
}

// floodKinds are the kinds TestFloods knows, in the order they start.
var floodKinds = []string{"ping", "pong", "bg", "kickack", "authhb", "badlogin", "restlog", "hugehdr", "slowhdr", "emptyfrag"}

// A server under every flood (or those of FAULT_FLOOD, comma-separated)
// with FAULT_IDLE idle sockets held (default 200; the figures use 10,000):
// every well-behaved login succeeds, the server's log grows by a bounded
// number of bytes per unauthenticated request, and the server stays up.
// Login p50 and RSS are logged, not asserted.
func TestFloods(t *testing.T) {
	t.Parallel()
	nofile := raiseNOFILE(t)
	idle := envInt("FAULT_IDLE", 200)
	if uint64(idle)+1000 > nofile {
		t.Skipf("RLIMIT_NOFILE %d is too low for %d idle sockets", nofile, idle)
	}
	kinds := floodKinds
	if v := os.Getenv("FAULT_FLOOD"); v != "" {
		kinds = strings.Split(v, ",")
	}
	// The server limits new connections per source as on a network
	// (loopback is exempt by default); FAULT_CONN_LIMIT=0 turns the limit
	// off, for the figures without it.
	args := []string{"--log-level", "info", "--conn-limit-loopback"}
	if os.Getenv("FAULT_CONN_LIMIT") == "0" {
		args = append(args, "--conn-rate", "0")
	}
	srv := startServe(t, t.TempDir(), args...)
	pid := srv.cmd.Process.Pid

	loginTimes(t, srv, "warm", 20)
	logQ := len(srv.stderr.String())
	quiet := loginTimes(t, srv, "quiet", 50)
	goodLog := (len(srv.stderr.String()) - logQ) / 50 // log bytes of one good login
	a := newAttacker(srv)
	a.idle(t, idle)
	time.Sleep(200 * time.Millisecond)
	rssQuiet := rssKB(pid)
	log0 := len(srv.stderr.String())

	f := newFlooder(srv)
	start, cpu0, self0 := time.Now(), cpuTicks(pid), cpuTicks(os.Getpid())
	bg := []string{"profile.portrait_get_all", "sns.black_list_get", "recentcontact.page_get", "openim.getmsg"}
	for _, k := range kinds {
		switch k {
		case "ping":
			f.frameFlood(t, 4, servertest.RawFrame(servertest.OpPing, []byte("ping"), false), nil)
		case "pong":
			f.frameFlood(t, 4, servertest.RawFrame(servertest.OpPong, []byte("pong"), false), nil)
		case "bg":
			var b []byte
			for _, cmd := range bg {
				b = append(b, servertest.RawFrame(servertest.OpBinary, reqFrame(cmd, nil, nil), false)...)
			}
			f.frameFlood(t, 4, b, nil)
		case "kickack":
			f.frameFlood(t, 4, servertest.RawFrame(servertest.OpBinary, reqFrame(wire.CmdLogout, nil, map[string]any{"wslogout_type": 1}), false), nil)
		case "authhb":
			f.frameFlood(t, 4, servertest.RawFrame(servertest.OpBinary, reqFrame(wire.CmdHeartbeat, nil, nil), false), func(i int) []byte {
				u := fmt.Sprintf("flooder%d", i)
				return reqFrame(wire.CmdLogin, map[string]any{"sdkappid": srv.dev.SDKAppID, "identifier": u, "usersig": srv.sig(u, time.Hour)}, nil)
			})
		case "badlogin":
			f.badLogins(t, 4, envInt("FAULT_PERCONN", 5))
		case "restlog":
			f.restLog(t, 8)
		case "hugehdr":
			// 1 MiB alone (the figures); with every flood at once 64 KiB,
			// refused at the cap the same way, so that the attacker's own
			// loopback traffic does not take the shared cores.
			size := 1 << 20
			if len(kinds) > 1 {
				size = 64 << 10
			}
			f.hugeHeads(t, 300, envInt("FAULT_HEAD_BYTES", size))
		case "slowhdr":
			f.hugeHeads(t, 300, 30_000)
		case "emptyfrag":
			f.emptyFragments(t, 4)
		case "none": // the idle sockets alone
		default:
			t.Fatalf("FAULT_FLOOD: unknown kind %q (known: %s)", k, strings.Join(floodKinds, ","))
		}
	}
	time.Sleep(time.Second)
	attacked := loginTimes(t, srv, "attacked", 50)
	rssAttack := rssKB(pid)
	logBytes := len(srv.stderr.String()) - log0 - goodLog*50
	frames, unauth, heads := f.frames.Load(), f.unauth.Load(), f.heads.Load()
	conns, refused := f.conns.Load(), f.refused.Load()
	took := time.Since(start).Seconds()
	cpu, self := cpuTicks(pid)-cpu0, cpuTicks(os.Getpid())-self0
	f.end()
	a.end()
	stalled := f.stalled.Load() // counted as f.end cut them

	perReq := float64(logBytes) / float64(max(unauth, 1))
	t.Logf("floods %s with %d idle sockets: login p50/p95 quiet %v/%v, under attack %v/%v",
		strings.Join(kinds, ","), idle, pct(quiet, 50), pct(quiet, 95), pct(attacked, 50), pct(attacked, 95))
	t.Logf("server RSS quiet %d KiB (idle sockets held), under attack %d KiB (%+d KiB)", rssQuiet, rssAttack, rssAttack-rssQuiet)
	t.Logf("%d answers to flood frames, %d unauthenticated requests answered, %d over-long heads cut; log %d bytes (%.1f per unauthenticated request)",
		frames, unauth, heads, logBytes, perReq)
	t.Logf("flood WebSockets from %s in %.1f s: %d opened (%.0f/s), %d refused (%.0f/s), %d still waiting at the end (SYNs dropped)",
		attackerIP(), took, conns, float64(conns)/took, refused, float64(refused)/took, stalled)
	t.Logf("CPU under the floods: server %.0f%%, test process (attackers and good client) %.0f%% (of one core)",
		float64(cpu)/took, float64(self)/took)
	// The good logins' lines are taken out; 16 KiB of slack for the rest.
	if unauth > 0 && logBytes > 16<<10+200*int(unauth) {
		t.Errorf("log grew %d bytes for %d unauthenticated requests", logBytes, unauth)
	}
	if srv.stop(t) != 0 {
		t.Errorf("serve exited %d after the floods; stderr:\n%s", srv.code, lastLines(srv.stderr.String(), 20))
	}
}
