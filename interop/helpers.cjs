'use strict';
// Shared pieces of the interop suite: a TLSSigAPIv2 minter, a `chatctl serve`
// process wrapper, Device (one official-SDK process, see sdk-driver.cjs),
// what every scenario file uses around devices (DevicePool, scenarioTest,
// loginReady, assertNoUnhandled, pollUntil), Redis (a real redis-server
// child) and Forwarder (a switchable TCP relay).

const crypto = require('node:crypto');
const zlib = require('node:zlib');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const net = require('node:net');
const { spawn, execFile } = require('node:child_process');
const assert = require('node:assert/strict');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// sleepUntil waits until Date.now() reaches at (ms since the epoch): what is
// left of a wait that began at a recorded moment (driver log entries carry
// the driver's Date.now() as t: one machine, one clock).
const sleepUntil = (at) => sleep(Math.max(0, at - Date.now()));

// pollUntil calls fn until its result has ok set or deadline (ms since the
// epoch) passes; returns the last result.
async function pollUntil(fn, deadline, every = 100) {
  for (;;) {
    const v = await fn();
    if (v.ok || Date.now() > deadline) return v;
    await sleep(every);
  }
}

// ---- UserSig (TLSSigAPIv2) -------------------------------------------------

// genUserSig mints a UserSig the way the official libraries do: HMAC-SHA256 over
// the TLS.* text with the key string's bytes, compact JSON in the fixed field
// order, zlib, base64 with + / = mapped to * - _.
function genUserSig({ sdkappid, key, userID, expire, time }) {
  if (time === undefined) time = Math.floor(Date.now() / 1000);
  const text =
    `TLS.identifier:${userID}\n` + `TLS.sdkappid:${sdkappid}\n` + `TLS.time:${time}\n` + `TLS.expire:${expire}\n`;
  const mac = crypto.createHmac('sha256', Buffer.from(key, 'utf8')).update(text).digest('base64');
  // Field order and omission of zero values as the official Go library.
  const doc = { 'TLS.ver': '2.0', 'TLS.identifier': userID };
  if (sdkappid) doc['TLS.sdkappid'] = sdkappid;
  if (expire) doc['TLS.expire'] = expire;
  if (time) doc['TLS.time'] = time;
  doc['TLS.sig'] = mac;
  const json = goJSON(doc) + '\n';
  const z = zlib.deflateSync(Buffer.from(json, 'utf8'), { level: 0 });
  return z.toString('base64').replace(/\+/g, '*').replace(/\//g, '-').replace(/=/g, '_');
}

// JSON as Go's encoding/json writes it by default (<, >, & escaped).
function goJSON(v) {
  return JSON.stringify(v)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

// decodeUserSig reverses the outer encoding (for tests of the minter).
function decodeUserSig(sig) {
  const b64 = sig.replace(/\*/g, '+').replace(/-/g, '/').replace(/_/g, '=');
  return zlib.inflateSync(Buffer.from(b64, 'base64')).toString('utf8');
}

// ---- child processes -----------------------------------------------------------

// Servers and redis-servers must not outlive the test process. Each is started
// under `setpriv --pdeathsig KILL` when available (killed by the kernel if the
// test process dies, even by SIGKILL), and killed on exit and on SIGINT/SIGTERM.
const children = new Set();
let setprivPath;
function spawnOwned(bin, args, opts) {
  if (setprivPath === undefined) {
    setprivPath = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => fs.existsSync(p)) || null;
  }
  const proc = setprivPath
    ? spawn(setprivPath, ['--pdeathsig', 'KILL', '--', bin, ...args], opts)
    : spawn(bin, args, opts);
  children.add(proc);
  proc.on('exit', () => children.delete(proc));
  return proc;
}
function killChildren() {
  for (const p of children) {
    try {
      p.kill('SIGKILL');
    } catch {}
  }
}
process.on('exit', killChildren);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    killChildren();
    process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
  });
}

// freePort asks the kernel for a free loopback port (free when asked: callers
// retry when a race takes it).
function freePort() {
  return new Promise((resolve, reject) => {
    const l = net.createServer();
    l.on('error', reject);
    l.listen(0, '127.0.0.1', () => {
      const { port } = l.address();
      l.close(() => resolve(port));
    });
  });
}

