// Package redis is the store.Store of chatctl serve on Redis, for several
// nodes sharing one state. The embedded bolt store stays the default for
// one node. Every key it writes, with its value and TTL, is in
// docs/MULTINODE.md, "Keys": they start with Options.Prefix, and an app's
// keys carry its SDKAppID in braces ({APP}) so that a Redis Cluster keeps
// one app in one slot.
//
// Accounts and watermarks have no TTL (an account lives until deleted; a
// watermark must outlive its account). A revocation expires with the A2Key
// it refuses, so nothing outlives what it guards.
//
// Durability: a write returns when Redis has applied it. It survives a Redis
// restart only if Redis persists it (appendonly yes, appendfsync always for
// "durable when the method returns"; everysec loses up to a second).
// Persistence reports what the server is configured with.
package redis

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	neturl "net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"chatctl/pkg/server/store"

	goredis "github.com/redis/go-redis/v9"
)

// InstIDClockShift: instance ids never fall below unix ms << InstIDClockShift
// (see NextInstID). 2^53 >> 10 ms is the year 2248.
const InstIDClockShift = 10

// DefaultPrefix starts every key.
const DefaultPrefix = "chatctl:"

// Options tune Open; the zero value gives the defaults.
type Options struct {
	// Prefix starts every key (default DefaultPrefix). Several chatctl
	// deployments (or tests) can share one Redis under different prefixes.
	Prefix string
}

// Store is a store.Store on Redis.
type Store struct {
	c      goredis.UniversalClient
	addr   string
	now    func() time.Time
	secret []byte

	secretSHA1       string // hex, as the nextID script compares it
	kSecret, kInstID string
	prefix           string

	closeOne sync.Once
	closed   chan struct{}
}

var _ store.Store = (*Store)(nil)

// Timeouts applied by Open when the URL does not set them: a login waits at
// most about this long for a Redis that is down before it is answered 70169.
const (
	DefaultDialTimeout = 1 * time.Second
	DefaultIOTimeout   = 1 * time.Second
)

// ParseURL parses redis://[user:password@]host:port/db[?options] (or
// rediss:// for TLS, unix:///path?db=N) as go-redis does, with chatctl's
// defaults for what the URL leaves out: dial, read and write timeouts 1 s,
// one retry of a command, two dial attempts 50 ms apart. A Redis that refuses
// connections is reported in well under a second.
func ParseURL(url string) (*goredis.Options, error) {
	opt, err := goredis.ParseURL(url)
	if err != nil {
		// net/url's errors quote the whole URL, password included.
		var ue *neturl.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("redis URL: %w", err)
	}
	opt.DialTimeout = cmp.Or(opt.DialTimeout, DefaultDialTimeout)
	opt.ReadTimeout = cmp.Or(opt.ReadTimeout, DefaultIOTimeout)
	opt.WriteTimeout = cmp.Or(opt.WriteTimeout, DefaultIOTimeout)
	opt.MaxRetries = cmp.Or(opt.MaxRetries, 1)
	opt.DialerRetries = cmp.Or(opt.DialerRetries, 2)
	opt.DialerRetryTimeout = cmp.Or(opt.DialerRetryTimeout, 50*time.Millisecond)
	return opt, nil
}

// Open connects to the Redis at url (see ParseURL), checks it answers, and
// loads (or creates, once for all nodes) the A2Key secret. A Redis that
// cannot be reached gives an error wrapping store.ErrUnavailable; the URL's
// password never appears in errors.
func Open(ctx context.Context, url string, o Options) (*Store, error) {
	opt, err := ParseURL(url)
	if err != nil {
		return nil, err
	}
	o.Prefix = cmp.Or(o.Prefix, DefaultPrefix)
	s := &Store{
		c: goredis.NewClient(opt), addr: opt.Addr, now: time.Now, prefix: o.Prefix,
		kSecret: o.Prefix + "{g}:secret", kInstID: o.Prefix + "{g}:instid",
		closed: make(chan struct{}),
	}
	if err := s.loadSecret(ctx); err != nil {
		s.c.Close()
		return nil, err
	}
	return s, nil
}

// loadSecret writes a fresh secret if there is none (SETNX), then reads
// back whichever node's secret won.
func (s *Store) loadSecret(ctx context.Context) error {
	fresh := make([]byte, store.SecretSize)
	rand.Read(fresh)
	if err := s.c.SetNX(ctx, s.kSecret, fresh, 0).Err(); err != nil {
		return s.wrap("open", err)
	}
	sec, err := s.c.Get(ctx, s.kSecret).Bytes()
	if err != nil {
		return s.wrap("open", err)
	}
	if len(sec) != store.SecretSize {
		return fmt.Errorf("store redis %s: %s has %d bytes, want %d", s.addr, s.kSecret, len(sec), store.SecretSize)
	}
	s.secret = sec
	sum := sha1.Sum(sec)
	s.secretSHA1 = hex.EncodeToString(sum[:])
	return nil
}

// Client is the go-redis client the store uses.
func (s *Store) Client() goredis.UniversalClient { return s.c }

// Prefix is the key prefix.
func (s *Store) Prefix() string { return s.prefix }

// Close closes the client. Methods called after Close fail with an error
// wrapping store.ErrUnavailable. Calling it twice is harmless.
func (s *Store) Close() error {
	var err error
	s.closeOne.Do(func() {
		close(s.closed)
		err = s.c.Close()
	})
	return err
}

