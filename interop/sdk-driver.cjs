'use strict';
// One "device": the unmodified official Web SDK (@tencentcloud/chat) in its own
// Node process, driven by the interop tests over a line-based JSON protocol.
//
//   argv[2]  proxyServer URL (ws://127.0.0.1:PORT)
//   argv[3]  SDKAppID
//   env INTEROP_DROP_ON_KICK=1  terminate the socket right after a kick push
//                               arrives (simulates a network drop before the
//                               kick's wslogout is answered, PROTOCOL.md 7.6);
//                               only the first kick push does this
//   env INTEROP_WIRE_ALL=1      report every frame, not only the watched ones
//   env INTEROP_DEV_MODE=1      create({devMode: true}): path /info, text frames
//
// stdin, one JSON object per line:  {"id":1,"cmd":"login","userID":"u","userSig":"..."}
//   cmds: login, logout, destroy, getLoginUser, isReady, getServerTime, stats,
//         offline (drop the sockets, refuse new ones), online
// stdout, one JSON object per line:
//   {"type":"started"}
//   {"type":"reply","id":1,"ok":true,"value":...} | {"type":"reply","id":1,"ok":false,"code":N,"message":"..."}
//   {"type":"event","name":"SDK_READY"|"SDK_NOT_READY"|"KICKED_OUT"|"NET_STATE_CHANGE"|"SDK_DESTROY","data":{...}}
//   {"type":"wire","dir":"in"|"out","servcmd":"...","seq":N,...}   selected frames, no secrets
//   {"type":"socket","what":"open"|"close","code":N}
//   {"type":"unhandledRejection","code":N,"message":"..."}
//
// The SDK's own console output goes to stderr so stdout stays parseable.

const util = require('node:util');
const readline = require('node:readline');

function emit(obj) {
  obj.t = Date.now();
  process.stdout.write(JSON.stringify(obj) + '\n');
}

// The SDK logs through console.*; keep stdout for the protocol.
for (const k of ['log', 'info', 'warn', 'error', 'debug', 'trace']) {
  console[k] = (...args) => process.stderr.write(util.format(...args) + '\n');
}

let unhandled = 0;
process.on('unhandledRejection', (reason) => {
  unhandled++;
  emit({
    type: 'unhandledRejection',
    code: reason && typeof reason === 'object' ? reason.code : undefined,
    message: reason && typeof reason === 'object' ? String(reason.message) : String(reason),
  });
});

const proxyServer = process.argv[2];
const sdkAppID = Number(process.argv[3]);
const dropOnKick = process.env.INTEROP_DROP_ON_KICK === '1';
const wireAll = process.env.INTEROP_WIRE_ALL === '1';
let dropped = false;

// Frames the tests look at. Only non-secret fields are reported.
const WATCH = new Set([
  'im_open_status.wslogin',
  'im_open_status.wslogout',
  'im_open_status.stat_forceoffline',
  'heartbeat.alive',
]);

function decode(data) {
  try {
    let text;
    if (typeof data === 'string') text = data;
    else if (Buffer.isBuffer(data)) text = data.toString('utf8');
    else if (Array.isArray(data)) text = Buffer.concat(data).toString('utf8');
    else if (data instanceof ArrayBuffer) text = Buffer.from(data).toString('utf8');
    else if (ArrayBuffer.isView(data)) text = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8');
    else return null;
    return JSON.parse(text);
  } catch {
    return null;
  }
}

const WS = require('ws');

// PROTOCOL.md addendum 2: a socket the SDK abandons while connecting makes `ws`
// emit an 'error' nobody listens to, which kills Node. A no-op listener fixes it.
// The same subclass reports wslogin/wslogout/kick frames (addendum 1: a refused
// a2 re-login is only visible on the wire).
//
// The `offline` command simulates a device without network: open sockets are
// dropped and new ones are pointed at a closed port until `online`.
let offline = false;
const live = new Set();

function unreachable(url) {
  const u = new URL(url);
  u.host = '127.0.0.1:1';
  return u.toString();
}

