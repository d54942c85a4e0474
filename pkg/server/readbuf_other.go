//go:build !unix

package server

// rawRead: this platform's raw reads are not tried here; fill reads
// blocking, holding its buffer while it waits.
const rawRead = false

func (c *sockConn) tryRead(uintptr) bool { return true }
