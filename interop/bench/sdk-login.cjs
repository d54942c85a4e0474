'use strict';
// login() → SDK_READY of the official Web SDK (@tencentcloud/chat 3.6.6, in
// this Node process) against `chatctl serve`, beside the client core's
// (pkg/client, e2e/sdkcmp_bench_test.go) against the same server process in
// the same run. `make bench-sdk` runs it; it prints markdown on stdout,
// progress on stderr, and exits non-zero if any login fails.
//
//   node interop/bench/sdk-login.cjs [--n 200] [--warmup 20] [--modes warm,cold]
//        [--go none] [--trace] [--profile] [--json FILE]
//
//   --n        timed iterations per mode and side (default 200)
//   --warmup   untimed iterations first (default 20)
//   --modes    warm: one SDK instance, one socket, login → SDK_READY → logout
//                    repeated (the SDK keeps its socket across logout);
//              cold: create() → login → SDK_READY → destroy() per iteration,
//                    a new socket each time
//   --go none  skip the client core (for quick checks of this file)
//   --trace    print every frame of one timed iteration per mode (stderr)
//   --profile  after the Go side, one more warm SDK pass under V8's CPU
//              profiler: where the CPU inside login() → SDK_READY goes
//   --json     also write all figures to FILE
//
// env CHATCTL_BIN      chatctl binary (default bin/chatctl), via ../helpers.cjs
//     SDKCMP_GO_TEST   compiled `go test -c ./e2e` binary; without it the Go
//                      side runs `go test ./e2e` (compiling inside the run)
//     SDKCMP_PROFILE_DEBUG=1  with --profile: the top functions (self time)
//                      inside the windows on stderr
//
// The same work on both sides: one server process (helloInterval 60 s, so
// no wshello in the runs), one user (sdkcmp-user) logged in and out, one
// UserSig per side minted alike (same key, 3600 s), the SDK first, then
// the client core; each login is a wslogin in the usersig form and each
// logout a wslogout type 0, so the server does the same for those frames.
// What only the SDK does is in the tables (frames, phases, profile).
// Iterations do not overlap: after each logout the bench waits until every
// request sent has its reply (and, cold, the socket is closed).
//
// Every iteration is checked, so a fast failure cannot pass for a fast login:
// login() resolved with code 0 and no repeatLogin, one SDK_READY, isReady()
// and getLoginUser() right, and on the wire a wslogin answered ErrorCode 0
// with an InstId never seen before in the run (the server really logged the
// user in again); after logout SDK_NOT_READY and isReady() false; no
// unhandled rejection inside the SDK; at the end the server holds no session.
// The Go side checks its own (A2Key, TinyId, InstId, TimeStamp) and fails
// with b.Fatal.

const path = require('node:path');
const fs = require('node:fs');
const util = require('node:util');
const { performance } = require('node:perf_hooks');
const { spawn } = require('node:child_process');
const { Server } = require('../helpers.cjs');

const REPO = path.resolve(__dirname, '..', '..');
const USER = 'sdkcmp-user';

// ---- options -----------------------------------------------------------------

function parseArgs(argv) {
  const o = { n: 200, warmup: 20, modes: ['warm', 'cold'], go: true, trace: false, json: '', profile: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    const count = (v) => {
      if (!/^\d+$/.test(v)) throw new Error(`${a} ${v}: want a count`);
      return Number(v);
    };
    if (a === '--n') o.n = count(val());
    else if (a === '--warmup') o.warmup = count(val());
    else if (a === '--modes') o.modes = val().split(',');
    else if (a === '--go') o.go = val() !== 'none';
    else if (a === '--trace') o.trace = true;
    else if (a === '--profile') o.profile = true;
    else if (a === '--json') o.json = val();
    else throw new Error(`unknown argument ${a}`);
  }
  if (o.n < 1) throw new Error('--n must be at least 1');
  for (const m of o.modes) if (m !== 'warm' && m !== 'cold') throw new Error(`unknown mode ${m}`);
  return o;
}

// ---- the SDK's sockets: ws with a no-op error listener, frames recorded ------

// The SDK logs through console.*; it is set to level 4 (none), and whatever it
// still prints goes to stderr so stdout stays the table.
for (const k of ['log', 'info', 'warn', 'error', 'debug', 'trace']) {
  console[k] = (...args) => process.stderr.write(util.format(...args) + '\n');
}

let unhandled = [];
process.on('unhandledRejection', (reason) => {
  unhandled.push(reason && typeof reason === 'object' ? `${reason.code}: ${reason.message}` : String(reason));
});

