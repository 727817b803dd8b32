'use strict';
// The process lifecycle and the event loop: a program exits by itself after close() (and even
// without it), the event loop keeps running while the library waits, and a missing library is
// a clear error.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const path = require('node:path');
const { monitorEventLoopDelay } = require('node:perf_hooks');
const { connect: natsConnect } = require('nats');
const nb = require('..');
const { startServers, uniqueSubject, within } = require('./helpers');

let servers;
let nc;

before(async () => {
  servers = await startServers();
  nc = await natsConnect({ servers: servers.natsUrl });
});

after(async () => {
  await nc?.close();
  await servers?.stop();
});

/**
 * Runs a fixture script in a child node process (with `nodeArgs` before it); resolves with
 * { code, stdout, stderr, ms }.
 */
function runChild(script, env = {}, timeoutMs = 20000, nodeArgs = []) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, [...nodeArgs, path.join(__dirname, 'fixtures', script)], {
      env: { ...process.env, NATS_URL: servers.natsUrl, FILESERVER_URL: servers.fileserverUrl, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} did not exit within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

test('a program exits by itself after close(), even with a pull waiting', async () => {
  const r = await runChild('roundtrip-and-close.js');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '', 'the library is quiet unless asked');
  const out = JSON.parse(r.stdout.trim().split('\n').pop());
  assert.deepEqual(out, {
    text: 'hello from the child',
    blob: 100_000,
    transport: 'link',
    iteratorDone: true,
    cbSubClosed: true,
  });
});

test('a program that never calls close() still exits, and its message is delivered', async () => {
  const subject = uniqueSubject('noclose');
  const sub = nc.subscribe(subject, { max: 1 });
  await nc.flush();
  const received = (async () => {
    for await (const m of sub) return new TextDecoder().decode(m.data);
  })();
  const r = await runChild('send-without-close.js', { SUBJECT: subject });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'sent');
  const json = await within(5000, received, 'the message of the child');
  const env = await nb.smartreceive(json);
  assert.equal(env.payloads[0].data, 'sent without close');
});

test('clients and subscriptions dropped without close() release their resources once collected', async () => {
  const r = await runChild('drop-without-close.js', { CLIENTS: '100' }, 120000, ['--expose-gc']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop());
  console.log(
    `open fds: baseline ${out.baseline}; ${out.clients} clients with a subscription: ${out.withClients}, ` +
      `dropped and collected: ${out.afterClients} (${out.clientRounds} gc rounds, ${out.clientMs} ms); ` +
      `${out.end} at the end. Subscriptions on a kept client known to the server: ${out.subscribed} of ` +
      `${out.clients}, dropped and collected: ${out.leftSubscribed} (${out.subRounds} gc rounds, ${out.subMs} ms)`,
  );
  // The fds (and subscriptions) really were taken (else the test proves nothing), then given back.
  assert.ok(out.withClients >= out.baseline + out.clients, `100 clients opened only ${out.withClients - out.baseline} fds`);
  assert.ok(out.afterClients <= out.baseline + 10, `dropped clients kept ${out.afterClients - out.baseline} fds`);
  assert.equal(out.subscribed, out.clients);
  assert.equal(out.leftSubscribed, 0, 'dropped subscriptions still subscribed');
  // A subscription in use is never released under it.
  assert.equal(out.pendingNext, 'to the pending next');
  assert.equal(out.callback, 'to the callback');
  assert.ok(out.end <= out.baseline + 10, `${out.end - out.baseline} fds left at the end`);
  // A handle is never freed under a call still using it, even when its owner was collected.
  assert.deepEqual(out.duringUse, { collected: true, keptDuringUse: true, freedAfter: true });
});

test('an exception thrown by a subscription callback is not swallowed, and delivery goes on', async () => {
  const r = await runChild('callback-throws.js');
  assert.equal(r.code, 0, r.stderr);
  const seen = JSON.parse(r.stdout.trim().split('\n').pop());
  assert.deepEqual([...seen].sort(), ['got: first', 'got: second', 'uncaught: thrown by the callback']);
  assert.equal(seen[0], 'got: first');
});

test('the event loop keeps running while the library waits', async () => {
  const client = await nb.connect({ natsUrl: servers.natsUrl, fileserverUrl: servers.fileserverUrl });
  try {
    // A silent responder (plain nats.js): the request waits for its whole timeout.
    const subject = uniqueSubject('silent');
    const silent = nc.subscribe(subject);
    await nc.flush();
    const h = monitorEventLoopDelay({ resolution: 10 });
    h.enable();
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 20);
    const waiting = client.subscribe(uniqueSubject('idle')).then(async (sub) => {
      // An iterator waiting with nothing to come, alongside the request.
      const it = sub[Symbol.asyncIterator]();
      const next = it.next();
      await new Promise((r) => setTimeout(r, 1200));
      await sub.close().catch(() => {});
      return next;
    });
    await assert.rejects(client.request(subject, [['q', 'x', 'text']], { timeout: 1200 }), { code: 'TIMEOUT' });
    const done = await waiting;
    clearInterval(ticker);
    h.disable();
    silent.unsubscribe();
    assert.equal(done.done, true);
    const maxDelayMs = h.max / 1e6;
    assert.ok(maxDelayMs < 300, `the event loop was blocked for ${maxDelayMs.toFixed(0)} ms`);
    assert.ok(ticks >= 30, `a 20 ms interval ticked only ${ticks} times in 1.2 s`);
  } finally {
    await client.close();
  }
});

test('a missing library is a clear error saying how to build it', async () => {
  const r = await new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', "require(process.argv[1])", path.join(__dirname, '..')], {
      env: { ...process.env, NATSBRIDGE_LIB: '/nonexistent/libnatsbridge.so' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stderr }));
  });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /cannot find libnatsbridge/);
  assert.match(r.stderr, /cargo build --release/);
  assert.match(r.stderr, /NATSBRIDGE_LIB/);
});

test('the loaded library is the one this binding was written for', () => {
  assert.equal(nb.abiVersion, 1);
  assert.match(nb.version, /^\d+\.\d+\.\d+/);
  if (process.env.NATSBRIDGE_LIB) assert.equal(nb.libraryPath, process.env.NATSBRIDGE_LIB);
});
