'use strict';
// The two ways a send goes: published at once on the JavaScript thread when the library can
// (nb_client_try_smartsend), else on libuv's pool (link payloads, a full outgoing queue). Sends
// on one client are published in call order whichever way each goes; the library's "would
// block" answer never reaches the caller; errors are the same either way.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const nb = require('..');
const { uniqueSubject, within, withClient, bytes } = require('./helpers');

let servers;
let client;
withClient((s, c) => {
  servers = s;
  client = c;
});


/** Subscribes to a fresh subject and returns it with a function taking the next `n` envelopes. */
async function receiver(on = client) {
  const subject = uniqueSubject('sendpath');
  const sub = await on.subscribe(subject);
  const it = sub[Symbol.asyncIterator]();
  return {
    subject,
    async take(n) {
      const got = [];
      while (got.length < n) {
        const { value, done } = await within(20000, it.next(), `receiving #${got.length} of ${n}`);
        if (done) throw new Error(`subscription ended after ${got.length} of ${n}`);
        got.push(value);
      }
      return got;
    },
    close: () => it.return(),
  };
}

test('sends by link (on the pool) and direct ones (at once) are published in call order', async () => {
  const rx = await receiver();
  const big = bytes(600_000, 1); // above the default threshold: uploaded, so it cannot go at once
  const plan = [];
  for (let i = 0; i < 40; i++) plan.push(i % 13 === 0 ? 'link' : 'direct');
  // All sends started together, without awaiting one before the next.
  const pending = plan.map((how, i) =>
    client.smartsend(rx.subject, [[`n${i}`, how === 'link' ? big : `small ${i}`, how === 'link' ? 'binary' : 'text']]),
  );
  const results = await Promise.all(pending);
  const got = await rx.take(plan.length);
  await rx.close();

  assert.deepEqual(
    got.map((env) => env.payloads[0].dataname),
    plan.map((_, i) => `n${i}`),
    'received in the order of the calls',
  );
  assert.deepEqual(
    got.map((env) => env.payloads[0].transport),
    plan,
  );
  results.forEach(([sent, json], i) => {
    assert.equal(sent.msg_id, got[i].msg_id, `result #${i} is the envelope of call #${i}`);
    assert.equal(JSON.parse(json).msg_id, sent.msg_id);
    assert.equal(sent.payloads[0].transport, plan[i]);
  });
  for (const i of plan.keys()) {
    if (plan[i] === 'link') assert.ok(got[i].payloads[0].data.equals(big));
    else assert.equal(got[i].payloads[0].data, `small ${i}`);
  }
});

test('a send made while a link send is on the pool waits for it, and so do replies', async () => {
  const rx = await receiver();
  const first = client.smartsend(rx.subject, [['first', bytes(2000, 2), 'binary']], { sizeThreshold: 1000 });
  const second = client.smartsend(rx.subject, [['second', 'now', 'text']]);
  const third = client.reply({ reply_to: rx.subject, msg_id: 'm-1', correlation_id: 'c-1' }, [['third', 'r', 'text']]);
  const [[a], [b], [c]] = await Promise.all([first, second, third]);
  const got = await rx.take(3);
  await rx.close();
  assert.deepEqual(
    got.map((env) => env.payloads[0].dataname),
    ['first', 'second', 'third'],
  );
  assert.deepEqual(
    got.map((env) => env.msg_id),
    [a.msg_id, b.msg_id, c.msg_id],
  );
  assert.equal(a.payloads[0].transport, 'link');
  assert.equal(got[2].reply_to_msg_id, 'm-1');
  assert.equal(got[2].correlation_id, 'c-1');
});