// ---- chatctl serve -----------------------------------------------------------

function chatctlBin() {
  const bin = process.env.CHATCTL_BIN || path.resolve(__dirname, '..', 'bin', 'chatctl');
  if (!fs.existsSync(bin)) throw new Error(`chatctl binary not found at ${bin} (run make build or set CHATCTL_BIN)`);
  return bin;
}

function mkTemp(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `chatctl-interop-${prefix}-`));
}

// Server is one `chatctl serve` process.
class Server {
  // start runs chatctl serve and resolves once it printed its JSON ready line.
  // name labels the node in failure output; extraArgs go after the others.
  static async start({ configDir, dataDir, listen = '127.0.0.1:0', helloInterval = '2s', extraArgs = [], name = 'serve' } = {}) {
    configDir = configDir || mkTemp('cfg');
    dataDir = dataDir || path.join(configDir, 'data');
    const args = ['serve', '--listen', listen, '--data-dir', dataDir, '--hello-interval', helloInterval, '-o', 'json', ...extraArgs];
    const proc = spawnOwned(chatctlBin(), args, {
      env: { ...process.env, CHATCTL_CONFIG_DIR: configDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const s = new Server();
    s.name = name;
    s.args = args;
    s.proc = proc;
    s.configDir = configDir;
    s.dataDir = dataDir;
    s.stderr = '';
    s.exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
    proc.stderr.on('data', (d) => {
      s.stderr += d.toString();
      if (s.stderr.length > 200000) s.stderr = s.stderr.slice(-100000);
    });
    const info = await new Promise((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(() => {
        proc.kill('SIGKILL');
        reject(new Error(`chatctl serve did not print its ready line within 10 s; stderr:\n${s.stderr.slice(-2000)}`));
      }, 10000);
      proc.stdout.on('data', (d) => {
        buf += d.toString();
        const nl = buf.indexOf('\n');
        if (nl < 0 || s.info) return;
        clearTimeout(timer);
        try {
          resolve(JSON.parse(buf.slice(0, nl)));
        } catch (e) {
          reject(new Error(`chatctl serve printed a non-JSON ready line: ${buf.slice(0, nl)}`));
        }
      });
      proc.on('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`chatctl serve exited early (code ${code}, signal ${signal}); stderr:\n${s.stderr.slice(-2000)}`));
      });
    });
    s.info = info;
    s.ws = info.ws;
    s.rest = info.rest;
    s.port = Number(new URL(info.ws).port);
    s.devApp = JSON.parse(fs.readFileSync(path.join(configDir, 'devapp.json'), 'utf8'));
    s.sdkappid = s.devApp.sdkappid;
    return s;
  }

  sig(userID, expire = 3600, time) {
    return genUserSig({ sdkappid: this.sdkappid, key: this.devApp.secret_key, userID, expire, time });
  }

  // stop sends SIGTERM and resolves with the exit status.
  async stop(timeoutMs = 8000) {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return this.exited;
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
    const st = await this.exited;
    clearTimeout(t);
    return st;
  }

  // kill sends signal (default SIGKILL) and resolves with the exit status.
  async kill(signal = 'SIGKILL') {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
    return this.exited;
  }

  // logEntries is what the server has logged so far (JSON lines on stderr,
  // SERVER.md), parsed; other lines are left out.
  logEntries() {
    const out = [];
    for (const line of this.stderr.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        out.push(JSON.parse(line));
      } catch {} // the first line of a truncated tail, or one still being written
    }
    return out;
  }

  // describe is the tail of the server's log (stderr: no secrets, SERVER.md).
  describe(n = 3000) {
    return `--- ${this.name} (chatctl ${this.args.join(' ')}), stderr tail:\n${this.stderr.slice(-n)}`;
  }

  // restApi POSTs to a Tencent-style REST endpoint as the admin.
  async restApi(svc, cmd, body) {
    const admin = this.devApp.admin || 'administrator';
    const u = new URL(`${this.rest}/v4/${svc}/${cmd}`);
    u.searchParams.set('sdkappid', String(this.sdkappid));
    u.searchParams.set('identifier', admin);
    u.searchParams.set('usersig', this.sig(admin, 600));
    u.searchParams.set('random', String(Math.floor(Math.random() * 4294967295)));
    u.searchParams.set('contenttype', 'json');
    const res = await fetch(u, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
    const text = await res.text();
    try {
      return { status: res.status, body: JSON.parse(text) };
    } catch {
      return { status: res.status, body: text };
    }
  }

  cleanup() {
    fs.rmSync(this.configDir, { recursive: true, force: true });
  }
}

// ---- Device: one SDK process ------------------------------------------------

const DRIVER = path.join(__dirname, 'sdk-driver.cjs');

// Loading the SDK costs a driver ~0.4 s of CPU. Started all at once on a
// busy 2-core machine, a dozen drivers each take many seconds, so at most
// START_SLOTS start at a time (others wait for a slot, not against their
// start timeout).
const START_SLOTS = Math.max(2, os.availableParallelism ? os.availableParallelism() : os.cpus().length);
let startsRunning = 0;
const startQueue = [];
async function startSlot() {
  if (startsRunning >= START_SLOTS) await new Promise((resolve) => startQueue.push(resolve));
  startsRunning++;
  return () => {
    startsRunning--;
    const next = startQueue.shift();
    if (next) next();
  };
}

class Device {
  // proxyServer defaults to the server's ws URL (e.g. a Forwarder's url instead).
  static async start(server, { name = 'dev', env = {}, proxyServer = server.ws } = {}) {
    const release = await startSlot();
    const d = new Device();
    d.name = name;
    d.log = [];
    d.waiters = [];
    d.nextId = 1;
    d.stderr = '';
    d.proc = spawn(process.execPath, [DRIVER, proxyServer, String(server.sdkappid)], {
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    d.exited = new Promise((resolve) => d.proc.on('exit', (code, signal) => resolve({ code, signal })));
    d.proc.on('exit', (code, signal) => d.push({ type: 'exit', code, signal }));
    d.proc.stderr.on('data', (x) => {
      d.stderr += x.toString();
      if (d.stderr.length > 100000) d.stderr = d.stderr.slice(-50000);
    });
    let buf = '';
    d.proc.stdout.on('data', (x) => {
      buf += x.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line.trim()) continue;
        let obj;
        try {
          obj = JSON.parse(line);
        } catch {
          obj = { type: 'garbage', line };
        }
        d.push(obj);
      }
    });
    try {
      await d.waitFor((e) => e.type === 'started', { timeout: 30000, what: 'driver start' });
    } catch (err) {
      d.proc.kill('SIGKILL'); // nobody will close it
      throw err;
    } finally {
      release();
    }
    return d;
  }

  push(obj) {
    obj.i = this.log.length;
    this.log.push(obj);
    for (const w of [...this.waiters]) {
      if (w.pred(obj)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        clearTimeout(w.timer);
        w.resolve(obj);
      }
    }
    if (obj.type === 'exit') {
      for (const w of this.waiters.splice(0)) {
        clearTimeout(w.timer);
        w.reject(new Error(`${this.name}: driver exited (code ${obj.code}) while waiting for ${w.what}\n${this.describe()}`));
      }
    }
  }

  mark() {
    return this.log.length;
  }

  // waitFor resolves with the first log entry at index >= from matching pred.
  waitFor(pred, { from = 0, timeout = 20000, what = 'entry' } = {}) {
    for (let i = from; i < this.log.length; i++) if (pred(this.log[i])) return Promise.resolve(this.log[i]);
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) {
      return Promise.reject(new Error(`${this.name}: driver already exited, no ${what}\n${this.describe()}`));
    }
    return new Promise((resolve, reject) => {
      const w = {
        pred: (e) => e.i >= from && pred(e),
        resolve,
        reject,
        what,
        timer: setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          reject(new Error(`${this.name}: timed out after ${timeout} ms waiting for ${what}\n${this.describe()}`));
        }, timeout),
      };
      this.waiters.push(w);
    });
  }

  waitEvent(name, opts = {}) {
    const { data, ...rest } = opts;
    return this.waitFor(
      (e) => e.type === 'event' && e.name === name && (!data || Object.entries(data).every(([k, v]) => e.data[k] === v)),
      { what: `event ${name}${data ? ' ' + JSON.stringify(data) : ''}`, ...rest },
    );
  }

  // reconnectable resolves once the device's socket has been open for 1.2 s:
  // a socket closed within 1 s of opening is not reconnected by the SDK on
  // its own (it goes to disconnected, PROTOCOL.md 3.4 and addendum 3), so a
  // scenario that takes the socket away waits for this first. Only the time
  // still owed is waited (the SDK's clock starts at the open, which the
  // driver reports).
  async reconnectable() {
    const open = this.log.findLast((e) => e.type === 'socket' && e.what === 'open');
    if (!open) throw new Error(`${this.name}: no socket open yet\n${this.describe()}`);
    await sleepUntil(open.t + 1200);
  }

  // a2Relogin waits for the SDK's next a2 re-login at index >= from (after a
  // reconnect) and resolves with the server's answer to it (wire entry:
  // errorCode, errorInfo, t).
  async a2Relogin(from, { timeout = 30000, what = 'a2 re-login' } = {}) {
    const relogin = await this.waitFor(
      (e) => e.type === 'wire' && e.dir === 'out' && e.servcmd === 'im_open_status.wslogin' && e.form === 'a2',
      { from, timeout, what },
    );
    return this.waitFor(
      (e) => e.type === 'wire' && e.dir === 'in' && e.servcmd === 'im_open_status.wslogin' && e.seq === relogin.seq,
      { from: relogin.i, timeout, what: `answer to the ${what}` },
    );
  }

  events(name, from = 0) {
    return this.log.filter((e) => e.i >= from && e.type === 'event' && (!name || e.name === name));
  }

  wire(filter = {}, from = 0) {
    return this.log.filter(
      (e) => e.i >= from && e.type === 'wire' && Object.entries(filter).every(([k, v]) => e[k] === v),
    );
  }

  unhandled(from = 0) {
    return this.log.filter((e) => e.i >= from && e.type === 'unhandledRejection');
  }

  // call sends a command; resolves with the reply ({ok, value} or {ok:false, code, message}).
  async call(cmd, args = {}, timeout = 30000) {
    const id = this.nextId++;
    const p = this.waitFor((e) => e.type === 'reply' && e.id === id, { from: this.log.length, timeout, what: `reply to ${cmd}` });
    this.proc.stdin.write(JSON.stringify({ id, cmd, ...args }) + '\n');
    return p;
  }

  // value calls cmd and returns its value, throwing if the SDK call rejected.
  async value(cmd, args = {}, timeout) {
    const r = await this.call(cmd, args, timeout);
    if (!r.ok) throw new Error(`${this.name}: ${cmd} rejected with code ${r.code}: ${r.message}`);
    return r.value;
  }

  describe(n = 40) {
    const lines = this.log.slice(-n).map((e) => JSON.stringify(e));
    return `--- last ${lines.length} driver lines of ${this.name}:\n${lines.join('\n')}\n--- stderr tail:\n${this.stderr.slice(-1500)}`;
  }

  async close() {
    if (process.env.INTEROP_VERBOSE) process.stderr.write(`${this.describe(100000)}\n`);
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.stdin.end();
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 3000);
    await this.exited;
    clearTimeout(t);
  }
}

