'use strict';
// Subscriptions: async iteration in order, callbacks, queue groups, closing, undeliverable
// messages, and request/reply.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { connect: natsConnect } = require('nats');
const nb = require('..');
const { startServers, uniqueSubject, serverRoundTrip, within } = require('./helpers');

let servers;
let client;
let raw; // a plain nats.js connection, to publish what natsbridge would never send

before(async () => {
  servers = await startServers();
  client = await nb.connect({ natsUrl: servers.natsUrl, fileserverUrl: servers.fileserverUrl });
  raw = await natsConnect({ servers: servers.natsUrl });
});

after(async () => {
  await raw?.close();
  await client?.close();
  await servers?.stop();
});

test('async iteration yields every envelope in order, then ends after close()', async () => {
  const subject = uniqueSubject('iter');
  const sub = await client.subscribe(subject);
  const N = 200;
  for (let i = 0; i < N; i++) await client.smartsend(subject, [['i', { i }, 'dictionary']]);
  const got = [];
  for await (const env of sub) {
    got.push(env.payloads[0].data.i);
    if (got.length === N) break; // leaving the loop closes the subscription
  }
  assert.deepEqual(got, [...Array(N).keys()]);
  await within(5000, sub.closed, 'the subscription ending');
  assert.equal(sub.isClosed, true);
});

test('an iterator waiting for a message resolves when one arrives later', async () => {
  const subject = uniqueSubject('wait');
  const sub = await client.subscribe(subject);
  const it = sub[Symbol.asyncIterator]();
  const pending = it.next();
  let settled = false;
  pending.then(() => (settled = true));
  // The wait spans several of the binding's pulls (each ends after at most a second).
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(settled, false, 'nothing was sent yet');
  await client.smartsend(subject, [['msg', 'late', 'text']]);
  const { value } = await within(5000, pending, 'the late message');
  assert.equal(value.payloads[0].data, 'late');
  await it.return();
});

test('a callback subscription gets (null, env) for each message, in order', async () => {
  const subject = uniqueSubject('cb');
  const got = [];
  let done;
  const all = new Promise((r) => (done = r));
  const sub = await client.subscribe(subject, {
    callback: (err, env) => {
      assert.equal(err, null);
      got.push(env.payloads[0].data);
      if (got.length === 50) done();
    },
  });
  for (let i = 0; i < 50; i++) await client.smartsend(subject, [['n', `m${i}`, 'text']]);
  await within(10000, all, 'fifty callbacks');
  assert.deepEqual(got, [...Array(50).keys()].map((i) => `m${i}`));
  assert.throws(() => sub[Symbol.asyncIterator](), { code: 'INVALID_ARGUMENT' });
  await sub.close();
  assert.equal(sub.isClosed, true);
});

test('an undeliverable message is an error with its wire code, and the subscription goes on', async () => {
  const subject = uniqueSubject('bad');
  const sub = await client.subscribe(subject);
  await serverRoundTrip(client);
  raw.publish(subject, new TextEncoder().encode('this is not an envelope'));
  await raw.flush();
  await client.smartsend(subject, [['msg', 'after the bad one', 'text']]);

  const it = sub[Symbol.asyncIterator]();
  await assert.rejects(within(5000, it.next(), 'the bad message'), (e) => {
    assert.ok(e instanceof nb.InvalidEnvelopeError);
    assert.ok(e instanceof nb.NatsBridgeError);
    assert.equal(e.code, 'INVALID_ENVELOPE');
    assert.ok(e.message.length > 0);
    return true;
  });
  const { value } = await within(5000, it.next(), 'the next message');
  assert.equal(value.payloads[0].data, 'after the bad one');
  await it.return();
});

test('a callback subscription gets (err, null) for an undeliverable message', async () => {
  const subject = uniqueSubject('badcb');
  const seen = [];
  let done;
  const two = new Promise((r) => (done = r));
  const sub = await client.subscribe(subject, {
    callback: (err, env) => {
      seen.push(err ? err.code : env.payloads[0].data);
      if (seen.length === 2) done();
    },
  });
  // A link whose download fails: the URL is on the file server, but no such file exists.
  const envelope = {
    payloads: [
      {
        dataname: 'gone',
        payload_type: 'binary',
        transport: 'link',
        encoding: 'none',
        size: 10,
        data: `${servers.fileserverUrl}/file/nope/nope/gone`,
      },
    ],
  };
  await serverRoundTrip(client);
  raw.publish(subject, new TextEncoder().encode(JSON.stringify(envelope)));
  await raw.flush();
  await client.smartsend(subject, [['msg', 'fine', 'text']]);
  await within(20000, two, 'two deliveries');
  assert.deepEqual(seen, ['DOWNLOAD_FAILED', 'fine']);
  await sub.close();
});

