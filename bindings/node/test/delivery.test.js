'use strict';
// What reaches the server and in what order a subscription delivers (issue 12): confirmed
// sends, the client's `dropped` counter, `orderedSubscriptions: false` delivering a direct
// envelope before a stalled link one, and the download settings' checks.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { connect: natsConnect } = require('nats');
const nb = require('..');
const { startServers, uniqueSubject, serverRoundTrip, within } = require('./helpers');

let servers;
let client;
let raw; // a plain nats.js connection, to publish hand-built envelopes
let silent; // an HTTP origin that accepts connections and never answers
const held = new Set();

before(async () => {
  servers = await startServers();
  client = await nb.connect({ natsUrl: servers.natsUrl, fileserverUrl: servers.fileserverUrl });
  raw = await natsConnect({ servers: servers.natsUrl });
  silent = net.createServer((sock) => {
    held.add(sock);
    sock.on('error', () => {});
    sock.on('close', () => held.delete(sock));
  });
  await new Promise((r) => silent.listen(0, '127.0.0.1', r));
});

after(async () => {
  for (const s of held) s.destroy();
  await new Promise((r) => silent?.close(r));
  await raw?.close();
  await client?.close();
  await servers?.stop();
});

const b64 = (s) => Buffer.from(s).toString('base64');

function envelope(subject, correlationId, payloads) {
  return JSON.stringify({
    correlation_id: correlationId,
    msg_id: `m-${correlationId}`,
    timestamp: '2026-03-13T07:02:50.443Z',
    send_to: subject,
    msg_purpose: 'chat',
    sender_name: 'nats.js',
    sender_id: 's-1',
    receiver_name: '',
    receiver_id: '',
    reply_to: '',
    reply_to_msg_id: '',
    broker_url: '',
    metadata: {},
    payloads,
  });
}

test('a confirmed send resolves once the server has it, and arrives; a healthy connection drops nothing', async () => {
  const subject = uniqueSubject('confirm');
  const sub = await client.subscribe(subject);
  const it = sub[Symbol.asyncIterator]();
  const started = performance.now();
  const [env] = await client.smartsend(subject, [['n', 'confirmed', 'text']], { confirm: true });
  const took = performance.now() - started;
  const { value: got } = await within(5000, it.next(), 'the confirmed envelope');
  assert.equal(got.msg_id, env.msg_id);
  assert.equal(got.payloads[0].data, 'confirmed');
  // Confirmed sends mixed with ordinary ones keep the call order.
  const sends = [];
  for (let i = 0; i < 20; i++) sends.push(client.smartsend(subject, [['i', String(i), 'text']], { confirm: i % 5 === 0 }));
  await Promise.all(sends);
  for (let i = 0; i < 20; i++) {
    const { value } = await within(5000, it.next(), `envelope ${i}`);
    assert.equal(value.payloads[0].data, String(i));
  }
  await client.flush();
  assert.equal(client.dropped, 0);
  assert.equal(typeof client.dropped, 'number');
  await sub.close();
  console.log(`confirmed send resolved in ${took.toFixed(1)} ms`);
});

test('request and reply take confirm', async () => {
  const subject = uniqueSubject('confirm-rr');
  const responder = await client.subscribe(subject, {
    callback: (err, req) => {
      if (!err) client.reply(req, [['a', 'pong', 'text']], { confirm: true }).catch(() => {});
    },
  });
  await serverRoundTrip(client);
  const reply = await client.request(subject, [['q', 'ping', 'text']], { timeout: 5000, confirm: true });
  assert.equal(reply.payloads[0].data, 'pong');
  await responder.close();
});

test('confirm, downloadTimeout, minTransferRate and orderedSubscriptions refuse bad values', async () => {
  await assert.rejects(client.smartsend(uniqueSubject('c'), [['x', 'y', 'text']], { confirm: 'yes' }), (e) => {
    assert.ok(e instanceof nb.InvalidArgumentError);
    assert.match(e.message, /confirm/);
    return true;
  });
  for (const [opts, name] of [
    [{ downloadTimeout: 0 }, /downloadTimeout/],
    [{ downloadTimeout: 1.5 }, /downloadTimeout/],
    [{ minTransferRate: 0 }, /minTransferRate/],
    [{ minTransferRate: -1 }, /minTransferRate/],
    [{ orderedSubscriptions: 'no' }, /orderedSubscriptions/],
    [{ download_timeout: 1000 }, /downloadTimeout/], // the hint names the camelCase key
  ]) {
    await assert.rejects(nb.connect({ natsUrl: servers.natsUrl, ...opts }), (e) => {
      assert.ok(e instanceof nb.InvalidArgumentError, `${JSON.stringify(opts)}: ${e}`);
      assert.match(e.message, name);
      return true;
    });
  }
  const c = await nb.connect({ natsUrl: servers.natsUrl, downloadTimeout: 2500, minTransferRate: 1, orderedSubscriptions: false });
  await c.close();
  assert.equal(c.dropped, 0); // still readable once closed
});

