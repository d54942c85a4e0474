package loadgen

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Protocol is what the generator speaks once connected. The Web SDK's is
// the product; the others put the same generator (the same dials, the
// same concurrency, the same close) in front of a peer and of the floors
// under any WebSocket server, so that figures taken in one run compare
// the servers, not the clients (docs/BENCHMARKS.md, "Goals: ratios").
type Protocol string

const (
	// ProtoSDK is the Web SDK 3.6.6's: GET /binfo, wslogin with the
	// UserSig, then wshello and heartbeat.alive (the default).
	ProtoSDK Protocol = "sdk"
	// ProtoCentrifugo is Centrifugo's JSON protocol: GET
	// /connection/websocket, {"id":1,"connect":{"token":JWT}}, then a
	// pong {} to each of the server's pings {}.
	ProtoCentrifugo Protocol = "centrifugo"
	// ProtoWS is one binary frame each way after the upgrade (700 B up,
	// any reply down): the floor of a WebSocket server that does nothing.
	ProtoWS Protocol = "ws"
	// ProtoTCP is 300 B each way over bare TCP: the floor under any
	// WebSocket server.
	ProtoTCP Protocol = "tcp"
)

// Protocols lists the Protocol values, the default first.
var Protocols = []Protocol{ProtoSDK, ProtoCentrifugo, ProtoWS, ProtoTCP}

// ParseProtocol checks a protocol name; "" is ProtoSDK.
func ParseProtocol(s string) (Protocol, error) { return parseName("protocol", s, Protocols) }

// CloseMode is how the generator ends a socket it is done with.
type CloseMode string

const (
	// CloseSDK is the SDK's close: a close frame (4000), then the TCP
	// close (FIN). The default: it is what the server meets in use.
	CloseSDK CloseMode = "sdk"
	// CloseReset is a TCP reset (SO_LINGER 0) without a close frame: the
	// cheapest close for the server, the one simple generators (a Dialer
	// per login, dropped) end with.
	CloseReset CloseMode = "reset"
)

// CloseModes lists the CloseMode values, the default first.
var CloseModes = []CloseMode{CloseSDK, CloseReset}

// ParseCloseMode checks a close mode name; "" is CloseSDK.
func ParseCloseMode(s string) (CloseMode, error) { return parseName("close", s, CloseModes) }

// parseName finds s among vs; "" is vs[0], the default.
func parseName[T ~string](what, s string, vs []T) (T, error) {
	if s == "" {
		return vs[0], nil
	}
	for _, v := range vs {
		if string(v) == s {
			return v, nil
		}
	}
	return "", fmt.Errorf("unknown %s %q: want one of %s", what, s, joinNames(vs))
}

func joinNames[T ~string](vs []T) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}

// NeedsSigs reports whether p logs in with a credential per user (a
// UserSig or a JWT); the floors take none.
func (p Protocol) NeedsSigs() bool { return p == ProtoSDK || p == ProtoCentrifugo }

// Floor payload sizes: a wslogin request is about floorUp bytes, its reply
// about FloorTCPBytes (BenchmarkTCPFloor measured the same exchange).
const (
	floorUp = 700
	// FloorTCPBytes is what the TCP floor exchanges each way (its server,
	// internal/benchfloor, reads exactly this much before it answers).
	FloorTCPBytes = 300
)

var floorPayload = bytes.Repeat([]byte{'x'}, floorUp)

// loginFloor is a floor's login: one frame (or FloorTCPBytes) each way.
func (s *Session) loginFloor(p Protocol) error {
	if p == ProtoTCP {
		s.ws.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := s.ws.c.Write(floorPayload[:FloorTCPBytes]); err != nil {
			return err
		}
		var b [FloorTCPBytes]byte
		_, err := io.ReadFull(s.ws.br, b[:])
		return err
	}
	if err := s.ws.writeFrame(opBinary, floorPayload, time.Now().Add(10*time.Second)); err != nil {
		return err
	}
	_, err := s.ws.readMessage()
	return err
}

// centReply is one reply or push of Centrifugo's JSON protocol (one per
// line: the server batches several into a frame, newline-separated).
type centReply struct {
	ID      uint32 `json:"id"`
	Connect *struct {
		Ping int  `json:"ping"` // seconds between the server's pings
		Pong bool `json:"pong"` // the server expects a pong to each
	} `json:"connect"`
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// connectCentrifugo sends the connect command with token and waits for
// its reply (a push or a ping before it is skipped).
func (s *Session) connectCentrifugo(token string) error {
	req, err := json.Marshal(map[string]any{"id": 1, "connect": map[string]string{"token": token}})
	if err != nil {
		return err
	}
	if err := s.ws.writeFrame(opText, req, time.Now().Add(10*time.Second)); err != nil {
		return err
	}
	for {
		data, err := s.ws.readMessage()
		if err != nil {
			return err
		}
		for line := range bytes.SplitSeq(data, []byte("\n")) {
			var r centReply
			if len(bytes.TrimSpace(line)) == 0 || json.Unmarshal(line, &r) != nil || r.ID != 1 {
				continue
			}
			if r.Error != nil {
				return &LoginError{Code: r.Error.Code, Info: r.Error.Message}
			}
			if r.Connect == nil {
				return errors.New("bad reply: no connect result")
			}
			s.HelloInterval = time.Duration(r.Connect.Ping) * time.Second
			s.pong = r.Connect.Pong
			return nil
		}
	}
}

// centPings counts the pings in a Centrifugo frame: empty replies {}.
func centPings(data []byte) int {
	n := 0
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		if string(bytes.TrimSpace(line)) == "{}" {
			n++
		}
	}
	return n
}

var centPong = []byte("{}")

// MintJWTs mints one HS256 connection token per user for Centrifugo: sub
// is the user ID, exp now+expire, signed with secret (Centrifugo's
// client.token.hmac_secret_key).
func MintJWTs(secret string, users []string, expire time.Duration, now time.Time) []string {
	head := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	exp := strconv.FormatInt(now.Add(expire).Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	toks := make([]string, len(users))
	for i, u := range users {
		sub, _ := json.Marshal(u) // a string: cannot fail
		claims := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":` + string(sub) + `,"exp":` + exp + `}`))
		signing := head + "." + claims
		mac.Reset()
		mac.Write([]byte(signing))
		toks[i] = signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	}
	return toks
}
