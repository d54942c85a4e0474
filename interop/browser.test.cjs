'use strict';
// The unmodified official Web SDK (@tencentcloud/chat 3.6.6) in a real
// browser, Debian's headless Chromium (browser.cjs), against `chatctl
// serve`: what sdk.test.cjs checks in Node, where a browser differs (its
// Origin header, its own WebSocket in a Worker, several tabs of one app).
// One browser for the file; each scenario has its own context (a profile's
// worth of storage) and pages, and runs concurrently with the others.
//
// Needs bin/chatctl (make build) or CHATCTL_BIN, and Chromium
// (make browser-install) or CHROMIUM.

const { describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const {
  Server,
  DevicePool,
  scenarioTest,
  loginReady,
  assertNoUnhandled,
  chatctl,
  pollUntil,
  sleepUntil,
  secondLoginKicks,
} = require('./helpers.cjs');
const { launchChromium, PageServer, Tab } = require('./browser.cjs');

describe('official Web SDK 3.6.6 in headless Chromium against chatctl serve', { concurrency: true }, () => {
  let browser;
  let pages; // the test page, at http://127.0.0.1:P (and http://localhost:P)
  let srv; // allows the page's 127.0.0.1 origin
  const servers = [];
  const tabs = new DevicePool(); // Tabs, named s<id> or s<id>-x, closed at the end
  const scenario = scenarioTest(tabs, {
    timeout: 150000,
    more: () => servers.map((s) => s.describe(1500)).join('\n'),
  });

  before(async () => {
    pages = await PageServer.start();
    browser = await launchChromium();
    srv = await startServer();
  });

  after(async () => {
    await tabs.close();
    if (browser) await browser.close();
    for (const s of servers) {
      await s.stop();
      s.cleanup();
    }
    if (pages) await pages.close();
  });

  // startServer starts a `chatctl serve` that allows the page's origin
  // (127.0.0.1:P is not the server's host:port, so the page is another
  // origin) and those of extraOrigins; opts go to Server.start.
  async function startServer({ extraOrigins = [], ...opts } = {}) {
    const allow = [pages.origin(), ...extraOrigins].flatMap((o) => ['--allow-origin', o]);
    const s = await Server.start({ ...opts, extraArgs: [...allow, ...(opts.extraArgs || [])] });
    servers.push(s);
    return s;
  }

  // open opens a tab (a page in context) on the test page; host selects
  // the page's origin.
  async function open(context, server, name, opts = {}) {
    const t = await Tab.open(context, pages, server, { name, ...opts });
    tabs.devices.push(t);
    return t;
  }

  scenario('1', 'login, ready, getLoginUser, isReady, getServerTime, logout', async (t) => {
    const ctx = await browser.newContext();
    const d = await open(ctx, srv, 's1');
    const user = 's1-alice';
    const login = await loginReady(d, user, srv.sig(user));

    // In a browser the SDK's socket lives in a Worker, with binary frames
    // on /binfo as in Node.
    const opened = d.log.find((e) => e.type === 'socket' && e.what === 'open');
    assert.equal(opened.worker, true, 'the SDK runs its WebSocket in a Worker');
    assert.match(opened.url, /\/binfo$/);
    const [reply] = d.wire({ dir: 'in', servcmd: 'im_open_status.wslogin' });
    assert.equal(reply.errorCode, 0);
    assert.equal(reply.binary, true, '/binfo answers with binary frames');
    assert.equal(reply.helloInterval, 2, 'HelloInterval from --hello-interval');

    assert.equal(await d.value('getLoginUser'), user);
    assert.equal(await d.value('isReady'), true);
    // getServerTime(): the server's clock (one machine, so Date.now()),
    // within 1 s plus the SDK's RTT/2 estimate from the login.
    const rttHalf = Math.ceil((reply.t - login.calledAt) / 2) + 5;
    const t0 = Date.now();
    const { server } = await d.value('getServerTime');
    const t1 = Date.now();
    assert.ok(
      server >= t0 - 1000 - rttHalf && server <= t1 + 1000 + rttHalf,
      `getServerTime() ${server} not within 1 s (+ RTT/2 ${rttHalf} ms) of [${t0}, ${t1}]`,
    );
    t.diagnostic(`s1: getServerTime() - Date.now() = ${server - t1}..${server - t0} ms`);

    const from = d.mark();
    const lo = await d.call('logout');
    assert.ok(lo.ok, `logout rejected: ${lo.code} ${lo.message}`);
    await d.waitEvent('SDK_NOT_READY', { from });
    assert.equal(await d.value('isReady'), false);
    assert.equal(await d.value('getLoginUser'), '');
    assert.equal(d.wire({ dir: 'out', servcmd: 'im_open_status.wslogout', logoutType: 0 }, from).length, 1);
    assert.deepEqual(d.events('KICKED_OUT'), []);
    await assertNoUnhandled(d);
  });

  scenario('2', 'two tabs of one app as the same user: the first gets KICKED_OUT multipleAccount', async (t) => {
    const ctx = await browser.newContext(); // one profile: the tabs share storage
    const a = await open(ctx, srv, 's2-a');
    const b = await open(ctx, srv, 's2-b');
    const from = await secondLoginKicks(a, b, 's2-bob', srv.sig('s2-bob'));
    await assertNoUnhandled(b);

    // serve pushes a kick again when no acknowledgement came within 1 s
    // (SERVER.md); on a loaded machine the browser's round trip can take
    // longer, and the SDK takes the repeat while logged out: an unhandled
    // 2024 inside it, nothing else (PROTOCOL.md, "In a real browser").
    await a.value('stats');
    const pushes = a.wire({ dir: 'in', servcmd: 'im_open_status.stat_forceoffline' }, from).length;
    const codes = a.unhandled().map((e) => e.code);
    assert.deepEqual(codes, pushes > 1 ? codes.map(() => 2024) : [], `${pushes} kick pushes, unhandled [${codes}]`);
    assert.equal(a.events('KICKED_OUT', from).length, 1, 'one KICKED_OUT');
    if (pushes > 1) t.diagnostic(`s2: ${pushes} kick pushes (a repeat crossed the acknowledgement), unhandled [${codes}]`);
    // Headless Chromium shows every tab: neither is hidden, whichever is in front.
    t.diagnostic(`s2: visibilityState ${(await a.value('stats')).visibility} / ${(await b.value('stats')).visibility}`);
  });

  scenario('3', '`chatctl admin kick` gives KICKED_OUT REST_API_Kick', async () => {
    const ctx = await browser.newContext();
    const d = await open(ctx, srv, 's3');
    const user = 's3-carol';
    await loginReady(d, user, srv.sig(user, 3600, Math.floor(Date.now() / 1000) - 1));
    const from = d.mark();
    const r = await chatctl(['admin', 'kick', user, '--endpoint', srv.ws], { CHATCTL_CONFIG_DIR: srv.configDir });
    assert.equal(r.code, 0, `chatctl admin kick exited ${r.code}: ${r.stderr}`);
    const kicked = await d.waitEvent('KICKED_OUT', { from });
    assert.equal(kicked.data.type, 'REST_API_Kick');
    await d.waitEvent('SDK_NOT_READY', { from });
    assert.equal(await d.value('isReady'), false);
    assert.equal(await d.value('getLoginUser'), '');
    // The SDK closes its socket with its own code 4000 (PROTOCOL.md 1.3):
    // the browser's WebSocket passes it on as it is.
    const stop = await d.waitFor((e) => e.type === 'socket' && e.what === 'stop', { from, what: 'socket stop' });
    assert.equal(stop.code, 4000);
    await assertNoUnhandled(d);
  });

  scenario('4', 'a 5 s UserSig that expires while online gives userSigExpired', async () => {
    const ctx = await browser.newContext();
    const d = await open(ctx, srv, 's4');
    const user = 's4-dan';
    // The SDK opens its socket at create(); a busy browser can take seconds
    // to, which must not eat the UserSig's life before the login is sent.
    await d.waitFor((e) => e.type === 'socket' && e.what === 'open', { what: 'socket open' });
    const from = d.mark();
    await loginReady(d, user, srv.sig(user, 5));
    const kicked = await d.waitEvent('KICKED_OUT', { from, timeout: 40000 });
    assert.equal(kicked.data.type, 'userSigExpired');
    await d.waitEvent('SDK_NOT_READY', { from });
    assert.ok(d.wire({ dir: 'in', errorCode: 70001 }, from).length >= 1, '70001 on a pending request');
    assert.equal(await d.value('isReady'), false);
    assert.equal(await d.value('getLoginUser'), '');
    await assertNoUnhandled(d);
  });

  scenario('5', 'server restart while logged in: the browser sees 1001, reconnects, stays logged in', async (t) => {
    const s = await startServer();
    const ctx = await browser.newContext();
    const d = await open(ctx, s, 's5');
    const user = 's5-erin';
    await loginReady(d, user, s.sig(user));
    await d.reconnectable(); // else the SDK goes straight to disconnected when serve stops

    const from = d.mark();
    const st = await s.stop();
    assert.equal(st.code, 0, `serve exit status on SIGTERM: ${JSON.stringify(st)}`);
    // serve closes every socket with 1001 (going away) on SIGTERM; the
    // browser hands the SDK that code.
    const closed = await d.waitFor((e) => e.type === 'socket' && e.what === 'close', { from, what: 'socket close' });
    assert.equal(closed.code, 1001);
    const s2 = await startServer({ configDir: s.configDir, dataDir: s.dataDir, listen: `127.0.0.1:${s.port}` });
    servers.splice(servers.indexOf(s), 1);
    assert.equal(s2.port, s.port);

    await d.waitEvent('NET_STATE_CHANGE', { from, data: { state: 'connected' }, timeout: 30000 });
    const answer = await d.a2Relogin(from);
    assert.equal(answer.errorCode, 0, `a2 re-login after restart refused: ${answer.errorCode} ${answer.errorInfo}`);
    const states = d.events('NET_STATE_CHANGE', from).map((e) => e.data.state);
    t.diagnostic(`s5: NET_STATE_CHANGE after the stop: ${states.join(' → ')}; a2 re-login answered 0`);

    // One hello round (2 s) after the re-login, the SDK is still logged in.
    await sleepUntil(answer.t + 2500);
    assert.equal(await d.value('isReady'), true);
    assert.equal(await d.value('getLoginUser'), user);
    assert.deepEqual(d.events('KICKED_OUT'), []);
    assert.deepEqual(d.events('SDK_NOT_READY'), []);
    await assertNoUnhandled(d);
  });

  scenario('6', 'a page on another origin is refused unless --allow-origin names it', async (t) => {
    // Debug level: serve logs each refused upgrade with the Origin it got.
    const debug = { extraArgs: ['--log-level', 'debug'] };
    const s = await startServer(debug);
    const other = pages.origin('localhost'); // same page server, another origin
    const ctx = await browser.newContext();

    const refused = await open(ctx, s, 's6-refused', { host: 'localhost' });
    assert.equal(refused.log.find((e) => e.type === 'started').origin, other);
    // The browser's WebSocket fails with 1006 and never opens.
    const closed = await refused.waitFor((e) => e.type === 'socket' && e.what === 'close', { what: 'socket close' });
    assert.equal(closed.code, 1006);
    assert.deepEqual(refused.log.filter((e) => e.type === 'socket' && e.what === 'open'), []);
    // serve logs the refusal before it answers, but its stderr and the
    // browser's report reach the test by different roads.
    const { entry } = await pollUntil(() => {
      const e = s.logEntries().find((x) => x.msg === 'upgrade refused');
      return { ok: !!e, entry: e };
    }, Date.now() + 10000);
    assert.ok(entry, `serve logged no refused upgrade\n${s.describe()}`);
    assert.equal(entry.origin, other, 'the Origin the browser sent is the page origin');
    await refused.close();

    // The allowed origin of the same page works on the same server.
    const allowed = await open(ctx, s, 's6-allowed');
    await loginReady(allowed, 's6-fay', s.sig('s6-fay'));

    // Allowed by configuration: the same server (port, data) with the other
    // origin added.
    await s.stop();
    const s2 = await startServer({ ...debug, configDir: s.configDir, dataDir: s.dataDir, listen: `127.0.0.1:${s.port}`, extraOrigins: [other] });
    servers.splice(servers.indexOf(s), 1); // s2 cleans up the shared dirs
    const now = await open(ctx, s2, 's6-other', { host: 'localhost' });
    await loginReady(now, 's6-gil', s2.sig('s6-gil'));
    assert.equal(await now.value('getLoginUser'), 's6-gil');
    assert.deepEqual(s2.logEntries().filter((e) => e.msg === 'upgrade refused'), []);
    await assertNoUnhandled(now);
    t.diagnostic(`s6: refused origin ${other} (1006 in the browser), then allowed with --allow-origin`);
  });

  scenario('7', 'the browser goes offline and back: disconnected at once, then a new socket and an a2 re-login', async () => {
    // Browser only: the SDK listens to window's offline/online events.
    // Playwright's setOffline fires them (navigator.onLine) but leaves open
    // WebSockets alone, so what follows is the SDK's own doing.
    const ctx = await browser.newContext();
    const d = await open(ctx, srv, 's7');
    const user = 's7-hal';
    await loginReady(d, user, srv.sig(user));
    const from = d.mark();
    await ctx.setOffline(true);
    await d.waitEvent('NET_STATE_CHANGE', { from, data: { state: 'disconnected' } });
    const back = d.mark();
    // On offline the SDK only reports: its socket stays as it was.
    assert.deepEqual(d.log.filter((e) => e.i >= from && e.type === 'socket'), []);
    await ctx.setOffline(false);
    // On online it replaces its socket at once (4001, its forced reconnect)
    // and logs in again with its a2.
    const stop = await d.waitFor((e) => e.type === 'socket' && e.what === 'stop', { from: back, what: 'socket stop' });
    assert.equal(stop.code, 4001);
    const answer = await d.a2Relogin(back);
    assert.equal(answer.errorCode, 0, `a2 re-login after going online refused: ${answer.errorCode} ${answer.errorInfo}`);
    await d.waitEvent('NET_STATE_CHANGE', { from: back, data: { state: 'connected' } });
    assert.equal(await d.value('isReady'), true);
    assert.equal(await d.value('getLoginUser'), user);
    assert.deepEqual(d.events('KICKED_OUT'), []);
    assert.deepEqual(d.events('SDK_NOT_READY'), []);
    await assertNoUnhandled(d);
  });
});
