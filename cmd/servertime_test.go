package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"chatctl/pkg/client"
	"chatctl/pkg/session"

	"github.com/gorilla/websocket"
)

// server-time without a process: its flags and serverTimeRun (lifecycle_opts_test.go).

func TestServerTimeFlags(t *testing.T) {
	o, code, _, stderr := parseArgs(t, newServerTimeCmd, "server-time")
	if code != 0 || o == nil || o.Cached || o.MS || o.Profile != "default" {
		t.Fatalf("exit %d %s: %+v", code, stderr, o)
	}
	o, code, _, stderr = parseArgs(t, newServerTimeCmd, "server-time", "--cached", "--ms", "--profile", "p")
	if code != 0 || o == nil || !o.Cached || !o.MS || o.Profile != "p" {
		t.Fatalf("exit %d %s: %+v", code, stderr, o)
	}
	o, code, _, stderr = parseArgs(t, newServerTimeCmd, "server-time", "--ms=2")
	if o != nil || code != ExitUsage || stderr != "chatctl: invalid argument \"2\" for \"--ms\" flag: strconv.ParseBool: parsing \"2\": invalid syntax (see 'chatctl server-time --help')\n" {
		t.Errorf("--ms=2: exit %d %q", code, stderr)
	}
}

func serverTimeRunOK(t *testing.T) {
	e := newSubEnv(t)
	e.server()
	ctx := context.Background()
	serverTime := func(o ServerTimeOptions) error {
		o.lifecycleOptions = e.lifecycle("default", o.Endpoint)
		return serverTimeRun(ctx, &o)
	}
	e.want(serverTime(ServerTimeOptions{Cached: true}), ExitNotLoggedIn, KindNotLoggedIn,
		"not logged in (profile \"default\"): run `chatctl login USER`", "", "")

	p := e.login("default", "alice")
	// Live: an a2 re-login measures the clock again and saves it.
	if err := serverTime(ServerTimeOptions{MS: true}); err != nil {
		t.Fatal(err)
	}
	q := e.profile("default")
	if !q.ClockMeasuredAt.After(p.ClockMeasuredAt) {
		t.Errorf("the offset was not measured again: %v, login's %v", q.ClockMeasuredAt, p.ClockMeasuredAt)
	}
	now := session.ServerNow(q, e.now)
	e.want(nil, 0, "", "", strconv.FormatInt(now.UnixMilli(), 10)+"\n", "")
	// --cached: the saved offset, no network.
	e.ts.Close()
	e.want(serverTime(ServerTimeOptions{Cached: true}), 0, "", "", strconv.FormatInt(now.Unix(), 10)+"\n", "")
	e.json()
	e.want(serverTime(ServerTimeOptions{Cached: true}), 0, "", "", jsonDoc(t, serverTimeResult{
		ServerTimeMS: now.UnixMilli(), ServerTime: stamp(now), OffsetMS: q.ClockOffsetMS, RTTMS: q.ClockRTTMS,
		MeasuredAt: stamp(q.ClockMeasuredAt), Cached: true}), "")
	e.app.V.Set("output", "text")

	// Live with the server gone: exit 6, the file as it was.
	saved := e.sessionFile()
	err := serverTime(ServerTimeOptions{})
	wantUnreachable(t, err, e.lifecycle("", "").Endpoint)
	e.reset()
	if e.sessionFile() != saved {
		t.Errorf("an unreachable server-time changed the session file")
	}

	// No offset saved (a profile from before it was): exit 1.
	q.ClockMeasuredAt = time.Time{}
	if err := session.Open(e.dir).Put(ctx, "default", q); err != nil {
		t.Fatal(err)
	}
	e.want(serverTime(ServerTimeOptions{Cached: true}), ExitFailure, KindError,
		"no saved clock offset for profile \"default\": run `chatctl server-time` without --cached once", "", "")

	// A session recorded as expired: exit 5.
	e.setState("default", session.StateExpired, client.KickedUserSigExpired)
	e.want(serverTime(ServerTimeOptions{}), ExitSigRejected, KindUserSigExpired,
		"alice's UserSig expired (userSigExpired) at "+stamp(e.now)+" (profile \"default\"): log in again with a new UserSig", "", "")
}

// server-time sees a kick by another login: exit 4, recorded.
func serverTimeRunKicked(t *testing.T) {
	e := newSubEnv(t)
	e.server()
	e.login("default", "alice")
	e.login("tab", "alice")
	o := ServerTimeOptions{lifecycleOptions: e.lifecycle("default", "")}
	e.want(serverTimeRun(context.Background(), &o), ExitKicked, KindKicked,
		"alice was kicked out (multipleAccount) at "+stamp(e.now)+" (profile \"default\"): run `chatctl login alice` again", "", "")
	if p := e.profile("default"); p.State != session.StateKicked || p.KickType != client.KickedMultipleAccount {
		t.Errorf("the kick was not recorded: %+v", p)
	}
}

// A login reply without TimeStamp: exit 1, and the failure document names
// the profile and its user as every lifecycle failure's does (OUTPUT.md,
// "On failure"). The offset saved by the login is kept.
func TestServerTimeNoTimeStamp(t *testing.T) {
	e := newRunEnv(t)
	e.server()
	p := e.login("default", "alice")
	// A server that answers every request OK, its wslogin without TimeStamp.
	up := websocket.Upgrader{}
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for {
			_, m, err := ws.ReadMessage()
			if err != nil {
				return
			}
			var f struct{ Head map[string]any }
			json.Unmarshal(m, &f)
			head, _ := json.Marshal(map[string]any{"servcmd": f.Head["servcmd"], "seq": f.Head["seq"]})
			ws.WriteMessage(websocket.TextMessage, []byte(`{"head":`+string(head)+`,"body":{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":""}}`))
		}
	}))
	defer fake.Close()
	e.json()
	o := ServerTimeOptions{lifecycleOptions: e.lifecycle("default", "ws"+strings.TrimPrefix(fake.URL, "http"))}
	err := serverTimeRun(context.Background(), &o)
	e.want(err, ExitFailure, KindError, "the server's login reply carries no TimeStamp", "", "")
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Data == nil {
		t.Fatalf("no document data: %#v", err)
	}
	if b, _ := json.Marshal(ee.Data); string(b) != `{"profile":"default","user":"alice"}` {
		t.Errorf("failure document data %s, want profile and user", b)
	}
	if q := e.profile("default"); q.ClockMeasuredAt != p.ClockMeasuredAt || q.ClockOffsetMS != p.ClockOffsetMS {
		t.Errorf("the clock offset changed: %+v, login's %+v", q, p)
	}
}
