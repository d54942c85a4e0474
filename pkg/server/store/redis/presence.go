package redis

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"chatctl/pkg/server/store"
	"chatctl/pkg/wire"

	goredis "github.com/redis/go-redis/v9"
)

// Presence: the online instances of every node (the on:USER and node:NODE
// keys, docs/MULTINODE.md), so that the multi-instance policy, kicks and
// query_online_status see all nodes. These are the primitives the
// cross-node registry is built on.
//
// An entry counts only while its node's key exists: a node that dies stops
// refreshing its key, and its instances disappear from every node's view
// within the node TTL, with nothing to clean up first (a later write to the
// user's hash drops them).

// encodeInstance is in's value in the user's hash (app, user and the
// instance id are its key and field).
func encodeInstance(in store.Instance) string {
	v := in.Node + "|" + strconv.Itoa(int(in.Platform)) + "|" + strconv.FormatInt(in.LoginAt.UnixMilli(), 10) + "|" + strconv.FormatInt(in.Expires, 10)
	if !in.Detached.IsZero() {
		v += "|" + strconv.FormatInt(in.Detached.UnixMilli(), 10)
	}
	return v
}

// decodeInstance reads field inst, value v of user's hash.
func decodeInstance(app uint64, user, inst, v string) (store.Instance, error) {
	in := store.Instance{App: app, User: user}
	id, err := strconv.ParseUint(inst, 10, 64)
	if err != nil {
		return in, fmt.Errorf("instance %q", inst)
	}
	f := strings.Split(v, "|")
	if len(f) < 4 || len(f) > 5 || f[0] == "" {
		return in, fmt.Errorf("instance %d: malformed %q", id, v)
	}
	plat, err1 := strconv.Atoi(f[1])
	login, err2 := strconv.ParseInt(f[2], 10, 64)
	exp, err3 := strconv.ParseInt(f[3], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return in, fmt.Errorf("instance %d: malformed %q", id, v)
	}
	in.InstID, in.Node, in.Platform, in.LoginAt, in.Expires = id, f[0], wire.Platform(plat), time.UnixMilli(login), exp
	if len(f) == 5 {
		d, err := strconv.ParseInt(f[4], 10, 64)
		if err != nil {
			return in, fmt.Errorf("instance %d: malformed %q", id, v)
		}
		in.Detached = time.UnixMilli(d)
	}
	return in, nil
}

// badInstance reports whether in cannot be an entry: no node, a '|' in
// it (the value's separator), or no id.
func badInstance(in store.Instance) bool {
	return in.Node == "" || strings.Contains(in.Node, "|") || in.InstID == 0
}

func (s *Store) onKey(app uint64, user string) string { return s.appKey(app, "on:"+user) }

func (s *Store) nodeKey(node string) string { return s.prefix + "{g}:node:" + node }

// RemoveInstance deletes an instance of user (logged out, kicked, gone).
func (s *Store) RemoveInstance(ctx context.Context, app uint64, user string, inst uint64) error {
	const op = "remove instance"
	if err := s.begin(ctx, op); err != nil {
		return err
	}
	return s.wrap(op, s.c.HDel(ctx, s.onKey(app, user), strconv.FormatUint(inst, 10)).Err())
}

// Instances lists user's instances on live nodes (those whose heartbeat key
// exists), by InstID. Entries of dead nodes, and those past their UserSig,
// are left out and deleted.
func (s *Store) Instances(ctx context.Context, app uint64, user string) ([]store.Instance, error) {
	const op = "instances"
	if err := s.begin(ctx, op); err != nil {
		return nil, err
	}
	key := s.onKey(app, user)
	all, err := s.c.HGetAll(ctx, key).Result()
	if err != nil {
		return nil, s.wrap(op, err)
	}
	if len(all) == 0 {
		return nil, nil
	}
	var out []store.Instance
	nodes := map[string]*goredis.IntCmd{} // EXISTS of each node's heartbeat
	var dead []any                        // field, value read: deleted only if still that value
	now := s.now().Unix()
	for id, v := range all {
		in, err := decodeInstance(app, user, id, v)
		if err != nil || in.Expires < now {
			dead = append(dead, id, v)
			continue
		}
		out = append(out, in)
		nodes[in.Node] = nil
	}
	if len(nodes) > 0 {
		// One EXISTS per node: keys of one node list are in one slot.
		_, err := s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for n := range nodes {
				nodes[n] = p.Exists(ctx, s.nodeKey(n))
			}
			return nil
		})
		if err != nil {
			return nil, s.wrap(op, err)
		}
	}
	live := out[:0]
	for _, in := range out {
		if nodes[in.Node].Val() == 1 {
			live = append(live, in)
		} else {
			id := strconv.FormatUint(in.InstID, 10)
			dead = append(dead, id, all[id])
		}
	}
	if len(dead) > 0 {
		// Best effort: a failure here changes nothing that was reported.
		// Compare and delete: another node may have rewritten an entry
		// since HGETALL (a reconnect taking over a dead node's instance).
		delIfScript().Run(ctx, s.c, []string{key}, dead...)
	}
	slices.SortFunc(live, func(a, b store.Instance) int { return cmp.Compare(a.InstID, b.InstID) })
	return live, nil
}

