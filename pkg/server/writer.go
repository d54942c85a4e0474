package server

import (
	"time"

	"chatctl/pkg/wire"

	"github.com/gorilla/websocket"
)

// A socket's write side (conn): one writer at a time drains the queue,
// the frame's own handler for a reply, a goroutine of its own for a push,
// and shutdown's close frame last. Why no writer goroutine per socket:
// docs/BENCHMARKS.md ("What an idle session holds").

// shutdown has the writer send what is queued, then a close frame, and
// end the socket.
func (c *conn) shutdown() {
	c.quitOnce.Do(func() {
		close(c.quit)
		c.wmu.Lock()
		start := !c.writing && !c.wended
		c.writing = c.writing || start
		c.wmu.Unlock()
		if start {
			go c.writeOut(false)
		}
	})
}

// enqueue queues a push from another goroutine without ever blocking: a
// client whose queue is full is too slow and loses its socket. A writer
// goroutine is started when none is writing.
func (c *conn) enqueue(msg []byte) {
	c.wmu.Lock()
	if c.wended {
		c.wmu.Unlock()
		return
	}
	if len(c.out) >= sendQueue {
		c.wmu.Unlock()
		c.log.Warn("send queue full, dropping slow client")
		c.ws.Close()
		return
	}
	c.out = append(c.out, msg)
	start := !c.writing
	c.writing = true
	c.wmu.Unlock()
	if start {
		go c.writeOut(false)
	}
}

// reply queues the answer to one of the client's own requests, from the
// goroutine handling it while the reader waits, and writes the queue
// itself when no writer is at it: no goroutine to wake for the common
// round trip. A full queue holds the reader back (so a client that
// pipelines many requests is slowed, not dropped) for at most
// WriteTimeout; then the client is too slow and loses its socket.
func (c *conn) reply(servcmd string, seq wire.Seq, body []byte) {
	msg := frame(servcmd, seq, body)
	var t *time.Timer
	for {
		c.wmu.Lock()
		if c.wended {
			c.wmu.Unlock()
			return
		}
		if len(c.out) < sendQueue {
			c.out = append(c.out, msg)
			write := !c.writing
			c.writing = true
			c.wmu.Unlock()
			if write {
				c.writeOut(true)
			}
			return
		}
		if c.room == nil {
			c.room = make(chan struct{})
		}
		room := c.room
		c.wmu.Unlock()
		if t == nil {
			t = time.NewTimer(c.s.writeTimeout)
			defer t.Stop()
		}
		select {
		case <-room:
		case <-c.writeDone:
			return
		case <-t.C:
			c.log.Warn("client not reading its replies, dropping it")
			c.ws.Close()
			return
		}
	}
}

// writeOut is the writer: it writes the queue until it is empty, then
// gives up the write side. The caller has taken it (c.writing). inline:
// the caller is a frame's handler, which the reader waits for; a close
// frame for shutdown then goes from a goroutine of its own, which waits
// for the reader.
func (c *conn) writeOut(inline bool) {
	for {
		c.wmu.Lock()
		if isClosed(c.readDone) {
			c.endWriting()
			c.wmu.Unlock()
			return
		}
		if len(c.out) == 0 {
			c.out = nil // no queue kept while idle
			quit := isClosed(c.quit)
			if quit && inline {
				c.wmu.Unlock()
				go c.writeOut(false) // the write side passes to it
				return
			}
			if !quit {
				c.writing = false
				c.wmu.Unlock()
				return
			}
			c.wmu.Unlock()
			c.closeFrame()
			c.wmu.Lock()
			c.endWriting()
			c.wmu.Unlock()
			return
		}
		msg := c.out[0]
		c.out[0] = nil
		c.out = c.out[1:]
		if c.room != nil {
			close(c.room)
			c.room = nil
		}
		c.wmu.Unlock()
		c.ws.SetWriteDeadline(time.Now().Add(c.s.writeTimeout))
		if err := c.ws.WriteMessage(c.msgType, msg); err != nil {
			c.ws.Close() // unblocks the reader
			c.wmu.Lock()
			c.endWriting()
			c.wmu.Unlock()
			return
		}
	}
}

// closeFrame sends shutdown's close frame, waits closeGrace for the
// client's answer (the reader ends on it), and closes the socket.
func (c *conn) closeFrame() {
	c.ws.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down"),
		time.Now().Add(closeGrace))
	waitOut(closeGrace, c.readDone, nil) // until the client answers the close frame
	c.ws.Close()
}

// endWriting ends the write side for good: queued and later frames are
// dropped. c.wmu is held.
func (c *conn) endWriting() {
	c.writing = false
	c.out = nil
	if !c.wended {
		c.wended = true
		close(c.writeDone)
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
