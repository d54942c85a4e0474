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

const core = require('./driver-core.js');

let unhandled = 0;
process.on('unhandledRejection', (reason) => {
  unhandled++;
  emit(core.rejection(reason));
});

const proxyServer = process.argv[2];
const sdkAppID = Number(process.argv[3]);
const dropOnKick = process.env.INTEROP_DROP_ON_KICK === '1';
const wireAll = process.env.INTEROP_WIRE_ALL === '1';
let dropped = false;

function decode(data) {
  let text;
  if (typeof data === 'string') text = data;
  else if (Buffer.isBuffer(data)) text = data.toString('utf8');
  else if (Array.isArray(data)) text = Buffer.concat(data).toString('utf8');
  else if (data instanceof ArrayBuffer) text = Buffer.from(data).toString('utf8');
  else if (ArrayBuffer.isView(data)) text = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8');
  else return null;
  return core.parse(text);
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
      const ev = core.wireIn(decode(data), isBinary, wireAll);
      if (!ev) return;
      if (ev.servcmd === core.KICK_PUSH && dropOnKick && !dropped) {
        dropped = true; // only the first kick: later sockets are left alone
        setTimeout(() => this.terminate(), 0);
      }
      emit(ev);
    });
  }

  send(data, ...rest) {
    const ev = core.wireOut(decode(data), typeof data !== 'string', wireAll);
    if (ev) emit(ev);
    return super.send(data, ...rest);
  }
}
globalThis.WebSocket = DriverWebSocket;

const TencentCloudChat = require('@tencentcloud/chat');
const createOptions = { SDKAppID: sdkAppID, proxyServer };
if (process.env.INTEROP_DEV_MODE === '1') createOptions.devMode = true; // /info, text frames
const chat = TencentCloudChat.create(createOptions);
chat.setLogLevel(4); // no SDK logs

core.listen(chat, TencentCloudChat, emit);

const commands = core.commands(chat, {
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
});

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
  await core.run(commands, req.id, req.cmd, req, emit);
});
rl.on('close', () => process.exit(0));

emit({ type: 'started', sdkAppID });
