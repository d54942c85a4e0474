// Package redisbus is a server.Bus over Redis pub/sub, for several
// `chatctl serve` nodes sharing one Redis: a kick decided on any node reaches
// the node that holds the kicked instance's socket (docs/MULTINODE.md).
//
// Delivery is at most once. A kick push that is lost (Redis down, a
// subscriber reconnecting, a full queue) is not lost as a kick: the store
// refuses the instance's A2Key (a REST kick writes its watermark before it
// publishes; a login's kick publishes first, since a push needs no
// durability, and writes the revocation right after, before the kicking
// login is answered), so the instance's next a2 re-login is refused with
// the reason and told then; a node resubscribing re-checks its instances
// for revocations it missed. Redis Streams would be needed only for pushes the store
// cannot recover (messages), not for kicks.
package redisbus

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"chatctl/pkg/server"

	goredis "github.com/redis/go-redis/v9"
)

// DefaultChannel is the pub/sub channel of every node's kicks.
const DefaultChannel = "chatctl:kick"

// DefaultQueue is how many kicks may wait for Redis before Publish drops.
const DefaultQueue = 4096

// Options tune New; the zero value gives the defaults.
type Options struct {
	// Channel is the pub/sub channel (default DefaultChannel); nodes that
	// share it share kicks. Use the store's prefix + "kick".
	Channel string
	// NodeID names this node in its messages, so that it skips its own
	// (delivered locally already). Default: 16 random hex digits.
	NodeID string
	// Queue bounds the kicks waiting to be published (default DefaultQueue).
	Queue int
	// OnError, if set, is called (from the bus's goroutines) with publish
	// and decode errors, for the node's log.
	OnError func(error)
	// OnResubscribe, if set, is called (from the receive goroutine) each
	// time the subscription is back after a break (Redis restarted or was
	// unreachable): kicks published meanwhile were lost, so the node
	// re-checks its attached instances against the store's revocations.
	OnResubscribe func()
	// HealthEvery: with nothing received for this long the bus pings Redis
	// on the subscription, so a dead connection is noticed (default 3 s).
	HealthEvery time.Duration
}

// Stats counts what the bus did since Open.
type Stats struct {
	Published     uint64 // kicks PUBLISHed to Redis
	PublishErrors uint64 // kicks Redis did not take (down): lost as pushes
	Dropped       uint64 // kicks dropped because the queue was full
	Received      uint64 // kicks of other nodes received from Redis
	Malformed     uint64 // messages on the channel that were not kicks
	Resubscribed  uint64 // times the subscription came back after a break
}

// Bus is a server.Bus on Redis pub/sub.
type Bus struct {
	c       goredis.UniversalClient
	channel string
	node    string
	onErr   func(error)
	onResub func()
	health  time.Duration

	psMu  sync.Mutex
	ps    *goredis.PubSub // replaced by receive when its connection is dead
	queue chan server.Kick

	local *server.LocalBus // this node's subscribers

	published, pubErrors, dropped, received, malformed, resubs atomic.Uint64

	closeOne sync.Once
	closing  chan struct{}
	stop     context.CancelFunc // cancels a publish in flight at Close
	ctx      context.Context
	wg       sync.WaitGroup
}

var _ server.Bus = (*Bus)(nil)

// message is a kick, or a logout (Out), on the channel.
type message struct {
	Node string `json:"n"`
	App  uint64 `json:"a"`
	User string `json:"u"`
	Inst uint64 `json:"i"`
	Type int    `json:"t"`
	By   uint64 `json:"b,omitempty"`
	Out  bool   `json:"l,omitempty"` // a logout (server.Kick.Logout)
}

// New subscribes over a client the caller owns (Close does not close it).
// It returns once Redis has confirmed the subscription: kicks published by
// any node from then on are delivered.
func New(ctx context.Context, c goredis.UniversalClient, o Options) (*Bus, error) {
	o.Channel = cmp.Or(o.Channel, DefaultChannel)
	if o.NodeID == "" {
		var r [8]byte
		rand.Read(r[:])
		o.NodeID = hex.EncodeToString(r[:])
	}
	if o.Queue <= 0 {
		o.Queue = DefaultQueue
	}
	if o.HealthEvery <= 0 {
		o.HealthEvery = 3 * time.Second
	}
	b := &Bus{
		c: c, channel: o.Channel, node: o.NodeID, onErr: o.OnError,
		onResub: o.OnResubscribe, health: o.HealthEvery,
		queue:   make(chan server.Kick, o.Queue),
		local:   server.NewLocalBus(),
		closing: make(chan struct{}),
	}
	b.ctx, b.stop = context.WithCancel(context.Background())
	b.ps = c.Subscribe(ctx, o.Channel)
	// The first reply is the subscription's confirmation.
	if _, err := b.ps.Receive(ctx); err != nil {
		b.ps.Close()
		b.stop()
		return nil, fmt.Errorf("subscribe %s: %w", o.Channel, err)
	}
	b.wg.Go(b.receive)
	b.wg.Go(b.publish)
	return b, nil
}