// delIfScript deletes each field ARGV[i] of KEYS[1] whose value is still
// ARGV[i+1].
var delIfScript = lazyScript(`
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i+1] then redis.call('HDEL', KEYS[1], ARGV[i]) end
end
return 0
`)

// NodeHeartbeat marks node alive for ttl (SET with PX). A node calls it every
// ttl/3: when it dies, its instances vanish from every view within ttl.
// lapsed says the mark was gone before this call (SET's GET: its TTL ran
// out, as when the process was stopped longer than ttl, or a first call):
// other nodes may have counted the node's instances offline meanwhile.
func (s *Store) NodeHeartbeat(ctx context.Context, node string, ttl time.Duration) (lapsed bool, err error) {
	const op = "node heartbeat"
	if err := s.begin(ctx, op); err != nil {
		return false, err
	}
	err = s.c.SetArgs(ctx, s.nodeKey(node), s.now().UnixMilli(), goredis.SetArgs{TTL: ttl, Get: true}).Err()
	if errors.Is(err, goredis.Nil) {
		return true, nil
	}
	return false, s.wrap(op, err)
}

// NodeLeave deletes node's heartbeat at a clean shutdown: its instances
// vanish at once.
func (s *Store) NodeLeave(ctx context.Context, node string) error {
	const op = "node leave"
	if err := s.begin(ctx, op); err != nil {
		return err
	}
	return s.wrap(op, s.c.Del(ctx, s.nodeKey(node)).Err())
}

// detachScript marks an entry detached (KEYS[1] the user's hash; ARGV: 1
// inst, 2 "NODE|", 3 detached unix ms) only if it is still NODE's and well
// formed (as decodeInstance reads it): a reconnect on another node may have
// taken the instance over before this node noticed its socket was gone. One
// round trip on every socket close.
var detachScript = lazyScript(`
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v or string.sub(v, 1, #ARGV[2]) ~= ARGV[2] then return 0 end
local head, rest = string.match(v, '^([^|]+|%-?%d+|%-?%d+|%-?%d+)(.*)$')
if not head or (rest ~= '' and not string.match(rest, '^|%-?%d+$')) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], head .. '|' .. ARGV[3])
return 1
`)

// DetachInstance marks instance inst of user detached since at, if node
// still holds it; it reports whether it did.
func (s *Store) DetachInstance(ctx context.Context, app uint64, user string, inst uint64, node string, at time.Time) (bool, error) {
	const op = "detach instance"
	if err := s.begin(ctx, op); err != nil {
		return false, err
	}
	n, err := detachScript().Run(ctx, s.c, []string{s.onKey(app, user)}, inst, node+"|", at.UnixMilli()).Int()
	return n == 1, s.wrap(op, err)
}

func (s *Store) ackKey(app, inst uint64) string {
	return s.appKey(app, "ack:"+strconv.FormatUint(inst, 10))
}

// ackScript marks a revoked instance's kick as told (KEYS[2]), expiring
// with its revocation (KEYS[1]); nothing without a running revocation.
var ackScript = lazyScript(`
local at = redis.call('PEXPIRETIME', KEYS[1])
if at <= 0 then return -1 end
if redis.call('SET', KEYS[2], '1', 'NX', 'PXAT', at) then return 1 end
return 0
`)

// AckKick records that the kicked instance inst was told of its kick (its
// SDK acknowledged the push, or a node pushed it again): no node pushes it
// once more after a refused re-login. The mark expires with the
// revocation: P{APP}:ack:INST. It reports whether the mark was there
// already, so that of two nodes handling the same re-login at once only
// one pushes (check and set are one script).
func (s *Store) AckKick(ctx context.Context, app uint64, inst uint64) (already bool, err error) {
	const op = "ack kick"
	if err := s.begin(ctx, op); err != nil {
		return false, err
	}
	n, err := ackScript().Run(ctx, s.c, []string{s.revKey(app, inst), s.ackKey(app, inst)}).Int()
	return n == 0, s.wrap(op, err)
}

