package ui

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingBackend counts the state snapshots taken.
type countingBackend struct {
	feed   *Feed
	states atomic.Int64
}

func (b *countingBackend) State() State {
	n := b.states.Add(1)
	return State{HelloInterval: "5s", Apps: []App{}, Users: []User{{App: 1, User: strings.Repeat("u", int(n%7)+1)}}}
}
func (b *countingBackend) Feed() *Feed                                              { return b.feed }
func (b *countingBackend) REST() http.Handler                                       { return http.NotFoundHandler() }
func (b *countingBackend) EndInstance(context.Context, uint64, string, uint64) bool { return false }
func (b *countingBackend) Source(*http.Request) any                                 { return nil }

// Many streams and a burst of events share one snapshot a second: the
// state is taken (and marshalled) once per stateFresh, not once per stream
// per burst; so are the GETs of the state. Every stream still gets the
// events and a state.
func TestStreamsShareOneSnapshot(t *testing.T) {
	b := &countingBackend{feed: NewFeed(200, MaxSubscribers, time.Now)}
	ts := httptest.NewServer(Handler(b))
	defer ts.Close()
	defer b.feed.Close()
	const streams, events = 16, 300
	var wg sync.WaitGroup
	got := make([]atomic.Int64, streams)
	ready := make(chan struct{}, streams)
	start := time.Now()
	for i := range streams {
		resp, err := http.Get(ts.URL + Prefix + "api/events")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		wg.Go(func() {
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				switch sc.Text() {
				case "event: hello":
					ready <- struct{}{}
				case "event: lifecycle":
					if got[i].Add(1) == events {
						return
					}
				}
			}
		})
	}
	for range streams {
		<-ready
	}
	for i := range events {
		b.feed.Publish(Event{Kind: KindLogin, App: 1, User: "u", Inst: uint64(i + 1)})
		if i%20 == 19 {
			// Bursts of 20: within a subscriber's queue (a stream that
			// falls 64 behind is dropped, by design).
			deadline := time.Now().Add(30 * time.Second)
			for j := range got {
				for got[j].Load() < int64(i+1) {
					if time.Now().After(deadline) {
						t.Fatalf("stream %d has %d of %d events after 30 s (dropped?)", j, got[j].Load(), i+1)
					}
					time.Sleep(time.Millisecond)
				}
			}
		}
		if i%50 == 0 {
			resp, err := http.Get(ts.URL + Prefix + "api/state")
			if err != nil {
				t.Fatal(err)
			}
			var st State
			if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || len(st.Events) == 0 || len(st.Users) != 1 {
				t.Errorf("state: %+v %v", st, err)
			}
			resp.Body.Close()
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	if max := int64(elapsed/stateFresh) + 2; b.states.Load() > max {
		t.Errorf("%d snapshots for %d streams and %d events in %v, want at most %d", b.states.Load(), streams, events, elapsed, max)
	}
	for i := range got {
		if n := got[i].Load(); n != events {
			t.Errorf("stream %d got %d events", i, n)
		}
	}
}
