package ui

// The page's state and its event stream: one snapshot of the state a
// second, with its JSON, serves every stream and every GET of the state.

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"time"
)

// stateFresh is how long one snapshot of the state, and its JSON, serves
// every stream and request: a snapshot walks the hub under its lock, and
// its JSON is some 100 KB with 500 users. Marshalled per stream after each
// burst of events, 64 streams made a flood of refused logins cost a core
// (docs/RELIABILITY.md, finding 22).
const stateFresh = time.Second

// takeStream counts a stream of source (Backend.Source) against
// MaxStreamsPerSource; false when it has as many. release gives it back.
// A nil source is not counted.
func (h *handler) takeStream(source any) (release func(), ok bool) {
	if source == nil {
		return func() {}, true
	}
	h.streamsMu.Lock()
	defer h.streamsMu.Unlock()
	if h.streams[source] >= MaxStreamsPerSource {
		return nil, false
	}
	if h.streams == nil {
		h.streams = map[any]int{}
	}
	h.streams[source]++
	return func() {
		h.streamsMu.Lock()
		defer h.streamsMu.Unlock()
		if h.streams[source]--; h.streams[source] <= 0 {
			delete(h.streams, source)
		}
	}, true
}

// snapshot is the state as JSON, taken at most once per stateFresh; nil
// when it cannot be marshalled.
func (h *handler) snapshot() []byte {
	h.snapMu.Lock()
	defer h.snapMu.Unlock()
	if now := time.Now(); h.snapAt.IsZero() || now.Sub(h.snapAt) >= stateFresh || now.Before(h.snapAt) {
		st := h.b.State()
		st.Events = nil // the handler's
		js, err := json.Marshal(st)
		if err != nil {
			js = nil
		}
		h.snapJS, h.snapAt = js, now
	}
	return h.snapJS
}

// withEvents is the snapshot's JSON with the feed's recent events spliced
// in as its last field (State.Events): what GET /ui/api/state answers and
// a stream's hello carries, without marshalling the state again. nil when
// there is no snapshot.
func (h *handler) withEvents() []byte {
	js := h.snapshot()
	events, err := json.Marshal(h.b.Feed().Recent())
	if js == nil || err != nil {
		return nil
	}
	b := make([]byte, 0, len(js)+len(events)+16)
	b = append(b, js[:len(js)-1]...)
	if string(events) != "null" && string(events) != "[]" {
		b = append(append(b, `,"events":`...), events...)
	}
	return append(b, '}')
}

func (h *handler) state(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "use GET", http.StatusMethodNotAllowed)
		return
	}
	b := h.withEvents()
	if b == nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	b = append(b, '\n')
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// sseWriteTimeout bounds each write to an event stream: a client that
// stops reading is dropped.
const sseWriteTimeout = 10 * time.Second

// statePoll is how often a stream looks at the state for changes that come
// with no lifecycle event (a socket gone, a detached instance forgotten);
// keepAlive how often an idle stream gets a comment line, so that a client
// gone away is noticed by a failed write.
const (
	statePoll = 2 * time.Second
	keepAlive = 25 * time.Second
)

// events is the server-sent event stream: "hello" (the state and the
// recent events), then "lifecycle" per event, and "state" whenever the
// state changed (after each burst of events, or seen at a poll). One
// goroutine per subscriber (this handler) with a bounded queue: a
// subscriber that falls behind is dropped by the feed, never waited for.
func (h *handler) events(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "use GET", http.StatusMethodNotAllowed)
		return
	}
	if r.Body != http.NoBody {
		// A stream lifts its read deadline (below), and net/http reads a
		// body it was promised at the first write: one that never comes
		// would hold the stream's slot for good. EventSource sends none.
		http.Error(w, "an event stream takes no body", http.StatusBadRequest)
		return
	}
	release, ok := h.takeStream(h.b.Source(r))
	if !ok {
		http.Error(w, "too many event streams from this address", http.StatusServiceUnavailable)
		return
	}
	defer release()
	feed := h.b.Feed()
	sub, ok := feed.Subscribe()
	if !ok {
		http.Error(w, "too many event streams, or shutting down", http.StatusServiceUnavailable)
		return
	}
	defer feed.Unsubscribe(sub)
	rc := http.NewResponseController(w)
	// A stream outlives the server's bound on a request: net/http's
	// read for the client going away would end it at the read deadline.
	// Each write has its own deadline (write).
	rc.SetReadDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	lastWrite := time.Now()
	write := func(s string) bool {
		rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
		if _, err := io.WriteString(w, s); err != nil || rc.Flush() != nil {
			return false
		}
		lastWrite = time.Now()
		return true
	}
	send := func(event string, v any) bool {
		b, err := json.Marshal(v)
		return err == nil && write("event: "+event+"\ndata: "+string(b)+"\n\n")
	}
	last := h.snapshot() // the state the client has (bytes.Equal is at once for the same snapshot)
	sendState := func() bool {
		b := h.snapshot()
		if b == nil || bytes.Equal(b, last) {
			return b != nil
		}
		last = b
		return write("event: state\ndata: " + string(b) + "\n\n")
	}
	hello := h.withEvents()
	if hello == nil || !write("event: hello\ndata: "+string(hello)+"\n\n") {
		return
	}
	tick := time.NewTicker(statePoll)
	defer tick.Stop()
	for {
		select {
		case e, ok := <-sub.C:
			// This event and the rest of its burst, then the state once.
			for more := true; more; {
				if !ok || !send("lifecycle", e) {
					return // !ok: dropped (too slow) or shutting down
				}
				select {
				case e, ok = <-sub.C:
				default:
					more = false
				}
			}
			if !sendState() {
				return
			}
		case <-tick.C:
			if !sendState() {
				return
			}
			if time.Since(lastWrite) >= keepAlive && !write(": keep-alive\n\n") {
				return
			}
		case <-r.Context().Done():
			return
		}
	}
}
