'use strict';
// The Node peer of the conformance matrix (tests/conformance/matrix.py), on bindings/node.
//
//   node peer_node.js send SUBJECT SPEC.json   publishes one envelope described by SPEC.json
//   node peer_node.js recv SUBJECT TIMEOUT_S   prints "ready" once subscribed, then the report
//                                              of the one envelope it receives
//
// NATS_URL and FILESERVER_URL come from the environment.
//
// Sending passes host values, as a Node program would: text as a string, dictionary and
// jsontable as the parsed JSON value (the binding serializes them), arrowtable as Arrow IPC
// stream bytes and the binary types as Buffers (the binding forwards both as they are).
//
// Receiving uses the binding's own subscription (async iterator). The report (JSON) has per
// payload the binding's dataname, payload_type, transport and size, "sha256" of the bytes the
// binding returned for text (its UTF-8) and the binary types, "value" for text, dictionary and
// jsontable, and "columns" ({name: [values]}, 64-bit integers as numbers) for arrowtable.

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const nb = require(path.join(__dirname, '..', '..', 'bindings', 'node'));

const HEADER_KEYS = [
  'correlation_id', 'msg_id', 'timestamp', 'send_to', 'msg_purpose', 'sender_name',
  'sender_id', 'receiver_name', 'receiver_id', 'reply_to', 'reply_to_msg_id', 'broker_url',
  'metadata',
];

const sha256 = (bytes) => crypto.createHash('sha256').update(bytes).digest('hex');

function settings() {
  return { natsUrl: process.env.NATS_URL, fileserverUrl: process.env.FILESERVER_URL };
}

async function send(subject, specPath) {
  const spec = JSON.parse(fs.readFileSync(specPath, 'utf8'));
  const payloads = spec.payloads.map((p) => {
    const bytes = fs.readFileSync(p.file);
    let value;
    if (p.payload_type === 'text') value = bytes.toString('utf8');
    else if (p.payload_type === 'dictionary' || p.payload_type === 'jsontable') value = JSON.parse(bytes.toString('utf8'));
    else value = bytes;
    return [p.dataname, value, p.payload_type];
  });
  const client = await nb.connect(settings());
  try {
    await client.smartsend(subject, payloads, { ...spec.options, sizeThreshold: spec.threshold });
  } finally {
    await client.close();
  }
}

function columns(table) {
  const out = {};
  for (const field of table.schema.fields) {
    out[field.name] = [...table.getChild(field.name)].map((v) => (typeof v === 'bigint' ? Number(v) : v));
  }
  return out;
}

async function recv(subject, timeoutS) {
  const client = await nb.connect(settings());
  const sub = await client.subscribe(subject); // resolved: the server has the subscription
  process.stdout.write('ready\n');
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`nothing received within ${timeoutS} s`)), timeoutS * 1000);
  });
  let env;
  try {
    const next = sub[Symbol.asyncIterator]().next();
    ({ value: env } = await Promise.race([next, timeout]));
  } finally {
    clearTimeout(timer);
    await sub.close();
    await client.close();
  }
  const header = {};
  for (const k of HEADER_KEYS) if (k in env) header[k] = env[k];
  const payloads = env.payloads.map((p) => {
    const item = { dataname: p.dataname, payload_type: p.payload_type, transport: p.transport, size: p.size };
    switch (p.payload_type) {
      case 'text':
        item.sha256 = sha256(Buffer.from(p.data, 'utf8'));
        item.value = p.data;
        break;
      case 'dictionary':
      case 'jsontable':
        item.value = p.data;
        break;
      case 'arrowtable':
        item.columns = columns(p.data);
        break;
      default:
        item.sha256 = sha256(p.data);
        item.length = p.data.length;
    }
    return item;
  });
  process.stdout.write(`${JSON.stringify({ header, payloads })}\n`);
}

async function main() {
  const [cmd, subject, arg] = process.argv.slice(2);
  if (cmd === 'send' && arg) await send(subject, arg);
  else if (cmd === 'recv' && arg) await recv(subject, Number(arg));
  else throw new Error('usage: node peer_node.js send SUBJECT SPEC.json | recv SUBJECT TIMEOUT_S');
}

main().catch((e) => {
  process.stderr.write(`peer_node: ${e && e.code ? `${e.code}: ` : ''}${e && e.message ? e.message : e}\n`);
  process.exit(1);
});
