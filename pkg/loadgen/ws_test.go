package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The generator's own client against gorilla's server: a message
// fragmented over several frames comes back whole, a ping is answered with
// its payload, the client's masked frames arrive intact, and a close frame
// ends the read with its code.
func TestWSConnAgainstGorilla(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789"), 2000) // 20 kB: fragmented by a 1 kB write buffer
	pong := make(chan string, 1)
	got := make(chan []byte, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up := websocket.Upgrader{WriteBufferSize: 1024}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		ws.SetPongHandler(func(p string) error { pong <- p; return nil })
		ws.WriteMessage(websocket.PingMessage, []byte("are you there"))
		mw, _ := ws.NextWriter(websocket.BinaryMessage) // a frame per full buffer
		mw.Write(big)
		mw.Close()
		_, m, err := ws.ReadMessage() // also runs the pong handler
		if err != nil {
			return
		}
		got <- m
		ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4321, "bye"))
		ws.ReadMessage()
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addr := strings.TrimPrefix(srv.URL, "http://")
	w, err := dialWS(ctx, &net.Dialer{}, addr, addr, "", "/binfo?x=1")
	if err != nil {
		t.Fatal(err)
	}
	defer w.c.Close()
	w.c.SetDeadline(time.Now().Add(10 * time.Second))
	m, err := w.readMessage()
	if err != nil || !bytes.Equal(m, big) {
		t.Fatalf("fragmented message: %d bytes, %v; want %d bytes", len(m), err, len(big))
	}
	sent := []byte(`{"head":{"servcmd":"wslogin"},"body":{}}`)
	if err := w.writeFrame(opBinary, sent, time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if m := <-got; !bytes.Equal(m, sent) {
		t.Fatalf("server read %q, want %q", m, sent)
	}
	if p := <-pong; p != "are you there" {
		t.Fatalf("pong %q", p)
	}
	_, err = w.readMessage()
	var ce *errClosed
	if !errors.As(err, &ce) || ce.code != 4321 {
		t.Fatalf("after the close frame: %v, want close 4321", err)
	}
}

// A server that does not switch protocols is a handshake error.
func TestWSConnBadHandshake(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusForbidden)
	}))
	defer srv.Close()
	d, err := NewDialer(Target{Endpoint: srv.URL, SDKAppID: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.Login(context.Background(), "u", "sig")
	if !errors.Is(err, ErrBadHandshake) || ErrorKey(err) != KeyHandshake || !strings.Contains(err.Error(), "403") {
		t.Fatalf("login against a 403: %v (key %q)", err, ErrorKey(err))
	}
}

// A signal (the run's context canceled) ends a login whose host never
// answers its upgrade or its wslogin, not only the dial bound: `bench`
// took the whole --dial-timeout to stop (the second CLI pass). The
// attempt is counted as stopped, not as a timeout.
func TestLoginStopsWhenCanceled(t *testing.T) {
	for _, answer := range []bool{false, true} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				if answer { // upgrade, then say nothing to the wslogin
					br := bufio.NewReader(c)
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					sum := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
					fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", base64.StdEncoding.EncodeToString(sum[:]))
				}
			}
		}()
		d, err := NewDialer(Target{Endpoint: "ws://" + ln.Addr().String(), SDKAppID: 1, DialTimeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(200*time.Millisecond, cancel)
		done := make(chan error, 1)
		go func() { _, err := d.Login(ctx, "u", "sig"); done <- err }()
		select {
		case err := <-done:
			if !strings.HasSuffix(ErrorKey(err), ": "+KeyStopped) {
				t.Errorf("upgraded %v: a canceled login: %v (key %q), want stopped", answer, err, ErrorKey(err))
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("upgraded %v: the login went on 20 s after its context was canceled", answer)
		}
	}
}
