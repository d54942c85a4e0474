'use strict';
// Interop suite: the unmodified official Web SDK (@tencentcloud/chat 3.6.6,
// pinned by package-lock.json) against `chatctl serve`. Each SDK "device" is its
// own Node process (sdk-driver.cjs): create() returns one instance per SDKAppID
// per realm (PROTOCOL.md 6). Scenarios run concurrently, each with its own users.
//
// Needs bin/chatctl (make build) or CHATCTL_BIN.

const { describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const {
  Server,
  DevicePool,
  scenarioTest,
  loginReady,
  assertNoUnhandled,
  genUserSig,
  chatctl,
  sleepUntil,
  secondLoginKicks,
} = require('./helpers.cjs');

// Codes that make the SDK react (PROTOCOL.md 2.4); a refused a2 re-login must use none of them.
const REACTIVE_CODES = new Set([70001, 20002, 1002, 60002]);

describe('official Web SDK 3.6.6 against chatctl serve', { concurrency: true }, () => {
  let srv;
  const devices = new DevicePool();
  const servers = [];
  // A failing scenario reports its devices' driver logs (named s<id>, s<id>-x).
  const scenario = scenarioTest(devices, { timeout: 90000 });

  before(async () => {
    srv = await Server.start();
    servers.push(srv);
  });

  after(async () => {
    await devices.close();
    for (const s of servers) {
      await s.stop();
      s.cleanup();
    }
  });

  scenario('1', 'login, ready, server time, logout, destroy', async (t) => {
    const d = await devices.start(srv, 's1');
    const user = 's1-alice';
    const login = await loginReady(d, user, srv.sig(user));

    // The wslogin reply as seen on the wire (PROTOCOL.md 4.2, 7.3).
    const [sent] = d.wire({ dir: 'out', servcmd: 'im_open_status.wslogin' });
    const [reply] = d.wire({ dir: 'in', servcmd: 'im_open_status.wslogin' });
    assert.equal(reply.errorCode, 0);
    assert.equal(reply.binary, true, '/binfo answers with binary frames');
    assert.ok(reply.instId && reply.instId !== 0, 'non-zero InstId');
    assert.equal(reply.helloInterval, 2, 'HelloInterval from --hello-interval');

    assert.equal(await d.value('getLoginUser'), user);
    assert.equal(await d.value('isReady'), true);

    // The server's clock: TimeStamp is its Unix time in whole seconds (PROTOCOL.md
    // 4.9), taken between the request leaving and the reply arriving (one
    // machine, one clock), so within 1 s of that interval.
    assert.ok(Number.isInteger(reply.timeStamp), `TimeStamp ${reply.timeStamp} is integer seconds`);
    assert.ok(
      reply.timeStamp * 1000 > sent.t - 1000 && reply.timeStamp * 1000 < reply.t + 1000,
      `TimeStamp ${reply.timeStamp} s is not the server's now (request sent ${sent.t} ms, reply ${reply.t} ms)`,
    );

    // getServerTime() = Date.now() + TimeStamp*1000 + RTT/2 - (time of the reply):
    // within 1 s of the clock, give or take the SDK's own RTT/2 estimate, which
    // a busy machine can stretch.
    const rttHalf = Math.ceil((reply.t - login.calledAt) / 2) + 5;
    const t0 = Date.now();
    const { server } = await d.value('getServerTime');
    const t1 = Date.now();
    assert.ok(Number.isFinite(server), `getServerTime() is a number, got ${server}`);
    assert.ok(
      server >= t0 - 1000 - rttHalf && server <= t1 + 1000 + rttHalf,
      `getServerTime() ${server} not within 1 s (+ RTT/2 ${rttHalf} ms) of [${t0}, ${t1}]`,
    );
    t.diagnostic(`s1: getServerTime() - Date.now() = ${server - t1}..${server - t0} ms (login RTT/2 ${rttHalf} ms)`);

    const from = d.mark();
    const lo = await d.call('logout');
    assert.ok(lo.ok, `logout rejected: ${lo.code} ${lo.message}`);
    await d.waitEvent('SDK_NOT_READY', { from });
    assert.equal(await d.value('isReady'), false);
    assert.equal(await d.value('getLoginUser'), '');
    assert.equal(d.wire({ dir: 'out', servcmd: 'im_open_status.wslogout', logoutType: 0 }).length, 1);

    const ds = d.mark();
    const de = await d.call('destroy');
    // destroy() after logout tears down but rejects with 2024 (PROTOCOL.md 3.3).
    assert.ok(de.ok || de.code === 2024, `destroy: ${JSON.stringify(de)}`);
    await d.waitEvent('SDK_DESTROY', { from: ds });
    assert.deepEqual(d.events('KICKED_OUT'), []);
    await assertNoUnhandled(d);
  });

  scenario('2', 'same user on a second device kicks the first with multipleAccount', async () => {
    const a = await devices.start(srv, 's2-a');
    const b = await devices.start(srv, 's2-b');
    // The SDK acknowledges with wslogout type 1 and emits KICKED_OUT after its reply.
    await secondLoginKicks(a, b, 's2-bob', srv.sig('s2-bob'));
    await assertNoUnhandled(a, b);
  });

  scenario('2b', 'a kicked device that loses its socket before acknowledging is refused on a2 re-login (PROTOCOL.md 7.6)', async (t) => {
    // The driver terminates A's socket right after the kick push, so A reconnects
    // and re-logs in with its now revoked a2 before its wslogout is answered.
    const a = await devices.start(srv, 's2b-a', { env: { INTEROP_DROP_ON_KICK: '1' } });
    const b = await devices.start(srv, 's2b-b');
    const user = 's2b-cleo';
    await loginReady(a, user, srv.sig(user));
    await a.reconnectable(); // so that A reconnects at once when its socket is cut
    const from = a.mark();
    await loginReady(b, user, srv.sig(user));

    const answer = await a.a2Relogin(from, { what: 'a2 re-login after the drop' });
    assert.notEqual(answer.errorCode, 0, 'a kicked session must not log back in with its a2');
    assert.ok(!REACTIVE_CODES.has(answer.errorCode), `refusal code ${answer.errorCode} makes the SDK react`);
    assert.equal(answer.errorCode, 70002);

    const kicked = await a.waitEvent('KICKED_OUT', { from, timeout: 30000 });
    // Let the re-sent wslogout, the refusal and any follow-up push settle
    // (500 ms from the KICKED_OUT).
    await sleepUntil(kicked.t + 500);
    await a.value('stats');
    assert.equal(await a.value('isReady'), false);
    assert.equal(await a.value('getLoginUser'), '');
    const kicks = a.events('KICKED_OUT', from);
    for (const k of kicks) assert.equal(k.data.type, 'multipleAccount');

    // The new device is untouched by A's attempts.
    assert.equal(await b.value('isReady'), true);
    assert.equal(await b.value('getLoginUser'), user);
    assert.deepEqual(b.events('KICKED_OUT'), []);
    await assertNoUnhandled(b);

    // A's refused re-login rejects inside the SDK with nobody awaiting it
    // (PROTOCOL.md addendum 1): that one unhandled rejection is expected.
    const codes = a.unhandled().map((e) => e.code);
    const pushes = a.wire({ dir: 'in', servcmd: 'im_open_status.stat_forceoffline' }, from).length;
    t.diagnostic(`s2b-a: ${pushes} kick pushes, ${kicks.length} KICKED_OUT, unhandled rejections [${codes}]`);
    // The server must not push the kick again to an instance that already got
    // it: the SDK would emit a second KICKED_OUT, or run its kick handling while
    // logged out (an extra unhandled 2024).
    assert.equal(pushes, 1, 'one kick push');
    assert.equal(kicks.length, 1, `${kicks.length} KICKED_OUT events`);
    assert.deepEqual(codes, [70002]);
  });

  scenario('3', 'REST kick gives REST_API_Kick; the old UserSig then fails and a new one works', async (t) => {
    const d = await devices.start(srv, 's3');
    const user = 's3-carol';
    // Minted a second in the past so it is strictly older than the kick.
    const oldSig = srv.sig(user, 3600, Math.floor(Date.now() / 1000) - 1);
    await loginReady(d, user, oldSig);

    const from = d.mark();
    const res = await srv.restApi('im_open_login_svc', 'kick', { UserID: user });
    assert.equal(res.status, 200);
    assert.equal(res.body.ActionStatus, 'OK', JSON.stringify(res.body));
    assert.equal(res.body.ErrorCode, 0);

    const kicked = await d.waitEvent('KICKED_OUT', { from });
    assert.equal(kicked.data.type, 'REST_API_Kick');
    await d.waitEvent('SDK_NOT_READY', { from });
    assert.equal(await d.value('isReady'), false);

    const old = await d.call('login', { userID: user, userSig: oldSig });
    assert.equal(old.ok, false, 'the UserSig minted before the kick must be refused');
    assert.ok(Number.isInteger(old.code) && old.code !== 0, `refusal code: ${old.code}`);
    assert.equal(await d.value('isReady'), false);

    // A UserSig minted right after the kick works (even within the kick's second).
    await loginReady(d, user, srv.sig(user));
    assert.equal(await d.value('getLoginUser'), user);
    assert.equal(await d.value('isReady'), true);
    await assertNoUnhandled(d);
    t.diagnostic(`s3: login with the pre-kick UserSig rejected with ${old.code} (${old.message})`);
  });

  scenario('4', 'a UserSig that expires while online gives userSigExpired', async () => {
    const d = await devices.start(srv, 's4');
    const user = 's4-dan';
    const from = d.mark();
    await loginReady(d, user, srv.sig(user, 3));
    const kicked = await d.waitEvent('KICKED_OUT', { from, timeout: 40000 });
    assert.equal(kicked.data.type, 'userSigExpired');
    await d.waitEvent('SDK_NOT_READY', { from });
    assert.ok(d.wire({ dir: 'in', errorCode: 70001 }, from).length >= 1, '70001 on a pending request');
    assert.equal(await d.value('isReady'), false);
    assert.equal(await d.value('getLoginUser'), '');
    await assertNoUnhandled(d);
  });

  scenario('5', 'server restart while logged in: reconnect, a2 re-login answered 0, still logged in', async (t) => {
    const s = await Server.start();
    servers.push(s);
    const d = await devices.start(s, 's5');
    const user = 's5-erin';
    await loginReady(d, user, s.sig(user));
    await d.reconnectable(); // else the SDK goes straight to disconnected when serve stops

    const from = d.mark();
    const tStop = Date.now();
    const st = await s.stop();
    assert.equal(st.code, 0, `serve exit status on SIGTERM: ${JSON.stringify(st)}\n${s.stderr.slice(-2000)}`);
    const tStopped = Date.now();
    const s2 = await Server.start({ configDir: s.configDir, dataDir: s.dataDir, listen: `127.0.0.1:${s.port}` });
    const tReady = Date.now();
    servers.splice(servers.indexOf(s), 1, s2);
    assert.equal(s2.sdkappid, s.sdkappid, 'the dev app survives the restart');
    assert.equal(s2.port, s.port);

    await d.waitEvent('NET_STATE_CHANGE', { from, data: { state: 'connected' }, timeout: 30000 });
    const answer = await d.a2Relogin(from);
    assert.equal(answer.errorCode, 0, `a2 re-login after restart refused: ${answer.errorCode} ${answer.errorInfo}`);
    t.diagnostic(
      `s5: serve stopped ${tStopped - tStop} ms and ready again ${tReady - tStop} ms after the SIGTERM; ` +
        `a2 re-login answered 0 after ${answer.t - tStop} ms`,
    );

    // Let the re-sync requests and one hello round (2 s) pass after the
    // re-login, then check the state.
    await sleepUntil(answer.t + 2500);
    assert.equal(await d.value('isReady'), true);
    assert.equal(await d.value('getLoginUser'), user);
    assert.deepEqual(d.events('KICKED_OUT'), []);
    assert.deepEqual(d.events('SDK_NOT_READY'), []);
    await assertNoUnhandled(d);
  });

  scenario('6', 'bad UserSigs are rejected with their codes and the SDK stays usable', async () => {
    const d = await devices.start(srv, 's6');
    const wrongKey = 'f'.repeat(64);
    const now = Math.floor(Date.now() / 1000);
    const cases = [
      { user: 's6-wrongkey', sig: genUserSig({ sdkappid: srv.sdkappid, key: wrongKey, userID: 's6-wrongkey', expire: 3600 }), code: 70009 },
      { user: 's6-expired', sig: srv.sig('s6-expired', 10, now - 100), code: 70001 },
      { user: 's6-garbage', sig: 'this-is-not-a-usersig', code: 70003 },
    ];
    for (const c of cases) {
      const r = await d.call('login', { userID: c.user, userSig: c.sig });
      assert.equal(r.ok, false, `${c.user}: login should be rejected`);
      assert.equal(r.code, c.code, `${c.user}: ${r.code} ${r.message}`);
      assert.equal(await d.value('isReady'), false);
    }
    assert.deepEqual(d.events('SDK_READY'), []);
    assert.deepEqual(d.events('KICKED_OUT'), []);

    const user = 's6-fay';
    await loginReady(d, user, srv.sig(user));
    assert.equal(await d.value('getLoginUser'), user);
    const from = d.mark();
    const lo = await d.call('logout');
    assert.ok(lo.ok);
    await d.waitEvent('SDK_NOT_READY', { from });
    await assertNoUnhandled(d);
  });

  // goAway takes a logged-in device off the network (sockets dropped, reconnects
  // refused) and resolves once its socket is closed.
  async function goAway(d) {
    const from = d.mark();
    await d.value('offline');
    await d.waitFor((e) => e.type === 'socket' && e.what === 'close', { from, what: 'socket close' });
    return from;
  }

  // comeBack puts the device back online and returns the answer to its a2 re-login.
  async function comeBack(d, from) {
    await d.value('online');
    return d.a2Relogin(from, { what: 'a2 re-login on return' });
  }

  // A kick the device missed while away: its a2 re-login is refused with 70002,
  // which the SDK ignores, so the server sends the missed push after it.
  async function assertLearnsKick(d, from, type) {
    await d.waitEvent('KICKED_OUT', { from, data: { type }, timeout: 30000 });
    const notReady = await d.waitEvent('SDK_NOT_READY', { from });
    await sleepUntil(notReady.t + 500); // anything more would come at once
    await d.value('stats');
    assert.equal(d.events('KICKED_OUT', from).length, 1, 'exactly one KICKED_OUT');
    assert.equal(await d.value('isReady'), false);
    assert.equal(await d.value('getLoginUser'), '');
    // The refused re-login rejects inside the SDK unheard (addendum 1), nothing else.
    assert.deepEqual(d.unhandled().map((e) => e.code), [70002]);
  }

  scenario('9a', 'kicked (multipleAccount) while away: told on return', async () => {
    const a = await devices.start(srv, 's9a-a');
    const b = await devices.start(srv, 's9a-b');
    const user = 's9a-ivy';
    await loginReady(a, user, srv.sig(user));
    await a.reconnectable(); // so the SDK reconnects at once when its socket goes
    const from = await goAway(a);
    await loginReady(b, user, srv.sig(user));
    const answer = await comeBack(a, from);
    assert.equal(answer.errorCode, 70002, `${answer.errorCode} ${answer.errorInfo}`);
    await assertLearnsKick(a, from, 'multipleAccount');
    assert.equal(await b.value('isReady'), true);
    assert.deepEqual(b.events('KICKED_OUT'), []);
    await assertNoUnhandled(b);
  });

  scenario('9b', 'REST kick while away: told on return', async () => {
    const d = await devices.start(srv, 's9b');
    const user = 's9b-jo';
    await loginReady(d, user, srv.sig(user));
    await d.reconnectable();
    const from = await goAway(d);
    const res = await srv.restApi('im_open_login_svc', 'kick', { UserID: user });
    assert.equal(res.body.ErrorCode, 0, JSON.stringify(res.body));
    const answer = await comeBack(d, from);
    assert.equal(answer.errorCode, 70002, `${answer.errorCode} ${answer.errorInfo}`);
    await assertLearnsKick(d, from, 'REST_API_Kick');
  });

  scenario('9c', 'UserSig expired while away: userSigExpired on return', async () => {
    const d = await devices.start(srv, 's9c');
    const user = 's9c-kim';
    const minted = Date.now();
    await loginReady(d, user, srv.sig(user, 3));
    await d.reconnectable();
    const from = await goAway(d);
    await sleepUntil(minted + 4500); // past the 3 s expiry
    const answer = await comeBack(d, from);
    // The A2Key expires with the UserSig: refused (70002), then 70001 on the
    // next heartbeat/wshello gives the SDK its userSigExpired.
    assert.equal(answer.errorCode, 70002, `${answer.errorCode} ${answer.errorInfo}`);
    const kicked = await d.waitEvent('KICKED_OUT', { from, timeout: 30000 });
    assert.equal(kicked.data.type, 'userSigExpired');
    const notReady = await d.waitEvent('SDK_NOT_READY', { from });
    assert.ok(d.wire({ dir: 'in', errorCode: 70001 }, from).length >= 1, '70001 on a pending request');
    await sleepUntil(notReady.t + 500);
    await d.value('stats');
    assert.equal(d.events('KICKED_OUT', from).length, 1, 'exactly one KICKED_OUT');
    assert.equal(await d.value('isReady'), false);
    assert.deepEqual(d.unhandled().map((e) => e.code), [70002]);
  });

  scenario('8', 'devMode: /info with text frames both ways', async () => {
    const d = await devices.start(srv, 's8', { env: { INTEROP_DEV_MODE: '1' } });
    const user = 's8-hal';
    await loginReady(d, user, srv.sig(user));
    const open = d.log.find((e) => e.type === 'socket' && e.what === 'open');
    assert.match(open.url, /\/info$/);
    const [out] = d.wire({ dir: 'out', servcmd: 'im_open_status.wslogin' });
    assert.equal(out.binary, false, 'the SDK sends text frames on /info');
    const [reply] = d.wire({ dir: 'in', servcmd: 'im_open_status.wslogin' });
    assert.equal(reply.binary, false, 'the server answers /info with text frames');
    const from = d.mark();
    assert.ok((await d.call('logout')).ok);
    await d.waitEvent('SDK_NOT_READY', { from });
    await assertNoUnhandled(d);
  });

  scenario('7', 'a UserSig minted by `chatctl sig gen` logs the SDK in', async (t) => {
    const help = await chatctl(['sig', 'gen', '--help']);
    if (help.code !== 0) {
      t.skip('`chatctl sig gen` is not available in this build');
      return;
    }
    const user = 's7-gus';
    const r = await chatctl(['sig', 'gen', '--user', user, '--expire', '600'], { CHATCTL_CONFIG_DIR: srv.configDir });
    assert.equal(r.code, 0, `chatctl sig gen failed: ${r.stderr}`);
    const sig = r.stdout.trim();
    assert.ok(sig.length > 0);
    const d = await devices.start(srv, 's7');
    await loginReady(d, user, sig);
    assert.equal(await d.value('getLoginUser'), user);
    await assertNoUnhandled(d);
  });
});
