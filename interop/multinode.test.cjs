'use strict';
// Several nodes on one Redis (docs/MULTINODE.md) with the unmodified official Web SDK: three `chatctl serve` nodes on
// loopback ports sharing login state through one real redis-server (started
// here: free port, own temp dir, AOF with fsync always; killed at the end even
// on failure). All nodes serve the same dev app (one CHATCTL_CONFIG_DIR, node 1
// first) with `--web-instances 2`, so that one user can be online on two
// nodes at once; a third Web login kicks the oldest (multipleAccount).
//
//   1. same user on node 1, node 3, then node 2: node 1's SDK gets multipleAccount
//   2. REST kick on node 3 reaches the SDKs on nodes 1 and 2 (REST_API_Kick)
//   3. query_online_status gives the same answer on all three nodes
//   6. REST-kicked while away from node 1: told on its return to node 3
//   9. a kick decided while A's login reply is held on the way (a Forwarder)
//      must still reach A's SDK (a TODO, S9_OPEN)
//   5. redis-server SIGKILLed, down for longer than the node TTL, restarted:
//      nothing acknowledged is lost (and meanwhile logins fail with 70169,
//      connected sessions keep working)
//   7. node 1 cut off from Redis (its Forwarder) past the node TTL: a REST kick
//      and a login past the policy on node 2 meanwhile must reach node 1's
//      SDKs when it is back (a TODO while the server bug is open, S7_OPEN)
//   8. node 1 cut off from Redis while the others still count it alive (the
//      test keeps its heartbeat key): a logout and a dropped socket meanwhile
//      must be offline on every node afterwards (a TODO, S8_OPEN)
//   4. node 1 SIGKILLed: its SDK (behind a Forwarder) reconnects to node 2 and
//      stays logged in; node 1's other instances are offline within the bound
//
// 1–3, 6 and 9 run concurrently with distinct users; 5, 7, 8 and 4 (in that
// order) after them, alone, since they take Redis or node 1 away.
//
// Needs bin/chatctl (make build) or CHATCTL_BIN, and redis-server on PATH.

const { describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const fs = require('node:fs');
const {
  Server,
  DevicePool,
  scenarioTest,
  loginReady,
  assertNoUnhandled,
  pollUntil,
  sleepUntil,
  Redis,
  Forwarder,
  mkTemp,
} = require('./helpers.cjs');

const NODE_TTL = '2s';
const NODE_TTL_MS = 2000;
// A dead node's instances must be offline within its TTL; the margin covers
// one node-heartbeat period, the REST round trips and a loaded machine.
const OFFLINE_MARGIN_MS = 3000;
const WEB_INSTANCES = 2;
// Scenario 7 fails on the server as of cluster 83e2170: after the partition,
// ResyncPresence puts node 1's attached instances back into Redis as they
// were (no kick-watermark check, no policy), and RecheckKicks only looks at
// per-instance revocations. Run as a TODO (reported, not counted) until the
// server is fixed; set to false then.
const S7_OPEN = false; // fixed: the resync kicks by the watermark, revocations and the policy

// Scenario 8 fails on the server as of cluster 83e2170: a logout or a socket
// close while node 1 cannot reach Redis only logs "presence: remove/detach
// failed" (and, for the logout, "revoke failed"); nothing retries them when
// Redis is back, so every node keeps reporting the instances Online.
const S8_OPEN = false; // fixed: failed presence writes and revocations are retried when Redis is back

// Scenario 9 fails on the server as of cluster 83e2170 (and on one bolt node
// too): the server writes the kick push right after the kicked SDK's wslogin
// reply (or even before it, when logins coincide). An SDK that gets the push
// before it has finished processing the reply (here: both in one read, as a
// slow network delivers them) drops it with an unhandled 2024 ("not logged
// in") inside, then emits SDK_READY and stays "logged in" while the server
// has revoked it. The server should push only once the SDK is ready (e.g. on
// its first request after the reply) or push again when the kick is not
// acknowledged.
const S9_OPEN = false; // fixed: the kick push is held until the SDK has taken its login reply, and repeated until acknowledged

describe('three chatctl serve nodes on one Redis, official Web SDK 3.6.6 ', () => {
  let redis;
  let configDir;
  const nodes = []; // nodes[0] is node 1
  const devices = new DevicePool();
  const forwarders = [];

  let redisLink; // node 1 reaches Redis through this Forwarder (scenario 7 cuts it)

  function startNode(i, redisURL = redis.url) {
    return Server.start({
      name: `node${i}`,
      configDir,
      dataDir: path.join(configDir, `data-node${i}`),
      extraArgs: ['--store', redisURL, '--node-ttl', NODE_TTL, '--web-instances', String(WEB_INSTANCES)],
    });
  }

  // kickedOnce waits for one kick push of kickType and the SDK's KICKED_OUT
  // type, then checks that the push came exactly once (a kick delivered both
  // locally and over the bus would come twice) and the SDK is logged out.
  async function kickedOnce(d, from, kickType, type) {
    const push = await d.waitFor(
      (e) => e.type === 'wire' && e.dir === 'in' && e.servcmd === 'im_open_status.stat_forceoffline',
      { from, what: 'kick push' },
    );
    assert.equal(push.kickType, kickType, `${d.name}: KickType`);
    const ev = await d.waitEvent('KICKED_OUT', { from });
    assert.equal(ev.data.type, type, `${d.name}: KICKED_OUT type`);
    const notReady = await d.waitEvent('SDK_NOT_READY', { from });
    await sleepUntil(notReady.t + 500); // a duplicate would come at once
    await d.value('stats');
    assert.equal(d.wire({ dir: 'in', servcmd: 'im_open_status.stat_forceoffline' }, from).length, 1, `${d.name}: kick pushes`);
    assert.equal(d.events('KICKED_OUT', from).length, 1, `${d.name}: KICKED_OUT events`);
    assert.equal(await d.value('isReady'), false);
    assert.equal(await d.value('getLoginUser'), '');
  }

  async function stillIn(d, user, from = 0) {
    assert.equal(await d.value('isReady'), true, `${d.name}: isReady`);
    assert.equal(await d.value('getLoginUser'), user, `${d.name}: getLoginUser`);
    assert.deepEqual(d.events('KICKED_OUT', from), [], `${d.name}: KICKED_OUT`);
    assert.deepEqual(d.events('SDK_NOT_READY', from), [], `${d.name}: SDK_NOT_READY`);
  }

  async function rest(node, svc, cmd, body) {
    const r = await node.restApi(svc, cmd, body);
    assert.equal(r.status, 200, `${node.name} ${cmd}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }

  async function restOK(node, svc, cmd, body) {
    const b = await rest(node, svc, cmd, body);
    assert.equal(b.ErrorCode, 0, `${node.name} ${cmd}: ${JSON.stringify(b)}`);
    return b;
  }

  // online asks one node for query_online_status (with detail) and returns it
  // normalized: {user: {Status, Detail: sorted "Platform/Status"}} plus the
  // ErrorList codes, so that answers of different nodes compare with deepEqual.
  async function online(node, users) {
    const b = await restOK(node, 'openim', 'query_online_status', { IsNeedDetail: 1, To_Account: users });
    const out = {};
    for (const r of b.QueryResult || []) {
      out[r.To_Account] = { Status: r.Status, Detail: (r.Detail || []).map((x) => `${x.Platform}/${x.Status}`).sort() };
    }
    for (const e of b.ErrorList || []) out[e.To_Account] = { ErrorCode: e.ErrorCode };
    return out;
  }

  // expectOnline asserts node's query_online_status answer for want's users.
  async function expectOnline(node, want, what = '') {
    const got = await online(node, Object.keys(want));
    assert.deepEqual(
      got,
      want,
      `query_online_status on ${node.name}${what ? ' ' + what : ''}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`,
    );
  }

  const ON = (n) => ({ Status: 'Online', Detail: Array(n).fill('Web/Online') });
  const OFF = { Status: 'Offline', Detail: [] };

  // A failing scenario reports its devices' driver logs (s<id>, s<id>-x),
  // the nodes' and Redis's log tails.
  const scenario = scenarioTest(devices, {
    timeout: 60000,
    more: () => [...nodes.map((n) => n.describe(2500)), ...(redis ? [redis.describe(1500)] : [])].join('\n'),
  });

  before(async () => {
    redis = await Redis.start();
    redisLink = await Forwarder.start(redis.port);
    forwarders.push(redisLink);
    configDir = mkTemp('multinode');
    // Node 1 first: it creates the dev app (devapp.json) the others read.
    nodes.push(await startNode(1, `redis://127.0.0.1:${redisLink.port}/0`));
    nodes.push(...(await Promise.all([startNode(2), startNode(3)])));
    for (const n of nodes) assert.equal(n.sdkappid, nodes[0].sdkappid, `${n.name} serves the same app`);
    assert.ok(fs.existsSync(path.join(configDir, 'devapp.json')));
  });

  after(async () => {
    await devices.close();
    await Promise.all(nodes.map((n) => n.stop()));
    await Promise.all(forwarders.map((f) => f.close()));
    if (redis) {
      await redis.stop();
      redis.cleanup();
    }
    if (configDir) fs.rmSync(configDir, { recursive: true, force: true });
  });

  describe('all nodes up', { concurrency: true }, () => {
    scenario('1', 'a Web login on node 2 past the limit kicks the oldest, on node 1, with multipleAccount', async () => {
      const [n1, n2, n3] = nodes;
      const [a, b, c] = await Promise.all([
        devices.start(n1, 's1-node1'),
        devices.start(n3, 's1-node3'),
        devices.start(n2, 's1-node2'),
      ]);
      const user = 's1-alice';
      await loginReady(a, user, n1.sig(user));
      await loginReady(b, user, n3.sig(user)); // two Web instances: the limit
      const from = a.mark();
      await loginReady(c, user, n2.sig(user));

      await kickedOnce(a, from, 1, 'multipleAccount');
      // The SDK acknowledges the kick with wslogout type 1 (PROTOCOL.md 4.4).
      assert.equal(a.wire({ dir: 'out', servcmd: 'im_open_status.wslogout', logoutType: 1 }, from).length, 1);
      await stillIn(b, user);
      await stillIn(c, user);
      await expectOnline(n1, { [user]: ON(2) }, '(the two newer instances)');
      await assertNoUnhandled(a, b, c);
    });

    scenario('2', 'a REST kick sent to node 3 reaches the SDKs on nodes 1 and 2 (REST_API_Kick)', async (t) => {
      const [n1, n2, n3] = nodes;
      const [a, b] = await Promise.all([devices.start(n1, 's2-node1'), devices.start(n2, 's2-node2')]);
      const user = 's2-bob';
      // Minted a second in the past: strictly older than the kick.
      const oldSig = n1.sig(user, 3600, Math.floor(Date.now() / 1000) - 1);
      await loginReady(a, user, oldSig);
      await loginReady(b, user, n2.sig(user, 3600, Math.floor(Date.now() / 1000) - 1));
      await expectOnline(n3, { [user]: ON(2) });

      const fromA = a.mark();
      const fromB = b.mark();
      const t0 = Date.now();
      await restOK(n3, 'im_open_login_svc', 'kick', { UserID: user });
      await Promise.all([kickedOnce(a, fromA, 3, 'REST_API_Kick'), kickedOnce(b, fromB, 3, 'REST_API_Kick')]);
      const [ka, kb] = [a, b].map((d) => d.events('KICKED_OUT', d === a ? fromA : fromB)[0].t - t0);
      t.diagnostic(`s2: KICKED_OUT ${ka} ms (node 1) and ${kb} ms (node 2) after the kick request to node 3`);

      for (const n of nodes) await expectOnline(n, { [user]: OFF }, 'after the kick');
      // The kick watermark is shared: node 1 refuses the UserSig minted before it.
      const old = await a.call('login', { userID: user, userSig: oldSig });
      assert.equal(old.ok, false, 'the UserSig minted before the REST kick must be refused');
      assert.equal(old.code, 70009, `${old.code} ${old.message}`);
      await assertNoUnhandled(a, b);
    });

    scenario('3', 'query_online_status is the same on all three nodes', async () => {
      const [n1, n2, n3] = nodes;
      const [x1, x2, y3] = await Promise.all([
        devices.start(n1, 's3-x-node1'),
        devices.start(n2, 's3-x-node2'),
        devices.start(n3, 's3-y-node3'),
      ]);
      const [x, y, z] = ['s3-xena', 's3-yuri', 's3-zoe'];
      await restOK(n2, 'im_open_login_svc', 'account_import', { UserID: z }); // imported, never online
      await loginReady(x1, x, n1.sig(x));
      await loginReady(x2, x, n2.sig(x));
      await loginReady(y3, y, n3.sig(y));

      const want = { [x]: ON(2), [y]: ON(1), [z]: OFF };
      for (const n of nodes) await expectOnline(n, want);

      // One of x's instances logs out (on node 1): every node sees one left.
      const from = x1.mark();
      assert.ok((await x1.call('logout')).ok);
      await x1.waitEvent('SDK_NOT_READY', { from });
      want[x] = ON(1);
      for (const n of nodes) await expectOnline(n, want, 'after a logout on node 1');
      await stillIn(x2, x);
      await assertNoUnhandled(x1, x2, y3);
    });

    scenario('6', 'REST-kicked while away from node 1: told on its return to node 3 (70002, then one push)', async () => {
      const [n1, n2, n3] = nodes;
      const fwd = await Forwarder.start(n1.port);
      forwarders.push(fwd);
      const d = await devices.start(n1, 's6', { proxyServer: fwd.url });
      const user = 's6-ivy';
      await loginReady(d, user, n1.sig(user));
      await d.reconnectable(); // so the SDK reconnects at once when its socket goes
      const from = d.mark();
      await d.value('offline'); // the driver drops its socket and refuses new ones
      await d.waitFor((e) => e.type === 'socket' && e.what === 'close', { from, what: 'socket close' });
      await restOK(n2, 'im_open_login_svc', 'kick', { UserID: user }); // nobody holds its socket
      fwd.point(n3.port);
      await d.value('online');
      const answer = await d.a2Relogin(from, { what: 'a2 re-login on return' });
      assert.equal(answer.errorCode, 70002, `${answer.errorCode} ${answer.errorInfo}`);
      assert.ok(fwd.connectionsTo(n3.port).length >= 1, 'the SDK came back through node 3');
      // The SDK ignores the 70002 (PROTOCOL.md addendum 1): only the push after it tells it.
      await kickedOnce(d, from, 3, 'REST_API_Kick');
      assert.deepEqual(d.unhandled().map((e) => e.code), [70002]);
    });

    // A's wslogin reply is held on the way (a slow network), and meanwhile
    // logins on nodes 3 and 2 make A the oldest of three Web instances: the
    // kick push for A follows its reply, and both reach the SDK together.
    scenario('9', 'a kick decided while the login reply is still on its way reaches the SDK (multipleAccount)', async () => {
      const [n1, n2, n3] = nodes;
      const slow = await Forwarder.start(n1.port);
      forwarders.push(slow);
      const [a, x, b] = await Promise.all([
        devices.start(n1, 's9-a-node1', { proxyServer: slow.url }),
        devices.start(n3, 's9-x-node3'),
        devices.start(n2, 's9-b-node2'),
      ]);
      const user = 's9-max';
      // The SDK's socket is up and its first heartbeat answered (a heartbeat
      // unanswered for 3 s would make it reconnect).
      await a.waitFor((e) => e.type === 'wire' && e.dir === 'in' && e.servcmd === 'heartbeat.alive', { what: 'heartbeat answer' });
      slow.hold();
      const from = a.mark();
      const pa = a.call('login', { userID: user, userSig: n1.sig(user) });
      try {
        await a.waitFor((e) => e.type === 'wire' && e.dir === 'out' && e.servcmd === 'im_open_status.wslogin', { from, what: 'wslogin sent' });
        const held = await pollUntil(async () => ({ ok: slow.heldBytes > 0 }), Date.now() + 10000, 10);
        assert.ok(held.ok, 'node 1 answered the wslogin (held in the forwarder)');
        await loginReady(x, user, n3.sig(user));
        await loginReady(b, user, n2.sig(user)); // three Web instances: A, the oldest, is kicked
        // The push for A (decided on node 2, sent by node 1) joins its held reply.
        const pushed = await pollUntil(async () => ({ ok: slow.heldText().includes('stat_forceoffline') }), Date.now() + 5000, 10);
        assert.ok(pushed.ok, 'node 1 pushed the kick to A within 5 s of the kicking login');
      } finally {
        slow.release();
      }
      const r = await pa;
      assert.ok(r.ok, `A's login: ${JSON.stringify(r)}`);
      const fail = [];
      await a.waitEvent('KICKED_OUT', { from, data: { type: 'multipleAccount' }, timeout: 3000 }).catch(() => {
        const seq = a.log
          .filter((e) => e.i >= from)
          .filter((e) => (e.type === 'wire' && /wslogin|wslogout|forceoffline/.test(e.servcmd)) || e.type === 'event' || e.type === 'unhandledRejection')
          .map((e) => (e.type === 'wire' ? `${e.dir}:${e.servcmd.split('.')[1]}` : e.type === 'event' ? e.name : `unhandled:${e.code}`));
        fail.push(`A, kicked (multipleAccount) by B's login, got no KICKED_OUT within 3 s: ${seq.join(' ')}`);
      });
      if (await a.value('isReady')) fail.push('A is still ready');
      for (const n of nodes) {
        const got = (await online(n, [user]))[user];
        if (JSON.stringify(got) !== JSON.stringify(ON(WEB_INSTANCES))) fail.push(`${n.name} reports ${JSON.stringify(got)}`);
      }
      assert.deepEqual(fail, [], fail.join('\n'));
      await stillIn(x, user);
      await stillIn(b, user);
      await assertNoUnhandled(x, b);
      // A's held reply and the push (released by the server's 1 s hold
      // bound, its reply being still on the way) arrive in one read: the
      // SDK drops that first push with one 2024 inside it, and the repeat a
      // second later kicks it (SERVER.md, "A push the SDK cannot take yet").
      await a.value('stats');
      const codes = a.unhandled().map((e) => e.code);
      assert.ok(codes.length <= 1 && codes.every((c) => c === 2024), `A: unhandled rejections ${JSON.stringify(codes)}\n${a.describe()}`);
    }, { todo: S9_OPEN });
  });

  scenario('5', 'redis-server SIGKILLed, down past the node TTL, restarted (AOF, fsync always) with sessions online: nothing acknowledged is lost', async (t) => {
    const [n1, n2, n3] = nodes;
    assert.deepEqual(await redis.command('CONFIG', 'GET', 'appendfsync'), ['appendfsync', 'always']);
    // Every frame reported, so that the wshello replies after the restart show.
    const env = { INTEROP_WIRE_ALL: '1' };
    const [a, b, n] = await Promise.all([
      devices.start(n1, 's5-node1', { env }),
      devices.start(n2, 's5-node2', { env }),
      devices.start(n3, 's5-new'),
    ]);
    const user = 's5-carl';
    const imported = 's5-imported';
    const kicked = 's5-kicked';
    await loginReady(a, user, n1.sig(user));
    await loginReady(b, user, n2.sig(user));
    // Acknowledged before the restart: an import, and a REST kick of a user
    // whose UserSig was minted before it (the watermark).
    await restOK(n1, 'im_open_login_svc', 'account_import', { UserID: imported });
    const kickedSig = n2.sig(kicked, 3600, Math.floor(Date.now() / 1000) - 1);
    await restOK(n2, 'im_open_login_svc', 'account_import', { UserID: kicked });
    await restOK(n2, 'im_open_login_svc', 'kick', { UserID: kicked });
    await expectOnline(n3, { [user]: ON(2) });

    // Down for longer than the node TTL: every node's heartbeat key has
    // expired when Redis returns, so presence must be resynced, not just kept.
    const fromA = a.mark();
    const fromB = b.mark();
    const t0 = Date.now();
    await redis.kill('SIGKILL');
    const tDown = Date.now();
    // Meanwhile: a new login fails with 70169 (docs/MULTINODE.md), the connected
    // sessions keep working (a wshello answered 0 while Redis is down).
    const during = await n.call('login', { userID: 's5-early', userSig: n3.sig('s5-early') });
    assert.equal(during.ok, false, 'a login with Redis down must fail');
    assert.equal(during.code, 70169, `login with Redis down: ${during.code} ${during.message}`);
    for (const [d, from] of [[a, fromA], [b, fromB]]) {
      await d.waitFor(
        (e) => e.type === 'wire' && e.dir === 'in' && e.servcmd === 'im_open_status.wshello' && e.t > tDown && e.errorCode === 0,
        { from, timeout: 5000, what: 'a wshello answered 0 while Redis is down' },
      );
    }
    await sleepUntil(t0 + NODE_TTL_MS + 500);
    const tStart = Date.now();
    await redis.restart();
    const tBack = Date.now();

    // Every node serves Redis-backed REST again, and the import is there.
    const checks = await Promise.all(
      nodes.map((n) =>
        pollUntil(async () => {
          const r = await n.restApi('im_open_login_svc', 'account_check', { CheckItem: [{ UserID: imported }] });
          const item = r.body && r.body.ResultItem && r.body.ResultItem[0];
          return { ok: r.body && r.body.ErrorCode === 0, at: Date.now(), body: r.body, status: item && item.AccountStatus };
        }, tBack + 15000),
      ),
    );
    for (const [i, c] of checks.entries()) {
      assert.ok(c.ok, `${nodes[i].name}: account_check after the Redis restart: ${JSON.stringify(c.body)}`);
      assert.equal(c.status, 'Imported', `${nodes[i].name}: the account imported before the restart`);
    }
    t.diagnostic(
      `s5: redis-server down ${tStart - t0} ms, answering ${tBack - tStart} ms after its start; ` +
        `REST answered on every node ${Math.max(...checks.map((c) => c.at)) - tBack} ms after that`,
    );

    // The online sessions keep heartbeating: a wshello answered 0 after the restart.
    for (const [d, from] of [[a, fromA], [b, fromB]]) {
      await d.waitFor(
        (e) => e.type === 'wire' && e.dir === 'in' && e.servcmd === 'im_open_status.wshello' && e.t > tBack && e.errorCode === 0,
        { from, timeout: 10000, what: 'a wshello answered 0 after the Redis restart' },
      );
    }
    // Presence: both instances online on every node again (nodes re-heartbeat
    // and resync within their TTL).
    for (const n of nodes) {
      const got = await pollUntil(async () => {
        const s = (await online(n, [user]))[user];
        return { ok: JSON.stringify(s) === JSON.stringify(ON(2)), s };
      }, Date.now() + NODE_TTL_MS + OFFLINE_MARGIN_MS);
      assert.deepEqual(got.s, ON(2), `${n.name}: presence after the Redis restart: ${JSON.stringify(got.s)}`);
    }
    for (const [d, from] of [[a, fromA], [b, fromB]]) {
      await stillIn(d, user, from);
      const errs = d.log.filter((e) => e.i >= from && e.type === 'wire' && e.dir === 'in' && e.errorCode);
      assert.deepEqual(errs, [], `${d.name}: error answers since the restart`);
    }

    // A REST kick after the restart still reaches both (sent to node 3).
    const kfA = a.mark();
    const kfB = b.mark();
    await restOK(n3, 'im_open_login_svc', 'kick', { UserID: user });
    await Promise.all([kickedOnce(a, kfA, 3, 'REST_API_Kick'), kickedOnce(b, kfB, 3, 'REST_API_Kick')]);

    // Logins afterwards (the SDK whose login failed during the outage): the
    // pre-restart kick's watermark still refuses the old UserSig, and a fresh
    // login works.
    const old = await n.call('login', { userID: kicked, userSig: kickedSig });
    assert.equal(old.ok, false, 'the watermark of the REST kick before the restart must survive it');
    assert.equal(old.code, 70009, `${old.code} ${old.message}`);
    const fresh = 's5-dora';
    await loginReady(n, fresh, n3.sig(fresh));
    for (const node of nodes) await expectOnline(node, { [fresh]: ON(1) }, '(the new login)');
    await assertNoUnhandled(a, b, n);
  });

  // Node 1 partitioned from Redis for longer than the node TTL: the other
  // nodes count its instances offline, so a REST kick and a login past the
  // policy on node 2 meanwhile find nothing on node 1. When node 1 is back in
  // touch it resyncs its instances into Redis; they must not come back as if
  // nothing had happened (the kick was acknowledged to the REST caller).
  scenario('7', "node 1 cut off from Redis past the node TTL: a REST kick and a login past the policy on node 2 meanwhile apply to node 1's SDKs when it is back", async (t) => {
    const [n1, n2] = nodes;
    const [k1, p1, p2, p3] = await Promise.all([
      devices.start(n1, 's7-kick-node1', { env: { INTEROP_WIRE_ALL: '1' } }),
      devices.start(n1, 's7-pol-node1', { env: { INTEROP_WIRE_ALL: '1' } }),
      devices.start(n2, 's7-pol-node2a'),
      devices.start(n2, 's7-pol-node2b'),
    ]);
    const kicked = 's7-kim';
    const policy = 's7-pat';
    await loginReady(k1, kicked, n1.sig(kicked, 3600, Math.floor(Date.now() / 1000) - 1));
    await loginReady(p1, policy, n1.sig(policy));
    const fromK = k1.mark();
    const fromP = p1.mark();

    const t0 = Date.now();
    redisLink.cut();
    try {
      // Node 2 counts node 1's instances offline once node 1's heartbeat key expires.
      const gone = await pollUntil(async () => {
        const r = await online(n2, [kicked, policy]);
        return { ok: r[kicked].Status === 'Offline' && r[policy].Status === 'Offline', r };
      }, t0 + NODE_TTL_MS + OFFLINE_MARGIN_MS);
      assert.ok(gone.ok, `node 2 still counts node 1's instances ${Date.now() - t0} ms into the partition: ${JSON.stringify(gone.r)}`);
      // Meanwhile node 1's connected SDKs keep working.
      for (const d of [k1, p1]) {
        await d.waitFor(
          (e) => e.type === 'wire' && e.dir === 'in' && e.servcmd === 'im_open_status.wshello' && e.t > t0 && e.errorCode === 0,
          { from: d === k1 ? fromK : fromP, timeout: 5000, what: 'a wshello answered 0 during the partition' },
        );
      }
      await restOK(n2, 'im_open_login_svc', 'kick', { UserID: kicked });
      await loginReady(p2, policy, n2.sig(policy));
      await loginReady(p3, policy, n2.sig(policy)); // with p1, three Web instances: one too many
    } finally {
      redisLink.point(redis.port); // healed even when the partition part failed (scenario 4 needs node 1)
    }
    const tHeal = Date.now();
    t.diagnostic(`s7: node 1 cut off from Redis for ${tHeal - t0} ms`);

    // Back in touch (its node heartbeat retries every TTL/3), node 1 must
    // apply what was decided without it.
    const fail = [];
    const within = NODE_TTL_MS + 1000;
    await Promise.all([
      k1.waitEvent('KICKED_OUT', { from: fromK, data: { type: 'REST_API_Kick' }, timeout: within }).catch(() =>
        fail.push(`${kicked} on node 1, REST-kicked on node 2 during the partition (answered OK), got no KICKED_OUT within ${within} ms of the heal`),
      ),
      p1.waitEvent('KICKED_OUT', { from: fromP, data: { type: 'multipleAccount' }, timeout: within }).catch(() =>
        fail.push(`${policy}: the oldest of three Web instances (limit ${WEB_INSTANCES}), on node 1, got no KICKED_OUT multipleAccount within ${within} ms of the heal`),
      ),
    ]);
    const healed = await online(n2, [kicked, policy]);
    if (JSON.stringify(healed) !== JSON.stringify({ [kicked]: OFF, [policy]: ON(WEB_INSTANCES) })) {
      fail.push(`query_online_status on node 2 after the heal: ${JSON.stringify(healed)}`);
    }
    assert.deepEqual(fail, [], fail.join('\n'));
    await stillIn(p2, policy);
    await stillIn(p3, policy);
  }, { todo: S7_OPEN });

  // Node 1 cut off from Redis while the other nodes still count it alive
  // (for less than the node TTL, as far as they can tell): one SDK logs out
  // (answered OK) and another one's socket goes away meanwhile. Once node 1
  // is back in touch, every node must report both offline: what node 1
  // acknowledged must reach Redis late.
  //
  // "Less than the TTL" holds by construction, not by the clock: right after
  // the cut the test extends node 1's heartbeat key itself (as node 1 would
  // if it could reach Redis), so however slow the harness, nodes 2 and 3
  // never count node 1 dead. (Dead, its entries would be dropped and the
  // scenario would pass without any retry: scenario 7's case.) Node 1 cannot
  // write through the cut, and whatever of its writes got through reached
  // Redis before the cut, so before the extension (the Forwarder drops what
  // it has not passed on). Its first heartbeat after the heal puts its own
  // TTL back (SET PX), checked at the end.
  scenario('8', 'node 1 briefly cut off from Redis: a logout and a dropped socket meanwhile are offline on every node afterwards', async (t) => {
    const [n1, n2, n3] = nodes;
    const [lo, gone] = await Promise.all([devices.start(n1, 's8-logout-node1'), devices.start(n1, 's8-drop-node1')]);
    const [ulo, ugone] = ['s8-lou', 's8-gus'];
    const both = (s) => ({ [ulo]: s, [ugone]: s });
    await loginReady(lo, ulo, n1.sig(ulo));
    await loginReady(gone, ugone, n1.sig(ugone));
    await gone.reconnectable(); // so the SDK tries to reconnect (offline: in vain) when its socket goes
    for (const n of nodes) await expectOnline(n, both(ON(1)), 'before');
    // Node 1's heartbeat key (MULTINODE.md, "Keys"), whatever the prefix.
    const hbKeys = await redis.command('KEYS', `*:node:${n1.info.node}`);
    assert.equal(hbKeys.length, 1, `node 1 (${n1.info.node}) heartbeat keys: ${JSON.stringify(hbKeys)}`);
    const [hbKey] = hbKeys;

    const t0 = Date.now();
    redisLink.cut();
    try {
      // Longer than the scenario may run: node 1 stays alive for the others.
      assert.equal(await redis.command('PEXPIRE', hbKey, 60000), 1, "node 1's heartbeat key exists when the cut begins");
      const from = lo.mark();
      const r = await lo.call('logout');
      assert.ok(r.ok, `logout with node 1 cut off from Redis: ${JSON.stringify(r)}`);
      await lo.waitEvent('SDK_NOT_READY', { from });
      const gfrom = gone.mark();
      await gone.value('offline'); // its socket dies and it cannot reconnect
      await gone.waitFor((e) => e.type === 'socket' && e.what === 'close', { from: gfrom, what: 'socket close' });
      // Node 1 notices the close while still cut off: its detach fails, and
      // it logs that it owes it (the logout's removal failed before its answer).
      const owed = await pollUntil(
        async () => ({ ok: n1.logEntries().some((e) => e.user === ugone && /detach failed/.test(e.msg)) }),
        Date.now() + 10000,
        20,
      );
      assert.ok(owed.ok, `node 1 logged no failed detach of ${ugone} within 10 s of its socket closing, cut off from Redis`);
      // Nothing of it reached Redis, and node 1 still counts: both still
      // online for the other nodes.
      for (const n of [n2, n3]) await expectOnline(n, both(ON(1)), 'while node 1 is cut off');
    } finally {
      redisLink.point(redis.port); // healed even when the partition part failed (scenario 4 needs node 1)
    }
    const tHeal = Date.now();
    t.diagnostic(`s8: node 1 cut off from Redis for ${tHeal - t0} ms`);
    const got = await pollUntil(async () => {
      const r = await Promise.all(nodes.map((n) => online(n, [ulo, ugone])));
      return { ok: r.every((x) => JSON.stringify(x) === JSON.stringify(both(OFF))), r };
    }, tHeal + NODE_TTL_MS + 1000);
    assert.ok(got.ok, `${NODE_TTL_MS + 1000} ms after node 1 is back in touch, nodes 1-3 report ${JSON.stringify(got.r)}`);
    // Node 1 heartbeats again with its own TTL (scenario 4 counts on it).
    const hb = await pollUntil(async () => {
      const ms = await redis.command('PTTL', hbKey);
      return { ok: ms > 0 && ms <= NODE_TTL_MS, ms };
    }, Date.now() + NODE_TTL_MS + 1000);
    assert.ok(hb.ok, `node 1's heartbeat key after the heal: PTTL ${hb.ms} ms, want its own TTL (${NODE_TTL_MS} ms)`);
  }, { todo: S8_OPEN });

  scenario('4', 'node 1 SIGKILLed: its SDK reconnects to node 2 and stays logged in; its other instances go offline', async (t) => {
    const [n1, n2, n3] = nodes;
    // The SDK's proxyServer is fixed at create(): a Forwarder plays the load
    // balancer, pointing at node 1 now and at node 2 before the kill.
    const fwd = await Forwarder.start(n1.port);
    forwarders.push(fwd);
    const [d, e] = await Promise.all([
      devices.start(n1, 's4-fwd', { proxyServer: fwd.url }),
      devices.start(n1, 's4-direct'), // straight to node 1: nowhere to go
    ]);
    const user = 's4-dave';
    const stranded = 's4-erik';
    await loginReady(d, user, n1.sig(user));
    await loginReady(e, stranded, n1.sig(stranded));
    await expectOnline(n2, { [user]: ON(1), [stranded]: ON(1) });
    await d.reconnectable(); // so that it reconnects at once when node 1 dies

    fwd.point(n2.port);
    const from = d.mark();
    const t0 = Date.now();
    const st = await n1.kill('SIGKILL');
    assert.equal(st.signal, 'SIGKILL');

    // Node 1's instances (the stranded one) are offline on nodes 2 and 3 within the bound.
    const bound = NODE_TTL_MS + OFFLINE_MARGIN_MS;
    const offline = pollUntil(async () => {
      const r = await Promise.all([online(n2, [stranded]), online(n3, [stranded])]);
      return { ok: r.every((x) => JSON.stringify(x[stranded]) === JSON.stringify(OFF)), r, at: Date.now() };
    }, t0 + bound);

    // The forwarded SDK: reconnect through the forwarder to node 2, a2 re-login answered 0.
    await d.waitEvent('NET_STATE_CHANGE', { from, data: { state: 'connected' }, timeout: 30000 });
    const answer = await d.a2Relogin(from);
    assert.equal(answer.errorCode, 0, `node 2 refused the a2 re-login: ${answer.errorCode} ${answer.errorInfo}`);
    assert.ok(fwd.connectionsTo(n2.port, t0).length >= 1, 'the SDK reconnected through the forwarder to node 2');

    const off = await offline;
    assert.ok(
      off.ok,
      `${stranded} (on node 1) still reported by nodes 2/3 ${off.at - t0} ms after node 1 died ` +
        `(bound ${bound} ms): ${JSON.stringify(off.r)}`,
    );
    t.diagnostic(
      `s4: a2 re-login on node 2 answered 0 ${answer.t - t0} ms after the SIGKILL; ` +
        `node 1's instance offline on nodes 2 and 3 after ${off.at - t0} ms (TTL ${NODE_TTL_MS} ms, bound ${bound} ms)`,
    );

    // Let the re-sync and a hello round (2 s) pass after the re-login: still
    // logged in, no kick.
    await sleepUntil(answer.t + 2200);
    await stillIn(d, user, from);
    for (const n of [n2, n3]) await expectOnline(n, { [user]: ON(1) }, '(the moved instance)');
    await assertNoUnhandled(d);
  });
});
