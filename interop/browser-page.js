// The page side of a browser "tab" (browser.cjs): the unmodified official
// Web SDK (loaded before this file from the bundle in node_modules) created
// in this page, driven by the test through window.chatctlDriver and
// reporting through window.chatctlReport (a Playwright binding). What it
// reports mirrors sdk-driver.cjs, the Node driver, entry for entry:
//   {type:"event", name, data}                SDK events
//   {type:"wire", dir:"in"|"out", servcmd, seq, ...}   watched frames, no secrets
//   {type:"socket", what:"open"|"close"|"error", ...}  the SDK's WebSocket
//   {type:"reply", id, ok, value | code, message}      answers to commands
//   {type:"unhandledRejection", code, message}
// and, browser only, {type:"visibility", state} and {type:"lifecycle", what}.
//
// In a browser the SDK runs its WebSocket inside a dedicated Worker made
// from a Blob (its "worker socket": the page posts {cmd:"start"|
// "sendMessage"|"stop"}, the worker posts {callback:"onOpen"|"onClose"|
// "onMessage"|"onError"}), so the tap is on Worker, not on WebSocket;
// WebSocket is tapped too, for the SDK's main-thread socket.
(function () {
  'use strict';
  const params = new URLSearchParams(location.search);
  const proxyServer = params.get('proxy');
  const sdkAppID = Number(params.get('sdkappid'));

  // Reports are sent in order; t is this page's Date.now() (one machine,
  // one clock with the test). A report that fails (the page is closing) is
  // dropped, not left to the unhandledrejection listener, which reports.
  function emit(obj) {
    obj.t = Date.now();
    Promise.resolve(window.chatctlReport(obj)).catch(() => {});
  }

  // Frames the tests look at; every frame with a non-zero ErrorCode too.
  const WATCH = new Set([
    'im_open_status.wslogin',
    'im_open_status.wslogout',
    'im_open_status.stat_forceoffline',
    'heartbeat.alive',
  ]);
  const utf8 = new TextDecoder();

  function decode(data) {
    try {
      let text;
      if (typeof data === 'string') text = data;
      else if (data instanceof ArrayBuffer) text = utf8.decode(new Uint8Array(data));
      else if (ArrayBuffer.isView(data)) text = utf8.decode(data);
      else return null;
      return JSON.parse(text);
    } catch {
      return null;
    }
  }

  // Only non-secret fields: never the A2Key or the UserSig.
  function frameIn(data) {
    const f = decode(data);
    if (!f || !f.head) return;
    const servcmd = f.head.servcmd;
    const body = f.body || {};
    const code = body.ErrorCode || 0;
    if (!WATCH.has(servcmd) && !code) return;
    const ev = { type: 'wire', dir: 'in', servcmd, seq: Number(f.head.seq), binary: typeof data !== 'string', errorCode: code };
    if (code) ev.errorInfo = body.ErrorInfo;
    if (servcmd === 'im_open_status.stat_forceoffline') {
      try {
        ev.kickType = body.EventArray[0].C2cNotifyMsgArray[0].KickoutMsgNotify.KickType;
      } catch {
        ev.kickType = null;
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
  }

  function frameOut(data) {
    const f = decode(data);
    if (!f || !f.head || !WATCH.has(f.head.servcmd) || f.head.servcmd === 'heartbeat.alive') return;
    const ev = { type: 'wire', dir: 'out', servcmd: f.head.servcmd, seq: Number(f.head.seq), binary: typeof data !== 'string' };
    if (f.head.servcmd === 'im_open_status.wslogin') ev.form = f.head.a2 ? 'a2' : 'usersig';
    if (f.head.servcmd === 'im_open_status.wslogout') ev.logoutType = f.body && f.body.wslogout_type;
    emit(ev);
  }

  const bare = (url) => String(url).split('?')[0];

  // The worker socket's messages. The tap's listener is added in the
  // constructor, before the SDK sets onmessage, so a frame is reported
  // before the SDK acts on it.
  const NativeWorker = window.Worker;
  window.Worker = class TappedWorker extends NativeWorker {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (e) => {
        const m = e.data;
        if (!m || typeof m !== 'object') return; // the SDK's timer worker
        if (m.callback === 'onOpen') emit({ type: 'socket', what: 'open', worker: true, url: this.socketURL });
        else if (m.callback === 'onClose') emit({ type: 'socket', what: 'close', worker: true, code: m.e && m.e.code, reason: m.e && m.e.reason });
        else if (m.callback === 'onError') emit({ type: 'socket', what: 'error', worker: true });
        else if (m.callback === 'onMessage') frameIn(m.data);
      });
    }

    postMessage(m, ...rest) {
      if (m && typeof m === 'object') {
        if (m.cmd === 'start') {
          this.socketURL = bare(m.url);
          emit({ type: 'socket', what: 'connect', worker: true, url: this.socketURL });
        } else if (m.cmd === 'sendMessage') frameOut(m.data);
        else if (m.cmd === 'stop') emit({ type: 'socket', what: 'stop', worker: true, code: m.code });
      }
      return super.postMessage(m, ...rest);
    }
  };

  const NativeWebSocket = window.WebSocket;
  window.WebSocket = class TappedWebSocket extends NativeWebSocket {
    constructor(url, ...rest) {
      super(url, ...rest);
      emit({ type: 'socket', what: 'connect', worker: false, url: bare(url) });
      this.addEventListener('open', () => emit({ type: 'socket', what: 'open', worker: false, url: bare(url) }));
      this.addEventListener('close', (e) => emit({ type: 'socket', what: 'close', worker: false, code: e.code, reason: e.reason }));
      this.addEventListener('error', () => emit({ type: 'socket', what: 'error', worker: false }));
      this.addEventListener('message', (e) => frameIn(e.data));
    }

    send(data) {
      frameOut(data);
      return super.send(data);
    }

    close(code, reason) {
      emit({ type: 'socket', what: 'stop', worker: false, code });
      return super.close(code, reason);
    }
  };

  let unhandled = 0;
  window.addEventListener('unhandledrejection', (e) => {
    unhandled++;
    const r = e.reason;
    emit({
      type: 'unhandledRejection',
      code: r && typeof r === 'object' ? r.code : undefined,
      message: r && typeof r === 'object' ? String(r.message) : String(r),
    });
  });
  document.addEventListener('visibilitychange', () => emit({ type: 'visibility', state: document.visibilityState }));
  document.addEventListener('freeze', () => emit({ type: 'lifecycle', what: 'freeze' }));
  document.addEventListener('resume', () => emit({ type: 'lifecycle', what: 'resume' }));

  const TencentCloudChat = window.TencentCloudChat;
  const chat = TencentCloudChat.create({ SDKAppID: sdkAppID, proxyServer });
  chat.setLogLevel(4); // no SDK logs

  const E = TencentCloudChat.EVENT;
  chat.on(E.SDK_READY, () => emit({ type: 'event', name: 'SDK_READY', data: {} }));
  chat.on(E.SDK_NOT_READY, () => emit({ type: 'event', name: 'SDK_NOT_READY', data: {} }));
  chat.on(E.SDK_DESTROY, () => emit({ type: 'event', name: 'SDK_DESTROY', data: {} }));
  chat.on(E.KICKED_OUT, (ev) => emit({ type: 'event', name: 'KICKED_OUT', data: { type: ev.data && ev.data.type } }));
  chat.on(E.NET_STATE_CHANGE, (ev) => emit({ type: 'event', name: 'NET_STATE_CHANGE', data: { state: ev.data && ev.data.state } }));

  const commands = {
    async login({ userID, userSig }) {
      const calledAt = Date.now();
      const res = await chat.login({ userID, userSig });
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
    stats: () => ({ unhandled, visibility: document.visibilityState, online: navigator.onLine }),
  };

  // chatctlDriver runs one command; its answer is reported as a reply
  // entry (so it takes its place among the events, as in the Node driver).
  window.chatctlDriver = async function (id, cmd, args) {
    const fn = commands[cmd];
    if (!fn) {
      emit({ type: 'reply', id, ok: false, code: -1, message: `unknown cmd ${cmd}` });
      return;
    }
    try {
      emit({ type: 'reply', id, ok: true, value: await fn(args || {}) });
    } catch (err) {
      const o = err && typeof err === 'object';
      emit({ type: 'reply', id, ok: false, code: o ? err.code : undefined, message: o ? String(err.message) : String(err) });
    }
  };

  emit({ type: 'started', sdkAppID, origin: location.origin, userAgent: navigator.userAgent });
})();
