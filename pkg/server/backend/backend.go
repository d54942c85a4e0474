// Package backend opens where `chatctl serve` keeps its state: the bbolt
// store of a data dir (one node), or a Redis cluster (store, kick bus and
// presence shared by several nodes, docs/MULTINODE.md). It is the server's
// wiring, kept out of cmd so that cmd only maps flags and errors.
package backend

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"chatctl/pkg/server"
	"chatctl/pkg/server/cluster"
	"chatctl/pkg/server/store"
	"chatctl/pkg/server/store/bolt"
	rstore "chatctl/pkg/server/store/redis"
)

// Options say which backend to open.
type Options struct {
	// Store is "" or "bolt" for the data dir, or a redis:// URL.
	Store string
	// DataDir is bolt's directory (made absolute).
	DataDir string
	// NodeTTL is a Redis node's heartbeat TTL (at least cluster.MinNodeTTL;
	// 0: cluster.DefaultNodeTTL).
	NodeTTL time.Duration
	// Logger gets the cluster's and Redis's records; nil discards.
	Logger *slog.Logger
}

// Errors of Open besides the stores' own (store.ErrUnavailable: Redis did
// not answer; bolt.ErrLocked: another process holds the data dir).
var (
	// ErrBadStore: Options.Store is neither bolt nor a Redis URL.
	ErrBadStore = errors.New("bad store")
	// ErrNodeTTL: Options.NodeTTL is below cluster.MinNodeTTL (the
	// cluster's rule and error).
	ErrNodeTTL = cluster.ErrNodeTTL
)

// Backend is an open store, with its cluster when it is Redis: the
// server.Config fields of what serve opened.
type Backend struct {
	Store    store.Store
	Bus      server.Bus      // the cluster's kick bus; nil (in-process) on bolt
	Presence server.Presence // the cluster's presence; nil (this node's memory) on bolt
	Node     string          // this node's id in the cluster; "" on bolt
	Name     string          // "bolt", or the Redis URL without its password
	DataDir  string          // bolt's; "" for Redis

	cluster *cluster.Cluster // nil: bolt
}

// Open opens the backend of o. A Redis URL's password never appears in
// Name or in an error.
func Open(ctx context.Context, o Options) (*Backend, error) {
	spec := strings.TrimSpace(o.Store)
	if spec == "" || spec == "bolt" {
		return openBolt(ctx, o.DataDir)
	}
	name := redactURL(spec)
	// go-redis's parser decides what a Redis URL is (scheme, db, options);
	// its errors never quote the password (rstore.ParseURL).
	if _, err := rstore.ParseURL(spec); err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrBadStore, name, err)
	}
	log := cmp.Or(o.Logger, slog.New(slog.DiscardHandler))
	cluster.SetRedisLogger(log)
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cl, err := cluster.Open(octx, spec, cluster.Options{NodeTTL: o.NodeTTL, Logger: log})
	if err != nil {
		return nil, err
	}
	aof, always, err := cl.Store.Persistence(octx)
	switch {
	case err != nil:
		log.Warn("cannot read Redis's persistence settings", "err", err)
	case !aof:
		log.Warn("Redis does not persist with AOF (appendonly no): a Redis restart loses accounts, kicks and revocations; run redis-server with --appendonly yes --appendfsync always")
	case !always:
		log.Warn("Redis appendfsync is not always: a Redis crash may lose the last second of writes")
	}
	return &Backend{Store: cl.Store, Bus: cl.Bus, Presence: cl.Presence(), Node: cl.NodeID(), Name: name, cluster: cl}, nil
}

// openBolt opens the data dir's store, or returns ctx's cause once ctx
// ends first: bbolt waits for another process's lock of the file (up to
// its LockTimeout) and cannot be cancelled, and a signal to serve must
// not wait for it. A store opened after that is closed.
func openBolt(ctx context.Context, dataDir string) (*Backend, error) {
	dataDir, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, err
	}
	type opened struct {
		st  *bolt.Store
		err error
	}
	done := make(chan opened, 1)
	go func() {
		st, err := bolt.Open(filepath.Join(dataDir, server.StoreFile))
		done <- opened{st, err}
	}()
	select {
	case o := <-done:
		if o.err != nil {
			return nil, o.err
		}
		return &Backend{Store: o.st, Name: "bolt", DataDir: dataDir}, nil
	case <-ctx.Done():
		go func() {
			if o := <-done; o.err == nil {
				o.st.Close()
			}
		}()
		return nil, context.Cause(ctx)
	}
}

// Bind gives a cluster the server it serves (its kicks and presence
// repair); nothing on bolt.
func (b *Backend) Bind(srv *server.Server) {
	if b.cluster != nil {
		b.cluster.Bind(srv)
	}
}

// Close releases the backend after the server's shutdown: the cluster
// leaves (its instances offline at once), then its bus, then its store.
func (b *Backend) Close(ctx context.Context) error {
	if b.cluster != nil {
		return b.cluster.Close(ctx)
	}
	return b.Store.Close()
}

// redactURL hides a URL's password.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "redis://…"
	}
	return u.Redacted()
}
