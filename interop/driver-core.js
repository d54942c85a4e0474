// What the two drivers of the official SDK share: sdk-driver.cjs (the SDK
// in a Node process) and browser-page.js (the SDK in a Chromium page). Both
// report the same entries for the same frames, events and commands; what
// differs is only where the SDK's socket is tapped and how entries travel
// (stdout lines, a Playwright binding). A UMD module: require()d in Node,
// a <script> in the page (window.chatctlDriverCore).
(function (root, factory) {
  if (typeof module === 'object' && module.exports) module.exports = factory();
  else root.chatctlDriverCore = factory();
})(typeof self !== 'undefined' ? self : this, function () {
  'use strict';

  // Frames the tests look at; every inbound frame with a non-zero ErrorCode too.
  const WATCH = new Set([
    'im_open_status.wslogin',
    'im_open_status.wslogout',
    'im_open_status.stat_forceoffline',
    'heartbeat.alive',
  ]);
  const KICK_PUSH = 'im_open_status.stat_forceoffline';

  function parse(text) {
    try {
      return JSON.parse(text);
    } catch {
      return null;
    }
  }

  // wireIn is the entry of an inbound frame f (parsed), or null when it is
  // not reported. Only non-secret fields: never the A2Key or the UserSig.
  function wireIn(f, binary, all) {
    if (!f || !f.head) return null;
    const servcmd = f.head.servcmd;
    const body = f.body || {};
    const code = body.ErrorCode || 0;
    if (!all && !WATCH.has(servcmd) && !code) return null;
    const ev = { type: 'wire', dir: 'in', servcmd, seq: Number(f.head.seq), binary, errorCode: code };
    if (code) ev.errorInfo = body.ErrorInfo;
    if (servcmd === KICK_PUSH) {
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
    return ev;
  }

  // wireOut is the entry of an outbound frame f, or null. Outbound
  // heartbeats are not reported unless all (the SDK sends one every 10 s).
  function wireOut(f, binary, all) {
    if (!f || !f.head) return null;
    const servcmd = f.head.servcmd;
    if (!all && (!WATCH.has(servcmd) || servcmd === 'heartbeat.alive')) return null;
    const ev = { type: 'wire', dir: 'out', servcmd, seq: Number(f.head.seq), binary };
    if (servcmd === 'im_open_status.wslogin') ev.form = f.head.a2 ? 'a2' : 'usersig';
    if (servcmd === 'im_open_status.wslogout') ev.logoutType = f.body && f.body.wslogout_type;
    return ev;
  }

  function errFields(err) {
    if (err && typeof err === 'object') return { code: err.code, message: String(err.message) };
    return { code: undefined, message: String(err) };
  }

  function rejection(reason) {
    return { type: 'unhandledRejection', ...errFields(reason) };
  }

  // listen reports the SDK's lifecycle events.
  function listen(chat, TencentCloudChat, emit) {
    const E = TencentCloudChat.EVENT;
    chat.on(E.SDK_READY, () => emit({ type: 'event', name: 'SDK_READY', data: {} }));
    chat.on(E.SDK_NOT_READY, () => emit({ type: 'event', name: 'SDK_NOT_READY', data: {} }));
    chat.on(E.SDK_DESTROY, () => emit({ type: 'event', name: 'SDK_DESTROY', data: {} }));
    chat.on(E.KICKED_OUT, (ev) => emit({ type: 'event', name: 'KICKED_OUT', data: { type: ev.data && ev.data.type } }));
    chat.on(E.NET_STATE_CHANGE, (ev) => emit({ type: 'event', name: 'NET_STATE_CHANGE', data: { state: ev.data && ev.data.state } }));
  }

  // commands are the SDK calls a test can make, plus the driver's own.
  function commands(chat, own) {
    return {
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
      ...own,
    };
  }

  // run runs command cmd of cmds and reports its answer as a reply entry,
  // so that it takes its place among the events.
  async function run(cmds, id, cmd, args, emit) {
    const fn = Object.prototype.hasOwnProperty.call(cmds, cmd) ? cmds[cmd] : null;
    if (!fn) {
      emit({ type: 'reply', id, ok: false, code: -1, message: `unknown cmd ${cmd}` });
      return;
    }
    try {
      emit({ type: 'reply', id, ok: true, value: await fn(args || {}) });
    } catch (err) {
      emit({ type: 'reply', id, ok: false, ...errFields(err) });
    }
  }

  return { WATCH, KICK_PUSH, parse, wireIn, wireOut, rejection, listen, commands, run };
});
