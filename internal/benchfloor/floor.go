// Package benchfloor holds the floors of docs/BENCHMARKS.md ("Goals:
// ratios"): servers that do the least any login can cost, measured with the
// same generator as `chatctl serve` (pkg/loadgen's ProtoWS and ProtoTCP),
// so that the server's CPU per login and memory per held session have
// something to be compared to on the same machine in the same run.
//
//   - WS: a bare gorilla/websocket server: upgrade, read one message,
//     write one 300-byte reply, then keep reading until the client leaves
//     (one goroutine per held socket, gorilla's default buffers).
//   - TCP: accept, read 300 bytes (loadgen.FloorTCPBytes), write 300
//     bytes, then wait for the client to leave: the kernel and the Go
//     runtime alone.
package benchfloor

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"chatctl/pkg/loadgen"

	"github.com/gorilla/websocket"
)

// ReplySize is what either floor answers to a login: the size of the TCP
// floor's exchange each way, about a wslogin reply's.
const ReplySize = loadgen.FloorTCPBytes

var reply = bytes.Repeat([]byte{'y'}, ReplySize)

// Server is a floor serving on a listener until Close.
type Server struct {
	ln    net.Listener
	http  *http.Server // WS only
	conns sync.WaitGroup
	mu    sync.Mutex
	open  map[net.Conn]struct{}
	done  chan struct{}
}

// Addr is the listener's address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

func (s *Server) track(c net.Conn, add bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		s.open[c] = struct{}{}
	} else {
		delete(s.open, c)
	}
}

// Open is how many client sockets the floor has open.
func (s *Server) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.open)
}

// Close stops accepting, closes every open socket and waits for their
// goroutines.
func (s *Server) Close() error {
	err := s.ln.Close()
	if s.http != nil {
		s.http.Close() // the upgraded sockets are hijacked: closed below
	}
	<-s.done
	s.mu.Lock()
	for c := range s.open {
		c.Close()
	}
	s.mu.Unlock()
	s.conns.Wait()
	return err
}

func newServer(ln net.Listener) *Server {
	return &Server{ln: ln, open: map[net.Conn]struct{}{}, done: make(chan struct{})}
}

// ServeTCP starts the TCP floor on ln.
func ServeTCP(ln net.Listener) *Server {
	s := newServer(ln)
	go func() {
		defer close(s.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					continue
				}
				return
			}
			s.conns.Add(1)
			s.track(c, true)
			go func() {
				defer s.conns.Done()
				defer s.track(c, false)
				defer c.Close()
				var p [ReplySize]byte
				if _, err := io.ReadFull(c, p[:]); err != nil {
					return
				}
				if _, err := c.Write(reply); err != nil {
					return
				}
				c.Read(p[:]) // until the client closes (or sends more: then done)
			}()
		}
	}()
	return s
}

// ServeWS starts the bare gorilla floor on ln: any path upgrades.
func ServeWS(ln net.Listener) *Server {
	s := newServer(ln)
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	s.http = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		c := ws.NetConn()
		s.conns.Add(1)
		s.track(c, true)
		defer s.conns.Done()
		defer s.track(c, false)
		defer ws.Close()
		ws.SetReadLimit(64 * 1024)
		if _, _, err := ws.ReadMessage(); err != nil {
			return
		}
		if err := ws.WriteMessage(websocket.BinaryMessage, reply); err != nil {
			return
		}
		for { // until the client leaves; gorilla echoes a close frame itself
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	})}
	go func() {
		defer close(s.done)
		s.http.Serve(ln)
	}()
	return s
}