const DOWNLOAD_TIMEOUT_MS = 1000;
const MARGIN_MS = 5000; // generous: a shared, noisy machine

for (const ordered of [true, false]) {
  test(`a direct envelope behind a stalled download (${ordered ? 'ordered' : 'orderedSubscriptions: false'})`, async () => {
    const origin = `http://127.0.0.1:${silent.address().port}`;
    const c = await nb.connect({
      natsUrl: servers.natsUrl,
      allowedOrigins: [origin],
      downloadTimeout: DOWNLOAD_TIMEOUT_MS,
      minTransferRate: 1000000,
      ...(ordered ? {} : { orderedSubscriptions: false }),
    });
    try {
      const subject = uniqueSubject('stalled');
      const sub = await c.subscribe(subject);
      await serverRoundTrip(c);
      const it = sub[Symbol.asyncIterator]();
      const link = envelope(subject, 'stalled', [
        { id: 'p1', dataname: 'stalled', payload_type: 'binary', transport: 'link', encoding: 'none', size: 16, data: `${origin}/file/u/f/stalled.bin`, metadata: { payload_bytes: 16 } },
      ]);
      const direct = envelope(subject, 'direct', [
        { id: 'p2', dataname: 'msg', payload_type: 'text', transport: 'direct', encoding: 'base64', size: 12, data: b64('right behind'), metadata: { payload_bytes: 12 } },
      ]);
      const started = performance.now();
      const seen = [];
      // The subscriber is already waiting for the next envelope when they arrive.
      const consumed = (async () => {
        for (let i = 0; i < 2; i++) {
          try {
            const { value } = await within(DOWNLOAD_TIMEOUT_MS + MARGIN_MS + 5000, it.next(), 'an envelope or an error');
            seen.push({ kind: 'direct', at: performance.now() - started, value });
          } catch (e) {
            if (!(e instanceof nb.NatsBridgeError)) throw e;
            seen.push({ kind: 'failed', at: performance.now() - started, value: e });
          }
        }
      })();
      const connected = new Promise((resolve) => silent.once('connection', resolve));
      raw.publish(subject, new TextEncoder().encode(link));
      await raw.flush();
      await within(5000, connected, 'the stalled download to start'); // then the direct one
      raw.publish(subject, new TextEncoder().encode(direct));
      await raw.flush();
      await consumed;
      console.log(`${ordered ? 'ordered' : 'unordered'}: ${seen.map((s) => `${s.kind} at ${s.at.toFixed(0)} ms`).join(', ')} (downloadTimeout ${DOWNLOAD_TIMEOUT_MS} ms)`);
      const failed = seen.find((s) => s.kind === 'failed');
      const arrived = seen.find((s) => s.kind === 'direct');
      assert.ok(failed && arrived, JSON.stringify(seen.map((s) => s.kind)));
      assert.ok(failed.value instanceof nb.DownloadFailedError, String(failed.value));
      assert.equal(failed.value.correlationId, 'stalled');
      assert.equal(arrived.value.correlation_id, 'direct');
      assert.ok(failed.at < DOWNLOAD_TIMEOUT_MS + MARGIN_MS, `failed after ${failed.at} ms`);
      assert.ok(failed.at >= DOWNLOAD_TIMEOUT_MS * 0.9, `failed after ${failed.at} ms: before the deadline`);
      if (ordered) {
        assert.deepEqual(seen.map((s) => s.kind), ['failed', 'direct']);
      } else {
        assert.deepEqual(seen.map((s) => s.kind), ['direct', 'failed']);
        assert.ok(arrived.at < DOWNLOAD_TIMEOUT_MS, `the direct envelope waited ${arrived.at} ms`);
      }
      await sub.close();
    } finally {
      await c.close();
    }
  });
}