// ---- scenarios around devices --------------------------------------------

// DevicePool starts the devices of one test file and closes them all at the
// end (after()); a failing scenario appends its own devices' driver logs.
class DevicePool {
  constructor() {
    this.devices = [];
  }

  // start is Device.start, the device kept for close() and describe().
  async start(server, name, opts = {}) {
    const d = await Device.start(server, { name, ...opts });
    this.devices.push(d);
    return d;
  }

  // of lists scenario id's devices: those named s<id> or s<id>-….
  of(id) {
    return this.devices.filter((d) => d.name === `s${id}` || d.name.startsWith(`s${id}-`));
  }

  describe(id, n = 300) {
    return this.of(id).map((d) => d.describe(n)).join('\n');
  }

  close() {
    return Promise.all(this.devices.map((d) => d.close()));
  }
}

// scenarioTest returns scenario(id, title, fn, opts): node:test's test()
// named "<id>: <title>" (timeout by default, opts override) that, on
// failure, appends the driver logs of scenario id's devices in pool and
// what more() returns (e.g. server log tails).
function scenarioTest(pool, { timeout, more = () => '' }) {
  const { test } = require('node:test'); // here: bench scripts load this file too
  return (id, title, fn, opts = {}) =>
    test(`${id}: ${title}`, { timeout, ...opts }, async (t) => {
      try {
        await fn(t);
      } catch (err) {
        err.message += `\n${pool.describe(id)}`;
        const m = more();
        if (m) err.message += `\n${m}`;
        throw err;
      }
    });
}

