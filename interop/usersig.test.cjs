'use strict';
// The suite's own UserSig minter against the official library's outputs
// (testdata/usersig-vectors.json, copied from the TLSSigAPIv2 Go module's vectors).
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { genUserSig, decodeUserSig } = require('./helpers.cjs');
const vectors = require('./testdata/usersig-vectors.json');

for (const v of vectors) {
  test(`minted UserSig decodes to the official document: ${v.name}`, () => {
    const sig = genUserSig({ sdkappid: v.appid, key: v.key, userID: v.user, expire: v.expire, time: v.time });
    assert.match(sig, /^[A-Za-z0-9*\-_]+$/);
    // Compressed bytes differ between zlib ports; the document must not.
    assert.equal(decodeUserSig(sig), v.document);
    assert.equal(decodeUserSig(v.sig), v.document);
  });
}
