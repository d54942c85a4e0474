'use strict';
// Shared pieces of the interop suite: a TLSSigAPIv2 minter, a `chatctl serve`
// process wrapper, and Device (one official-SDK process, see sdk-driver.cjs).

const crypto = require('node:crypto');
const zlib = require('node:zlib');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, execFile } = require('node:child_process');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

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
  static async start({ configDir, dataDir, listen = '127.0.0.1:0', helloInterval = '2s', extraArgs = [] } = {}) {
    configDir = configDir || mkTemp('cfg');
    dataDir = dataDir || path.join(configDir, 'data');
    const args = ['serve', '--listen', listen, '--data-dir', dataDir, '--hello-interval', helloInterval, '-o', 'json', ...extraArgs];
    const proc = spawn(chatctlBin(), args, {
      env: { ...process.env, CHATCTL_CONFIG_DIR: configDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const s = new Server();
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

class Device {
  static async start(server, { name = 'dev', env = {} } = {}) {
    const d = new Device();
    d.name = name;
    d.log = [];
    d.waiters = [];
    d.nextId = 1;
    d.stderr = '';
    d.proc = spawn(process.execPath, [DRIVER, server.ws, String(server.sdkappid)], {
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
    await d.waitFor((e) => e.type === 'started', { timeout: 15000, what: 'driver start' });
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

// chatctl runs the chatctl binary with args; resolves {code, stdout, stderr}.
function chatctl(args, env = {}) {
  return new Promise((resolve) => {
    execFile(chatctlBin(), args, { env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

module.exports = { sleep, genUserSig, decodeUserSig, goJSON, Server, Device, chatctl, chatctlBin, mkTemp };
