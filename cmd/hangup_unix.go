//go:build unix

package cmd

import (
	"context"

	"golang.org/x/sys/unix"
)

// watchHangup calls gone, once, when the reader of stdout or stderr goes
// away (stderr true when it was stderr's) (`chatctl watch | head -1` after head exits): it polls both
// descriptors for hang-up and error, reading and writing nothing, so a
// command that prints nothing for hours still ends within a poll period
// instead of at its next write. A descriptor that is a file or /dev/null
// never reports either (a stdout closed with >&- is /dev/null to a Go
// program: the runtime opens it in place of a closed 0, 1 or 2). It stops
// when ctx ends.
func watchHangup(ctx context.Context, gone func(stderr bool)) {
	fds := []unix.PollFd{{Fd: 1}, {Fd: 2}}
	go func() {
		for ctx.Err() == nil {
			n, err := unix.Poll(fds, hangupPollMS)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return
			}
			if n == 0 {
				continue
			}
			for i := range fds {
				if fds[i].Revents&(unix.POLLHUP|unix.POLLERR) != 0 {
					gone(i == 1)
					return
				}
			}
		}
	}()
}

// hangupPollMS is how often watchHangup looks again at the descriptors:
// it only bounds how soon the goroutine sees ctx end, as poll returns at
// once on a hang-up.
const hangupPollMS = 500
