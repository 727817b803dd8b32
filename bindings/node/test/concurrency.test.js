'use strict';
// Sends on one client counted by a plain nats.js subscriber (issue 12's fault matrix): many
// smartsend calls in flight at once — small ones published at once on this thread, link ones
// uploaded on the pool — and a run of awaited small sends with no flush after them. Every send
// that resolved arrives, exactly once.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { connect: natsConnect } = require('nats');
const nb = require('..');
const { startServers, uniqueSubject, within, bytes } = require('./helpers');

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

/**
 * A raw nats.js subscriber on a fresh subject, subscribed and flushed, counting messages by
 * their msg_id. `arrived(n, ms)` resolves once `n` messages came, or after `ms` (no error: the
 * counts tell). `report(ids)` gives what was lost, duplicated or not sent.
 */
async function rawCounter() {
  const subject = uniqueSubject('counted');
  const seen = new Map();
  let arrivals = 0;
  let waiter = null;
  nc.subscribe(subject, {
    callback: (err, m) => {
      if (err) throw err;
      const id = JSON.parse(new TextDecoder().decode(m.data)).msg_id;
      seen.set(id, (seen.get(id) ?? 0) + 1);
      arrivals++;
      if (waiter && arrivals >= waiter.n) waiter.resolve();
    },
  });
  await nc.flush();
  return {
    subject,
    async arrived(n, ms) {
      if (arrivals >= n) return;
      const done = new Promise((resolve) => (waiter = { n, resolve }));
      await within(ms, done, `${n - arrivals} of ${n} messages`).catch(() => {});
    },
    report(ids) {
      const sent = new Set(ids);
      return {
        sent: sent.size,
        received: arrivals,
        lost: ids.filter((id) => !seen.has(id)),
        duplicated: [...seen].filter(([, n]) => n > 1).map(([id]) => id),
        unexpected: [...seen.keys()].filter((id) => !sent.has(id)),
      };
    },
  };
}

function assertAllOnce(r, expected) {
  assert.equal(r.sent, expected, 'every send resolved once, with its own msg_id');
  assert.deepEqual(r.lost.slice(0, 10), [], `${r.lost.length} lost`);
  assert.deepEqual(r.duplicated.slice(0, 10), [], `${r.duplicated.length} duplicated`);
  assert.deepEqual(r.unexpected, []);
  assert.equal(r.received, r.sent);
}

test('concurrent sends on one client: none lost, none duplicated', async () => {
  const SMALL = 2000;
  const BATCH = 200;
  const LINKS = 4;
  const rx = await rawCounter();

  // 2,000 small sends (~2 KB of audio each: direct) in batches of 200 started together, with a
  // link-sized send (600 kB: through the file server) in the middle of some batches.
  const ids = [];
  const t0 = Date.now();
  let links = 0;
  for (let b = 0; b < SMALL / BATCH; b++) {
    const batch = [];
    for (let i = b * BATCH; i < (b + 1) * BATCH; i++) {
      const id = `small-${i}`;
      batch.push(client.smartsend(rx.subject, [['audio', bytes(2000, i), 'audio']], { msg_id: id }).then(() => id));
      if (i % BATCH === BATCH / 2 && b % 2 === 1 && links < LINKS) {
        const linkId = `link-${links++}`;
        batch.push(
          client.smartsend(rx.subject, [['blob', bytes(600_000, b), 'binary']], { msg_id: linkId }).then(([env]) => {
            assert.equal(env.payloads[0].transport, 'link');
            return linkId;
          }),
        );
      }
    }
    ids.push(...(await Promise.all(batch)));
  }
  const sendMs = Date.now() - t0;
  assert.equal(links, LINKS);

  // Everything the sends reported has reached the server once flush() returns; a round trip on
  // the subscriber's connection then delivers all the server forwarded before it.
  await client.flush();
  await nc.flush();
  await rx.arrived(ids.length, 10000); // at once, unless something is late (then counted)
  const r = rx.report(ids);
  console.log(
    `concurrent sends on one client: sent ${r.sent} (${SMALL} direct, ${LINKS} link) in ${sendMs} ms, ` +
      `received ${r.received}, lost ${r.lost.length}, duplicated ${r.duplicated.length}`,
  );
  assertAllOnce(r, SMALL + LINKS);
});

test('awaited small sends arrive without a flush()', async () => {
  // Issue 12's pattern: ~2 KB of audio, one send after the other, each published at once.
  const N = 300;
  const rx = await rawCounter();
  const ids = [];
  const t0 = Date.now();
  for (let i = 0; i < N; i++) {
    const [env] = await client.smartsend(rx.subject, [['audio', bytes(2000, i), 'audio']], { msg_id: `seq-${i}` });
    ids.push(env.msg_id);
  }
  const sendMs = Date.now() - t0;
  await rx.arrived(N, 20000);
  const r = rx.report(ids);
  console.log(
    `awaited sends without flush: sent ${r.sent} in ${sendMs} ms, received ${r.received} within ` +
      `${Date.now() - t0 - sendMs} ms, lost ${r.lost.length}, duplicated ${r.duplicated.length}`,
  );
  assertAllOnce(r, N);
});