// peek reads the few head and body fields the bench needs with regular
// expressions instead of JSON.parse, to keep the instrumentation cheap: it
// runs inside the timed window for every frame. Frames are one JSON object
// whose only "servcmd" and first "seq" are in the head (PROTOCOL.md 2).
const RE_CMD = /"servcmd":"([^"]*)"/;
const RE_SEQ = /"seq":"?(\d+)/;
const RE_CODE = /"ErrorCode":(\d+)/;
const RE_INST = /"InstId":(\d+)/;

function frameText(data) {
  if (typeof data === 'string') return data;
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8');
  return '';
}

function peek(data, inbound) {
  const text = frameText(data);
  const cmd = RE_CMD.exec(text);
  if (!cmd) return null;
  const seq = RE_SEQ.exec(text);
  const f = { servcmd: cmd[1], seq: seq ? seq[1] : '' };
  if (inbound) {
    const code = RE_CODE.exec(text);
    f.code = code ? Number(code[1]) : 0;
    if (f.servcmd === 'im_open_status.wslogin') {
      const inst = RE_INST.exec(text);
      f.instId = inst ? Number(inst[1]) : 0;
    }
  }
  return f;
}

// wire holds what the sockets did: frames of the current iteration (no
// secrets: servcmd, seq, ErrorCode, InstId), and counts over a whole mode.
const wire = {
  frames: [], // {t, dir, servcmd, seq, code, instId}
  counts: new Map(), // "out servcmd" -> n
  sockets: new Set(), // open sockets
  created: 0,
  reset() {
    this.frames = [];
  },
  note(ev) {
    ev.t = performance.now();
    this.frames.push(ev);
    const k = `${ev.dir} ${ev.servcmd}`;
    this.counts.set(k, (this.counts.get(k) || 0) + 1);
  },
};

const WS = require('ws');

// README ("Node 20 has no global WebSocket") and PROTOCOL.md addendum 2: a
// `ws` subclass with a no-op error listener, as sdk-driver.cjs installs.
// Listeners added here run before the SDK's onmessage, so a reply's time is
// taken before the SDK handles it.
class BenchWebSocket extends WS {
  constructor(url, ...rest) {
    super(url, ...rest);
    wire.created++;
    this.outstanding = new Set();
    wire.note({ dir: 'socket', servcmd: 'new' });
    this.on('error', () => {});
    this.on('open', () => {
      wire.sockets.add(this);
      wire.note({ dir: 'socket', servcmd: 'open' });
    });
    this.on('close', (code) => {
      wire.sockets.delete(this);
      this.outstanding.clear();
      wire.note({ dir: 'socket', servcmd: `close ${code}` });
    });
    this.on('message', (data) => {
      const f = peek(data, true);
      if (!f) return;
      this.outstanding.delete(`${f.servcmd}#${f.seq}`);
      f.dir = 'in';
      wire.note(f);
    });
  }

  send(data, ...rest) {
    const f = peek(data, false);
    if (f) {
      this.outstanding.add(`${f.servcmd}#${f.seq}`);
      f.dir = 'out';
      wire.note(f);
    }
    return super.send(data, ...rest);
  }
}
globalThis.WebSocket = BenchWebSocket;

const TencentCloudChat = require('@tencentcloud/chat');
const EV = TencentCloudChat.EVENT;

// ---- helpers -------------------------------------------------------------------

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const tick = () => new Promise((r) => setImmediate(r));

function pct(sorted, p) {
  const k = Math.ceil((p * sorted.length) / 100);
  return sorted[Math.max(k, 1) - 1];
}

function summary(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, p50: pct(s, 50), p90: pct(s, 90), p99: pct(s, 99), max: s[s.length - 1] };
}

function median(xs) {
  return summary(xs).p50;
}

