'use strict';
// The page's shown() (pkg/server/ui/static/app.js) against the table Go's
// rule passes too (pkg/server/ui/testdata/shown.json, TestShownRule): the
// page and the server's logs escape the same runes. app.js is a browser
// script, so its one function is read out of it and run here.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

test('app.js shown() follows the shared table', () => {
  const src = fs.readFileSync(path.join(__dirname, '../pkg/server/ui/static/app.js'), 'utf8');
  const m = src.match(/^function shown\(id\) \{\n[\s\S]*?\n\}$/m);
  assert.ok(m, 'app.js has no function shown(id)');
  const shown = new Function(`${m[0]}; return shown;`)();
  const table = JSON.parse(fs.readFileSync(path.join(__dirname, '../pkg/server/ui/testdata/shown.json'), 'utf8'));
  assert.ok(table.cases.length > 0);
  for (const [input, want] of table.cases) {
    assert.equal(shown(input), want, `shown(${JSON.stringify(input)})`);
  }
});