// loginReady logs d in as userID and resolves with the login result once the
// SDK is ready; it asserts the result has code 0, an A2Key and a string TinyId.
async function loginReady(d, userID, userSig) {
  const from = d.mark();
  const r = await d.call('login', { userID, userSig });
  assert.ok(r.ok, `${d.name}: login(${userID}) rejected: code ${r.code} ${r.message}`);
  assert.equal(r.value.code, 0);
  assert.equal(r.value.hasA2Key, true, 'login result carries an A2Key');
  assert.equal(typeof r.value.tinyID, 'string', 'TinyId is a string');
  await d.waitEvent('SDK_READY', { from });
  return r.value;
}

// assertNoUnhandled asserts no rejection went unhandled inside the SDK of
// any of ds. The driver reports a rejection after the microtask queue
// drains; a command round trip first makes sure every earlier report has
// arrived.
async function assertNoUnhandled(...ds) {
  for (const d of ds) {
    await d.value('stats');
    assert.deepEqual(d.unhandled(), [], `${d.name}: unhandled rejections inside the SDK\n${d.describe()}`);
  }
}

// ---- Redis -------------------------------------------------------------------

// respEncode writes a command as a RESP array of bulk strings.
function respEncode(args) {
  let out = `*${args.length}\r\n`;
  for (const a of args) {
    const b = Buffer.from(String(a), 'utf8');
    out += `$${b.length}\r\n${b.toString('utf8')}\r\n`;
  }
  return out;
}

