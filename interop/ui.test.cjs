'use strict';
// The page of `chatctl serve` (/ui/, docs/SERVER.md "The page") in headless
// Chromium (browser.cjs): users who log in with `chatctl login` appear on
// it live, and a click on Kick makes the user's `chatctl watch` print
// KICKED_OUT REST_API_Kick. The page is served by chatctl itself, on
// loopback, so its actions need no credentials.
//
// Needs bin/chatctl (make build) or CHATCTL_BIN, and Chromium
// (make browser-install) or CHROMIUM. CHATCTL_UI_SCREENSHOT=FILE saves a
// screenshot of the page with three users online (docs/ui.png is one).

const { describe, before, after, test } = require('node:test');
const assert = require('node:assert/strict');
const { Server, chatctl, chatctlBin, pollUntil, spawnOwned } = require('./helpers.cjs');
const { launchChromium } = require('./browser.cjs');

// Watch is one `chatctl watch` process: its stdout lines, parsed.
class Watch {
  constructor(srv, profile) {
    this.lines = [];
    this.stderr = '';
    // Owned: killed with the test process if it dies before after().
    this.proc = spawnOwned(chatctlBin(), ['--profile', profile, 'watch', '--endpoint', srv.ws], {
      env: { ...process.env, CHATCTL_CONFIG_DIR: srv.configDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let buf = '';
    this.proc.stdout.on('data', (d) => {
      buf += d.toString();
      for (let nl; (nl = buf.indexOf('\n')) >= 0; buf = buf.slice(nl + 1)) {
        try {
          this.lines.push(JSON.parse(buf.slice(0, nl)));
        } catch {
          this.lines.push({ raw: buf.slice(0, nl) });
        }
      }
    });
    this.proc.stderr.on('data', (d) => { this.stderr += d.toString(); });
    this.exited = new Promise((resolve) => this.proc.on('exit', (code) => resolve(code)));
  }

  async waitLine(pred, what, timeout = 60000) {
    const { ok } = await pollUntil(() => ({ ok: this.lines.some(pred) }), Date.now() + timeout);
    assert.ok(ok, `watch: no ${what} within ${timeout} ms; lines ${JSON.stringify(this.lines)}; stderr ${this.stderr.slice(-1000)}`);
    return this.lines.find(pred);
  }

  stop() {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGTERM');
  }
}

describe('the page of chatctl serve in headless Chromium', () => {
  let browser;
  let srv;
  let page;
  const watches = [];

  before(async () => {
    srv = await Server.start();
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1100, height: 480 } });
    page.on('pageerror', (err) => { page.errors = [...(page.errors || []), String(err)]; });
    await page.goto(`${srv.rest}/ui/`);
    await page.waitForSelector('#conn.on', { timeout: 30000 });
    assert.equal(await page.textContent('#mode'), 'read-only');
    // Every action carries the admin's UserSig, on loopback too: minted
    // with chatctl from the dev app's key, typed into the page's field
    // (never printed: the secret scan reads this suite's output).
    const r = await chatctl(['sig', 'gen', '--user', 'administrator'], { CHATCTL_CONFIG_DIR: srv.configDir });
    assert.equal(r.code, 0, `chatctl sig gen exited ${r.code}: ${r.stderr}`);
    await page.fill('#usersig', r.stdout.trim());
  });

  after(async () => {
    for (const w of watches) w.stop();
    await Promise.all(watches.map((w) => w.exited));
    if (browser) await browser.close();
    if (srv) {
      await srv.stop();
      srv.cleanup();
    }
  });

  async function login(user, platform, profile = user) {
    const r = await chatctl(['--profile', profile, 'login', user, '--endpoint', srv.ws, '--platform', platform],
      { CHATCTL_CONFIG_DIR: srv.configDir });
    assert.equal(r.code, 0, `chatctl login ${user} exited ${r.code}: ${r.stderr}`);
  }

  test('a user who logs in appears; a click on Kick gives their watch KICKED_OUT REST_API_Kick', { timeout: 150000 }, async () => {
    assert.equal(await page.textContent('#mode'), 'actions on (admin UserSig)');
    assert.match(await page.textContent('#apps tbody'), new RegExp(String(srv.sdkappid)));

    await login('ui-alice', 'web');
    const alice = page.locator('#users tr[data-user="ui-alice"]');
    await alice.waitFor({ timeout: 30000 });
    assert.match(await alice.textContent(), /Web #\d+/);
    await page.locator('#feed li[data-kind="login"]', { hasText: 'ui-alice' }).first().waitFor({ timeout: 30000 });

    // `chatctl login` leaves the instance without a socket (detached) once
    // it exits; a watch holds it online again.
    const w = new Watch(srv, 'ui-alice');
    watches.push(w);
    await w.waitLine((l) => l.event === 'SDK_READY', 'SDK_READY');
    await alice.locator('.inst.online').waitFor({ timeout: 30000 });

    // More users for the screenshot: two held online, one detached.
    for (const [user, platform, hold] of [['ui-bob', 'android', true], ['ui-carol', 'iphone', true], ['ui-erin', 'pc', false]]) {
      await login(user, platform);
      if (hold) {
        const hw = new Watch(srv, user);
        watches.push(hw);
        await hw.waitLine((l) => l.event === 'SDK_READY', 'SDK_READY');
      }
    }
    for (const user of ['ui-bob', 'ui-carol']) {
      await page.locator(`#users tr[data-user="${user}"] .inst.online`).waitFor({ timeout: 30000 });
    }
    await page.locator('#users tr[data-user="ui-erin"]').waitFor({ timeout: 30000 });

    await alice.locator('button.kick').click();
    const kicked = await w.waitLine((l) => l.event === 'KICKED_OUT', 'KICKED_OUT');
    assert.equal(kicked.type, 'REST_API_Kick');
    assert.equal(await w.exited, 4, 'watch exits 4 after KICKED_OUT');

    await alice.waitFor({ state: 'detached', timeout: 30000 });
    await page.locator('#feed li[data-kind="kick"]', { hasText: 'ui-alice' }).first().waitFor({ timeout: 30000 });
    assert.match(await page.textContent('#feed li[data-kind="kick"]'), /REST_API_Kick/);
    assert.match(await page.textContent('#result'), /kick ui-alice: OK 0/);
    assert.equal(await page.locator('#users tr[data-user="ui-bob"]').count(), 1, 'bob stays online');
    if (process.env.CHATCTL_UI_SCREENSHOT) await page.screenshot({ path: process.env.CHATCTL_UI_SCREENSHOT, fullPage: true });
    assert.ok(!(await page.content()).includes(srv.devApp.secret_key), 'the secret key reached the page');
    assert.deepEqual(page.errors || [], []);
  });

  test('import and delete an account from the page', { timeout: 60000 }, async () => {
    await page.fill('#acct-user', 'ui-dave');
    await page.click('#import');
    await page.locator('#result', { hasText: 'import ui-dave: OK 0' }).waitFor({ timeout: 30000 });
    let r = await srv.restApi('im_open_login_svc', 'account_check', { CheckItem: [{ UserID: 'ui-dave' }] });
    assert.equal(r.body.ResultItem[0].AccountStatus, 'Imported');

    await page.click('#delete');
    await page.locator('#result', { hasText: 'delete ui-dave: OK 0' }).waitFor({ timeout: 30000 });
    r = await srv.restApi('im_open_login_svc', 'account_check', { CheckItem: [{ UserID: 'ui-dave' }] });
    assert.equal(r.body.ResultItem[0].AccountStatus, 'NotImported');

    // A second delete shows the REST API's per-user code.
    await page.click('#delete');
    await page.locator('#result.err', { hasText: '70107' }).waitFor({ timeout: 30000 });
    assert.deepEqual(page.errors || [], []);
  });

  test('ending one instance from the page kicks it alone', { timeout: 120000 }, async () => {
    await login('ui-gwen', 'web', 'ui-gwen-web');
    await login('ui-gwen', 'android', 'ui-gwen-phone');
    const web = new Watch(srv, 'ui-gwen-web');
    const phone = new Watch(srv, 'ui-gwen-phone');
    watches.push(web, phone);
    await web.waitLine((l) => l.event === 'SDK_READY', 'SDK_READY');
    await phone.waitLine((l) => l.event === 'SDK_READY', 'SDK_READY');
    const row = page.locator('#users tr[data-user="ui-gwen"]');
    await row.locator('.inst.online[data-platform="Web"]').waitFor({ timeout: 30000 });
    await row.locator('.inst.online[data-platform="Android"]').waitFor({ timeout: 30000 });

    await row.locator('.inst[data-platform="Web"] button.end').click();
    const kicked = await web.waitLine((l) => l.event === 'KICKED_OUT', 'KICKED_OUT');
    assert.equal(kicked.type, 'REST_API_Kick');
    assert.equal(await web.exited, 4);
    await row.locator('.inst[data-platform="Web"]').waitFor({ state: 'detached', timeout: 30000 });
    assert.equal(await row.locator('.inst.online[data-platform="Android"]').count(), 1, 'the Android instance stays');
    assert.equal(phone.lines.filter((l) => l.event === 'KICKED_OUT').length, 0, 'the Android watch was not kicked');
    assert.equal(phone.proc.exitCode, null, 'the Android watch runs on');
    assert.deepEqual(page.errors || [], []);
  });
});
