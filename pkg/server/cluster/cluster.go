// Package cluster assembles what several `chatctl serve` nodes on one Redis
// share (docs/MULTINODE.md): the Redis store (accounts, watermarks,
// revocations, the A2Key secret, instance ids), the Redis kick bus, and the
// presence of every node's instances, with this node's heartbeat.
//
//	cl, err := cluster.Open(ctx, "redis://127.0.0.1:6379/0", cluster.Options{})
//	srv, err := server.New(server.Config{Store: cl.Store, Bus: cl.Bus, Presence: cl.Presence(), ...})
//	cl.Bind(srv)
//	... srv.Shutdown(ctx); cl.Close(ctx)
package cluster

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"chatctl/pkg/server"
	"chatctl/pkg/server/redisbus"
	"chatctl/pkg/server/store"
	rstore "chatctl/pkg/server/store/redis"

	goredis "github.com/redis/go-redis/v9"
)

// DefaultNodeTTL is how long a node counts as alive after its last
// heartbeat: a node that dies without leaving (SIGKILL, power loss, cut off
// from Redis) has its instances offline on every node within it.
const DefaultNodeTTL = 10 * time.Second

// MinNodeTTL bounds NodeTTL from below (heartbeats every TTL/3).
const MinNodeTTL = 300 * time.Millisecond

// ErrNodeTTL is Open's error for a NodeTTL below MinNodeTTL.
var ErrNodeTTL = errors.New("node TTL too short")

// Options tune Open; the zero value gives the defaults.
type Options struct {
	// Prefix starts every Redis key (default rstore.DefaultPrefix): nodes
	// that share Redis and the prefix share everything.
	Prefix string
	// NodeID names this node in presence entries and kick messages
	// (default: 16 random hex digits; unique per process).
	NodeID string
	// NodeTTL (default DefaultNodeTTL): the node refreshes its heartbeat
	// every NodeTTL/3.
	NodeTTL time.Duration
	// Logger receives heartbeat failures and recoveries (nil = discard).
	Logger *slog.Logger
}

// Cluster is one node's share of the cluster.
type Cluster struct {
	Store *rstore.Store
	Bus   *redisbus.Bus

	node string
	ttl  time.Duration
	log  *slog.Logger

	mu  sync.Mutex
	srv *server.Server

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
	recheck  chan struct{} // OnResubscribe → the loop's repair (never blocks the bus)
}

