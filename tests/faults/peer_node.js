'use strict';
// The Node binding's side of the fault matrix (tests/faults/run.py), on bindings/node.
//
//   node peer_node.js send --nats URL --subject S --name NAME --log FILE [--confirm]
//        one envelope every --interval-ms until stdin closes, then flush; the log has one
//        line per send: id, start, end (Unix seconds), OK or the error code
//   node peer_node.js concurrent --nats URL --subject S --workers 8 --count 300 --bytes 2048
//        `workers` concurrent loops of sends on one client, then flush
//
// Prints one JSON object a line: {"event":"ready"}, then {"event":"done", ...} with its counts
// and the client's `dropped`, or {"event":"fatal","message":...}.

const fs = require('node:fs');
const path = require('node:path');

const nb = require(path.join(__dirname, '..', '..', 'bindings', 'node'));

function emit(event, fields = {}) {
  process.stdout.write(JSON.stringify({ event, ...fields }) + '\n');
}

function fatal(message) {
  emit('fatal', { message });
  process.exit(2);
}

function args(argv) {
  const out = { _: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) out._.push(a);
    else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) out[a.slice(2)] = argv[++i];
    else out[a.slice(2)] = true;
  }
  return out;
}

async function outcome(promise) {
  try {
    await promise;
    return 'OK';
  } catch (e) {
    return e.code || String(e);
  }
}

function stdinClosed() {
  return new Promise((resolve) => {
    process.stdin.on('end', resolve);
    process.stdin.on('close', resolve);
    process.stdin.resume();
  });
}

async function send(a) {
  const client = await nb.connect({
    natsUrl: a.nats,
    fileserverUrl: null,
    senderName: a.name,
    connectTimeout: 1000,
    operationTimeout: Number(a['operation-timeout-ms'] ?? 2000),
  });
  const interval = Number(a['interval-ms'] ?? 10);
  let stopped = false;
  stdinClosed().then(() => (stopped = true));
  emit('ready');
  const log = [];
  for (let i = 0; !stopped; i++) {
    const id = `${a.name}-${i}`;
    const t0 = Date.now() / 1000;
    let st = 'OK';
    try {
      await client.smartsend(a.subject, [['id', id, 'text']], { msg_id: id, confirm: a.confirm === true });
    } catch (e) {
      st = e.code || String(e);
    }
    log.push(`${id}\t${t0.toFixed(6)}\t${(Date.now() / 1000).toFixed(6)}\t${st}\n`);
    await new Promise((r) => setTimeout(r, interval));
  }
  const flush = await outcome(client.flush());
  const { dropped } = client;
  const close = await outcome(client.close());
  fs.writeFileSync(a.log, log.join(''));
  emit('done', { flush, close, dropped });
}

async function concurrent(a) {
  const client = await nb.connect({ natsUrl: a.nats, fileserverUrl: null, senderName: 'node-concurrent' });
  const workers = Number(a.workers ?? 8);
  const count = Number(a.count ?? 300);
  const clip = Buffer.alloc(Number(a.bytes ?? 2048), 7);
  const failed = [];
  emit('ready');
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (let i = 0; i < count; i++) {
        const id = `n${w}-${i}`;
        try {
          await client.smartsend(a.subject, [['clip', clip, 'audio']], { msg_id: id });
        } catch (e) {
          failed.push([id, e.code || String(e)]);
        }
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const flush = await outcome(client.flush());
  const { dropped } = client;
  const close = await outcome(client.close());
  emit('done', { attempted: workers * count, failed, flush, dropped, close, seconds });
}

const a = args(process.argv.slice(2));
const roles = { send, concurrent };
const role = roles[a._[0]];
if (!role) fatal(`unknown role ${a._[0]}; one of ${Object.keys(roles).join(', ')}`);
role(a).catch((e) => fatal(`${e.code || ''} ${e.message}`));