function withTimeout(p, ms, what) {
  let t;
  return Promise.race([
    p,
    new Promise((_, rej) => {
      t = setTimeout(() => rej(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}

// settle waits until every request sent on a still-open socket has its reply
// and the sockets are as wanted, so that iterations do not overlap.
async function settle(wantSockets, what) {
  const deadline = performance.now() + 5000;
  for (;;) {
    let pending = 0;
    for (const s of wire.sockets) pending += s.outstanding.size;
    if (pending === 0 && wire.sockets.size === wantSockets) return;
    if (performance.now() > deadline) {
      throw new Error(`${what}: ${pending} requests unanswered, ${wire.sockets.size} sockets open (want ${wantSockets})`);
    }
    await sleep(1);
  }
}

// cpuMicros is this process's user+system CPU time.
function cpuMicros() {
  const u = process.cpuUsage();
  return u.user + u.system;
}

// serverCPUMicros reads utime+stime of the server from /proc (100 Hz ticks).
function serverCPUMicros(pid) {
  const raw = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = raw.slice(raw.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10000;
}

function fail(msg, frames) {
  const tail = (frames || wire.frames).map((e) => `${e.dir} ${e.servcmd}${e.seq ? ' ' + e.seq : ''}${e.code ? ' code ' + e.code : ''}`);
  const err = new Error(`${msg}\n  frames of the iteration: ${tail.join(', ')}`);
  err.benchFailure = true;
  return err;
}

// ---- one SDK iteration ---------------------------------------------------------

// Listeners are attached once per instance; each iteration reads the counts.
function instrument(chat) {
  const st = { ready: 0, notReady: 0, destroyed: 0, readyAt: 0, waiters: [] };
  const fire = () => {
    for (const w of st.waiters.splice(0)) w();
  };
  chat.on(EV.SDK_READY, () => {
    st.ready++;
    st.readyAt = performance.now();
    st.readyCPU = cpuMicros();
    st.readyHr = process.hrtime.bigint();
    fire();
  });
  chat.on(EV.SDK_NOT_READY, () => {
    st.notReady++;
    fire();
  });
  chat.on(EV.SDK_DESTROY, () => {
    st.destroyed++;
    fire();
  });
  chat.on(EV.KICKED_OUT, (e) => {
    st.kicked = (e.data && e.data.type) || 'unknown';
    fire();
  });
  st.until = (pred, what) =>
    withTimeout(
      new Promise((resolve) => {
        const check = () => (pred() ? resolve() : st.waiters.push(check));
        check();
      }),
      15000,
      what,
    );
  return st;
}

// loginToReady calls login() and returns the timings of one login → ready,
// after checking everything about it. start ({t, cpu}) is when the work
// began: the create() of a cold iteration; the login() call when omitted.
async function loginToReady(chat, st, userSig, seenInst, start) {
  if (!start) wire.reset(); // cold: reset before create()
  const ready0 = st.ready;
  const cpu0 = cpuMicros();
  const hr0 = process.hrtime.bigint();
  const t0 = performance.now();
  if (!start) start = { t: t0, cpu: cpu0, hr: hr0 };
  let resolvedAt = 0;
  const res = await withTimeout(
    chat.login({ userID: USER, userSig }).then((r) => {
      resolvedAt = performance.now();
      return r;
    }),
    15000,
    'login()',
  ).catch((e) => {
    throw fail(`login() rejected: ${e && e.code} ${e && e.message}`);
  });
  await st.until(() => st.ready > ready0 || st.kicked, 'SDK_READY');
  const frames = wire.frames;
  if (st.kicked) throw fail(`KICKED_OUT ${st.kicked} during login`);
  if (st.ready !== ready0 + 1) throw fail(`${st.ready - ready0} SDK_READY events for one login`);
  const d = (res && res.data) || {};
  if (!res || res.code !== 0 || d.repeatLogin || !d.a2Key || !d.tinyID) {
    throw fail(`login() resolved without a fresh login: code ${res && res.code}, repeatLogin ${!!d.repeatLogin}, a2Key ${!!d.a2Key}`);
  }
  if (!chat.isReady() || chat.getLoginUser() !== USER) throw fail(`after SDK_READY: isReady ${chat.isReady()}, user ${chat.getLoginUser()}`);
  const out = frames.find((e) => e.dir === 'out' && e.servcmd === 'im_open_status.wslogin');
  const back = out && frames.find((e) => e.dir === 'in' && e.servcmd === out.servcmd && e.seq === out.seq);
  if (!back) throw fail('no wslogin reply on the wire');
  if (back.code !== 0) throw fail(`wslogin answered ErrorCode ${back.code}`);
  if (!back.instId || seenInst.has(back.instId)) throw fail(`wslogin reply InstId ${back.instId} is not new`);
  seenInst.add(back.instId);
  const readyAt = st.readyAt;
  const open = frames.find((e) => e.dir === 'socket' && e.servcmd === 'open');
  const sentBeforeReady = frames.filter((e) => e.dir === 'out' && e.t <= readyAt).map((e) => e.servcmd);
  return {
    frames,
    t0,
    start: start.t - t0, // create() relative to login(), cold; else 0
    ready: readyAt - start.t, // start → SDK_READY
    cpu: st.readyCPU - start.cpu, // this process's CPU over the same window, µs
    fromLogin: readyAt - t0, // login() → SDK_READY
    resolved: resolvedAt - t0, // login() → login() resolved
    open: open ? open.t - start.t : undefined, // create() → socket open, cold
    pre: out.t - t0, // login() called → wslogin handed to the socket
    rtt: back.t - out.t, // wslogin written → its reply read
    post: resolvedAt - back.t, // reply read → login() resolved
    tail: readyAt - resolvedAt, // login() resolved → SDK_READY
    sentBeforeReady,
    // start → SDK_READY on the CPU profile's clock (µs, CLOCK_MONOTONIC)
    window: [Number(start.hr / 1000n), Number(st.readyHr / 1000n)],
  };
}

async function logoutChecked(chat, st) {
  const nr0 = st.notReady;
  const r = await withTimeout(chat.logout(), 15000, 'logout()').catch((e) => {
    throw fail(`logout() rejected: ${e && e.code} ${e && e.message}`);
  });
  if (!r || r.code !== 0) throw fail(`logout() resolved with code ${r && r.code}`);
  await st.until(() => st.notReady > nr0, 'SDK_NOT_READY');
  if (chat.isReady()) throw fail('isReady() still true after logout');
}

// ---- the modes ----------------------------------------------------------------

async function runWarm(o, srv, userSig, seenInst) {
  const chat = TencentCloudChat.create({ SDKAppID: srv.sdkappid, proxyServer: srv.ws });
  chat.setLogLevel(4);
  const st = instrument(chat);
  const iters = [];
  let cpu0 = 0;
  let srv0 = 0;
  for (let i = 0; i < o.warmup + o.n; i++) {
    if (i === o.warmup) {
      wire.counts.clear();
      cpu0 = cpuMicros();
      srv0 = serverCPUMicros(srv.proc.pid);
    }
    const it = await loginToReady(chat, st, userSig, seenInst);
    await logoutChecked(chat, st);
    await settle(1, `warm iteration ${i}`);
    if (i >= o.warmup) iters.push(it);
  }
  const cpu = (cpuMicros() - cpu0) / o.n;
  const srvCPU = (serverCPUMicros(srv.proc.pid) - srv0) / o.n;
  const counts = new Map(wire.counts);
  await chat.destroy().catch(() => {}); // logged out: rejects 2024 but tears down
  await settle(0, 'warm teardown');
  return { iters, cpu, srvCPU, counts };
}

async function runCold(o, srv, userSig, seenInst) {
  const iters = [];
  let cpu0 = 0;
  let srv0 = 0;
  for (let i = 0; i < o.warmup + o.n; i++) {
    if (i === o.warmup) {
      wire.counts.clear();
      cpu0 = cpuMicros();
      srv0 = serverCPUMicros(srv.proc.pid);
    }
    wire.reset();
    const start = { cpu: cpuMicros(), hr: process.hrtime.bigint(), t: performance.now() };
    const chat = TencentCloudChat.create({ SDKAppID: srv.sdkappid, proxyServer: srv.ws });
    chat.setLogLevel(4);
    const st = instrument(chat);
    const it = await loginToReady(chat, st, userSig, seenInst, start);
    // destroy() logs out (wslogout) and closes the socket with 4000.
    const nr0 = st.notReady;
    const r = await withTimeout(chat.destroy(), 15000, 'destroy()').catch((e) => {
      throw fail(`destroy() rejected: ${e && e.code} ${e && e.message}`);
    });
    if (!r || r.code !== 0) throw fail(`destroy() resolved with code ${r && r.code}`);
    await st.until(() => st.destroyed > 0 && st.notReady > nr0, 'SDK_DESTROY and SDK_NOT_READY');
    await settle(0, `cold iteration ${i}`);
    if (i >= o.warmup) iters.push(it);
  }
  const cpu = (cpuMicros() - cpu0) / o.n;
  const srvCPU = (serverCPUMicros(srv.proc.pid) - srv0) / o.n;
  return { iters, cpu, srvCPU, counts: new Map(wire.counts) };
}

// ---- --profile: where the SDK's CPU goes inside login → SDK_READY ---------------

// A V8 CPU profile (node:inspector, in this process) of an extra warm pass;
// samples whose time falls inside a login() → SDK_READY window are put in
// the first matching bucket, looking up the stack. The SDK functions are
// found by their text in the pinned 3.6.6 bundle (minified: no names).
async function profileWarm(o, srv, userSig, seenInst) {
  const inspector = require('node:inspector');
  const session = new inspector.Session();
  session.connect();
  const post = (m, p) => new Promise((res, rej) => session.post(m, p || {}, (e, r) => (e ? rej(e) : res(r))));
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 100 });
  await post('Profiler.start');
  let run;
  try {
    run = await runWarm({ ...o, warmup: 0 }, srv, userSig, seenInst);
  } finally {
    var { profile } = await post('Profiler.stop');
    session.disconnect();
  }
  const src = fs.readFileSync(require.resolve('@tencentcloud/chat'), 'utf8');
  // V8 reports a function at the column of its parameter list.
  const at = (marker, prefix) => {
    const i = src.indexOf(marker);
    return i < 0 ? -1 : i + prefix.length + 'function'.length;
  };
  const fns = [
    // PHandler: rebuilds its map of ~150 request templates (object spreads)
    // on login() and again on the wslogin reply (updateProtocolConfig).
    ['rebuild request templates (PHandler._fillMap)', at('key:"_fillMap",value:function(){this._map.clear()', 'key:"_fillMap",value:')],
    // Every request: a copy of its template, a deep copy of the body
    // (_dataCleaner), its keys translated to PascalCase (camelcase + regexes).
    ['build a request (template copy, body deep copy, key translation)', at('key:"getProtocolData",value:function(e){var t=e.P', 'key:"getProtocolData",value:')],
    // Every request: seq, reqtime, CRC-32 of JSON.stringify(body), stringify, ws write.
    ['send a request (head, CRC-32 cs, stringify, ws write)', at('key:"send",value:function(n){var o=this,i=(n.head.seq=this._getSequence()', 'key:"send",value:')],
    // Every reply: JSON.parse, key translation, callbacks (the login
    // callback fires the background requests, counted above).
    ['handle a reply (parse, key translation, callbacks)', at('key:"onMessage",value:function(t){var e,n,o,i,s,a;try{e=JSON.parse(t.data)', 'key:"onMessage",value:')],
  ];
  const sdkURL = 'chat/index.js';
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children || []) parent.set(c, n.id);
  const bucketOf = new Map();
  const isWS = (cf) => cf.url.includes('/node_modules/ws/') || (cf.url === '' && /^write/.test(cf.functionName));
  const bucket = (id) => {
    if (bucketOf.has(id)) return bucketOf.get(id);
    const leaf = byId.get(id).callFrame;
    let b;
    if (leaf.functionName === '(idle)') b = 'idle (waiting for the network, the server, timers)';
    else if (leaf.functionName === '(garbage collector)') b = 'garbage collector';
    else {
      let sawWS = false;
      let inSDK = false;
      for (let cur = id; cur !== undefined && !b; cur = parent.get(cur)) {
        const cf = byId.get(cur).callFrame;
        if (isWS(cf)) sawWS = true;
        if (!cf.url.endsWith(sdkURL)) continue;
        inSDK = true;
        for (const [name, col] of fns) if (col >= 0 && cf.columnNumber === col) b = name;
      }
      if (sawWS) b = 'ws: frame encoding and parsing, socket writes';
      else if (!b) b = inSDK ? 'other SDK code (login flow, events, timers, logging)' : 'Node, this bench';
    }
    bucketOf.set(id, b);
    return b;
  };
  const windows = run.iters.map((x) => x.window).sort((a, b) => a[0] - b[0]);
  const sums = new Map();
  const debugSelf = new Map();
  let t = profile.startTime;
  let w = 0;
  let inside = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i];
    const d = profile.timeDeltas[i + 1] || 0; // a sample stands for the interval after it
    while (w < windows.length && windows[w][1] < t) w++;
    if (w >= windows.length) break;
    if (t < windows[w][0]) continue;
    const b = bucket(profile.samples[i]);
    sums.set(b, (sums.get(b) || 0) + d);
    if (process.env.SDKCMP_PROFILE_DEBUG) {
      const cf = byId.get(profile.samples[i]).callFrame;
      const k = `${b.slice(0, 12)} | ${cf.functionName} ${cf.url.split('/').pop()}:${cf.columnNumber}`;
      debugSelf.set(k, (debugSelf.get(k) || 0) + d);
    }
    inside += d;
  }
  const wall = windows.reduce((a, x) => a + (x[1] - x[0]), 0);
  if (process.env.SDKCMP_PROFILE_DEBUG) {
    for (const [k, us] of [...debugSelf].sort((a, b) => b[1] - a[1]).slice(0, 40)) process.stderr.write(`${(us / 1000 / run.iters.length).toFixed(3)} ms  ${k}\n`);
  }
  return { sums, inside, wall, n: run.iters.length, ready: summary(run.iters.map((x) => x.ready)) };
}

function profileTable(p) {
  const lines = [];
  lines.push(`### Where the SDK's time to ready goes, by function (warm, CPU profile of an extra pass)`);
  lines.push('');
  lines.push(`${p.n} more warm iterations with V8's sampling profiler on (100 µs; it slows the SDK: to ready p50 ${f2(p.ready.p50)} ms ` +
    `in this pass). Samples inside login() → SDK_READY, per iteration:`);
  lines.push('');
  lines.push('| bucket (first match up the stack) | ms per login | share |');
  lines.push('|---|---:|---:|');
  for (const [b, us] of [...p.sums].sort((a, b) => b[1] - a[1])) {
    lines.push(`| ${b} | ${f2(us / 1000 / p.n)} | ${f0((100 * us) / p.inside)} % |`);
  }
  lines.push(`| total sampled / wall | ${f2(p.inside / 1000 / p.n)} / ${f2(p.wall / 1000 / p.n)} | |`);
  return lines.join('\n');
}

// ---- the Go side ------------------------------------------------------------------

function runGo(o, srv) {
  const env = {
    ...process.env,
    SDKCMP_WS: srv.ws,
    SDKCMP_CONFIG_DIR: srv.configDir,
    SDKCMP_SERVER_PID: String(srv.proc.pid),
    SDKCMP_USER: USER,
    SDKCMP_WARMUP: String(o.warmup),
  };
  const bench = `^BenchmarkSDKCmpLogin$/^(${o.modes.join('|')})$`;
  let cmd;
  let args;
  if (process.env.SDKCMP_GO_TEST) {
    cmd = process.env.SDKCMP_GO_TEST;
    args = ['-test.run', '^$', '-test.bench', bench, '-test.benchtime', `${o.n}x`, '-test.count', '1'];
  } else {
    cmd = process.env.GO || 'go';
    args = ['test', '-run', '^$', '-bench', bench, '-benchtime', `${o.n}x`, '-count', '1', './e2e'];
  }
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: process.env.SDKCMP_GO_TEST ? path.join(REPO, 'e2e') : REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let errOut = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (errOut += d));
    p.on('error', reject);
    p.on('exit', (code) => {
      if (code !== 0) {
        reject(new Error(`client core benchmark failed (exit ${code}):\n${out}${errOut}`));
        return;
      }
      const res = {};
      for (const line of out.split('\n')) {
        const m = /^BenchmarkSDKCmpLogin\/(\w+)(?:-\d+)?\s+(\d+)\s+(.*)$/.exec(line);
        if (!m) continue;
        const metrics = { n: Number(m[2]) };
        const parts = m[3].trim().split(/\s+/);
        for (let i = 0; i + 1 < parts.length; i += 2) metrics[parts[i + 1]] = Number(parts[i]);
        res[m[1]] = metrics;
      }
      for (const mode of o.modes) {
        if (!res[mode] || res[mode].n !== o.n) {
          reject(new Error(`client core benchmark: no result for ${mode} with ${o.n} iterations:\n${out}${errOut}`));
          return;
        }
      }
      resolve(res);
    });
  });
}

