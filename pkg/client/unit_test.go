package client

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestSeqGenIncrementsAndWraps(t *testing.T) {
	g := newSeqGen(41)
	if a, b := g.next(), g.next(); a != 41 || b != 42 {
		t.Fatalf("seqs %d %d, want 41 42", a, b)
	}
	g = newSeqGen(maxSeq - 1)
	if a, b := g.next(), g.next(); a != maxSeq-1 || b != 1 {
		t.Fatalf("wrap: %d %d, want %d 1", a, b, maxSeq-1)
	}
	r1, r2 := newSeqGen(0).next(), newSeqGen(0).next()
	if r1 == 0 || r1 >= maxSeq || r2 == 0 || r2 >= maxSeq {
		t.Fatalf("random starts out of range: %d %d", r1, r2)
	}
}

func TestPendingMatchesServcmdAndSeq(t *testing.T) {
	p := newPendingTable()
	hb := &pendingCall{Cmd: "heartbeat.alive", Seq: 7, done: make(chan reply, 1)}
	hello := &pendingCall{Cmd: "im_open_status.wshello", Seq: 8, done: make(chan reply, 1)}
	for _, c := range []*pendingCall{hb, hello} {
		if err := p.add(c); err != nil {
			t.Fatal(err)
		}
	}
	// Same seq, other servcmd: a push, not a reply.
	if p.resolve("im_open_status.wshello", 7, reply{}) {
		t.Fatal("wshello/7 matched heartbeat/7")
	}
	if !p.resolve("heartbeat.alive", 7, reply{body: []byte(`{}`)}) {
		t.Fatal("heartbeat/7 not matched")
	}
	if r := <-hb.done; string(r.body) != `{}` {
		t.Fatalf("reply body %q", r.body)
	}
	// A second reply to the same request is a push.
	if p.resolve("heartbeat.alive", 7, reply{}) {
		t.Fatal("answered twice")
	}
	p.close(ErrConnLost)
	if r := <-hello.done; !errors.Is(r.err, ErrConnLost) {
		t.Fatalf("pending after close: %v", r.err)
	}
	if err := p.add(&pendingCall{Cmd: "x", Seq: 1, done: make(chan reply, 1)}); !errors.Is(err, ErrConnLost) {
		t.Fatalf("add after close: %v", err)
	}
	if p.len() != 0 {
		t.Fatalf("%d left", p.len())
	}
}

func TestPendingRemove(t *testing.T) {
	p := newPendingTable()
	c := &pendingCall{Cmd: "a.b", Seq: 1, done: make(chan reply, 1)}
	_ = p.add(c)
	p.remove(c)
	if p.resolve("a.b", 1, reply{}) {
		t.Fatal("a forgotten call was answered")
	}
}

func TestBackoffGrowsCapsAndJitters(t *testing.T) {
	lo := Backoff{Min: 100 * time.Millisecond, Max: time.Second, Rand: func() float64 { return 0 }}
	hi := Backoff{Min: 100 * time.Millisecond, Max: time.Second, Rand: func() float64 { return 0.999999 }}
	wantFull := []time.Duration{100, 200, 400, 800, 1000, 1000, 1000}
	for i, w := range wantFull {
		w *= time.Millisecond
		l, h := lo.Next(), hi.Next()
		if l != w/2 {
			t.Errorf("attempt %d: low jitter %v, want %v", i, l, w/2)
		}
		if h > w || h < w-time.Millisecond {
			t.Errorf("attempt %d: high jitter %v, want ~%v", i, h, w)
		}
	}
	lo.Reset()
	if d := lo.Next(); d != 50*time.Millisecond {
		t.Errorf("after Reset: %v", d)
	}
}

func TestBackoffDefaultRandInRange(t *testing.T) {
	b := Backoff{Min: time.Second, Max: 4 * time.Second}
	for range 100 {
		if d := b.Next(); d < 500*time.Millisecond || d > 4*time.Second {
			t.Fatalf("delay %v out of [0.5s, 4s]", d)
		}
	}
}

func TestClockOffsetIsTheSDKFormula(t *testing.T) {
	local := time.UnixMilli(1795626047_300)
	// TimeStamp*1000 + RTT/2 - now = 1795626047000 + 40 - 1795626047300 = -260 ms
	server, off := clockOffset(1795626047, 80*time.Millisecond, local)
	if off != -260*time.Millisecond {
		t.Fatalf("offset %v, want -260ms", off)
	}
	if !server.Equal(time.Unix(1795626047, 0)) {
		t.Fatalf("server time %v", server)
	}
	// Decimal seconds are kept (ms precision).
	_, off = clockOffset(1795626047.5, 0, local)
	if off != 200*time.Millisecond {
		t.Fatalf("fractional offset %v, want 200ms", off)
	}
	r := LoginResult{Offset: time.Hour}
	if got := r.ServerNow(local); !got.Equal(local.Add(time.Hour)) {
		t.Fatalf("ServerNow %v", got)
	}
}