// Stats returns the counters.
func (b *Bus) Stats() Stats {
	return Stats{
		Published: b.published.Load(), PublishErrors: b.pubErrors.Load(),
		Dropped: b.dropped.Load(), Received: b.received.Load(), Malformed: b.malformed.Load(),
		Resubscribed: b.resubs.Load(),
	}
}

// Publish delivers k to this node's subscribers at once, then queues it for
// the other nodes. It never blocks: with the queue full (Redis slow or
// down) the push to other nodes is dropped and counted.
func (b *Bus) Publish(k server.Kick) {
	b.local.Publish(k)
	select {
	case <-b.closing:
		return
	default:
	}
	select {
	case b.queue <- k:
	default:
		b.dropped.Add(1)
	}
}

// Subscribe registers fn for every kick published from now on, by this
// node or (through Redis) any other.
func (b *Bus) Subscribe(fn func(server.Kick)) (cancel func()) { return b.local.Subscribe(fn) }

func (b *Bus) report(err error) {
	if b.onErr != nil {
		b.onErr(err)
	}
}

// publish sends queued kicks, a pipeline of what is waiting at a time.
func (b *Bus) publish() {
	batch := make([]server.Kick, 0, 64)
	for {
		select {
		case <-b.closing:
			return
		case k := <-b.queue:
			batch = append(batch[:0], k)
		}
	fill:
		for len(batch) < cap(batch) {
			select {
			case k := <-b.queue:
				batch = append(batch, k)
			default:
				break fill
			}
		}
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		_, err := b.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for _, k := range batch {
				m, _ := json.Marshal(message{Node: b.node, App: k.App, User: k.User, Inst: k.InstID, Type: k.Type, By: k.By, Out: k.Logout})
				p.Publish(ctx, b.channel, m)
			}
			return nil
		})
		cancel()
		if err != nil {
			b.pubErrors.Add(uint64(len(batch)))
			b.report(fmt.Errorf("publish %d kicks on %s: %w", len(batch), b.channel, err))
			continue
		}
		b.published.Add(uint64(len(batch)))
	}
}

// receive delivers other nodes' kicks. After a read error (a Redis
// restart, a broken connection) the next receive redials and resubscribes
// (go-redis does it), every 100 ms until Redis answers. A connection that
// stays silent is pinged every HealthEvery; one that does not answer the
// ping within the next HealthEvery (a dead peer whose TCP connection never
// closed) is replaced by a new subscription. The confirmation of a new
// subscription after a break is reported to OnResubscribe. What was
// published meanwhile is lost (at most once).
func (b *Bus) receive() {
	broken, pinged := false, false
	for {
		ps := b.sub()
		if ps == nil {
			return
		}
		msg, err := ps.ReceiveTimeout(b.ctx, b.health)
		if b.ctx.Err() != nil {
			return
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !broken {
				if !pinged {
					if ps.Ping(b.ctx) == nil {
						pinged = true
						continue
					}
				} else if !b.resubscribe(ps) { // no pong: the peer is gone
					return
				}
			}
			broken, pinged = true, false
			select {
			case <-b.ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		pinged = false
		switch m := msg.(type) {
		case *goredis.Subscription:
			if broken && m.Kind == "subscribe" {
				broken = false
				b.resubs.Add(1)
				if b.onResub != nil {
					b.onResub()
				}
			}
		case *goredis.Message:
			b.handle(m.Payload)
		}
	}
}

// sub is the current subscription, nil once the bus is closing.
func (b *Bus) sub() *goredis.PubSub {
	b.psMu.Lock()
	defer b.psMu.Unlock()
	if b.ctx.Err() != nil {
		return nil
	}
	return b.ps
}

// resubscribe replaces old with a new subscription on a new connection (it
// is confirmed on the next receive); false when the bus is closing.
func (b *Bus) resubscribe(old *goredis.PubSub) bool {
	b.psMu.Lock()
	if b.ctx.Err() != nil {
		b.psMu.Unlock()
		return false
	}
	b.ps = b.c.Subscribe(b.ctx, b.channel)
	b.psMu.Unlock()
	old.Close()
	return true
}

func (b *Bus) handle(payload string) {
	var m message
	if err := json.Unmarshal([]byte(payload), &m); err != nil || m.Node == "" {
		b.malformed.Add(1)
		b.report(fmt.Errorf("malformed message on %s", b.channel))
		return
	}
	if m.Node == b.node {
		return // delivered locally by Publish
	}
	b.received.Add(1)
	b.local.Publish(server.Kick{App: m.App, User: m.User, InstID: m.Inst, Type: m.Type, By: m.By, Logout: m.Out})
}

// Close unsubscribes and stops the bus's goroutines (kicks still queued are
// not published); the client stays open. Calling it twice is harmless.
func (b *Bus) Close() error {
	var err error
	b.closeOne.Do(func() {
		close(b.closing)
		b.psMu.Lock()
		b.stop() // ends a publish in flight; receive stops
		ps := b.ps
		b.psMu.Unlock()
		err = ps.Close() // closes the connection receive reads
		b.wg.Wait()
	})
	return err
}
