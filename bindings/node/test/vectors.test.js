'use strict';
// The golden vectors shared by every implementation (tests/vectors/*.json): smartreceive
// decodes each one as its `expect` says, or fails with its `expect_error` code.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const arrow = require('apache-arrow');
const nb = require('..');
const { REPO } = require('./helpers');

const DIR = path.join(REPO, 'tests', 'vectors');
const files = fs
  .readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .sort();

test('the golden vectors are there', () => {
  assert.ok(files.length >= 15, `expected the golden vectors in ${DIR}, found ${files.length}`);
});

/** An Arrow table as {column: [values]} (64-bit integers as numbers), as the vectors write it. */
function columns(table) {
  assert.ok(table instanceof arrow.Table);
  const out = {};
  for (const field of table.schema.fields) {
    out[field.name] = [...table.getChild(field.name)].map((v) => (typeof v === 'bigint' ? Number(v) : v));
  }
  return out;
}

const sha256 = (bytes) => crypto.createHash('sha256').update(bytes).digest('hex');

for (const file of files) {
  test(`vector ${file}`, async () => {
    const v = JSON.parse(fs.readFileSync(path.join(DIR, file), 'utf8'));
    const message =
      v.raw !== undefined
        ? v.raw
        : v.raw_hex !== undefined
          ? Buffer.from(v.raw_hex, 'hex')
          : JSON.stringify(v.envelope);
    const receiving = nb.smartreceive(message, { fileserverUrl: null });
    if (v.expect_error) {
      await assert.rejects(receiving, (e) => {
        assert.ok(e instanceof nb.NatsBridgeError, String(e));
        assert.equal(e.code, v.expect_error, e.message);
        return true;
      });
      return;
    }
    const env = await receiving;
    const { payloads: want, ...header } = v.expect;
    for (const [k, value] of Object.entries(header)) assert.deepEqual(env[k], value, k);
    assert.equal(env.payloads.length, want.length);
    env.payloads.forEach((p, i) => {
      const w = want[i];
      assert.equal(p.dataname, w.dataname);
      assert.equal(p.payload_type, w.payload_type);
      assert.equal(p.transport, w.transport);
      assert.equal(p.size, w.size);
      switch (p.payload_type) {
        case 'text':
          assert.equal(sha256(Buffer.from(p.data, 'utf8')), w.sha256);
          if ('value' in w) assert.equal(p.data, w.value);
          break;
        case 'dictionary':
        case 'jsontable':
          assert.deepEqual(p.data, w.value);
          break;
        case 'arrowtable':
          assert.deepEqual(columns(p.data), w.value);
          break;
        default:
          assert.ok(Buffer.isBuffer(p.data));
          assert.equal(sha256(p.data), w.sha256);
      }
    });
  });
}