// Open connects to the Redis at url (rstore.ParseURL: redis://[user:pass@]
// host:port/db), loads the shared secret, subscribes to the kick channel
// and writes this node's first heartbeat. A Redis that cannot be reached
// gives an error wrapping store.ErrUnavailable that never shows the URL's
// password.
func Open(ctx context.Context, url string, o Options) (*Cluster, error) {
	o.NodeTTL = cmp.Or(o.NodeTTL, DefaultNodeTTL)
	if o.NodeTTL < MinNodeTTL {
		return nil, fmt.Errorf("%w: at least %s, not %s", ErrNodeTTL, MinNodeTTL, o.NodeTTL)
	}
	if o.NodeID == "" {
		var r [8]byte
		rand.Read(r[:])
		o.NodeID = hex.EncodeToString(r[:])
	}
	if strings.ContainsAny(o.NodeID, "|\r\n") {
		return nil, fmt.Errorf("node id %q: no '|' or line breaks", o.NodeID)
	}
	o.Logger = cmp.Or(o.Logger, slog.New(slog.DiscardHandler))
	c := &Cluster{
		node: o.NodeID, ttl: o.NodeTTL, log: o.Logger,
		stop: make(chan struct{}), done: make(chan struct{}),
		recheck: make(chan struct{}, 1),
	}
	st, err := rstore.Open(ctx, url, rstore.Options{Prefix: o.Prefix})
	if err != nil {
		return nil, err
	}
	bus, err := redisbus.New(ctx, st.Client(), redisbus.Options{
		Channel: st.Prefix() + "kick",
		NodeID:  o.NodeID,
		OnError: func(err error) { c.log.Warn("kick bus", "err", err) },
		OnResubscribe: func() {
			select {
			case c.recheck <- struct{}{}:
			default:
			}
		},
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	if _, err := st.NodeHeartbeat(ctx, o.NodeID, o.NodeTTL); err != nil {
		bus.Close()
		st.Close()
		return nil, err
	}
	c.Store, c.Bus = st, bus
	go c.loop()
	return c, nil
}

// NodeID is this node's id.
func (c *Cluster) NodeID() string { return c.node }

// Presence is the server.Presence of this node (Config.Presence).
func (c *Cluster) Presence() server.Presence { return presence{c.Store, c.node} }

// Bind tells the cluster which server to resync after an outage and to
// re-check for missed kicks when the bus resubscribes.
func (c *Cluster) Bind(n *server.Server) {
	c.mu.Lock()
	c.srv = n
	c.mu.Unlock()
}

func (c *Cluster) bound() *server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.srv
}

// loop refreshes the node's heartbeat every TTL/3. When a heartbeat
// succeeds after failing, the node may have been dead to the others (its
// key expired, its instances dropped), and when the bus resubscribes Redis
// may have restarted: repair rewrites its attached instances and re-checks
// them for kicks they missed, in a goroutine of its own so that heartbeats
// go on meanwhile.
func (c *Cluster) loop() {
	defer close(c.done)
	repairs := make(chan bool, 1) // true: a full resync, false: the failed writes only
	repaired := make(chan error, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	stop, cancel := context.WithCancel(context.Background())
	defer cancel()
	wg.Go(func() { c.repair(stop, repairs, repaired) })
	// ask queues a repair unless one is pending; a full one replaces a
	// pending one (only this loop sends, so the slot is then free).
	ask := func(full bool) {
		if full {
			select {
			case <-repairs:
			default:
			}
		}
		select {
		case repairs <- full:
		default: // one is pending already
		}
	}
	every := c.ttl / 3
	t := time.NewTicker(every)
	defer t.Stop()
	failing, needResync := false, false
	for {
		select {
		case <-c.stop:
			return
		case <-c.recheck:
			// The subscription broke: Redis may have restarted (and lost
			// data) between two heartbeats, so resync too.
			ask(true)
			continue
		case err := <-repaired:
			if err != nil {
				c.log.Warn("presence resync failed; retrying after the next heartbeat", "node", c.node, "err", err)
				needResync = true
			} else {
				c.log.Info("presence resynced", "node", c.node)
			}
			continue
		case <-t.C:
		}
		if f := beforeBeat.Load(); f != nil {
			(*f)(c.node)
		}
		ctx, cancelHB := context.WithTimeout(stop, every)
		lapsed, err := c.Store.NodeHeartbeat(ctx, c.node, c.ttl)
		cancelHB()
		switch {
		case err != nil:
			if !failing {
				c.log.Warn("node heartbeat failed: other nodes count this node's instances offline after the node TTL",
					"node", c.node, "ttl", c.ttl.String(), "err", err)
			}
			failing, needResync = true, true
		case needResync || lapsed:
			switch {
			case lapsed:
				// The heartbeat worked, but the last one's TTL had
				// run out first (the process stopped or starved longer
				// than it), with no failure to say so: the other nodes
				// have dropped this node's instances and may have
				// admitted logins past the policy meanwhile.
				c.log.Warn("node heartbeat had lapsed: other nodes counted this node's instances offline; resyncing",
					"node", c.node, "ttl", c.ttl.String())
			case failing:
				c.log.Info("node heartbeat back", "node", c.node)
			}
			failing, needResync = false, false
			ask(true)
		default:
			// A write that failed while the heartbeats went through (or
			// after the last resync began) is retried on its own.
			if n := c.bound(); n != nil && n.PendingWrites() > 0 {
				ask(false)
			}
		}
	}
}

// beforeBeat, when set, runs before each heartbeat of every node: a test's
// hold on them (HoldBeats, export_test.go).
var beforeBeat atomic.Pointer[func(node string)]

// repair runs the resyncs the loop asks for (rewrite this node's
// instances, pushing the kicks they missed), reporting each outcome.
func (c *Cluster) repair(stop context.Context, repairs <-chan bool, repaired chan<- error) {
	for {
		var full bool
		select {
		case <-stop.Done():
			return
		case full = <-repairs:
		}
		n := c.bound()
		if n == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(stop, repairTimeout)
		var err error
		if full {
			// It pushes the kicks missed meanwhile too: it checks each
			// instance's revocation before restoring it.
			err = n.ResyncPresence(ctx)
		} else if err = n.RetryPending(ctx); err == nil {
			cancel()
			continue // nothing to report: the loop asks again while writes are owed
		}
		cancel()
		select {
		case repaired <- err:
		case <-stop.Done():
			return
		}
	}
}

// repairTimeout bounds one resync of every attached instance.
const repairTimeout = 2 * time.Minute

func (c *Cluster) stopLoop() {
	c.stopOnce.Do(func() { close(c.stop) })
	<-c.done
}

// Close stops the heartbeat, removes this node from the cluster at once
// (NodeLeave: its instances are offline everywhere), then closes the bus
// and the store, in that order. Call it after the server's Shutdown.
func (c *Cluster) Close(ctx context.Context) error {
	c.stopLoop()
	err := c.Store.NodeLeave(ctx, c.node)
	return errors.Join(err, c.Bus.Close(), c.Store.Close())
}

// presence is server.Presence on the Redis store: Attach, Instances,
// RemoveInstances and AckKick are the store's own.
type presence struct {
	*rstore.Store
	node string
}

func (p presence) Node() string { return p.node }

func (p presence) Restore(ctx context.Context, in store.Instance, pol store.Policy) (int, error) {
	r, err := p.RestoreInstance(ctx, in, pol)
	if err != nil || r == rstore.HeldElsewhere {
		return 0, err
	}
	return r, nil
}

func (p presence) RemoveOwn(ctx context.Context, app uint64, user string, inst uint64) error {
	_, err := p.RemoveOwnInstance(ctx, app, user, inst, p.node)
	return err
}

func (p presence) Detach(ctx context.Context, app uint64, user string, inst uint64, at time.Time) error {
	_, err := p.DetachInstance(ctx, app, user, inst, p.node, at)
	return err
}

func (p presence) Remove(ctx context.Context, app uint64, user string, inst uint64) error {
	return p.RemoveInstance(ctx, app, user, inst)
}

// SetRedisLogger routes go-redis's own messages (pool and reconnect
// notices, which it otherwise prints on stderr) to log at debug level. It
// is process-wide.
func SetRedisLogger(log *slog.Logger) { goredis.SetLogger(redisLogger{log}) }

type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis client", "msg", fmt.Sprintf(format, v...))
}
