//go:build unix

package server

import (
	"os"
	"syscall"
)

// rawRead: a read is tried without blocking (tryRead) and the runtime's
// poller waits for the socket to be readable, no buffer held meanwhile.
const rawRead = true

// tryRead is one non-blocking read of the socket (fd) into a pooled buffer,
// kept in c.buf when it read anything; false (wait, then try again) when
// the socket has nothing yet.
func (c *sockConn) tryRead(fd uintptr) bool {
	b := sockBufs.Get().(*[sockReadBuf]byte)
	for {
		n, err := syscall.Read(int(fd), b[:])
		if err == syscall.EINTR {
			continue
		}
		if err == syscall.EAGAIN {
			sockBufs.Put(b)
			return false
		}
		if n <= 0 {
			sockBufs.Put(b)
			c.n = 0
			if err != nil {
				c.err = os.NewSyscallError("read", err)
			}
			return true
		}
		c.buf, c.n = b, n
		return true
	}
}