// respParse reads one RESP value from buf at off; returns [value, next] or
// null when buf holds less than a whole value. Errors become Error objects.
function respParse(buf, off = 0) {
  const nl = buf.indexOf('\r\n', off);
  if (nl < 0) return null;
  const kind = String.fromCharCode(buf[off]);
  const line = buf.toString('utf8', off + 1, nl);
  const next = nl + 2;
  switch (kind) {
    case '+':
      return [line, next];
    case '-':
      return [new Error(line), next];
    case ':':
      return [Number(line), next];
    case '$': {
      const n = Number(line);
      if (n < 0) return [null, next];
      if (buf.length < next + n + 2) return null;
      return [buf.toString('utf8', next, next + n), next + n + 2];
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return [null, next];
      const arr = [];
      let at = next;
      for (let i = 0; i < n; i++) {
        const r = respParse(buf, at);
        if (!r) return null;
        arr.push(r[0]);
        at = r[1];
      }
      return [arr, at];
    }
    default:
      throw new Error(`RESP: unexpected type byte ${JSON.stringify(kind)}`);
  }
}

// redisCommand sends one command on a fresh connection and resolves with the
// reply (rejects on a connection error, an error reply or the timeout).
function redisCommand(port, args, timeoutMs = 2000) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    const done = (err, v) => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(v);
    };
    const timer = setTimeout(() => done(new Error(`redis ${args[0]}: no reply within ${timeoutMs} ms`)), timeoutMs);
    sock.on('error', (e) => done(e));
    sock.on('connect', () => sock.write(respEncode(args)));
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      let r;
      try {
        r = respParse(buf);
      } catch (e) {
        done(e);
        return;
      }
      if (!r) return;
      if (r[0] instanceof Error) done(r[0]);
      else done(null, r[0]);
    });
    sock.on('close', () => done(new Error(`redis ${args[0]}: connection closed before the reply`)));
  });
}

// Redis is a redis-server child on a free loopback port with its own temp
// dir (AOF with fsync always by default: every acknowledged write survives a
// SIGKILL). restart() brings it back on the same port and dir.
class Redis {
  static async start({ dir, args = ['--appendonly', 'yes', '--appendfsync', 'always'], name = 'redis' } = {}) {
    const r = new Redis();
    r.name = name;
    r.dir = dir || mkTemp('redis');
    r.args = args;
    r.log = '';
    r.restarts = 0;
    let last;
    for (let attempt = 0; attempt < 5; attempt++) {
      r.port = await freePort();
      try {
        await r.spawn();
        return r;
      } catch (e) {
        last = e; // most likely the port was taken meanwhile: try another
      }
    }
    throw new Error(`could not start redis-server: ${last && last.message}`);
  }