class DriverWebSocket extends WS {
  constructor(url, ...rest) {
    super(offline ? unreachable(String(url)) : url, ...rest);
    live.add(this);
    this.on('error', () => {});
    this.on('open', () => emit({ type: 'socket', what: 'open', url: String(url).split('?')[0] }));
    this.on('close', (code) => {
      live.delete(this);
      emit({ type: 'socket', what: 'close', code });
    });
    this.on('message', (data, isBinary) => {
      const f = decode(data);
      if (!f || !f.head) return;
      const servcmd = f.head.servcmd;
      const body = f.body || {};
      const code = body.ErrorCode || 0;
      if (!wireAll && !WATCH.has(servcmd) && !code) return;
      const ev = { type: 'wire', dir: 'in', servcmd, seq: Number(f.head.seq), binary: isBinary, errorCode: code };
      if (code) ev.errorInfo = body.ErrorInfo;
      if (servcmd === 'im_open_status.stat_forceoffline') {
        try {
          ev.kickType = body.EventArray[0].C2cNotifyMsgArray[0].KickoutMsgNotify.KickType;
        } catch {
          ev.kickType = null;
        }
        if (dropOnKick && !dropped) {
          dropped = true; // only the first kick: later sockets are left alone
          setTimeout(() => this.terminate(), 0);
        }
      }
      if (servcmd === 'im_open_status.wslogin' && !code) {
        ev.hasA2Key = typeof body.A2Key === 'string' && body.A2Key !== '';
        ev.tinyId = body.TinyId;
        ev.instId = body.InstId;
        ev.helloInterval = body.HelloInterval;
        ev.timeStamp = body.TimeStamp;
      }
      emit(ev);
    });
  }

  send(data, ...rest) {
    const f = decode(data);
    if (f && f.head && (wireAll || (WATCH.has(f.head.servcmd) && f.head.servcmd !== 'heartbeat.alive'))) {
      const ev = { type: 'wire', dir: 'out', servcmd: f.head.servcmd, seq: Number(f.head.seq), binary: typeof data !== 'string' };
      if (f.head.servcmd === 'im_open_status.wslogin') ev.form = f.head.a2 ? 'a2' : 'usersig';
      if (f.head.servcmd === 'im_open_status.wslogout') ev.logoutType = f.body && f.body.wslogout_type;
      emit(ev);
    }
    return super.send(data, ...rest);
  }
}
globalThis.WebSocket = DriverWebSocket;

const TencentCloudChat = require('@tencentcloud/chat');
const createOptions = { SDKAppID: sdkAppID, proxyServer };
if (process.env.INTEROP_DEV_MODE === '1') createOptions.devMode = true; // /info, text frames
const chat = TencentCloudChat.create(createOptions);
chat.setLogLevel(4); // no SDK logs

const E = TencentCloudChat.EVENT;
chat.on(E.SDK_READY, () => emit({ type: 'event', name: 'SDK_READY', data: {} }));
chat.on(E.SDK_NOT_READY, () => emit({ type: 'event', name: 'SDK_NOT_READY', data: {} }));
chat.on(E.SDK_DESTROY, () => emit({ type: 'event', name: 'SDK_DESTROY', data: {} }));
chat.on(E.KICKED_OUT, (ev) => emit({ type: 'event', name: 'KICKED_OUT', data: { type: ev.data && ev.data.type } }));
chat.on(E.NET_STATE_CHANGE, (ev) => emit({ type: 'event', name: 'NET_STATE_CHANGE', data: { state: ev.data && ev.data.state } }));

function errFields(err) {
  if (err && typeof err === 'object') return { code: err.code, message: String(err.message) };
  return { code: undefined, message: String(err) };
}

const commands = {
  async login({ userID, userSig }) {
    const calledAt = Date.now();
    const res = await chat.login({ userID, userSig });
    // Never echo the A2Key or the UserSig.
    const d = (res && res.data) || {};
    return { code: res && res.code, repeatLogin: !!d.repeatLogin, hasA2Key: !!d.a2Key, tinyID: d.tinyID, calledAt };
  },
  async logout() {
    const res = await chat.logout();
    return { code: res && res.code };
  },
  async destroy() {
    const res = await chat.destroy();
    return { code: res && res.code };
  },
  getLoginUser: () => chat.getLoginUser(),
  isReady: () => chat.isReady(),
  getServerTime: () => ({ server: chat.getServerTime(), local: Date.now() }),
  stats: () => ({ unhandled }),
  offline() {
    offline = true;
    for (const ws of live) ws.terminate();
    return true;
  },
  online() {
    offline = false;
    return true;
  },
};

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', async (line) => {
  if (!line.trim()) return;
  let req;
  try {
    req = JSON.parse(line);
  } catch {
    emit({ type: 'reply', id: null, ok: false, code: -1, message: 'bad json' });
    return;
  }
  const fn = commands[req.cmd];
  if (!fn) {
    emit({ type: 'reply', id: req.id, ok: false, code: -1, message: `unknown cmd ${req.cmd}` });
    return;
  }
  try {
    const value = await fn(req);
    emit({ type: 'reply', id: req.id, ok: true, value });
  } catch (err) {
    emit({ type: 'reply', id: req.id, ok: false, ...errFields(err) });
  }
});
rl.on('close', () => process.exit(0));

emit({ type: 'started', sdkAppID });
