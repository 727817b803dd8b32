'use strict';
// Every payload type, through both transports, sent by smartsend and received by a
// subscription: the value comes back equal and of the documented JavaScript type.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const arrow = require('apache-arrow');
const nb = require('..');
const { uniqueSubject, within, withClient, bytes } = require('./helpers');

let servers;
let client;
withClient((s, c) => {
  servers = s;
  client = c;
});


function sampleTable() {
  return arrow.tableFromArrays({
    id: Int32Array.from([1, 2, 3]),
    score: Float64Array.from([0.5, -1.25, 1e10]),
    name: arrow.vectorFromArray(['alpha', 'βeta', ''], new arrow.Utf8()),
  });
}

function rowsOf(table) {
  return table.toArray().map((r) => r.toJSON());
}

// The value sent for each type, and how to check what comes back.
const CASES = {
  text: {
    value: 'Hello, wörld ✓ — 你好',
    check: (got, sent) => assert.equal(got, sent),
  },
  dictionary: {
    value: { key: 'value', n: [1, 2.5, null, true], nested: { é: 'ü' } },
    check: (got, sent) => assert.deepEqual(got, sent),
  },
  arrowtable: {
    value: sampleTable(),
    check: (got, sent) => {
      assert.ok(got instanceof arrow.Table, 'an apache-arrow Table');
      assert.deepEqual(
        got.schema.fields.map((f) => [f.name, String(f.type)]),
        sent.schema.fields.map((f) => [f.name, String(f.type)]),
      );
      assert.deepEqual(rowsOf(got), rowsOf(sent));
    },
  },
  jsontable: {
    value: [
      { id: 1, name: 'alpha', score: 0.5 },
      { id: 2, name: 'βeta', score: null },
    ],
    check: (got, sent) => assert.deepEqual(got, sent),
  },
  image: { value: bytes(512, 1), check: checkBytes },
  audio: { value: new Uint8Array(bytes(300, 2)), check: checkBytes },
  video: { value: bytes(1000, 3), check: checkBytes },
  binary: { value: bytes(64, 4), check: checkBytes },
};

function checkBytes(got, sent) {
  assert.ok(Buffer.isBuffer(got) && got instanceof Uint8Array, 'a Buffer (a Uint8Array)');
  assert.ok(Buffer.from(sent).equals(got), 'same bytes');
}

/** Sends `payloads` to a fresh subject and returns [sent envelope, json, received envelope]. */
async function roundTrip(payloads, options = {}) {
  const subject = uniqueSubject('types');
  const sub = await client.subscribe(subject);
  const it = sub[Symbol.asyncIterator]();
  const [sent, json] = await client.smartsend(subject, payloads, options);
  const { value: got } = await within(10000, it.next(), 'receiving');
  await it.return();
  return [sent, json, got];
}

for (const [type, c] of Object.entries(CASES)) {
  for (const transport of ['direct', 'link']) {
    test(`${type} round-trips by ${transport} transport`, async () => {
      // A threshold of 1 byte sends every non-empty payload by link.
      const options = transport === 'link' ? { sizeThreshold: 1 } : {};
      const [sent, json, got] = await roundTrip([[`the_${type}`, c.value, type]], options);

      const wire = JSON.parse(json).payloads[0];
      assert.equal(wire.transport, transport);
      assert.equal(wire.payload_type, type);
      if (transport === 'link') {
        assert.ok(wire.data.startsWith(servers.fileserverUrl), `a URL on the file server: ${wire.data}`);
        assert.match(wire.metadata.sha256, /^[0-9a-f]{64}$/);
      } else {
        assert.equal(wire.encoding, 'base64');
      }

      assert.equal(sent.payloads[0].transport, transport);
      assert.equal(sent.payloads[0].data, c.value, 'the sent envelope keeps the value given');
      assert.equal(got.msg_id, sent.msg_id);
      assert.equal(got.payloads.length, 1);
      const [dataname, data, payloadType] = got.payloads[0];
      assert.equal(dataname, `the_${type}`);
      assert.equal(payloadType, type);
      assert.equal(got.payloads[0].transport, transport);
      assert.equal(got.payloads[0].size, wire.size);
      c.check(data, c.value);
    });
  }
}

