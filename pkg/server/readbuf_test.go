package server

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// tcpPair is both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// A sockConn returns every byte in order, whatever the sizes of the
// writes and of the reads (short reads through the pooled buffer, long
// ones straight), and holds no buffer once what it read is returned: on a
// socket it reads raw, and on a connection that has no raw reads (net.Pipe)
// it reads blocking.
func TestSockConnReadsInOrder(t *testing.T) {
	t.Run("tcp", func(t *testing.T) {
		client, server := tcpPair(t)
		c := newSockConn(server)
		if rawRead && c.rc == nil {
			t.Fatal("a TCP socket without raw reads")
		}
		readsInOrder(t, client, c)
	})
	t.Run("pipe", func(t *testing.T) {
		client, server := net.Pipe()
		t.Cleanup(func() { client.Close(); server.Close() })
		c := newSockConn(server)
		if c.rc != nil {
			t.Fatal("raw reads on a pipe")
		}
		readsInOrder(t, client, c)
	})
}

func readsInOrder(t *testing.T, client net.Conn, c *sockConn) {
	want := make([]byte, 3*sockReadBuf+77)
	for i := range want {
		want[i] = byte(i * 7)
	}
	done := make(chan error, 1)
	go func() {
		// Pieces of several sizes, each its own write.
		rest := want
		for _, n := range []int{1, 13, 300, sockReadBuf + 5, 2, len(want)} {
			n = min(n, len(rest))
			if _, err := client.Write(rest[:n]); err != nil {
				done <- err
				return
			}
			rest = rest[n:]
			time.Sleep(time.Millisecond) // let the reader catch up: separate reads
		}
		done <- nil
	}()
	var got []byte
	sizes := []int{2, gorillaReadBuf, 1, sockReadBuf, 500, 4 * sockReadBuf}
	for i := 0; len(got) < len(want); i++ {
		p := make([]byte, sizes[i%len(sizes)])
		n, err := c.Read(p)
		if err != nil {
			t.Fatalf("read after %d bytes: %v", len(got), err)
		}
		if n == 0 {
			t.Fatal("a read returned nothing and no error")
		}
		got = append(got, p[:n]...)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("bytes differ from what was written")
	}
	if c.buf != nil {
		t.Fatal("a buffer is held with nothing left to return")
	}
	// The writer's close: io.EOF, and still no buffer.
	client.Close()
	if n, err := c.Read(make([]byte, 16)); n != 0 || err != io.EOF {
		t.Fatalf("after the peer's close: %d, %v; want 0, EOF", n, err)
	}
	if c.buf != nil {
		t.Fatal("a buffer is held after EOF")
	}
}

// A read deadline ends a waiting read with a timeout, and the socket
// reads again once it is lifted; a close from another goroutine ends a
// waiting read (as gorilla's Close ends the reader's wait).
func TestSockConnDeadlineAndClose(t *testing.T) {
	client, server := tcpPair(t)
	c := newSockConn(server)
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := c.Read(make([]byte, 16))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("past the deadline: %v, want a timeout", err)
	}
	c.SetReadDeadline(time.Time{})
	if _, err := client.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 16)
	if n, err := c.Read(p); err != nil || string(p[:n]) != "hi" {
		t.Fatalf("after the deadline: %q, %v", p[:n], err)
	}
	ended := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 16))
		ended <- err
	}()
	time.Sleep(10 * time.Millisecond) // most likely waiting by now; either way it must end
	server.Close()
	select {
	case err := <-ended:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("after a close: %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a waiting read did not end when the socket was closed")
	}
}
