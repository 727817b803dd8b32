'use strict';
// Interoperability with a plain nats.js client, both ways: what natsbridge publishes is an
// ordinary NATS message a nats.js subscriber can hand to smartreceive, and an envelope
// published by nats.js (hand-built from the wire format) arrives decoded in natsbridge.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const arrow = require('apache-arrow');
const { connect: natsConnect } = require('nats');
const nb = require('..');
const { startServers, uniqueSubject, serverRoundTrip, within } = require('./helpers');

let servers;
let client;
let nc;

before(async () => {
  servers = await startServers();
  client = await nb.connect({ natsUrl: servers.natsUrl, fileserverUrl: servers.fileserverUrl });
  nc = await natsConnect({ servers: servers.natsUrl });
});

after(async () => {
  await nc?.close();
  await client?.close();
  await servers?.stop();
});

/** The next message on `subject` seen by the nats.js connection. */
function nextRaw(subject) {
  const sub = nc.subscribe(subject, { max: 1 });
  return (async () => {
    for await (const m of sub) return m;
    throw new Error('nats.js subscription ended without a message');
  })();
}

test('natsbridge -> nats.js: the raw message is the published JSON, smartreceive(msg) decodes it', async () => {
  const subject = uniqueSubject('to-natsjs');
  const received = nextRaw(subject);
  await nc.flush(); // the subscription is known to the server
  const table = arrow.tableFromArrays({ x: Float64Array.from([1.5, 2.5]) });
  const big = Buffer.alloc(700_000, 0xab);
  const [sent, msgJson] = await client.smartsend(subject, [
    ['msg', 'Hello World', 'text'],
    ['table', table, 'arrowtable'],
    ['img', big, 'image'],
  ]);
  const msg = await within(5000, received, 'the nats.js subscriber');

  assert.equal(new TextDecoder().decode(msg.data), msgJson);
  const wire = JSON.parse(msgJson);
  assert.equal(wire.send_to, subject);
  assert.deepEqual(
    wire.payloads.map((p) => p.transport),
    ['direct', 'direct', 'link'],
  );

  // The walkthrough's receiver: `const env = await smartreceive(msg)` with the nats.js message.
  const env = await nb.smartreceive(msg, { fileserverUrl: servers.fileserverUrl });
  assert.equal(env.msg_id, sent.msg_id);
  const [[n0, v0, t0], [, v1], [, v2, t2]] = env.payloads;
  assert.deepEqual([n0, v0, t0], ['msg', 'Hello World', 'text']);
  assert.deepEqual(
    v1.toArray().map((r) => r.toJSON()),
    [{ x: 1.5 }, { x: 2.5 }],
  );
  assert.equal(t2, 'image');
  assert.ok(v2.equals(big));
});

test('nats.js -> natsbridge: a hand-built wire-format envelope arrives decoded', async () => {
  const subject = uniqueSubject('from-natsjs');
  const sub = await client.subscribe(subject);
  await serverRoundTrip(client);
  const it = sub[Symbol.asyncIterator]();
  const b64 = (s) => Buffer.from(s).toString('base64');
  const dict = JSON.stringify({ key: 'value' });
  const envelope = {
    correlation_id: 'c-1',
    msg_id: 'm-1',
    timestamp: '2026-03-13T07:02:50.443Z',
    send_to: subject,
    msg_purpose: 'chat',
    sender_name: 'nats.js',
    sender_id: 's-1',
    receiver_name: '',
    receiver_id: '',
    reply_to: '',
    reply_to_msg_id: '',
    broker_url: servers.natsUrl,
    metadata: { from: 'js' },
    payloads: [
      { id: 'p1', dataname: 'msg', payload_type: 'text', transport: 'direct', encoding: 'base64', size: 5, data: b64('hello'), metadata: { payload_bytes: 5 } },
      { id: 'p2', dataname: 'cfg', payload_type: 'dictionary', transport: 'direct', encoding: 'base64', size: dict.length, data: b64(dict), metadata: {} },
    ],
  };
  nc.publish(subject, new TextEncoder().encode(JSON.stringify(envelope)));
  const { value: env } = await within(5000, it.next(), 'the envelope');
  assert.equal(env.correlation_id, 'c-1');
  assert.equal(env.sender_name, 'nats.js');
  assert.deepEqual(env.metadata, { from: 'js' });
  assert.deepEqual(
    env.payloads.map((p) => [...p]),
    [
      ['msg', 'hello', 'text'],
      ['cfg', { key: 'value' }, 'dictionary'],
    ],
  );
  await it.return();
});

test('nats.js republishing natsbridge JSON (with a link payload) reaches a natsbridge subscriber', async () => {
  const subject = uniqueSubject('relay');
  const sub = await client.subscribe(subject);
  await serverRoundTrip(client);
  const it = sub[Symbol.asyncIterator]();
  // Sent to a subject nobody listens on; only its JSON travels on, through nats.js.
  const blob = Buffer.alloc(50_000, 7);
  const [, msgJson] = await client.smartsend(uniqueSubject('nowhere'), [['blob', blob, 'binary']], { sizeThreshold: 1000 });
  nc.publish(subject, new TextEncoder().encode(msgJson));
  const { value: env } = await within(5000, it.next(), 'the relayed envelope');
  assert.equal(env.payloads[0].transport, 'link');
  assert.ok(env.payloads[0].data.equals(blob));
  await it.return();
});

test('module-level smartsend connects, sends and closes; a nats.js subscriber gets it', async () => {
  const subject = uniqueSubject('oneshot');
  const received = nextRaw(subject);
  await nc.flush();
  const [env, msgJson] = await nb.smartsend(subject, [['msg', 'once', 'text']], {
    natsUrl: servers.natsUrl,
    fileserverUrl: servers.fileserverUrl,
    msg_purpose: 'event',
    senderName: 'oneshot-app',
  });
  const msg = await within(5000, received, 'the message');
  assert.equal(new TextDecoder().decode(msg.data), msgJson);
  assert.equal(env.msg_purpose, 'event');
  assert.equal(env.sender_name, 'oneshot-app');
  const back = await nb.smartreceive(new TextDecoder().decode(msg.data));
  assert.equal(back.payloads[0].data, 'once');
});
