package benchfloor_test

import (
	"context"
	"net"
	"testing"
	"time"

	"chatctl/internal/benchfloor"
	"chatctl/internal/leaktest"
	"chatctl/pkg/loadgen"
)

func waitOpen(t *testing.T, s *benchfloor.Server, want int) {
	t.Helper()
	for end := time.Now().Add(20 * time.Second); s.Open() != want; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("floor has %d sockets open, want %d", s.Open(), want)
		}
	}
}

// Both floors serve the generator's floor protocols: every login of both
// close modes succeeds and its socket is gone afterwards; held sessions
// stay open on the floor until the hold ends.
func TestFloorsServeTheGenerator(t *testing.T) {
	leaktest.Check(t)
	for _, tc := range []struct {
		proto loadgen.Protocol
		serve func(net.Listener) *benchfloor.Server
	}{{loadgen.ProtoTCP, benchfloor.ServeTCP}, {loadgen.ProtoWS, benchfloor.ServeWS}} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s := tc.serve(ln)
		users := loadgen.Users("f-", 20)
		for _, cm := range loadgen.CloseModes {
			tg := loadgen.Target{Endpoint: string(tc.proto) + "://" + ln.Addr().String(), Protocol: tc.proto, Close: cm}
			r, err := loadgen.Logins(context.Background(), loadgen.Options{Target: tg, Users: users, Sigs: make([]string, 20), Concurrency: 4})
			if err != nil || r.OK != 20 || r.Close != cm || r.Protocol != tc.proto {
				t.Fatalf("%s close %s: %v, %+v", tc.proto, cm, err, r)
			}
			waitOpen(t, s, 0)
		}
		held := make(chan int, 1)
		tg := loadgen.Target{Endpoint: "ws://" + ln.Addr().String(), Protocol: tc.proto}
		go func() {
			for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
				if n := s.Open(); n == 5 {
					held <- n
					return
				}
			}
			held <- s.Open()
		}()
		h, err := loadgen.Hold(context.Background(), loadgen.HoldOptions{
			Options:  loadgen.Options{Target: tg, Users: users[:5], Sigs: make([]string, 5)},
			Duration: 300 * time.Millisecond})
		if err != nil || h.LoggedIn != 5 || h.Disconnects != 0 {
			t.Fatalf("%s hold: %v, %+v", tc.proto, err, h)
		}
		if n := <-held; n != 5 {
			t.Errorf("%s: %d sockets open while 5 were held", tc.proto, n)
		}
		waitOpen(t, s, 0)
		s.Close()
	}
}
