'use strict';
// `--endpoint cloud` against the official Web SDK's own choice of Tencent's
// hosts (docs/CLOUD.md). For one SDKAppID per data center, the unmodified SDK
// runs with NO proxyServer behind a recording WebSocket stand-in
// (cloud-sdk.cjs: every socket fails like an unreachable host, so the SDK
// moves on), and `chatctl login --endpoint cloud` runs here, where no network
// reaches Tencent: it must exit 6 having tried the same URLs in the same
// order (the error's `tried` URLs: scheme, host, path, query keys and fixed
// values; the per-run instance id and random by shape).
//
// Needs bin/chatctl (make build) or CHATCTL_BIN.

const { describe, test } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const fs = require('node:fs');
const { execFile } = require('node:child_process');
const { chatctl: chatctlHere, chatctlBin, mkTemp } = require('./helpers.cjs');

// chatctl runs the binary in a network namespace of its own with no network
// (unshare -rn, where the kernel allows it: root in CI): its attempt at
// Tencent's hosts then fails at once without a DNS query leaving the
// machine. Elsewhere it runs as is (the names fail to resolve here).
const offline = (() => {
  try {
    require('node:child_process').execFileSync('unshare', ['-rn', 'true'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
function chatctl(args, env = {}) {
  if (!offline) return chatctlHere(args, env);
  return new Promise((resolve) => {
    execFile('unshare', ['-rn', chatctlBin(), ...args], { env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

// One SDKAppID per site, from both of each site's ranges in turn, with the
// REST domain of Tencent's REST API docs for that data center.
const SITES = [
  { site: 'CHINA', sdkappid: 1400000001, rest: 'console.tim.qq.com' },
  { site: 'SINGAPORE', sdkappid: 20000001, rest: 'adminapisgp.im.qcloud.com' },
  { site: 'KOREA', sdkappid: 1730000001, rest: 'adminapikr.im.qcloud.com' },
  { site: 'GERMANY', sdkappid: 40000001, rest: 'adminapiger.im.qcloud.com' },
  { site: 'IND', sdkappid: 1750000001, rest: 'adminapiind.im.qcloud.com' },
  { site: 'JPN', sdkappid: 60000001, rest: 'adminapijpn.im.qcloud.com' },
  { site: 'USA', sdkappid: 1770000001, rest: 'adminapiusa.im.qcloud.com' },
  { site: 'INDONESIA', sdkappid: 80000001, rest: 'adminapiidn.im.qcloud.com' },
];

// The SDK's query (PROTOCOL.md 1.1): keys in its order, and the values that
// do not change from run to run. chatctl leaves out compress=gzip (it does
// not inflate compressed frames); everything else must be the same.
const SDK_KEYS = ['sdkappid', 'instanceid', 'random', 'platform', 'host', 'version', 'sdkversion', 'compress'];
const fixed = (sdkappid) => ({ sdkappid: String(sdkappid), platform: '7', host: 'unknown', version: '-1', sdkversion: '3.6.6' });

// sdkURLs runs the SDK for sdkappid until it has opened n sockets.
function sdkURLs(sdkappid, n) {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [path.join(__dirname, 'cloud-sdk.cjs'), String(sdkappid), String(n)],
      { timeout: 90000, maxBuffer: 1 << 20 },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`cloud-sdk.cjs ${sdkappid}: ${err.message}\n${stderr.slice(-2000)}`));
        const lines = stdout.trim().split('\n').map((l) => JSON.parse(l));
        const bad = lines.filter((l) => l.type === 'unhandledRejection');
        if (bad.length) return reject(new Error(`the SDK had unhandled rejections: ${JSON.stringify(bad)}`));
        resolve({ urls: lines.filter((l) => l.type === 'url').map((l) => l.url), http: lines.filter((l) => l.type === 'http') });
      },
    );
  });
}

const base = (u) => {
  const x = new URL(u);
  return `${x.protocol}//${x.host}`;
};

// checkURL: a socket URL has the SDK's path and query (compress=gzip only
// in the SDK's: chatctl does not ask for compressed frames).
function checkURL(u, sdkappid, who) {
  const x = new URL(u);
  assert.equal(x.pathname, '/binfo', `${who}: ${u}`);
  const keys = who === 'SDK' ? SDK_KEYS : SDK_KEYS.filter((k) => k !== 'compress');
  assert.deepEqual([...x.searchParams.keys()], keys, `${who}: query keys of ${u}`);
  for (const [k, v] of Object.entries(fixed(sdkappid))) assert.equal(x.searchParams.get(k), v, `${who}: ${k} in ${u}`);
  assert.match(x.searchParams.get('instanceid'), /^[0-9a-f]{32}$/, `${who}: ${u}`);
  const r = Number(x.searchParams.get('random'));
  assert.ok(r >= 0 && r < 1, `${who}: random in ${u}`);
  if (who === 'SDK') assert.equal(x.searchParams.get('compress'), 'gzip');
}

// checkRun: one instance id for all URLs of one run, a new random for each.
function checkRun(urls, who) {
  const p = (k) => urls.map((u) => new URL(u).searchParams.get(k));
  assert.equal(new Set(p('instanceid')).size, 1, `${who}: one instance id`);
  assert.equal(new Set(p('random')).size, urls.length, `${who}: a new random per socket`);
}

function env(dir) {
  return { CHATCTL_CONFIG_DIR: dir, CHATCTL_SECRET_KEY: 'cloud-test-key', CHATCTL_ENDPOINT: '', CHATCTL_REST_URL: '' };
}

describe('--endpoint cloud tries the official SDK 3.6.6 hosts in its order', { concurrency: 2 }, () => {
  for (const s of SITES) {
    test(`${s.site} (SDKAppID ${s.sdkappid})`, { timeout: 120000 }, async () => {
      const dir = mkTemp('cloud');
      try {
        const r = await chatctl(['login', 'alice', '--endpoint', 'cloud', '--sdkappid', String(s.sdkappid), '-o', 'json'], env(dir));
        assert.equal(r.code, 6, `exit ${r.code}, want 6 (unreachable); stdout ${r.stdout} stderr ${r.stderr}`);
        assert.equal(r.stdout.trim().split('\n').length, 1, `one JSON document on stdout: ${r.stdout}`);
        const doc = JSON.parse(r.stdout);
        assert.equal(doc.error.code, 6);
        assert.equal(doc.error.kind, 'unreachable');
        const tried = doc.error.tried;
        assert.ok(Array.isArray(tried) && tried.length >= 4, `error.tried: ${r.stdout}`);
        tried.forEach((u) => checkURL(u, s.sdkappid, 'chatctl'));
        checkRun(tried, 'chatctl');
        const hosts = tried.map(base);
        assert.equal(new Set(hosts).size, hosts.length, 'no host twice in one attempt');
        assert.ok(hosts[0].startsWith(`wss://${s.sdkappid}w4`), `per-app host first: ${hosts[0]}`);
        // The message names the hosts on one line; stderr has it too.
        assert.ok(doc.error.message.includes(`tried ${hosts.join(', ')} (last: `), `message: ${doc.error.message}`);
        assert.ok(!doc.error.message.includes('\n') && r.stderr.includes(hosts.join(', ')), `stderr: ${r.stderr}`);

        // The SDK: twice as many sockets as chatctl's attempt shows its
        // first round and where it goes after its last host.
        const n = tried.length;
        const sdk = await sdkURLs(s.sdkappid, 2 * n);
        assert.deepEqual(sdk.http, [], 'the SDK made no HTTP request');
        sdk.urls.forEach((u) => checkURL(u, s.sdkappid, 'SDK'));
        checkRun(sdk.urls, 'SDK');
        const sdkHosts = sdk.urls.map(base);
        assert.deepEqual(hosts, sdkHosts.slice(0, n), `chatctl tried ${hosts}\nthe SDK tried ${sdkHosts}`);
        // After its last host the SDK starts over at the default, not the
        // per-app host: chatctl's attempt ends where the SDK repeats.
        assert.deepEqual(sdkHosts.slice(n, 2 * n), [...hosts.slice(1), hosts[1]]);

        // admin: the data center's REST domain.
        const a = await chatctl(['admin', 'online', 'alice', '--endpoint', 'cloud', '--sdkappid', String(s.sdkappid), '-o', 'json'], env(dir));
        assert.equal(a.code, 6, `admin exit ${a.code}; ${a.stdout} ${a.stderr}`);
        assert.ok(JSON.parse(a.stdout).error.message.includes(`https://${s.rest}/v4/`), `admin message: ${a.stdout}`);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
