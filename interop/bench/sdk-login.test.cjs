'use strict';
// sdk-login.cjs (the SDK side of `make bench-sdk`) against a real server:
// a short run prints its table and exits 0; a run whose logins the server
// refuses exits 1 and says why, instead of timing the refusals.

const { test } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { chatctlBin } = require('../helpers.cjs');

const SCRIPT = path.join(__dirname, 'sdk-login.cjs');

function run(args, env = {}) {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [SCRIPT, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

test('a short run prints the comparison table', async () => {
  const r = await run(['--n', '5', '--warmup', '1', '--go', 'none']);
  assert.strictEqual(r.code, 0, r.stderr);
  for (const mode of ['warm', 'cold']) assert.match(r.stdout, new RegExp(`SDK ${mode}`));
  const p50 = /\| \*\*to ready p50\*\* \| \*\*([\d.]+)\*\* \| \*\*([\d.]+)\*\* \|/.exec(r.stdout);
  assert.ok(p50, r.stdout);
  assert.ok(Number(p50[1]) > 0 && Number(p50[2]) > 0, p50[0]);
  // One wslogin and one wslogout per iteration went over the wire.
  assert.match(r.stdout, /\| im_open_status\.wslogin \| 1 \| 1 \| 1 \| 1 \|/);
  assert.match(r.stdout, /\| im_open_status\.wslogout \| 0 \| 0 \| 1 \| 1 \|/);
});

test('refused logins fail the run loudly', async (t) => {
  // A chatctl "binary" that runs the real one and, once the server has
  // loaded its dev app and before its ready line is passed on, replaces the
  // secret key in devapp.json: the bench then mints UserSigs the server
  // refuses (70009), as a misconfigured run would.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatctl-sdkbench-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const wrapper = path.join(dir, 'chatctl');
  fs.writeFileSync(
    wrapper,
    `#!${process.execPath}
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const child = spawn(${JSON.stringify(chatctlBin())}, process.argv.slice(2), { stdio: ['ignore', 'pipe', 'inherit'] });
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => child.kill(sig));
let buf = '';
let passed = false;
child.stdout.on('data', (d) => {
  if (passed) return process.stdout.write(d);
  buf += d;
  if (!buf.includes('\\n')) return;
  const file = path.join(process.env.CHATCTL_CONFIG_DIR, 'devapp.json');
  const app = JSON.parse(fs.readFileSync(file, 'utf8'));
  app.secret_key = 'f'.repeat(64);
  fs.writeFileSync(file, JSON.stringify(app));
  passed = true;
  process.stdout.write(buf);
});
child.on('exit', (code, signal) => process.exit(code === null ? 1 : code));
`,
    { mode: 0o755 },
  );
  const r = await run(['--n', '3', '--warmup', '0', '--go', 'none', '--modes', 'warm'], { CHATCTL_BIN: wrapper });
  assert.strictEqual(r.code, 1, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stderr, /sdk-login: FAILED: Error: login\(\) rejected: 70009/);
  assert.doesNotMatch(r.stdout, /to ready/);
});
