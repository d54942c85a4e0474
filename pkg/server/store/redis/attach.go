package redis

import (
	"context"
	"fmt"
	"strconv"

	"chatctl/pkg/server/store"
)

// policyLua is the policy's Lua that attachScript and restoreScript share.
// entry parses an entry's value (as decodeInstance does) into its platform
// and login ms, or nil when it no longer counts at now ms: malformed, past
// its UserSig (valid up to and including its EXPIRES second), or detached
// for longer than detachedFor ms. clash says whether an instance of
// platform p goes for a login on plat (wire.KickMultipleDevice): the same
// non-Web platform (7 is Web), or under single any other. put writes an
// entry and moves the hash's expiry, never earlier (other entries may run
// longer), so nothing outlives its UserSig. hdel deletes the fields ids
// in HDELs of at most 1,000: Lua's unpack fails past some 8,000 values,
// and a user's hash may hold any number of entries to delete (written by
// anything with access to Redis, or piled up).
const policyLua = `
local function entry(v, now, detachedFor)
  local node, p, login, exp, det = string.match(v, '^([^|]+)|(%d+)|(%d+)|(%d+)|?(%d*)$')
  if not node or (tonumber(exp) + 1) * 1000 <= now or (det ~= '' and now - tonumber(det) > detachedFor) then
    return nil
  end
  return tonumber(p), tonumber(login)
end
local function clash(p, plat, single)
  return (p == plat and plat ~= 7) or (single and p ~= plat)
end
local function put(key, me, v, at)
  redis.call('HSET', key, me, v)
  if redis.call('PEXPIRETIME', key) < tonumber(at) then redis.call('PEXPIREAT', key, at) end
end
local function hdel(key, ids)
  for i = 1, #ids, 1000 do
    redis.call('HDEL', key, unpack(ids, i, math.min(i + 999, #ids)))
  end
end
`

// attachScript applies the multi-instance policy (server's policyVictims,
// which MemoryPresence applies) to the user's hash in one step, so that
// logins of one user on several nodes are serialized by Redis and each
// sees the others. pkg/server/presencetest holds both to one table. An
// entry that no longer counts (policyLua's entry) is dropped, neither
// counted nor kicked.
//
// KEYS[1] the user's hash, KEYS[2] the app's kick watermarks, KEYS[3] the
// instance's revocation. ARGV: 1 inst, 2 value, 3 expiry ms of the hash
// (at least), 4 platform, 5 WebInstances, 6 single (0/1), 7 now ms,
// 8 detachedFor ms, 9 user, 10 the instance's A2Key issue time, unix ms.
// KickTypes 1, 2 and 3 are wire.KickMultipleAccount, KickMultipleDevice
// and KickRESTAPI. Returns {inst, value, kickType, ...} of the victims:
// the instance itself alone (3), nothing written, when the user's
// watermark is later than its A2Key (a REST kick after the login's
// check); or {"revoked", "UNTIL:REASON"}, nothing written, nobody kicked,
// when the instance is revoked (a logout or kick after its check). A
// corrupt watermark (validWatermark) or a malformed revocation
// (parseRevocation) fails it, nothing written.
var attachScript = lazyScript(policyLua + watermarkLua + revocationLua + `
local key = KEYS[1]
local rev = revoked(KEYS[3], ARGV[7])
if rev then return {'revoked', rev} end
if kicked(KEYS[2], ARGV[9], ARGV[10]) then return {ARGV[1], ARGV[2], 3} end
local me, plat = ARGV[1], tonumber(ARGV[4])
local webMax, single = tonumber(ARGV[5]), ARGV[6] == '1'
local now, detachedFor = tonumber(ARGV[7]), tonumber(ARGV[8])
local all = redis.call('HGETALL', key)
local gone, list = {}, {}
for i = 1, #all, 2 do
  local id, v = all[i], all[i+1]
  if id ~= me then
    local p, login = entry(v, now, detachedFor)
    if p then
      table.insert(list, {id = id, v = v, plat = p, login = login})
    else
      table.insert(gone, id)
    end
  end
end
local victims, out = {}, {}
local function kick(o, t)
  victims[o.id] = true
  table.insert(out, o.id); table.insert(out, o.v); table.insert(out, t)
  table.insert(gone, o.id)
end
if plat == 7 then
  local webs = {}
  for _, o in ipairs(list) do if o.plat == 7 then table.insert(webs, o) end end
  table.sort(webs, function(a, b)
    if a.login ~= b.login then return a.login < b.login end
    return tonumber(a.id) < tonumber(b.id)
  end)
  for i = 1, #webs - webMax + 1 do kick(webs[i], 1) end
end
for _, o in ipairs(list) do
  if not victims[o.id] and clash(o.plat, plat, single) then
    kick(o, 2)
  end
end
hdel(key, gone)
put(key, me, ARGV[2], ARGV[3])
return out
`)