func TestBuildURL(t *testing.T) {
	for _, tc := range []struct{ ep, want string }{
		{"ws://127.0.0.1:9000", "ws://127.0.0.1:9000/binfo"},
		{"ws://127.0.0.1:9000/", "ws://127.0.0.1:9000/binfo"},
		{"http://h:1", "ws://h:1/binfo"},
		{"https://h", "wss://h/binfo"},
		{"wss://h/chat", "wss://h/chat/binfo"},
	} {
		s, err := BuildURL(Config{Endpoint: tc.ep, SDKAppID: 1400000001, InstanceID: "abc"})
		if err != nil {
			t.Fatalf("%s: %v", tc.ep, err)
		}
		if !strings.HasPrefix(s, tc.want+"?") {
			t.Errorf("%s: %s, want %s?...", tc.ep, s, tc.want)
		}
		if want := "?sdkappid=1400000001&instanceid=abc&random="; !strings.Contains(s, want) ||
			!strings.HasSuffix(s, "&platform=7&host=unknown&version=-1&sdkversion=3.6.6") {
			t.Errorf("%s: %s, want the SDK's query order", tc.ep, s)
		}
		u, _ := url.Parse(s)
		q := u.Query()
		if q.Get("sdkappid") != "1400000001" || q.Get("instanceid") != "abc" || q.Get("platform") != "7" ||
			q.Get("sdkversion") != "3.6.6" || q.Get("random") == "" {
			t.Errorf("%s: query %v", tc.ep, q)
		}
	}
	if s, err := BuildURL(Config{Endpoint: EndpointCloud, SDKAppID: 20000001}); err != nil ||
		!strings.HasPrefix(s, "wss://20000001w4s.my-imcloud.com/binfo?sdkappid=20000001&") {
		t.Errorf("cloud: %s, %v: want the SDK's first host", s, err)
	}
	for _, bad := range []string{"", "127.0.0.1:9000", "ftp://h", "ws://"} {
		if _, err := BuildURL(Config{Endpoint: bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestServerErrorClassification(t *testing.T) {
	for _, tc := range []struct {
		e      ServerError
		reason string
		kicked string
	}{
		{ServerError{Code: 70001}, "", KickedUserSigExpired},
		{ServerError{Code: 20002}, "", KickedUserSigExpired},
		{ServerError{Code: 1002, KickType: 2}, "", KickedMultipleDevice},
		{ServerError{Code: 70002, Info: "instance revoked: multipleAccount"}, "multipleAccount", KickedMultipleAccount},
		{ServerError{Code: 70002, Info: "instance revoked: REST_API_Kick"}, "REST_API_Kick", KickedRESTAPI},
		{ServerError{Code: 70002, Info: "instance revoked: logout"}, "logout", ""},
		{ServerError{Code: 70002, Info: "a2 unknown"}, "", ""},
		{ServerError{Code: 70003, Info: "instance revoked: multipleAccount"}, "", ""},
	} {
		if r := tc.e.RevokedReason(); r != tc.reason {
			t.Errorf("%+v: reason %q, want %q", tc.e, r, tc.reason)
		}
		if k := tc.e.KickedType(); k != tc.kicked {
			t.Errorf("%+v: kicked %q, want %q", tc.e, k, tc.kicked)
		}
	}
	e := &ServerError{Cmd: "im_open_status.wslogin", Code: 70003, Info: "bad sig"}
	if e.Error() != "im_open_status.wslogin: bad sig (code 70003)" {
		t.Errorf("Error() = %q", e.Error())
	}
}

func TestErrorWrapping(t *testing.T) {
	if !errors.Is(ErrConnLost, ErrUnreachable) || !errors.Is(ErrTimeout, ErrUnreachable) {
		t.Fatal("ErrConnLost/ErrTimeout must wrap ErrUnreachable")
	}
	if errors.Is(ErrHandshake, ErrUnreachable) || errors.Is(ErrClosed, ErrUnreachable) {
		t.Fatal("ErrHandshake/ErrClosed must not wrap ErrUnreachable")
	}
}

func TestParseLoginTinyIDForms(t *testing.T) {
	for body, want := range map[string]string{
		`{"A2Key":"k","TinyId":"144115000000000001"}`: "144115000000000001",
		`{"A2Key":"k","TinyId":144115000000000001}`:   "144115000000000001",
		`{"A2Key":"k","TinyId":"tiny-abc"}`:           "tiny-abc",
	} {
		res, err := parseLogin(reply{body: []byte(body)}, &pendingCall{}, time.Now(), true)
		if err != nil || res.TinyID != want {
			t.Errorf("%s: %q %v, want %q", body, res.TinyID, err, want)
		}
	}
	if _, err := parseLogin(reply{body: []byte(`{"A2Key":"k"}`)}, &pendingCall{}, time.Now(), true); !errors.Is(err, ErrBadReply) {
		t.Errorf("no TinyId: %v", err)
	}
	// An a2 re-login reply may omit both (the client keeps its own).
	if _, err := parseLogin(reply{body: []byte(`{"InstId":3}`)}, &pendingCall{}, time.Now(), false); err != nil {
		t.Errorf("re-login reply: %v", err)
	}
}