test('queue group members share the messages, each delivered once', async () => {
  const subject = uniqueSubject('queue');
  const N = 40;
  const got = { a: [], b: [] };
  let done;
  const all = new Promise((r) => (done = r));
  const member = (name) => (err, env) => {
    assert.equal(err, null);
    got[name].push(Number(env.payloads[0].data));
    if (got.a.length + got.b.length === N) done();
  };
  const a = await client.subscribe(subject, { queue: 'workers', callback: member('a') });
  const b = await client.subscribe(subject, { queue: 'workers', callback: member('b') });
  assert.equal(a.queue, 'workers');
  for (let i = 0; i < N; i++) await client.smartsend(subject, [['i', String(i), 'text']]);
  await within(10000, all, `${N} deliveries`);
  await Promise.all([a.close(), b.close()]);
  assert.ok(got.a.length > 0 && got.b.length > 0, `both members got some: ${got.a.length} + ${got.b.length}`);
  assert.deepEqual(
    [...got.a, ...got.b].sort((x, y) => x - y),
    [...Array(N).keys()],
  );
});

test('request/reply: the reply answers the request and keeps its correlation id', async () => {
  const subject = uniqueSubject('svc');
  const responder = await client.subscribe(subject, {
    callback: (err, req) => {
      if (err) throw err;
      const n = req.payloads[0].data.n;
      client.reply(req, [['answer', { n, twice: n * 2 }, 'dictionary']]);
    },
  });
  const reply = await client.request(subject, [['q', { n: 21 }, 'dictionary']], {
    correlation_id: 'corr-req',
    timeout: 5000,
  });
  assert.deepEqual(reply.payloads[0].data, { n: 21, twice: 42 });
  assert.equal(reply.correlation_id, 'corr-req');
  assert.notEqual(reply.reply_to_msg_id, '');
  await responder.close();
});

test('request errors: NO_RESPONDERS with nobody listening, TIMEOUT when nobody answers', async () => {
  await assert.rejects(client.request(uniqueSubject('nobody'), [['q', 'x', 'text']], { timeout: 2000 }), (e) => {
    assert.ok(e instanceof nb.NoRespondersError);
    assert.equal(e.code, 'NO_RESPONDERS');
    return true;
  });
  const subject = uniqueSubject('silent');
  const silent = await client.subscribe(subject, { callback: () => {} });
  const t0 = Date.now();
  await assert.rejects(client.request(subject, [['q', 'x', 'text']], { timeout: 300 }), (e) => {
    assert.ok(e instanceof nb.TimeoutError);
    assert.equal(e.code, 'TIMEOUT');
    return true;
  });
  assert.ok(Date.now() - t0 >= 250, 'waited for the timeout');
  await silent.close();
});

test('dropped messages are counted and reported as SLOW_CONSUMER', async () => {
  const small = await nb.connect({ natsUrl: servers.natsUrl, subscriptionQueue: 4 });
  try {
    const subject = uniqueSubject('slow');
    const sub = await small.subscribe(subject);
    for (let i = 0; i < 30; i++) await small.smartsend(subject, [['i', String(i), 'text']]);
    await small.flush();
    // Nothing was pulled yet: the queue (4) overflowed.
    const deadline = Date.now() + 5000;
    while (sub.dropped === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok(sub.dropped > 0, 'some messages were dropped');
    const codes = [];
    const it = sub[Symbol.asyncIterator]();
    for (let i = 0; i < 6; i++) {
      try {
        const { value } = await within(5000, it.next(), 'an item');
        codes.push(value.payloads[0].data);
      } catch (e) {
        codes.push(e.code);
      }
    }
    assert.ok(codes.includes('SLOW_CONSUMER'), `a SLOW_CONSUMER item among ${codes}`);
    await it.return();
  } finally {
    await small.close();
  }
});

test('many waiting subscriptions leave libuv pool threads for sends, and all still deliver', async () => {
  // More subscriptions than the pool (4 threads by default) has threads: if each held a thread
  // while waiting, a send would queue behind their waits (a second each).
  const subject = uniqueSubject('many');
  const counts = new Array(10).fill(0);
  const subs = [];
  for (let i = 0; i < counts.length; i++) {
    subs.push(await client.subscribe(subject, { callback: (err) => (err ? null : counts[i]++) }));
  }
  // Let every subscription settle into waiting.
  await new Promise((r) => setTimeout(r, 300));
  for (let round = 1; round <= 5; round++) {
    const t0 = Date.now();
    await client.smartsend(subject, [['n', String(round), 'text']]);
    const sendMs = Date.now() - t0;
    assert.ok(sendMs < 300, `send ${round} took ${sendMs} ms`);
    const deadline = Date.now() + 5000;
    while (counts.some((c) => c < round) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(counts, new Array(counts.length).fill(round), 'every subscription got the message');
  }
  await Promise.all(subs.map((s) => s.close()));
});