// Attach records in (a login, or a reconnect of the same instance on any
// node) and applies the policy to the user's other instances on every live
// node, atomically: it returns the instances to kick, already removed. A
// re-attach of the same InstID replaces its entry and kicks nobody. An
// instance whose A2Key was issued before the user's kick watermark is not
// written and is returned alone, KickRESTAPI (server.Presence); a revoked
// instance is not written either (store.RevokedError). The watermark, the
// revocation and the entry are in one slot, as for RestoreInstance.
// Entries of dead nodes, past their UserSig, or detached for longer than
// p.DetachedFor are dropped. Instances' read and live-node check (two
// round trips, a third when it drops dead entries), then the policy
// script.
func (s *Store) Attach(ctx context.Context, in store.Instance, p store.Policy) ([]store.Victim, error) {
	const op = "attach"
	if badInstance(in) || p.WebInstances < 1 {
		return nil, fmt.Errorf("%s: bad instance %+v or policy %+v", op, in, p)
	}
	// Instances drops the entries of dead nodes (and expired ones) first;
	// an entry of a node that dies meanwhile is treated as live (kicked
	// if the policy says so: harmless).
	if _, err := s.Instances(ctx, in.App, in.User); err != nil {
		return nil, err
	}
	single := "0"
	if p.SingleDevice {
		single = "1"
	}
	args := []any{in.InstID, encodeInstance(in), (in.Expires + 1) * 1000, int(in.Platform), p.WebInstances, single,
		s.now().UnixMilli(), p.DetachedFor.Milliseconds(), in.User, in.LoginAt.UnixMilli()}
	res, err := attachScript().Run(ctx, s.c, []string{s.onKey(in.App, in.User), s.appKey(in.App, "wm"), s.revKey(in.App, in.InstID)}, args...).Slice()
	if err != nil {
		return nil, s.wrap(op, err)
	}
	if len(res) == 2 && res[0] == "revoked" {
		v, _ := res[1].(string)
		_, why, _ := parseRevocation(v) // the script took it as well-formed
		return nil, &store.RevokedError{Reason: why}
	}
	var out []store.Victim
	for i := 0; i+2 < len(res); i += 3 {
		id, _ := res[i].(string)
		v, _ := res[i+1].(string)
		kt, _ := res[i+2].(int64)
		got, err := decodeInstance(in.App, in.User, id, v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		out = append(out, store.Victim{Instance: got, KickType: int(kt)})
	}
	return out, nil
}

// RemoveInstances deletes the instances insts of user (a REST kick: those
// Instances listed, each then revoked and published). An entry written
// since (a login that passed the kick's watermark meanwhile) stays.
func (s *Store) RemoveInstances(ctx context.Context, app uint64, user string, insts []uint64) error {
	const op = "remove instances"
	if len(insts) == 0 {
		return nil
	}
	if err := s.begin(ctx, op); err != nil {
		return err
	}
	ids := make([]string, len(insts))
	for i, in := range insts {
		ids[i] = strconv.FormatUint(in, 10)
	}
	return s.wrap(op, s.c.HDel(ctx, s.onKey(app, user), ids...).Err())
}