test('sends the connection cannot take at once wait on the pool: "would block" never surfaces, order holds', async () => {
  const cap = 30000;
  // A receiving connection whose queue holds them all: the test is about the sending side.
  const receiving = await nb.connect({ natsUrl: servers.natsUrl, subscriptionQueue: cap + 16 });
  const rx = await receiver(receiving);
  const payload = bytes(2048, 3);
  const pending = [];
  let resolved = 0;
  const send = (i) => {
    const p = client.smartsend(rx.subject, [[`n${i}`, payload, 'binary']]);
    p.then(() => resolved++, () => {});
    pending.push(p);
  };
  // With the server stopped, the connection stops writing: its outgoing queue fills, and a send
  // then goes to the pool (which waits for room) with every later one queued behind it.
  servers.nats.child.kill('SIGSTOP');
  try {
    while (resolved === pending.length && pending.length < cap) {
      for (let i = 0; i < 500; i++) send(pending.length);
      // Sends published at once resolve turn by turn (a budget per turn of the event loop): a
      // turn that resolves none while some are pending means one waits for room on the pool.
      let before;
      do {
        before = resolved;
        await new Promise((resolve) => setImmediate(resolve));
      } while (resolved > before);
    }
    assert.ok(resolved < pending.length, `some of ${pending.length} sends are waiting for room`);
    for (let i = 0; i < 10; i++) send(pending.length); // behind the waiting ones
  } finally {
    servers.nats.child.kill('SIGCONT');
  }
  const settled = await Promise.allSettled(pending);
  const failed = settled.filter((s) => s.status === 'rejected');
  assert.deepEqual(
    failed.map((s) => `${s.reason.code}: ${s.reason.message}`),
    [],
  );
  const got = await rx.take(pending.length);
  await rx.close();
  await receiving.close();
  const wrong = got.findIndex((env, i) => env.payloads[0].dataname !== `n${i}`);
  assert.equal(wrong, -1, `envelope #${wrong} is ${got[wrong]?.payloads[0].dataname}`);
  assert.ok(got.every((env) => env.payloads[0].data.equals(payload)));
});

test('the envelope a send returns is the one received, however it was sent', async () => {
  const rx = await receiver();
  const cases = [
    ['small', 'hello', 'text'], // at once
    ['medium', bytes(20_000, 5), 'binary'], // at once, a larger envelope
    ['large', bytes(600_000, 6), 'image'], // by link, on the pool
  ];
  const results = [];
  for (const c of cases) {
    results.push(await client.smartsend(rx.subject, [c, ['meta', { k: [1, 'two'] }, 'dictionary', { note: 'x' }]]));
  }
  const got = await rx.take(cases.length);
  await rx.close();
  results.forEach(([sent, json], i) => {
    assert.ok(sent instanceof nb.Envelope);
    const received = got[i];
    const fields = (env) => ({
      ...Object.fromEntries(Object.entries(env).filter(([k]) => k !== 'payloads')),
      payloads: env.payloads.map((p) => {
        assert.ok(p instanceof nb.Payload);
        const { data, ...rest } = p;
        return rest;
      }),
    });
    assert.deepEqual(fields(sent), fields(received));
    assert.equal(sent.payloads[0].data, cases[i][1], 'the value given, as given');
    assert.equal(JSON.parse(json).msg_id, sent.msg_id);
  });
  assert.equal(results[2][0].payloads[0].transport, 'link');
  assert.ok(results[2][0].payloads[0].url.startsWith(servers.fileserverUrl));
  assert.equal(results[0][0].payloads[0].url, null);
});

