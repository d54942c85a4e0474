package cmd_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Helpers for the runs that a signal stops (TestExitCodeTable): something
// for a command to wait on, and a way to know it waits, so that the signal
// comes while it waits and not before chatctl has started.

// hung is a server on loopback that takes requests and never answers one:
// a WebSocket server that reads every frame (hungWS), or an HTTP server
// whose handlers hang until their client goes (hungHTTP).
type hung struct {
	URL  string
	mu   sync.Mutex
	gen  int           // waiting's count: the connections of one run
	next chan struct{} // closed at the first request of a connection of gen
	// closed is closed when the test ends: handlers stop hanging
	closed chan struct{}
}

type genKey struct{}

// start serves h with handler, each connection knowing its gen.
func (h *hung) start(t *testing.T, handler http.HandlerFunc) {
	srv := httptest.NewUnstartedServer(handler)
	srv.Config.ConnContext = func(ctx context.Context, _ net.Conn) context.Context {
		h.mu.Lock()
		defer h.mu.Unlock()
		return context.WithValue(ctx, genKey{}, h.gen)
	}
	h.closed = make(chan struct{})
	srv.Start()
	t.Cleanup(func() {
		close(h.closed)
		srv.CloseClientConnections()
		srv.Close()
	})
	h.URL = srv.URL
}

// took records a request taken on a connection of the request r.
func (h *hung) took(r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if gen, _ := r.Context().Value(genKey{}).(int); gen == h.gen && h.next != nil {
		close(h.next)
		h.next = nil
	}
}

// waiting is a waiter for the first request on a connection made after
// it was called: a late request of an earlier run does not count.
func (h *hung) waiting() (wait func() (func(), error)) {
	h.mu.Lock()
	h.gen++
	next := make(chan struct{})
	h.next = next
	h.mu.Unlock()
	return func() (func(), error) {
		select {
		case <-next:
			return nil, nil
		case <-time.After(30 * time.Second):
			return nil, errors.New("the hung server was never asked")
		}
	}
}

// hungWS is a WebSocket hung server; its URL is ws://.
func hungWS(t *testing.T) *hung {
	h := &hung{}
	up := websocket.Upgrader{}
	h.start(t, func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
			h.took(r)
		}
	})
	h.URL = "ws" + strings.TrimPrefix(h.URL, "http")
	return h
}

// hungHTTP is an HTTP hung server (a REST API that never answers).
func hungHTTP(t *testing.T) *hung {
	h := &hung{}
	h.start(t, func(w http.ResponseWriter, r *http.Request) {
		h.took(r)
		select {
		case <-r.Context().Done():
		case <-h.closed:
		}
	})
	return h
}

// fifo makes a named pipe in a temp dir: an input that sends nothing and
// never ends (a terminal nobody types into, a producer that hangs).
func fifo(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	return path
}

// fifoWaiting is a waiter for a process that opens the FIFO path to read
// it: its writer end is held open, sending nothing, until the process
// has ended.
func fifoWaiting(path string) waiter {
	return func() func() (func(), error) {
		return func() (func(), error) {
			for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
				// O_NONBLOCK: ENXIO until a reader has it open.
				f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
				if err == nil {
					return func() { f.Close() }, nil
				}
			}
			return nil, errors.New("nobody opened the FIFO")
		}
	}
}

// A signal chatctl was started with ignored (a script's `chatctl … &`)
// stays ignored: SIGINT does nothing, SIGTERM still stops it. The
// kernel drops an ignored signal when it is sent, so the SIGTERM sent
// after it is the only one delivered; were SIGINT caught, it would come
// first (the lower number) and the exit would be 130.
func TestIgnoredSignalStaysIgnored(t *testing.T) {
	t.Parallel()
	c := newCLI(t, "")
	h := hungWS(t)
	wait := h.waiting()
	cmd := exec.Command("bash", "-c", `trap '' INT; exec "$BIN" --profile p login alice --endpoint "$EP" --sdkappid 1400000000 --key-file /dev/stdin`)
	cmd.Env = append(c.env(), "BIN="+c.bin, "EP="+h.URL)
	cmd.Stdin = strings.NewReader("a-key\n")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	if _, err := wait(); err != nil {
		cmd.Process.Kill()
		<-done
		t.Fatalf("%v; stderr: %s", err, errb.String())
	}
	cmd.Process.Signal(syscall.SIGINT)
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if code := exitCodeOf(err); code != 143 || !strings.Contains(errb.String(), "interrupted by SIGTERM") {
			t.Errorf("exit %d, stderr %q; want 143 from SIGTERM alone", code, errb.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatal("still running 30 s after SIGTERM")
	}
	c.record(errb.String(), false)
}
