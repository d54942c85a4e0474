package ui

import (
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestFeedKeepsTheLastEvents(t *testing.T) {
	f := NewFeed(3, 1, nil)
	if got := f.Recent(); len(got) != 0 {
		t.Fatalf("empty feed: %v", got)
	}
	for i := range 5 {
		f.Publish(Event{Kind: KindLogin, Inst: uint64(i + 1)})
	}
	got := f.Recent()
	if len(got) != 3 || got[0].Inst != 3 || got[2].Inst != 5 || got[2].Seq != 5 || got[0].Time.IsZero() {
		t.Fatalf("recent = %+v", got)
	}
}

func TestFeedDropsASlowSubscriber(t *testing.T) {
	f := NewFeed(10, 2, nil)
	slow, ok := f.Subscribe()
	if !ok {
		t.Fatal("subscribe refused")
	}
	fast, _ := f.Subscribe()
	if _, ok := f.Subscribe(); ok {
		t.Fatal("a third subscriber admitted past the bound of 2")
	}
	for i := range subQueue + 1 { // never blocks: nobody reads slow
		f.Publish(Event{Kind: KindLogout, Inst: uint64(i)})
		<-fast.C
	}
	n := 0
	for range slow.C { // closed once full: the loop ends
		n++
	}
	if n != subQueue {
		t.Fatalf("slow subscriber got %d events before being dropped, want %d", n, subQueue)
	}
	if _, ok := f.Subscribe(); !ok {
		t.Fatal("the dropped subscriber's place was not freed")
	}
	f.Unsubscribe(slow) // dropped already: nothing happens
	f.Close()
	if _, ok := <-fast.C; ok {
		t.Fatal("Close left a subscriber open")
	}
	if _, ok := f.Subscribe(); ok {
		t.Fatal("a closed feed admitted a subscriber")
	}
	f.Publish(Event{Kind: KindLogin}) // after Close: dropped, no panic
}

func TestFeedBoundsNetworkStrings(t *testing.T) {
	f := NewFeed(2, 1, nil)
	f.Publish(Event{Kind: KindRefused, User: strings.Repeat("é", 40) + "\x00\xff", Reason: strings.Repeat("r", 1000)})
	e := f.Recent()[0]
	if len(e.User) > MaxUser || !utf8.ValidString(e.User) || len(e.Reason) != MaxReason {
		t.Fatalf("unbounded: user %q (%d bytes), reason %d bytes", e.User, len(e.User), len(e.Reason))
	}
	f.Publish(Event{Kind: KindRefused, User: "a\x01b\xffc"})
	if u := f.Recent()[1].User; u != "a\uFFFDb\uFFFDc" {
		t.Fatalf("control and invalid bytes kept: %q", u)
	}
	f.Publish(Event{Kind: KindRefused, User: "administrator\u200b"})
	if u := f.Recent()[1].User; u != "administrator\uFFFD" {
		t.Fatalf("an invisible format character kept: %q", u)
	}
}

// The page's shown (app.js) and the server's logs (logField, which quotes
// with strconv.Quote) show a user ID alike: testdata/shown.json is the
// table both pass (interop/shown.test.cjs runs app.js on it); the feed's
// clip replaces the runes Quote escapes, and keeps the rest.
func TestShownRule(t *testing.T) {
	b, err := os.ReadFile("testdata/shown.json")
	if err != nil {
		t.Fatal(err)
	}
	var table struct{ Cases [][2]string }
	if err := json.Unmarshal(b, &table); err != nil || len(table.Cases) == 0 {
		t.Fatalf("shown.json: %v", err)
	}
	for _, c := range table.Cases {
		q := strconv.Quote(c[0])
		if got := q[1 : len(q)-1]; got != c[1] {
			t.Errorf("%q: strconv.Quote gives %q, the table %q", c[0], got, c[1])
		}
		printable := !strings.ContainsFunc(c[0], func(r rune) bool { return !strconv.IsPrint(r) })
		if clipped := clip(c[0], 1<<10); strings.ContainsRune(clipped, '\uFFFD') == printable {
			t.Errorf("%q: the feed's clip gives %q", c[0], clipped)
		}
	}
}