// unavailable reports whether err means Redis cannot answer now (down,
// unreachable, timed out, loading its data, a read-only replica, out of
// memory) rather than a fault of the request: store.ErrUnavailable, 70169.
func unavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, goredis.ErrClosed) || errors.Is(err, goredis.ErrPoolTimeout) ||
		errors.Is(err, goredis.ErrPoolExhausted) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var re goredis.Error
	if errors.As(err, &re) {
		msg := re.Error()
		for _, p := range []string{"LOADING", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "BUSY", "OOM", "NOREPLICAS"} {
			if strings.HasPrefix(msg, p+" ") || msg == p {
				return true
			}
		}
	}
	return false
}

// wrap names the operation; errors Redis may recover from wrap
// store.ErrUnavailable.
func (s *Store) wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case unavailable(err):
		return fmt.Errorf("%s: %w: redis %s: %w", op, store.ErrUnavailable, s.addr, err)
	default:
		return fmt.Errorf("%s: redis %s: %w", op, s.addr, err)
	}
}

// begin fails fast on a closed store or a done context.
func (s *Store) begin(ctx context.Context, op string) error {
	select {
	case <-s.closed:
		return s.wrap(op, goredis.ErrClosed)
	default:
	}
	return s.wrap(op, ctx.Err())
}

func (s *Store) appKey(app uint64, what string) string {
	return s.prefix + "{" + strconv.FormatUint(app, 10) + "}:" + what
}

func (s *Store) revKey(app, inst uint64) string {
	return s.appKey(app, "rev:"+strconv.FormatUint(inst, 10))
}

// Secret returns a copy of the A2Key secret (read once by Open: it never
// changes).
func (s *Store) Secret(ctx context.Context) ([]byte, error) {
	if err := s.begin(ctx, "secret"); err != nil {
		return nil, err
	}
	return append([]byte(nil), s.secret...), nil
}

// ErrSecretChanged means the secret in Redis is not the one this node
// loaded: Redis lost its data and another node created a new one. A2Keys
// of one node would be refused by the other; restart the node.
var ErrSecretChanged = errors.New("the A2Key secret in Redis is not this node's (Redis lost its data?): restart this node")

// nextIDScript increments the counter, raising it to the clock floor
// ARGV[1] first. It checks the secret against this node's (by its SHA-1,
// ARGV[2], so the secret itself is never a script argument that SLOWLOG or
// MONITOR would show): a missing one is put back by NextInstID, another one
// is reported.
var nextIDScript = lazyScript(`
local sec = redis.call('GET', KEYS[2])
if not sec then
  return redis.error_reply('SECRETMISSING')
elseif redis.sha1hex(sec) ~= ARGV[2] then
  return redis.error_reply('SECRETCHANGED')
end
local v = redis.call('INCR', KEYS[1])
local floor = tonumber(ARGV[1])
if v < floor then
  redis.call('SET', KEYS[1], ARGV[1])
  return floor
end
return v
`)

// NextInstID returns the next id of one counter shared by every node
// (INCR: unique across nodes and restarts of nodes). The counter never
// falls below now (unix ms) << InstIDClockShift, so even a Redis that lost
// its data does not hand out again an id a live instance holds (unless ids
// were handed out faster than 1024 per millisecond on average). One round
// trip (a script). Ids stay below 2^53 until the year 2248.
//
// It also guards the shared secret: if Redis lost it, this node puts its
// own back (SETNX); if another one is there, ErrSecretChanged.
func (s *Store) NextInstID(ctx context.Context) (uint64, error) {
	const op = "next instance id"
	if err := s.begin(ctx, op); err != nil {
		return 0, err
	}
	for try := 0; ; try++ {
		floor := s.now().UnixMilli() << InstIDClockShift
		id, err := nextIDScript().Run(ctx, s.c, []string{s.kInstID, s.kSecret}, floor, s.secretSHA1).Int64()
		switch {
		case err != nil && strings.Contains(err.Error(), "SECRETMISSING") && try == 0:
			if err := s.c.SetNX(ctx, s.kSecret, s.secret, 0).Err(); err != nil {
				return 0, s.wrap(op, err)
			}
			continue
		case err != nil && (strings.Contains(err.Error(), "SECRETCHANGED") || strings.Contains(err.Error(), "SECRETMISSING")):
			return 0, fmt.Errorf("%s: %w", op, ErrSecretChanged)
		case err != nil:
			return 0, s.wrap(op, err)
		case id <= 0 || id > store.MaxInstID:
			return 0, fmt.Errorf("%s: instance ids exhausted (%d)", op, id)
		}
		return uint64(id), nil
	}
}

// Persistence says how Redis persists writes (INFO persistence): aof is
// appendonly, fsyncAlways is appendfsync always (CONFIG GET, which managed
// Redis may forbid: then false with no error). serve warns when a write
// would not survive a Redis restart.
func (s *Store) Persistence(ctx context.Context) (aof, fsyncAlways bool, err error) {
	info, err := s.c.InfoMap(ctx, "persistence").Result()
	if err != nil {
		return false, false, s.wrap("persistence", err)
	}
	aof = info["Persistence"]["aof_enabled"] == "1"
	if cfg, err := s.c.ConfigGet(ctx, "appendfsync").Result(); err == nil {
		fsyncAlways = cfg["appendfsync"] == "always"
	}
	return aof, fsyncAlways, nil
}