// ---- output --------------------------------------------------------------------

const f2 = (x) => (x === undefined || Number.isNaN(x) ? '–' : x.toFixed(2));
const f0 = (x) => (x === undefined || Number.isNaN(x) ? '–' : x.toFixed(0));

function table(o, sdk, core, srvInfo) {
  const lines = [];
  const modes = o.modes;
  const heads = [];
  for (const m of modes) {
    heads.push(`SDK ${m}`);
    if (core) heads.push(`core ${m}`);
  }
  lines.push(`## login → ready, official Web SDK 3.6.6 vs client core (same \`chatctl serve\`, same run)`);
  lines.push('');
  lines.push(`${o.n} timed iterations per column after ${o.warmup} untimed; user \`${USER}\`, one UserSig per side; ` +
    `server ${srvInfo.ws} (hello-interval 60s), Node ${process.version}.`);
  lines.push('');
  lines.push(`| ms | ${heads.join(' | ')} |`);
  lines.push(`|---|${heads.map(() => '---:').join('|')}|`);
  const row = (label, sdkVal, coreVal) => {
    const cells = [];
    for (const m of modes) {
      cells.push(sdkVal(m));
      if (core) cells.push(coreVal(m));
    }
    lines.push(`| ${label} | ${cells.join(' | ')} |`);
  };
  const s = {};
  for (const m of modes) s[m] = summary(sdk[m].iters.map((x) => x.ready));
  const c = (m, k) => (core ? f2(core[m][k]) : '');
  row('**to ready p50**', (m) => `**${f2(s[m].p50)}**`, (m) => `**${c(m, 'p50-ms')}**`);
  row('to ready p90', (m) => f2(s[m].p90), (m) => c(m, 'p90-ms'));
  row('to ready p99', (m) => f2(s[m].p99), (m) => c(m, 'p99-ms'));
  row('to ready max', (m) => f2(s[m].max), (m) => c(m, 'max-ms'));
  row('login() → SDK_READY p50', (m) => f2(median(sdk[m].iters.map((x) => x.fromLogin))), () => '–');
  row('login() → login() resolved p50', (m) => f2(median(sdk[m].iters.map((x) => x.resolved))), () => '–');
  row('wslogin round trip p50', (m) => f2(median(sdk[m].iters.map((x) => x.rtt))), (m) => c(m, 'rtt-p50-ms'));
  lines.push(`| client CPU to ready p50 (µs) | ${modes.map((m) => [f0(median(sdk[m].iters.map((x) => x.cpu)))].concat(core ? [f0(core[m]['cpu-ready-p50-us'])] : []).join(' | ')).join(' | ')} |`);
  lines.push(`| client CPU per iteration (µs) | ${modes.map((m) => [f0(sdk[m].cpu)].concat(core ? [f0(core[m]['cpu-us/op'])] : []).join(' | ')).join(' | ')} |`);
  lines.push(`| server CPU per iteration (µs) | ${modes.map((m) => [f0(sdk[m].srvCPU)].concat(core ? [f0(core[m]['srv-cpu-us/op'])] : []).join(' | ')).join(' | ')} |`);
  lines.push('');
  lines.push('"to ready": SDK from `login()` to the `SDK_READY` event; client core from `Conn.Login` to its return ' +
    '(a checked wslogin reply). Cold: SDK from `create()`, core from `client.Dial`. "client CPU to ready": ' +
    'user+system CPU of the client process (getrusage) over that same window. "per iteration": the whole timed loop ' +
    '(logout, settling, GC included) divided by the iterations; the server\'s from /proc/PID/stat (10 ms ticks).');
  lines.push('');
  lines.push('### Where the SDK\'s time to ready goes (medians, ms)');
  lines.push('');
  lines.push(`| phase | ${modes.map((m) => `SDK ${m}`).join(' | ')} |`);
  lines.push(`|---|${modes.map(() => '---:').join('|')}|`);
  const ph = (label, k) => lines.push(`| ${label} | ${modes.map((m) => f2(median(sdk[m].iters.map((x) => x[k]).filter((x) => x !== undefined)))).join(' | ')} |`);
  if (modes.includes('cold')) ph('create() → socket open (cold)', 'open');
  ph('login() → wslogin written', 'pre');
  ph('wslogin written → reply read (server + loopback)', 'rtt');
  ph('reply read → login() resolved', 'post');
  ph('login() resolved → SDK_READY', 'tail');
  lines.push('');
  lines.push('### Frames the SDK sent (per timed iteration)');
  lines.push('');
  lines.push(`| servcmd | ${modes.map((m) => `before SDK_READY, ${m}`).join(' | ')} | ${modes.map((m) => `whole iteration, ${m}`).join(' | ')} |`);
  lines.push(`|---|${modes.map(() => '---:').join('|')}|${modes.map(() => '---:').join('|')}|`);
  const cmds = new Set();
  for (const m of modes) for (const k of sdk[m].counts.keys()) if (k.startsWith('out ')) cmds.add(k.slice(4));
  const before = {};
  for (const m of modes) {
    before[m] = new Map();
    for (const it of sdk[m].iters) for (const cmd of it.sentBeforeReady) before[m].set(cmd, (before[m].get(cmd) || 0) + 1);
  }
  const per = (x) => String(Number((x / o.n).toFixed(2)));
  for (const cmd of [...cmds].sort()) {
    lines.push(`| ${cmd} | ${modes.map((m) => per(before[m].get(cmd) || 0)).join(' | ')} | ${modes.map((m) => per(sdk[m].counts.get(`out ${cmd}`) || 0)).join(' | ')} |`);
  }
  lines.push('');
  lines.push('The client core sends one frame to reach ready (`im_open_status.wslogin`), then `wslogout`. ' +
    'The same on both sides: that wslogin (usersig form, same user, same server process) and the wslogout; the server does ' +
    'the same for them. Only the SDK: its request templates rebuilt on login() and again on the reply, 9 background ' +
    'requests sent before login() resolves and 2 more after, a heartbeat on every new socket (cold), 2 statistics ' +
    'reports at logout, SDK_READY from a 1 ms timer.');
  return lines.join('\n');
}