test('a large payload goes by link under the default threshold, small ones stay direct', async () => {
  const big = bytes(600_000, 9);
  const [sent, , got] = await roundTrip([
    ['msg', 'Hello World', 'text'],
    ['img', big, 'image'],
  ]);
  assert.deepEqual(
    sent.payloads.map((p) => [p.dataname, p.transport]),
    [
      ['msg', 'direct'],
      ['img', 'link'],
    ],
  );
  assert.equal(sent.payloads[1].url.startsWith(servers.fileserverUrl), true);
  assert.equal(got.payloads[0].data, 'Hello World');
  assert.ok(got.payloads[1].data.equals(big));
  assert.equal(got.payload('img').transport, 'link');
});

test('all eight types in one envelope keep their order, names and header fields', async () => {
  const payloads = Object.entries(CASES).map(([type, c]) => [type, c.value, type]);
  const [sent, json, got] = await roundTrip(payloads, {
    correlation_id: 'corr-1',
    msg_purpose: 'event',
    receiver_name: 'someone',
    metadata: { trace: ['a', 1] },
  });
  assert.deepEqual(
    got.payloads.map((p) => p.dataname),
    Object.keys(CASES),
  );
  for (const p of got.payloads) CASES[p.payload_type].check(p.data, CASES[p.payload_type].value);
  for (const [k, v] of Object.entries({ correlation_id: 'corr-1', msg_purpose: 'event', receiver_name: 'someone' })) {
    assert.equal(sent[k], v);
    assert.equal(got[k], v);
    assert.equal(JSON.parse(json)[k], v);
  }
  assert.deepEqual(got.metadata, { trace: ['a', 1] });
  assert.match(got.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
});

test('payload metadata, an empty binary, views into larger buffers, raw Arrow IPC bytes', async () => {
  const ipc = arrow.tableToIPC(sampleTable(), 'stream');
  const backing = bytes(1000, 7);
  const view = backing.subarray(100, 300); // byteOffset 100
  const floats = new Float32Array([1.5, -2, 3.25]);
  const [, json, got] = await roundTrip([
    ['empty', Buffer.alloc(0), 'binary', { note: 'nothing' }],
    ['raw', ipc, 'arrowtable'],
    ['view', view, 'binary'],
    ['floats', floats, 'audio'],
    ['ab', backing.buffer.slice(0, 10), 'video'],
  ]);
  assert.ok(got.payloads[2].data.equals(view));
  assert.ok(got.payloads[3].data.equals(Buffer.from(floats.buffer)));
  assert.ok(got.payloads[4].data.equals(backing.subarray(0, 10)));
  const wire = JSON.parse(json).payloads;
  assert.equal(wire[0].metadata.note, 'nothing');
  assert.equal(got.payloads[0].metadata.note, 'nothing');
  assert.equal(got.payloads[0].data.length, 0);
  assert.deepEqual(rowsOf(got.payloads[1].data), rowsOf(sampleTable()));
});

test('client.smartreceive decodes a published JSON, downloading link payloads', async () => {
  const big = bytes(2000, 5);
  const [sent, json] = await client.smartsend(uniqueSubject('types'), [['blob', big, 'binary']], { sizeThreshold: 1000 });
  assert.equal(sent.payloads[0].transport, 'link');
  for (const msg of [json, Buffer.from(json), { data: new TextEncoder().encode(json) }]) {
    const env = await client.smartreceive(msg);
    assert.equal(env.msg_id, sent.msg_id);
    assert.ok(env.payloads[0].data.equals(big));
  }
});
