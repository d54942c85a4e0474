package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// wsConn is the generator's own client side of RFC 6455, just what the
// protocol needs: one handshake request written and its answer read by
// hand, masked writes of whole messages, and reads of the server's frames.
// It costs a fraction of a general client (no net/http request and
// response, no per-connection writer), so that the generator leaves the
// CPU to the server it measures. Writes are serialized by wmu; there is one
// reader at a time (Login, then the Keeper's reader).
type wsConn struct {
	c  net.Conn
	br *bufio.Reader

	wmu  sync.Mutex
	wbuf []byte // guarded by wmu

	rbuf []byte // the reader's message buffer, reused
}

// ErrBadHandshake is a server that did not switch to WebSocket (its HTTP
// status, or a wrong Sec-WebSocket-Accept, follows in the message).
var ErrBadHandshake = errors.New("bad handshake")

// errClosed is a close frame received from the server.
type errClosed struct{ code int }

func (e *errClosed) Error() string { return fmt.Sprintf("websocket: close %d", e.code) }

const (
	opCont   = 0
	opText   = 1
	opBinary = 2
	opClose  = 8
	opPing   = 9
	opPong   = 10

	wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
)

// handshakeError is a failure once TCP is up: Login files it as a
// handshake failure when the server answered, as a dial failure otherwise.
type handshakeError struct {
	answered bool
	err      error
}

func (e *handshakeError) Error() string { return e.err.Error() }
func (e *handshakeError) Unwrap() error { return e.err }

// dialWS connects nd to addr (host:port), with TLS when tlsHost is not
// empty, and upgrades GET pathQuery, all before ctx's deadline, or until
// ctx is canceled (a signal: the socket's deadline alone did not end a
// handshake a host never answers).
func dialWS(ctx context.Context, nd *net.Dialer, addr, host, tlsHost, pathQuery string) (*wsConn, error) {
	c, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	raw := c // c becomes the TLS conn below; the callback cuts the socket
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Now()) })
	defer stop()
	if tlsHost != "" {
		tc := tls.Client(c, &tls.Config{ServerName: tlsHost})
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, err
		}
		c = tc
	}
	w := &wsConn{c: c, br: bufio.NewReaderSize(c, 1024)}
	if err := w.handshake(host, pathQuery); err != nil {
		c.Close()
		return nil, err
	}
	if !stop() {
		// ctx ended as the upgrade finished: the socket's deadline is spent.
		c.Close()
		return nil, context.Cause(ctx)
	}
	c.SetDeadline(time.Time{})
	return w, nil
}

func (w *wsConn) handshake(host, pathQuery string) error {
	var k [16]byte
	binary.LittleEndian.PutUint64(k[:], rand.Uint64())
	binary.LittleEndian.PutUint64(k[8:], rand.Uint64())
	var key [24]byte
	base64.StdEncoding.Encode(key[:], k[:])

	b := make([]byte, 0, 256+len(pathQuery))
	b = append(b, "GET "...)
	b = append(b, pathQuery...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "...)
	b = append(b, key[:]...)
	b = append(b, "\r\nSec-WebSocket-Version: 13\r\n\r\n"...)
	if _, err := w.c.Write(b); err != nil {
		return &handshakeError{false, err}
	}

	line, err := w.br.ReadSlice('\n')
	if err != nil {
		return &handshakeError{false, err}
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 101 ")) {
		return &handshakeError{true, fmt.Errorf("%w: %s", ErrBadHandshake, bytes.TrimSpace(line))}
	}
	h := sha1.Sum(append(key[:], wsGUID...))
	var want [28]byte
	base64.StdEncoding.Encode(want[:], h[:])
	accepted := false
	for {
		line, err := w.br.ReadSlice('\n')
		if err != nil {
			return &handshakeError{true, err}
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, val, _ := bytes.Cut(line, []byte(":"))
		if bytes.EqualFold(bytes.TrimSpace(name), []byte("Sec-WebSocket-Accept")) {
			accepted = bytes.Equal(bytes.TrimSpace(val), want[:])
		}
	}
	if !accepted {
		return &handshakeError{true, fmt.Errorf("%w: no or wrong Sec-WebSocket-Accept", ErrBadHandshake)}
	}
	return nil
}

// writeFrame sends one whole message (or control frame), masked.
func (w *wsConn) writeFrame(op byte, payload []byte, deadline time.Time) error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	b := w.wbuf[:0]
	b = append(b, 0x80|op)
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	var mask [4]byte
	binary.LittleEndian.PutUint32(mask[:], rand.Uint32())
	b = append(b, mask[:]...)
	start := len(b)
	b = append(b, payload...)
	for i := range b[start:] {
		b[start+i] ^= mask[i&3]
	}
	w.wbuf = b
	if cap(b) > 16*1024 {
		w.wbuf = nil // do not keep a rare big buffer
	}
	w.c.SetWriteDeadline(deadline)
	_, err := w.c.Write(b)
	return err
}

// closeFrame sends a close frame with code, ignoring errors.
func (w *wsConn) closeFrame(code int) {
	w.writeFrame(opClose, binary.BigEndian.AppendUint16(nil, uint16(code)), time.Now().Add(time.Second))
}

// readMessage returns the next data message; its bytes are valid until the
// next call. A ping is answered, a pong skipped; a close frame ends it.
func (w *wsConn) readMessage() ([]byte, error) {
	msg := w.rbuf[:0]
	for {
		var h [2]byte
		if _, err := io.ReadFull(w.br, h[:]); err != nil {
			return nil, err
		}
		fin, op := h[0]&0x80 != 0, h[0]&0x0f
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var l [2]byte
			if _, err := io.ReadFull(w.br, l[:]); err != nil {
				return nil, err
			}
			n = uint64(binary.BigEndian.Uint16(l[:]))
		case 127:
			var l [8]byte
			if _, err := io.ReadFull(w.br, l[:]); err != nil {
				return nil, err
			}
			n = binary.BigEndian.Uint64(l[:])
		}
		var mask [4]byte
		masked := h[1]&0x80 != 0
		if masked {
			if _, err := io.ReadFull(w.br, mask[:]); err != nil {
				return nil, err
			}
		}
		if op >= opClose {
			if n > 125 {
				return nil, errors.New("websocket: control frame too long")
			}
			var p [125]byte
			if _, err := io.ReadFull(w.br, p[:n]); err != nil {
				return nil, err
			}
			if masked {
				for i := range p[:n] {
					p[i] ^= mask[i&3]
				}
			}
			switch op {
			case opClose:
				code := 1005
				if n >= 2 {
					code = int(binary.BigEndian.Uint16(p[:2]))
				}
				return nil, &errClosed{code}
			case opPing:
				if err := w.writeFrame(opPong, p[:n], time.Now().Add(10*time.Second)); err != nil {
					return nil, err
				}
			}
			continue
		}
		if n > readLimit || uint64(len(msg)) > readLimit-n { // no wrap-around for n near 2^64
			return nil, errors.New("websocket: message too large")
		}
		start := len(msg)
		msg = append(msg, make([]byte, n)...)
		if _, err := io.ReadFull(w.br, msg[start:]); err != nil {
			return nil, err
		}
		if masked {
			for i := range msg[start:] {
				msg[start+i] ^= mask[i&3]
			}
		}
		if op != opCont && op != opText && op != opBinary {
			return nil, fmt.Errorf("websocket: unknown opcode %d", op)
		}
		if fin {
			if cap(msg) <= 16*1024 {
				w.rbuf = msg
			}
			return msg, nil
		}
	}
}