function printTrace(mode, it) {
  const lines = [`--- trace of one timed ${mode} iteration (ms from login())`];
  const rows = it.frames.map((e) => [e.t - it.t0, `${e.dir.padEnd(6)} ${e.servcmd}${e.code ? ' ErrorCode ' + e.code : ''}`]);
  rows.push([it.resolved, 'login() resolved'], [it.fromLogin, 'SDK_READY']);
  if (it.start) rows.push([it.start, 'create()']);
  rows.sort((a, b) => a[0] - b[0]);
  for (const [t, what] of rows) lines.push(`${f2(t).padStart(9)}  ${what}`);
  process.stderr.write(lines.join('\n') + '\n');
}

// ---- main --------------------------------------------------------------------------

async function main() {
  const o = parseArgs(process.argv.slice(2));
  // --unpaced: warm mode's 200 logins on one socket measure the server, not
  // its frame pacing.
  const srv = await Server.start({ helloInterval: '60s', extraArgs: ['--log-level', 'warn', '--unpaced'] });
  try {
    const userSig = srv.sig(USER, 3600);
    const seenInst = new Set();
    const sdk = {};
    for (const m of o.modes) {
      process.stderr.write(`sdk-login: official SDK, ${m}: ${o.warmup} + ${o.n} iterations against ${srv.ws}\n`);
      sdk[m] = m === 'warm' ? await runWarm(o, srv, userSig, seenInst) : await runCold(o, srv, userSig, seenInst);
      if (o.trace) printTrace(m, sdk[m].iters[Math.floor(o.n / 2)]);
    }
    // Drop the frame records before the Go side runs.
    for (const m of o.modes) for (const it of sdk[m].iters) it.frames = undefined;
    if (unhandled.length) throw new Error(`unhandled rejections inside the SDK: ${unhandled.slice(0, 5).join('; ')}`);
    let core = null;
    if (o.go) {
      process.stderr.write(`sdk-login: client core, ${o.modes.join(',')}: ${o.warmup} + ${o.n} iterations against the same server\n`);
      core = await runGo(o, srv);
    }
    let prof = null;
    if (o.profile) {
      process.stderr.write(`sdk-login: official SDK, warm, under the CPU profiler: ${o.n} iterations\n`);
      prof = await profileWarm(o, srv, userSig, seenInst);
      if (unhandled.length) throw new Error(`unhandled rejections inside the SDK: ${unhandled.slice(0, 5).join('; ')}`);
    }
    const stats = await (await fetch(`${srv.rest}/debug/stats`)).json();
    if (stats.sessions !== 0) throw new Error(`the server still holds ${stats.sessions} sessions after the run`);
    let out = table(o, sdk, core, srv);
    if (prof) out += '\n\n' + profileTable(prof);
    process.stdout.write(out + '\n');
    if (o.json) {
      const dump = { n: o.n, warmup: o.warmup, node: process.version, sdk: {}, core };
      for (const m of o.modes) {
        const its = sdk[m].iters;
        dump.sdk[m] = {
          ready: summary(its.map((x) => x.ready)),
          fromLogin: summary(its.map((x) => x.fromLogin)),
          resolved: summary(its.map((x) => x.resolved)),
          cpuToReady: summary(its.map((x) => x.cpu)),
          phases: Object.fromEntries(['open', 'pre', 'rtt', 'post', 'tail'].map((k) => [k, median(its.map((x) => x[k]).filter((x) => x !== undefined))])),
          cpuMicros: sdk[m].cpu,
          serverCPUMicros: sdk[m].srvCPU,
          frames: Object.fromEntries(sdk[m].counts),
        };
      }
      fs.writeFileSync(o.json, JSON.stringify(dump, null, 2) + '\n');
    }
  } finally {
    await srv.stop();
    srv.cleanup();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`sdk-login: FAILED: ${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  },
);
