// The page side of a browser "tab" (browser.cjs): the unmodified official
// Web SDK (loaded before this file from the bundle in node_modules) created
// in this page, driven by the test through window.chatctlDriver and
// reporting through window.chatctlReport (a Playwright binding). What it
// reports is sdk-driver.cjs's (the Node driver), entry for entry: both
// build their entries with driver-core.js.
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

  const core = window.chatctlDriverCore; // driver-core.js, loaded before this file
  const utf8 = new TextDecoder();

  function decode(data) {
    let text;
    if (typeof data === 'string') text = data;
    else if (data instanceof ArrayBuffer) text = utf8.decode(new Uint8Array(data));
    else if (ArrayBuffer.isView(data)) text = utf8.decode(data);
    else return null;
    return core.parse(text);
  }

  function frameIn(data) {
    const ev = core.wireIn(decode(data), typeof data !== 'string', false);
    if (ev) emit(ev);
  }

  function frameOut(data) {
    const ev = core.wireOut(decode(data), typeof data !== 'string', false);
    if (ev) emit(ev);
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
    emit(core.rejection(e.reason));
  });
  document.addEventListener('visibilitychange', () => emit({ type: 'visibility', state: document.visibilityState }));
  document.addEventListener('freeze', () => emit({ type: 'lifecycle', what: 'freeze' }));
  document.addEventListener('resume', () => emit({ type: 'lifecycle', what: 'resume' }));

  const TencentCloudChat = window.TencentCloudChat;
  const chat = TencentCloudChat.create({ SDKAppID: sdkAppID, proxyServer });
  chat.setLogLevel(4); // no SDK logs

  core.listen(chat, TencentCloudChat, emit);

  const commands = core.commands(chat, {
    stats: () => ({ unhandled, visibility: document.visibilityState, online: navigator.onLine }),
  });

  // chatctlDriver runs one command; its answer is reported as a reply
  // entry (so it takes its place among the events, as in the Node driver).
  window.chatctlDriver = (id, cmd, args) => core.run(commands, id, cmd, args, emit);

  emit({ type: 'started', sdkAppID, origin: location.origin, userAgent: navigator.userAgent });
})();
