package loadgen

import (
	"encoding/json"
	"sync/atomic"
	"time"

	"chatctl/pkg/wire"
)

// Keeper keeps sessions online the way the SDK 3.6.6 does: wshello every
// HelloInterval, heartbeat.alive after HeartbeatIdle without any inbound
// frame. A Centrifugo session answers the server's pings instead, and a
// floor's only reads. It counts what happens to them. Its counters are safe to read at
// any time.
type Keeper struct {
	// Hello overrides the server's HelloInterval when > 0.
	Hello time.Duration
	// OnKick, if set, is called from the session's reader when a
	// stat_forceoffline push arrives.
	OnKick func(s *Session)

	Live              atomic.Int64 // sessions with their socket up
	Hellos            atomic.Int64 // wshello sent
	HelloFails        atomic.Int64 // wshello answered with an error code
	Heartbeats        atomic.Int64 // heartbeat.alive sent
	HeartbeatFails    atomic.Int64 // heartbeat.alive answered with an error code
	HeartbeatTimeouts atomic.Int64 // not answered within HeartbeatTimeout (the SDK would reconnect)
	Kicks             atomic.Int64 // kick pushes received
	KickAcks          atomic.Int64 // wslogout type 1 answered OK (a multipleAccount/Device kick acknowledged)
	Pongs             atomic.Int64 // Centrifugo pings answered
	Disconnects       atomic.Int64 // sockets lost without Close (unexpected)
}

// Keep starts s's reader goroutine and its hello/heartbeat timer, and
// sends the first hello itself (a write, bounded by its 10 s deadline).
// Call it at most once per Session, before Close.
func (k *Keeper) Keep(s *Session) {
	iv := k.Hello
	if iv <= 0 {
		iv = s.HelloInterval
	}
	k.Live.Add(1)
	s.reading.Store(true)
	if s.proto != ProtoSDK {
		go s.readLoop(k) // the server pings (Centrifugo) or nothing does (the floors)
		return
	}
	// The first hello goes at once: the SDK sends its background requests
	// (with the new A2Key) right after its login, and the server holds
	// kick pushes to a socket until its client has taken its login reply
	// (a frame with the A2Key, or 1 s: pkg/server/kickpush.go).
	s.nextHello = time.Now()
	go s.readLoop(k)
	if iv > 0 {
		s.tickHello(k, iv, time.Now())
	}
	s.wmu.Lock()
	if !s.closing.Load() {
		s.timer = time.AfterFunc(s.nextDelay(iv, time.Now()), func() { s.tick(k, iv) })
	}
	s.wmu.Unlock()
}

// nextDelay is how long until the next hello, idle heartbeat or heartbeat
// timeout check is due.
func (s *Session) nextDelay(iv time.Duration, now time.Time) time.Duration {
	next := time.Unix(0, s.lastIn.Load()).Add(HeartbeatIdle)
	if iv > 0 && s.nextHello.Before(next) {
		next = s.nextHello
	}
	if p := s.hbPending.Load(); p != 0 {
		if t := time.Unix(0, p).Add(HeartbeatTimeout); t.Before(next) {
			next = t
		}
	}
	d := next.Sub(now)
	return max(d, 50*time.Millisecond)
}

func (s *Session) tick(k *Keeper, iv time.Duration) {
	if s.closing.Load() {
		return
	}
	now := time.Now()
	if p := s.hbPending.Load(); p != 0 && now.Sub(time.Unix(0, p)) >= HeartbeatTimeout {
		k.HeartbeatTimeouts.Add(1)
		s.hbPending.Store(0)
	}
	if iv > 0 {
		s.tickHello(k, iv, now)
	}
	if s.hbPending.Load() == 0 && now.Sub(time.Unix(0, s.lastIn.Load())) >= HeartbeatIdle {
		if _, err := s.write(wire.CmdHeartbeat, aliveBody, "", ""); err == nil {
			k.Heartbeats.Add(1)
			s.hbPending.Store(now.UnixNano())
		}
	}
	s.wmu.Lock()
	if !s.closing.Load() && s.timer != nil {
		s.timer.Reset(s.nextDelay(iv, time.Now()))
	}
	s.wmu.Unlock()
}

// tickHello sends the wshello that is due, if any: only the timer
// callback (and Keep, before it starts the timer) call it.
func (s *Session) tickHello(k *Keeper, iv time.Duration, now time.Time) {
	if now.Before(s.nextHello) || s.kickType.Load() != 0 {
		return
	}
	if _, err := s.write(wire.CmdHello, helloBody, "", ""); err == nil {
		k.Hellos.Add(1)
	}
	for !now.Before(s.nextHello) {
		s.nextHello = s.nextHello.Add(iv)
	}
}

func (s *Session) readLoop(k *Keeper) {
	defer close(s.done)
	defer k.Live.Add(-1)
	for {
		data, err := s.ws.readMessage()
		if err != nil {
			if !s.closing.Load() {
				k.Disconnects.Add(1)
				s.wmu.Lock()
				if s.timer != nil {
					s.timer.Stop()
				}
				s.wmu.Unlock()
				s.ws.c.Close()
			}
			return
		}
		now := time.Now()
		s.lastIn.Store(now.UnixNano())
		if s.proto != ProtoSDK {
			if n := centPings(data); s.pong && n > 0 && s.proto == ProtoCentrifugo {
				for range n {
					if s.ws.writeFrame(opText, centPong, time.Now().Add(10*time.Second)) == nil {
						k.Pongs.Add(1)
					}
				}
			}
			continue
		}
		var f inFrame
		if wire.Unmarshal(data, &f) != nil {
			continue
		}
		switch f.Head.ServCmd {
		case wire.CmdForceOffline:
			var p wire.KickPush
			if wire.Unmarshal(f.Body, &p) == nil {
				t := p.KickType()
				if t == 0 {
					t = -1
				}
				// The first push counts, and is answered as the SDK does
				// (PROTOCOL.md 4.5), which stops the server's repeats.
				if s.kickType.Load() == 0 {
					s.kickedAt.Store(now.UnixNano())
				}
				if s.kickType.Swap(int32(t)) == 0 {
					k.Kicks.Add(1)
					if k.OnKick != nil {
						k.OnKick(s)
					}
					k.answerKick(s, t)
				}
			}
		case wire.CmdHello:
			if envelopeCode(f.Body) != 0 {
				k.HelloFails.Add(1)
			}
		case wire.CmdLogout:
			if envelopeCode(f.Body) == 0 {
				k.KickAcks.Add(1)
			}
		case wire.CmdHeartbeat:
			s.hbPending.Store(0)
			if envelopeCode(f.Body) != 0 {
				k.HeartbeatFails.Add(1)
			}
		}
	}
}

// answerKick answers a kick push as the SDK does: wslogout type 1 for
// multipleAccount/multipleDevice (the socket stays open, heartbeats only);
// for REST_API_Kick no answer, and the socket is closed (4000). The SDK then opens a
// fresh socket that only heartbeats; a load generator has no use for it.
func (k *Keeper) answerKick(s *Session, t int) {
	switch t {
	case wire.KickMultipleAccount, wire.KickMultipleDevice:
		s.write(wire.CmdLogout, kickAckBody, "", "")
	case wire.KickRESTAPI:
		s.hangUp() // the reader then ends, not counted as a disconnect
	}
}

func envelopeCode(body json.RawMessage) int {
	var e wire.Envelope
	if wire.Unmarshal(body, &e) != nil {
		return -1
	}
	return e.ErrorCode
}