  get url() {
    return `redis://127.0.0.1:${this.port}/0`;
  }

  // spawn runs redis-server on this.port and resolves once it answers PING and
  // reports this child's pid (so it is ours, not another process on the port).
  async spawn() {
    const args = [
      '--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '',
      '--daemonize', 'no', '--logfile', '', '--protected-mode', 'no', ...this.args,
    ];
    const proc = spawnOwned('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    this.exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
    const onData = (d) => {
      this.log += d.toString();
      if (this.log.length > 100000) this.log = this.log.slice(-50000);
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    let spawnErr;
    proc.on('error', (e) => (spawnErr = e));
    const deadline = Date.now() + 10000;
    for (;;) {
      if (spawnErr) throw new Error(`redis-server: ${spawnErr.message} (is it installed? make redis-install)`);
      if (proc.exitCode !== null || proc.signalCode !== null) {
        throw new Error(`redis-server exited at start (code ${proc.exitCode}):\n${this.log.slice(-1500)}`);
      }
      try {
        const info = await redisCommand(this.port, ['INFO', 'server'], 1000);
        const m = /process_id:(\d+)/.exec(info);
        if (m && Number(m[1]) === proc.pid) break;
        if (m) {
          proc.kill('SIGKILL');
          throw new Error(`port ${this.port} is served by another redis-server (pid ${m[1]})`);
        }
      } catch (e) {
        if (/another redis-server/.test(e.message)) throw e;
        // LOADING, refused: not ready yet
      }
      if (Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(`redis-server did not answer within 10 s:\n${this.log.slice(-1500)}`);
      }
      await sleep(20);
    }
  }

  command(...args) {
    return redisCommand(this.port, args);
  }

  // restart stops the server with signal (SIGKILL: no shutdown save; with AOF
  // fsync always nothing acknowledged is lost) and starts it again on the same
  // port and dir, after downMs. Resolves once it answers again.
  async restart({ signal = 'SIGKILL', downMs = 0 } = {}) {
    await this.kill(signal);
    if (downMs) await sleep(downMs);
    this.restarts++;
    let last;
    for (let i = 0; i < 20; i++) {
      try {
        await this.spawn();
        return;
      } catch (e) {
        last = e; // a port still held for a moment: retry, same port
        await sleep(100);
      }
    }
    throw new Error(`redis-server did not come back on port ${this.port}: ${last && last.message}`);
  }

  async kill(signal = 'SIGKILL') {
    if (!this.proc) return;
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 8000);
    await this.exited;
    clearTimeout(t);
  }

  async stop() {
    await this.kill('SIGTERM');
  }

  describe(n = 2000) {
    return `--- ${this.name} (port ${this.port}, ${this.restarts} restarts) log tail:\n${this.log.slice(-n)}`;
  }

  cleanup() {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// ---- Forwarder ---------------------------------------------------------------

// Forwarder is a TCP relay on a free loopback port in front of one target port
// at a time. point() switches where *new* connections go; open ones stay on
// their target until either side closes (then both sides are closed). It
// plays the load balancer in front of several nodes (the SDK's proxyServer is
// fixed at create()), or a network between a node and Redis that cut() breaks,
// or a slow one (hold/release). history lists every relayed connection:
// {target, at}. (The target-to-client direction ignores backpressure: test
// traffic only.)
class Forwarder {
  static async start(targetPort) {
    const f = new Forwarder();
    f.target = targetPort;
    f.history = [];
    f.open = new Set();
    f.holding = false;
    f.held = []; // [socket, chunk] written to the client side on release()
    f.server = net.createServer((client) => f.relay(client));
    await new Promise((resolve, reject) => {
      f.server.once('error', reject);
      f.server.listen(0, '127.0.0.1', resolve);
    });
    f.port = f.server.address().port;
    return f;
  }

  get url() {
    return `ws://127.0.0.1:${this.port}`;
  }

  point(targetPort) {
    this.target = targetPort;
  }

  // cut drops every open connection and refuses new ones (closed at once)
  // until the next point(): the target becomes unreachable through here.
  cut() {
    this.target = null;
    for (const s of this.open) s.destroy();
  }

  // hold keeps what the target sends (on every connection) from reaching the
  // client until release(), which writes it in one go: what a slow network
  // does to a reply and the push that follows it.
  hold() {
    this.holding = true;
  }

  release() {
    this.holding = false;
    // One write per connection, so that the client reads it all at once.
    const per = new Map();
    for (const [sock, chunk] of this.held.splice(0)) per.set(sock, [...(per.get(sock) || []), chunk]);
    for (const [sock, chunks] of per) if (!sock.destroyed) sock.write(Buffer.concat(chunks));
  }

  get heldBytes() {
    return this.held.reduce((n, [, c]) => n + c.length, 0);
  }

  // heldText is what is held, as latin1 text (WebSocket frames of JSON
  // without permessage-deflate carry their JSON verbatim).
  heldText() {
    return Buffer.concat(this.held.map(([, c]) => c)).toString('latin1');
  }

  relay(client) {
    const target = this.target;
    if (target === null) {
      this.history.push({ target, at: Date.now(), closed: Date.now() });
      client.destroy();
      return;
    }
    const up = net.connect(target, '127.0.0.1');
    const entry = { target, at: Date.now() };
    this.history.push(entry);
    this.open.add(client).add(up);
    client.setNoDelay(true);
    up.setNoDelay(true);
    const close = () => {
      if (entry.closed) return;
      entry.closed = Date.now();
      client.destroy();
      up.destroy();
      this.open.delete(client);
      this.open.delete(up);
    };
    for (const s of [client, up]) {
      s.on('error', close);
      s.on('close', close);
      s.on('end', close);
    }
    client.pipe(up);
    up.on('data', (chunk) => {
      if (this.holding) this.held.push([client, chunk]);
      else client.write(chunk);
    });
  }

  connectionsTo(port, since = 0) {
    return this.history.filter((h) => h.target === port && h.at >= since);
  }

  async close() {
    for (const s of this.open) s.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

// chatctl runs the chatctl binary with args; resolves {code, stdout, stderr}.
function chatctl(args, env = {}) {
  return new Promise((resolve) => {
    execFile(chatctlBin(), args, { env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

// secondLoginKicks logs user in on device a, then on device b (same app,
// Web): what the official SDK shows of the multipleAccount kick of a,
// checked the same way in Node and in a browser. a gets the kick push
// (kickType 1), acknowledges it with one wslogout type 1, then emits
// KICKED_OUT multipleAccount and SDK_NOT_READY and is logged out; b stays
// ready with no KICKED_OUT. Returns a's mark before b's login.
async function secondLoginKicks(a, b, user, userSig) {
  await loginReady(a, user, userSig);
  const from = a.mark();
  await loginReady(b, user, userSig);
  const push = await a.waitFor((e) => e.type === 'wire' && e.servcmd === 'im_open_status.stat_forceoffline', {
    from,
    what: 'kick push',
  });
  assert.equal(push.kickType, 1);
  const kicked = await a.waitEvent('KICKED_OUT', { from });
  assert.equal(kicked.data.type, 'multipleAccount');
  await a.waitEvent('SDK_NOT_READY', { from });
  assert.equal(a.wire({ dir: 'out', servcmd: 'im_open_status.wslogout', logoutType: 1 }, from).length, 1);
  assert.equal(await a.value('isReady'), false);
  assert.equal(await a.value('getLoginUser'), '');
  assert.equal(await b.value('isReady'), true);
  assert.equal(await b.value('getLoginUser'), user);
  assert.deepEqual(b.events('KICKED_OUT'), []);
  return from;
}

module.exports = {
  secondLoginKicks,
  sleep,
  sleepUntil,
  pollUntil,
  genUserSig,
  decodeUserSig,
  goJSON,
  Server,
  Device,
  DevicePool,
  scenarioTest,
  loginReady,
  assertNoUnhandled,
  Redis,
  Forwarder,
  freePort,
  redisCommand,
  chatctl,
  chatctlBin,
  mkTemp,
  spawnOwned,
};