test('a send that fails at once rejects its promise, with the correlation id in the message', async () => {
  let p;
  assert.doesNotThrow(() => {
    p = client.smartsend(uniqueSubject('e'), [['x', 'hi', 'text']], { msg_purpose: 'gossip', correlation_id: 'cid-err-1' });
  });
  assert.ok(p instanceof Promise);
  await assert.rejects(p, (e) => {
    assert.ok(e instanceof nb.InvalidArgumentError);
    assert.equal(e.code, 'INVALID_ARGUMENT');
    assert.match(e.message, /^INVALID_ARGUMENT: msg_purpose "gossip" is not one of .*\(correlation_id cid-err-1\)$/);
    return true;
  });
  // Without options the library picks the correlation id, and still names it.
  await assert.rejects(client.smartsend('not a subject', [['x', 'hi', 'text']]), (e) => {
    assert.equal(e.code, 'INVALID_ARGUMENT');
    assert.match(e.message, /whitespace.*\(correlation_id [0-9a-f-]{36}\)$/);
    return true;
  });
  // Bytes the library refuses, direct and by link: the same error either way.
  for (const sizeThreshold of [undefined, 1]) {
    await assert.rejects(
      client.smartsend(uniqueSubject('e'), [['t', Buffer.from('not arrow'), 'arrowtable']], {
        correlation_id: 'cid-err-2',
        sizeThreshold,
      }),
      (e) => {
        assert.ok(e instanceof nb.InvalidPayloadError);
        assert.match(e.message, /^INVALID_PAYLOAD: .*\(correlation_id cid-err-2\)$/);
        return true;
      },
    );
  }
  // A failed send does not hold up the next ones.
  const rx = await receiver();
  const bad = client.smartsend(rx.subject, [['x', 'hi', 'text']], { msg_purpose: 'gossip' });
  const good = client.smartsend(rx.subject, [['ok', 'fine', 'text']]);
  await assert.rejects(bad, { code: 'INVALID_ARGUMENT' });
  await good;
  const [env] = await rx.take(1);
  await rx.close();
  assert.equal(env.payloads[0].dataname, 'ok');
});

test('reply: fields from the request unless set, and the library error for a request without reply_to', async () => {
  const rx = await receiver();
  const request = { reply_to: rx.subject, msg_id: 'm-9', correlation_id: 'c-9', sender_name: 'asker', sender_id: 'asker-id' };
  const [sent, json] = await client.reply(request, [['a', 'yes', 'text']], { receiver_id: 'someone-else' });
  const [got] = await rx.take(1);
  await rx.close();
  for (const env of [sent, got, JSON.parse(json)]) {
    assert.equal(env.send_to, rx.subject);
    assert.equal(env.reply_to_msg_id, 'm-9');
    assert.equal(env.correlation_id, 'c-9');
    assert.equal(env.receiver_name, 'asker');
    assert.equal(env.receiver_id, 'someone-else');
  }
  await assert.rejects(client.reply({ msg_id: 'm-10', correlation_id: 'c-10' }, [['a', 'no', 'text']]), (e) => {
    assert.ok(e instanceof nb.InvalidArgumentError);
    assert.match(e.message, /no reply_to .*\(correlation_id c-10\)$/);
    return true;
  });
});

test('a loop of awaited sends that all publish at once still lets the event loop turn', async () => {
  const rx = await receiver();
  let turns = 0;
  let running = true;
  const tick = () => {
    if (!running) return;
    turns++;
    setImmediate(tick);
  };
  setImmediate(tick);
  const n = 1000;
  for (let i = 0; i < n; i++) await client.smartsend(rx.subject, [[`n${i}`, 'x', 'text']]);
  const turnsDuringSends = turns;
  running = false;
  // 64 small sends at most per turn.
  assert.ok(turnsDuringSends >= Math.floor(n / 64) - 1, `${turnsDuringSends} turns of the event loop during ${n} sends`);
  const got = await rx.take(n);
  await rx.close();
  got.forEach((env, i) => assert.equal(env.payloads[0].dataname, `n${i}`));
});

test('close() publishes the sends made before it, in order', async () => {
  const c = await nb.connect({ natsUrl: servers.natsUrl, fileserverUrl: servers.fileserverUrl });
  const rx = await receiver();
  const pending = [
    c.smartsend(rx.subject, [['a', bytes(600_000, 4), 'binary']]),
    c.smartsend(rx.subject, [['b', 'after the upload', 'text']]),
  ];
  const closing = c.close();
  await assert.rejects(c.smartsend(rx.subject, [['c', 'too late', 'text']]), { code: 'CLOSED' });
  await Promise.all(pending);
  await closing;
  const got = await rx.take(2);
  await rx.close();
  assert.deepEqual(
    got.map((env) => env.payloads[0].dataname),
    ['a', 'b'],
  );
});