// restoreScript writes a node's own entry back with what the cluster
// decided while the entry was gone (KEYS[1] the user's hash, KEYS[2] the
// app's watermarks; ARGV: 1 inst, 2 value, 3 expiry ms of the hash (at
// least), 4 "NODE|", 5 platform, 6 WebInstances, 7 single (0/1), 8 now ms,
// 9 detachedFor ms, 10 user, 11 the instance's A2Key issue time, unix ms):
//
//   - another node holds the entry: -1, nothing written (the instance
//     reconnected there);
//   - the user's kick watermark is later than the instance's A2Key: 3
//     (REST_API_Kick), its entry deleted (a REST kick that did not see it,
//     or whose push was lost);
//   - this node's entry is there: rewritten, 0 (nothing was decided without
//     it);
//   - the entry is gone (dropped while the node was dead to the others, or
//     Redis lost it): the policy against the entries present now, which the
//     cluster admitted meanwhile. The restored instance is the one that does
//     not fit: 1 (multipleAccount) when WebInstances Web instances are
//     present, 2 (multipleDevice) for the same non-Web platform or, under
//     single, another platform; nothing written. Else written, 0.
//
// A corrupt watermark (validWatermark) fails it, nothing written.
var restoreScript = lazyScript(policyLua + watermarkLua + `
local key, me = KEYS[1], ARGV[1]
local v = redis.call('HGET', key, me)
if v and string.sub(v, 1, #ARGV[4]) ~= ARGV[4] then return -1 end
if kicked(KEYS[2], ARGV[10], ARGV[11]) then
  if v then redis.call('HDEL', key, me) end
  return 3
end
if not v then
  local plat, webMax, single = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7] == '1'
  local now, detachedFor = tonumber(ARGV[8]), tonumber(ARGV[9])
  local all = redis.call('HGETALL', key)
  local webs = 0
  for i = 1, #all, 2 do
    local p = entry(all[i+1], now, detachedFor)
    if p == 7 then webs = webs + 1 end
    if p and clash(p, plat, single) then return 2 end
  end
  if plat == 7 and webs >= webMax then return 1 end
end
put(key, me, ARGV[2], ARGV[3])
return 0
`)

// Restore outcomes besides a KickType (RestoreInstance).
const (
	Restored      = 0  // written (or rewritten)
	HeldElsewhere = -1 // another node holds the instance: left alone
)

// RestoreInstance writes a node's own instance back (after an outage, or a
// Redis that lost its data). An entry another node
// holds now is left alone (HeldElsewhere). An instance whose A2Key was
// issued (in.LoginAt) before the user's kick watermark gets 3
// (wire.KickRESTAPI) and its entry goes. This node's entry is rewritten.
// A missing entry is written only if p admits it next to the instances
// present now; else it returns the KickType the restored instance gets
// (wire.KickMultipleAccount 1 or KickMultipleDevice 2) and writes nothing:
// what the cluster admitted while this node was away stays. One script
// after Instances' live-node check, like Attach; the watermark and the
// entry are in one slot, so a REST kick either sees the restored entry or
// the script sees its watermark.
func (s *Store) RestoreInstance(ctx context.Context, in store.Instance, p store.Policy) (int, error) {
	const op = "restore instance"
	if badInstance(in) || p.WebInstances < 1 {
		return 0, fmt.Errorf("%s: bad instance %+v or policy %+v", op, in, p)
	}
	if _, err := s.Instances(ctx, in.App, in.User); err != nil {
		return 0, err
	}
	single := "0"
	if p.SingleDevice {
		single = "1"
	}
	until := (in.Expires + 1) * 1000
	n, err := restoreScript().Run(ctx, s.c, []string{s.onKey(in.App, in.User), s.appKey(in.App, "wm")}, in.InstID, encodeInstance(in), until,
		in.Node+"|", int(in.Platform), p.WebInstances, single, s.now().UnixMilli(), p.DetachedFor.Milliseconds(),
		in.User, in.LoginAt.UnixMilli()).Int()
	if err != nil {
		return 0, s.wrap(op, err)
	}
	return n, nil
}

// removeOwnScript deletes an entry (ARGV[1]) only if node ARGV[2] ("NODE|")
// holds it.
var removeOwnScript = lazyScript(`
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v or string.sub(v, 1, #ARGV[2]) ~= ARGV[2] then return 0 end
return redis.call('HDEL', KEYS[1], ARGV[1])
`)

// RemoveOwnInstance deletes instance inst of user if node holds it (a
// removal retried after an outage must not delete the entry of a node the
// instance reconnected to meanwhile); it reports whether it did.
func (s *Store) RemoveOwnInstance(ctx context.Context, app uint64, user string, inst uint64, node string) (bool, error) {
	const op = "remove own instance"
	if err := s.begin(ctx, op); err != nil {
		return false, err
	}
	n, err := removeOwnScript().Run(ctx, s.c, []string{s.onKey(app, user)}, inst, node+"|").Int()
	return n == 1, s.wrap(op, err)
}
