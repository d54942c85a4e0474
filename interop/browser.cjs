'use strict';
// The official Web SDK in a real browser: Debian's Chromium (headless),
// driven by playwright-core, which downloads no browser of its own.
//
//   launchChromium()  one browser per test file; several contexts and pages
//   PageServer        a tiny http server for the test page: the SDK bundle
//                     from node_modules, browser-page.js, and an HTML page
//                     that loads both (never chatctl: a page's origin is
//                     whatever serves it)
//   Tab               one page running the SDK: a Device (helpers.cjs)
//                     whose driver is browser-page.js, so waitFor/waitEvent/
//                     wire/a2Relogin/reconnectable work as for Node devices
//
// CHROMIUM names the browser binary (default /usr/bin/chromium, which
// `make browser-install` puts there).

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { Device } = require('./helpers.cjs');

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

// The flags the suite runs Chromium with. Playwright adds its own
// (--headless among them) and a fresh --user-data-dir, a temp dir it
// removes when the browser closes, so no profile is shared between runs.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox', // root in a container: no user namespaces for the sandbox
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

async function launchChromium() {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}: run make browser-install (Debian's chromium) or set CHROMIUM`);
  }
  const { chromium } = require('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 60000 });
}

// The browser build of the SDK: index.js is its UMD bundle (as a <script>
// it sets window.TencentCloudChat); index.es.js is the same as an ES module.
const SDK_BUNDLE = path.join(path.dirname(require.resolve('@tencentcloud/chat/package.json')), 'index.js');
const PAGE_SCRIPT = path.join(__dirname, 'browser-page.js');
const CORE_SCRIPT = path.join(__dirname, 'driver-core.js'); // shared with sdk-driver.cjs
const PAGE_HTML =
  '<!doctype html><meta charset="utf-8"><title>chatctl interop</title>' +
  '<script src="/sdk.js"></script><script src="/core.js"></script><script src="/page.js"></script>\n';

// PageServer serves the test page on 127.0.0.1 (a free port): "/" is the
// page, "/sdk.js" the SDK bundle, "/core.js" driver-core.js, "/page.js"
// browser-page.js, an empty
// favicon, anything else 404. The same server is another origin under the name localhost.
class PageServer {
  static async start() {
    const p = new PageServer();
    const files = {
      '/': ['text/html; charset=utf-8', Buffer.from(PAGE_HTML)],
      '/sdk.js': ['text/javascript; charset=utf-8', fs.readFileSync(SDK_BUNDLE)],
      '/core.js': ['text/javascript; charset=utf-8', fs.readFileSync(CORE_SCRIPT)],
      '/page.js': ['text/javascript; charset=utf-8', fs.readFileSync(PAGE_SCRIPT)],
    };
    p.server = http.createServer((req, res) => {
      const at = new URL(req.url, 'http://x').pathname;
      if (at === '/favicon.ico') {
        res.writeHead(204).end(); // what the browser asks for by itself: no error in the page's console
        return;
      }
      const f = files[at];
      if (req.method !== 'GET' || !f) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': f[0], 'cache-control': 'no-store' }).end(f[1]);
    });
    await new Promise((resolve, reject) => {
      p.server.once('error', reject);
      p.server.listen(0, '127.0.0.1', resolve);
    });
    p.port = p.server.address().port;
    return p;
  }

  // origin is the page's origin under host (127.0.0.1 or localhost).
  origin(host = '127.0.0.1') {
    return `http://${host}:${this.port}`;
  }

  close() {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(resolve));
  }
}

// Tab is one page of a browser context running the SDK, with the Device
// interface. The page stands in for the driver process: proc.exitCode is
// set, and an exit entry logged, when the page closes or crashes, which
// fails any wait still pending as a driver exit would.
class Tab extends Device {
  // open loads the test page from pages (a PageServer) under host, with the
  // SDK's proxyServer at proxyServer (default: server's ws URL).
  static async open(context, pages, server, { name = 'tab', host = '127.0.0.1', proxyServer = server.ws } = {}) {
    const t = new Tab();
    t.name = name;
    t.log = [];
    t.waiters = [];
    t.nextId = 1;
    t.stderr = '';
    t.proc = { exitCode: null, signalCode: null };
    const page = await context.newPage();
    t.page = page;
    const gone = (why) => {
      if (t.proc.exitCode !== null) return;
      t.proc.exitCode = 0;
      t.push({ type: 'exit', code: 0, signal: why });
    };
    page.on('close', () => gone('page closed'));
    page.on('crash', () => gone('page crashed'));
    // What the page prints (the SDK logs nothing at level 4) and its
    // uncaught errors, kept for describe().
    page.on('console', (m) => {
      t.stderr += `${m.type()}: ${m.text()}\n`;
      if (t.stderr.length > 100000) t.stderr = t.stderr.slice(-50000);
    });
    page.on('pageerror', (err) => t.push({ type: 'pageerror', message: String(err.message) }));
    await page.exposeFunction('chatctlReport', (obj) => t.push(obj));
    const u = new URL(`http://${host}:${pages.port}/`);
    u.searchParams.set('proxy', proxyServer);
    u.searchParams.set('sdkappid', String(server.sdkappid));
    // A page costs the browser a renderer process and the SDK bundle's
    // compilation: seconds each on a busy 2-core machine.
    await page.goto(u.toString(), { timeout: 60000 });
    await t.waitFor((e) => e.type === 'started', { timeout: 60000, what: 'page start' });
    return t;
  }

  // call runs cmd in the page; resolves with the reply entry.
  async call(cmd, args = {}, timeout = 30000) {
    const id = this.nextId++;
    const p = this.waitFor((e) => e.type === 'reply' && e.id === id, { from: this.log.length, timeout, what: `reply to ${cmd}` });
    this.page.evaluate(([i, c, a]) => window.chatctlDriver(i, c, a), [id, cmd, args]).catch((err) => {
      // The page went away mid-call: the reply entry says so.
      this.push({ type: 'reply', id, ok: false, code: -1, message: String(err.message).split('\n')[0] });
    });
    return p;
  }

  async close() {
    if (process.env.INTEROP_VERBOSE) process.stderr.write(`${this.describe(100000)}\n`);
    if (this.proc.exitCode === null) await this.page.close().catch(() => {});
  }
}

module.exports = { launchChromium, CHROMIUM_ARGS, PageServer, Tab };
