package servertest

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"chatctl/pkg/server"
)

// RawWS is a raw WebSocket client, for floods and malformed traffic: the
// upgrade is written by hand, and frames are encoded by the test
// (RawFrame, masked with a zero key) and written whole, so that a flood
// costs the test little.
type RawWS struct {
	net.Conn
	R *bufio.Reader // what the upgrade response left unread comes first
}

// WebSocket opcodes.
const (
	OpCont   = 0x0
	OpText   = 0x1
	OpBinary = 0x2
	OpClose  = 0x8
	OpPing   = 0x9
	OpPong   = 0xa
)

// DialRaw upgrades a WebSocket on path of addr, dialing with d (nil: a
// default one) and sending the header lines extra ("Name: value\r\n"
// each). ctx ends the dial (one whose SYNs the server's kernel drops waits
// for it); the upgrade response is waited for 30 s at most.
func DialRaw(ctx context.Context, d *net.Dialer, addr, path, extra string) (*RawWS, error) {
	if d == nil {
		d = &net.Dialer{}
	}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s\r\n", path, addr, extra)
	r := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(r, nil)
	if err == nil && resp.StatusCode != http.StatusSwitchingProtocols {
		err = fmt.Errorf("upgrade %s: HTTP %d", path, resp.StatusCode)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	c.SetReadDeadline(time.Time{})
	return &RawWS{Conn: c, R: r}, nil
}

// RawFrame is one client frame, masked with a zero key (fin set unless
// more).
func RawFrame(op byte, payload []byte, more bool) []byte {
	b0 := op
	if !more {
		b0 |= 0x80
	}
	h := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		h = append(h, 0x80|byte(n))
	case n < 1<<16:
		h = append(h, 0x80|126)
		h = binary.BigEndian.AppendUint16(h, uint16(n))
	default:
		h = append(h, 0x80|127)
		h = binary.BigEndian.AppendUint64(h, uint64(n))
	}
	return append(append(h, 0, 0, 0, 0), payload...)
}

// Next reads one server frame: its opcode and payload, within d (0: the
// connection's deadline as it is).
func (c *RawWS) Next(d time.Duration) (byte, []byte, error) {
	if d > 0 {
		c.SetReadDeadline(time.Now().Add(d))
	}
	var h [2]byte
	if _, err := io.ReadFull(c.R, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	if n >= 126 { // the length follows, in 2 bytes (126) or 8 (127)
		l := make([]byte, 2+6*(n-126))
		if _, err := io.ReadFull(c.R, l); err != nil {
			return 0, nil, err
		}
		n = 0
		for _, b := range l {
			n = n<<8 | uint64(b)
		}
	}
	// No server frame is larger than the read limit it applies to clients:
	// a length past it is a broken stream, not an allocation to make.
	if n > server.HardReadLimit {
		return 0, nil, fmt.Errorf("server frame of %d bytes", n)
	}
	p := make([]byte, n)
	_, err := io.ReadFull(c.R, p)
	return h[0] & 0x0f, p, err
}

// Send writes b, within 30 s, or fails t.
func (c *RawWS) Send(t testing.TB, b []byte) {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// Reply reads frames (30 s each) until a data frame, and returns its
// body's ErrorCode and the frame; it fails t on a read error.
func (c *RawWS) Reply(t testing.TB) (int, []byte) {
	t.Helper()
	for {
		op, p, err := c.Next(30 * time.Second)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if op == OpBinary || op == OpText {
			var f struct {
				Body struct{ ErrorCode int }
			}
			json.Unmarshal(p, &f)
			return f.Body.ErrorCode, p
		}
	}
}
