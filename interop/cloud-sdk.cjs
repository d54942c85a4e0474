'use strict';
// The unmodified official Web SDK created with NO proxyServer, so that it picks
// Tencent's hosts itself, behind a recording WebSocket stand-in: every socket
// the SDK opens is reported and then fails the way an unreachable host does in
// a browser (an `error` event, then `close` 1006), so the SDK moves on to its
// next host. Nothing leaves the machine: the stand-in never connects, and
// fetch/XMLHttpRequest refuse (the SDK's HTTP diagnostics are reported too).
//
//   argv[2]  SDKAppID
//   argv[3]  how many socket URLs to record before exiting 0
//
// stdout, one JSON object per line:
//   {"type":"url","url":"wss://...","t":<SDK clock ms since start>}
//   {"type":"http","url":"https://..."}                 (refused)
//   {"type":"unhandledRejection","code":N,"message":"..."}
//   {"type":"done"}
//
// The SDK moves to its next host only on its own timers (about a minute apart
// at first, docs/CLOUD.md), so this process runs the SDK's clock fast: its
// setTimeout/setInterval delays are divided by SPEED and Date.now runs SPEED
// times as fast, consistently, so the SDK sees the same sequence of moments,
// only sooner. The order of hosts is decided by the SDK's own state (its
// current URL), not by time.

const util = require('node:util');

const SPEED = 200;
const sdkAppID = Number(process.argv[2]);
const want = Number(process.argv[3]);
if (!Number.isSafeInteger(sdkAppID) || !(want > 0)) {
  process.stderr.write('usage: cloud-sdk.cjs SDKAPPID COUNT\n');
  process.exit(2);
}

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

// The SDK logs through console.*; keep stdout for the protocol.
for (const k of ['log', 'info', 'warn', 'error', 'debug', 'trace']) {
  console[k] = (...args) => process.stderr.write(util.format(...args) + '\n');
}
process.on('unhandledRejection', (reason) => {
  emit({
    type: 'unhandledRejection',
    code: reason && typeof reason === 'object' ? reason.code : undefined,
    message: reason && typeof reason === 'object' ? String(reason.message) : String(reason),
  });
});

// The fast clock. The real timers are kept for this process's own deadline.
const realNow = Date.now.bind(Date);
const realSetTimeout = setTimeout;
const start = realNow();
Date.now = () => start + (realNow() - start) * SPEED;
globalThis.setTimeout = (fn, ms, ...args) => realSetTimeout(fn, (Number(ms) || 0) / SPEED, ...args);
const realSetInterval = setInterval;
globalThis.setInterval = (fn, ms, ...args) => realSetInterval(fn, (Number(ms) || 0) / SPEED, ...args);

let recorded = 0;
class RecordingWebSocket {
  constructor(url) {
    this.url = String(url);
    this.readyState = 0; // CONNECTING
    this.binaryType = 'blob';
    if (recorded < want) {
      recorded++;
      emit({ type: 'url', url: this.url, t: Date.now() - start });
      if (recorded === want) {
        emit({ type: 'done' });
        process.exit(0);
      }
    }
    // An unreachable host: the handshake never completes; error, then close.
    setImmediate(() => {
      if (this.readyState === 3) return;
      this.readyState = 3; // CLOSED
      if (this.onerror) this.onerror({ type: 'error' });
      if (this.onclose) this.onclose({ type: 'close', code: 1006, reason: '', wasClean: false });
    });
  }
  send() {
    throw new Error('RecordingWebSocket: not open');
  }
  close() {
    this.readyState = 3;
  }
}
RecordingWebSocket.CONNECTING = 0;
RecordingWebSocket.OPEN = 1;
RecordingWebSocket.CLOSING = 2;
RecordingWebSocket.CLOSED = 3;
globalThis.WebSocket = RecordingWebSocket;
globalThis.fetch = (url) => {
  emit({ type: 'http', url: String(url) });
  return Promise.reject(new TypeError('cloud-sdk.cjs: no network'));
};

const TencentCloudChat = require('@tencentcloud/chat');
const chat = TencentCloudChat.create({ SDKAppID: sdkAppID }); // no proxyServer
chat.setLogLevel(4);
// Any UserSig: no socket ever opens, so it is never sent.
chat.login({ userID: 'alice', userSig: 'unused' }).catch(() => {});

realSetTimeout(() => {
  process.stderr.write(`cloud-sdk.cjs: only ${recorded} of ${want} socket URLs within 60 s\n`);
  process.exit(1);
}, 60000);
