package server

import (
	"io"
	"net"
	"sync"
	"syscall"
)

// An idle socket holds no read buffer of its own: gorilla reads the socket
// through a small buffer (gorillaReadBuf) over a sockConn, which reads the
// kernel's bytes into a buffer taken from a pool only for as long as they
// last. A wait for the next frame holds no buffer at all where the
// platform lets a read be tried without blocking (readbuf_unix.go): the
// 1 KiB buffer each socket kept was the largest part of an idle session's
// heap (docs/BENCHMARKS.md, "What an idle session holds").

const (
	// gorillaReadBuf is gorilla's own read buffer (the Upgrader's
	// ReadBufferSize): a frame's head and a control frame's payload are
	// peeked in it, so gorilla takes no less than 125.
	gorillaReadBuf = 128
	// sockReadBuf is a pooled read: a whole frame of the SDK's, login
	// included, in one system call. Reads this long or longer go straight
	// to the caller's buffer.
	sockReadBuf = 2048
)

var sockBufs = sync.Pool{New: func() any { return new([sockReadBuf]byte) }}

// sockConn is a socket that reads through pooled buffers. Its Read is
// called by one goroutine at a time (the socket's reader, gorilla's).
type sockConn struct {
	net.Conn
	wirePaced
	rc   syscall.RawConn       // the socket's, nil unless rawRead
	try  func(fd uintptr) bool // c.tryRead, made once: a wait allocates nothing
	buf  *[sockReadBuf]byte    // bytes read and not yet returned: buf[r:w]; nil when none
	r, w int
	n    int   // tryRead's result
	err  error // tryRead's error
}

func newSockConn(nc net.Conn) *sockConn {
	c := &sockConn{Conn: nc}
	if sc, ok := nc.(syscall.Conn); ok && rawRead {
		if rc, err := sc.SyscallConn(); err == nil {
			c.rc, c.try = rc, c.tryRead
		}
	}
	return c
}

func (c *sockConn) Read(p []byte) (int, error) {
	if c.buf == nil {
		if len(p) >= sockReadBuf {
			n, err := c.Conn.Read(p)
			return n, c.charge(n, err)
		}
		if err := c.fill(); err != nil {
			return 0, err
		}
		if err := c.charge(c.w-c.r, nil); err != nil {
			sockBufs.Put(c.buf)
			c.buf = nil
			return 0, err
		}
	}
	n := copy(p, c.buf[c.r:c.w])
	c.r += n
	if c.r == c.w {
		sockBufs.Put(c.buf)
		c.buf = nil
	}
	return n, nil
}

// fill reads what the kernel holds into a pooled buffer: at least a byte,
// or an error.
func (c *sockConn) fill() error {
	if c.rc == nil {
		// A blocking read, which holds the buffer while it waits.
		b := sockBufs.Get().(*[sockReadBuf]byte)
		n, err := c.Conn.Read(b[:])
		if n == 0 {
			sockBufs.Put(b)
			if err == nil {
				err = io.ErrNoProgress
			}
			return err
		}
		c.buf, c.r, c.w = b, 0, n
		return nil // an error comes again with the next read
	}
	if err := c.rc.Read(c.try); err != nil {
		return err // a deadline, a closed socket
	}
	if err := c.err; err != nil {
		c.err = nil
		return err
	}
	if c.n == 0 {
		return io.EOF
	}
	c.r, c.w = 0, c.n
	return nil
}
