// The browser tests, run inside the page (run.mjs drives it): every payload type both ways
// between two page clients over a real nats-server (websocket) and the embedded file server
// (CORS, another origin than the page), request/reply, errors, and the golden vectors.

import * as arrow from 'apache-arrow';
import * as nb from '../natsbridge.js';

const THRESHOLD = 4096;

class Check {
  constructor() {
    this.problems = [];
  }
  ok(cond, what) {
    if (!cond) this.problems.push(what);
  }
  eq(got, want, what) {
    const g = JSON.stringify(got);
    const w = JSON.stringify(want);
    if (g !== w) this.problems.push(`${what}: got ${g.slice(0, 200)}, want ${w.slice(0, 200)}`);
  }
}

function columns(table) {
  const out = {};
  for (const field of table.schema.fields) {
    out[field.name] = [...table.getChild(field.name)].map((v) => (typeof v === 'bigint' ? Number(v) : v));
  }
  return out;
}

function bytesOf(n, seed) {
  const b = new Uint8Array(n);
  let x = seed * 2654435761 >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

const sameBytes = (a, b) => a instanceof Uint8Array && a.length === b.length && a.every((v, i) => v === b[i]);

async function hex(bytes) {
  return [...new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** Rejects with the error's code, or fails when it resolves. */
async function codeOf(promise) {
  try {
    await promise;
  } catch (e) {
    return e instanceof nb.NatsBridgeError ? e.code : `not a NatsBridgeError: ${e}`;
  }
  return 'resolved';
}

function content() {
  const big = 300;
  const table = (n) =>
    arrow.tableFromArrays({
      id: Int32Array.from({ length: n }, (_, i) => i),
      name: Array.from({ length: n }, (_, i) => (i % 50 === 7 ? null : `row-${i} ✓`)),
      score: Float64Array.from({ length: n }, (_, i) => i + 0.25),
    });
  const text = (n) => Array.from({ length: n }, (_, i) => `line ${i}: ünïcödé ✓ 你好 "q" \\ \t`).join('\n');
  return [
    ['text_direct', text(3), 'text', 'direct'],
    ['text_link', text(400), 'text', 'link'],
    ['dictionary_direct', { key: 'value', n: [1, 2.5, null, true], nested: { é: 'ü' } }, 'dictionary', 'direct'],
    ['dictionary_link', { items: Array.from({ length: 300 }, (_, i) => ({ i, name: `item-${i} ✓` })) }, 'dictionary', 'link'],
    ['arrowtable_direct', table(3), 'arrowtable', 'direct'],
    ['arrowtable_link', table(big * 2), 'arrowtable', 'link'],
    ['jsontable_direct', [{ id: 1, name: 'alpha', score: 0.5 }, { id: 2, name: 'βeta', score: null }], 'jsontable', 'direct'],
    ['jsontable_link', Array.from({ length: big }, (_, i) => ({ id: i, name: `r${i} ✓`, flag: i % 3 === 0 })), 'jsontable', 'link'],
    ['image_direct', bytesOf(512, 1), 'image', 'direct'],
    ['image_link', bytesOf(40_000, 2), 'image', 'link'],
    ['audio_direct', bytesOf(100, 3), 'audio', 'direct'],
    ['audio_link', bytesOf(30_000, 4), 'audio', 'link'],
    ['video_direct', bytesOf(64, 5), 'video', 'direct'],
    ['video_link', bytesOf(50_000, 6), 'video', 'link'],
    ['binary_direct', bytesOf(10, 7), 'binary', 'direct'],
    ['binary_link', bytesOf(20_480, 8), 'binary', 'link'],
    ['binary_empty', new Uint8Array(0), 'binary', 'direct'],
  ];
}

function compareValue(c, where, type, got, want) {
  switch (type) {
    case 'text':
      c.ok(typeof got === 'string' && got === want, `${where}: text differs`);
      break;
    case 'dictionary':
    case 'jsontable':
      c.eq(got, want, where);
      break;
    case 'arrowtable':
      c.ok(got instanceof arrow.Table, `${where}: not an apache-arrow Table`);
      if (got instanceof arrow.Table) c.eq(columns(got), columns(want), `${where} columns`);
      break;
    default:
      c.ok(sameBytes(got, want), `${where}: bytes differ`);
  }
}

const tests = {};

tests['all eight types, direct and link, page to page'] = async (cfg, c) => {
  const rx = await nb.connect({ natsUrl: cfg.natsUrl, fileserverUrl: cfg.fileserverUrl });
  const tx = await nb.connect({ natsUrl: cfg.natsUrl, fileserverUrl: cfg.fileserverUrl, senderName: 'page sender' });
  try {
    const subject = `browser.types.${nb.PAYLOAD_TYPES.length}.${Date.now()}`;
    const sub = await rx.subscribe(subject);
    const items = content();
    const opts = {
      sizeThreshold: THRESHOLD, correlation_id: 'corr-1', msg_id: 'msg-1', msg_purpose: 'event',
      sender_id: 'sid', receiver_name: 'rn', receiver_id: 'rid', reply_to: 'r.to', reply_to_msg_id: 'prev',
      metadata: { a: [1, null, 'é'] },
    };
    const [sent, msgJson] = await tx.smartsend(subject, items.map(([n, v, t]) => [n, v, t]), opts);
    const wire = JSON.parse(msgJson);
    c.eq(Object.keys(wire), [...nb.HEADER_KEYS, 'payloads'], 'envelope keys in wire order');
    c.eq(Object.keys(wire.payloads[0]), ['id', 'dataname', 'payload_type', 'transport', 'encoding', 'size', 'data', 'metadata'], 'payload keys');
    c.ok(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(wire.timestamp), `timestamp ${wire.timestamp}`);
    c.eq(sent.payloads.map((p) => p.transport), items.map((i) => i[3]), 'transports as sent');
    const { value: env } = await sub.next();
    for (const k of ['correlation_id', 'msg_id', 'msg_purpose', 'sender_id', 'receiver_name', 'receiver_id', 'reply_to', 'reply_to_msg_id', 'metadata']) {
      c.eq(env[k], opts[k], `header ${k}`);
    }
    c.eq(env.sender_name, 'page sender', 'sender_name from connect');
    c.eq(env.send_to, subject, 'send_to');
    c.eq(env.broker_url, cfg.natsUrl, 'broker_url');
    c.eq(env.payloads.length, items.length, 'payload count');
    for (let i = 0; i < items.length; i++) {
      const [name, value, type, transport] = items[i];
      const p = env.payloads[i];
      c.eq([p.dataname, p.payload_type, p.transport], [name, type, transport], `payload ${i}`);
      compareValue(c, name, type, p.data, value);
      const [dn, data, t] = p;
      c.ok(dn === name && data === p.data && t === type, `${name}: destructures as [dataname, data, type]`);
      const w = wire.payloads[i];
      c.eq(w.metadata.payload_bytes, w.size, `${name}: payload_bytes`);
      if (transport === 'link') {
        c.ok(w.encoding === 'none' && w.data.startsWith(`${cfg.fileserverUrl}/file/`), `${name}: link URL ${w.data}`);
        c.ok(/^[0-9a-f]{64}$/.test(w.metadata.sha256), `${name}: sha256 in metadata`);
      } else {
        c.ok(w.encoding === 'base64' && !('sha256' in w.metadata), `${name}: direct encoding`);
      }
    }
    await sub.close();
  } finally {
    await tx.close();
    await rx.close();
  }
};

tests['upload progress reaches the total of the link payloads'] = async (cfg, c) => {
  const client = await nb.connect({ natsUrl: cfg.natsUrl, fileserverUrl: cfg.fileserverUrl });
  try {
    const seen = [];
    const data = bytesOf(3 << 20, 9);
    const [env] = await client.smartsend('browser.progress', [['big', data, 'binary'], ['small', 'hi', 'text']], {
      onProgress: (sent, total) => seen.push([sent, total]),
    });
    c.eq(env.payloads[0].transport, 'link', 'above the default threshold (500000) goes by link');
    c.ok(seen.length >= 2, `progress called ${seen.length} times`);
    c.ok(seen.every(([, t]) => t === data.length), 'total is the link bytes');
    c.eq(seen[seen.length - 1], [data.length, data.length], 'last progress');
    c.ok(seen.every((s, i) => i === 0 || s[0] >= seen[i - 1][0]), 'progress never goes back');
  } finally {
    await client.close();
  }
};

tests['request and reply'] = async (cfg, c) => {
  const server = await nb.connect({ natsUrl: cfg.natsUrl, fileserverUrl: cfg.fileserverUrl, senderName: 'svc' });
  const client = await nb.connect({ natsUrl: cfg.natsUrl, fileserverUrl: cfg.fileserverUrl, senderName: 'caller' });
  try {
    const sub = await server.subscribe('browser.svc.echo');
    const serving = (async () => {
      for await (const req of sub) {
        const [, q] = req.payloads[0];
        await server.reply(req, [['answer', { echo: q, n: q.n + 1 }, 'dictionary'], ['blob', bytesOf(10_000, 3), 'binary']], {
          msg_purpose: 'ACK', sizeThreshold: THRESHOLD,
        });
        break;
      }
    })();
    const reply = await client.request('browser.svc.echo', [['q', { n: 41 }, 'dictionary']], { correlation_id: 'rr-1', timeout: 10_000 });
    await serving;
    c.eq(reply.payloads[0].data, { echo: { n: 41 }, n: 42 }, 'reply value');
    c.eq(reply.payloads[1].transport, 'link', 'reply link payload');
    c.ok(sameBytes(reply.payloads[1].data, bytesOf(10_000, 3)), 'reply link bytes');
    c.eq(reply.correlation_id, 'rr-1', 'reply keeps the correlation id');
    c.eq([reply.msg_purpose, reply.receiver_name, reply.sender_name], ['ACK', 'caller', 'svc'], 'reply header');
    c.ok(reply.reply_to_msg_id.length === 36, 'reply_to_msg_id is the request msg_id');
    c.eq(await codeOf(client.request('browser.svc.nobody', [['q', 'x', 'text']], { timeout: 2000 })), 'NO_RESPONDERS', 'no responders');
    c.eq(await codeOf(server.reply({ msg_id: 'm', reply_to: '' }, [])), 'INVALID_ARGUMENT', 'reply without reply_to');
  } finally {
    await client.close();
    await server.close();
  }
};

tests['a link from another origin is refused before any connection'] = async (cfg, c) => {
  const hostile = `http://127.0.0.1:${cfg.closedPort}/file/aaaaaaaaaaaaaaaa/bbbbbbbbbbbbbbbb/x`;
  const msg = JSON.stringify({ correlation_id: 'evil', payloads: [{ dataname: 'x', payload_type: 'binary', transport: 'link', data: hostile, size: 3 }] });
  const e = await nb.smartreceive(msg, { fileserverUrl: cfg.fileserverUrl }).catch((err) => err);
  c.eq(e.code, 'LINK_URL_REJECTED', 'code');
  c.eq(e.correlationId, 'evil', 'correlation id on the error');
  c.ok(!performance.getEntriesByType('resource').some((r) => r.name.startsWith(`http://127.0.0.1:${cfg.closedPort}/`)), 'no request was made');
  for (const bad of ['ftp://x/y', 'http://u:p@127.0.0.1/x', 'not a url']) {
    const m = JSON.stringify({ payloads: [{ dataname: 'x', payload_type: 'binary', transport: 'link', data: bad }] });
    c.eq(await codeOf(nb.smartreceive(m, { fileserverUrl: cfg.fileserverUrl, allowedOrigins: '*' })), 'LINK_URL_REJECTED', bad);
  }
};

tests['sha256 and size mismatches, size caps, malformed envelopes'] = async (cfg, c) => {
  const client = await nb.connect({ natsUrl: cfg.natsUrl, fileserverUrl: cfg.fileserverUrl });
  try {
    const data = bytesOf(8000, 11);
    const [, json] = await client.smartsend('browser.integrity', [['d', data, 'binary']], { sizeThreshold: THRESHOLD });
    const good = await client.smartreceive(json);
    c.ok(sameBytes(good.payloads[0].data, data), 'the untouched message decodes');
    c.eq(good.payloads[0].url, JSON.parse(json).payloads[0].data, 'url of the link payload');
    const tampered = JSON.parse(json);
    tampered.payloads[0].metadata.sha256 = 'f'.repeat(64);
    c.eq(await codeOf(client.smartreceive(JSON.stringify(tampered))), 'INTEGRITY_ERROR', 'sha256 mismatch');
    const short = JSON.parse(json);
    short.payloads[0].size = 7999;
    c.eq(await codeOf(client.smartreceive(JSON.stringify(short))), 'INTEGRITY_ERROR', 'more bytes than declared');
    c.eq(await codeOf(nb.smartreceive(json, { fileserverUrl: cfg.fileserverUrl, maxDownloadBytes: 1000 })), 'PAYLOAD_TOO_LARGE', 'above maxDownloadBytes');
    const gone = JSON.parse(json);
    gone.payloads[0].data = gone.payloads[0].data.replace(/\/file\/[A-Za-z0-9]+\//, '/file/nosuchupload00000/');
    c.eq(await codeOf(nb.smartreceive(JSON.stringify(gone), { fileserverUrl: cfg.fileserverUrl })), 'DOWNLOAD_FAILED', '404 is permanent');
    c.eq(await codeOf(client.smartreceive('{not json')), 'INVALID_ENVELOPE', 'not JSON');
    c.eq(await codeOf(client.smartreceive(new Uint8Array([0x7b, 0xff, 0x7d]))), 'INVALID_ENVELOPE', 'not UTF-8');
    c.eq(await codeOf(client.smartreceive('[]')), 'INVALID_ENVELOPE', 'not an object');
    c.eq(await codeOf(client.smartreceive('{"payloads":[{"dataname":"a","payload_type":"text","transport":"direct","data":"/w=="}]}')), 'DESERIALIZATION_ERROR', 'text not UTF-8');
    // Through a subscription: the bad message is an error, the next one arrives.
    const sub = await client.subscribe('browser.bad');
    client._nc.publish('browser.bad', new TextEncoder().encode('{"payloads": 3}'));
    await client.smartsend('browser.bad', [['ok', 'fine', 'text']]);
    c.eq(await codeOf(sub.next()), 'INVALID_ENVELOPE', 'malformed envelope on a subscription');
    const { value: next } = await sub.next();
    c.eq(next.payloads[0].data, 'fine', 'the subscription goes on');
    await sub.close();
  } finally {
    await client.close();
  }
};

tests['send-side errors: bad input, upload failure with and without fallback'] = async (cfg, c) => {
  const client = await nb.connect({ natsUrl: cfg.natsUrl, fileserverUrl: cfg.fileserverUrl });
  const down = await nb.connect({ natsUrl: cfg.natsUrl, fileserverUrl: `http://127.0.0.1:${cfg.closedPort}` });
  try {
    c.eq(await codeOf(client.smartsend('a.b', [['x', 1, 'nosuchtype']])), 'INVALID_PAYLOAD_TYPE', 'unknown type');
    c.eq(await codeOf(client.smartsend('a.b', [['x', 5, 'binary']])), 'INVALID_PAYLOAD', 'number as binary');
    c.eq(await codeOf(client.smartsend('a.b', [['x', new Uint8Array([0xff]), 'text']])), 'INVALID_PAYLOAD', 'text bytes not UTF-8');
    c.eq(await codeOf(client.smartsend('a.b', [['x', new Uint8Array([1, 2, 3]), 'arrowtable']])), 'INVALID_PAYLOAD', 'arrow bytes not IPC');
    c.eq(await codeOf(client.smartsend('a.b', [['x', [1, 2], 'jsontable']])), 'INVALID_PAYLOAD', 'jsontable not rows');
    c.eq(await codeOf(client.smartsend('a.*', [])), 'INVALID_ARGUMENT', 'wildcard subject');
    c.eq(await codeOf(client.smartsend('a.b', [], { msg_purpose: 'gossip' })), 'INVALID_ARGUMENT', 'msg_purpose');
    const [env] = await down.smartsend('a.b', [['x', bytesOf(5000, 1), 'binary']], { sizeThreshold: THRESHOLD });
    c.eq(env.payloads[0].transport, 'direct', 'a failed upload falls back to direct');
    const e = await down.smartsend('a.b', [['x', bytesOf(5000, 1), 'binary']], { sizeThreshold: THRESHOLD, fallbackToDirect: false, correlation_id: 'up-1' }).catch((err) => err);
    c.eq([e.code, e.correlationId], ['UPLOAD_FAILED', 'up-1'], 'no fallback: UPLOAD_FAILED');
    c.eq(await codeOf(down.smartsend('a.b', [['x', bytesOf(2 << 20, 1), 'binary']])), 'UPLOAD_FAILED', 'too big to fall back');
    const none = await nb.connect({ natsUrl: cfg.natsUrl, fileserverUrl: null });
    c.eq(await codeOf(none.smartsend('a.b', [['x', bytesOf(2 << 20, 1), 'binary']])), 'PAYLOAD_TOO_LARGE', 'no file server, too big');
    await none.close();
    c.eq(await codeOf(nb.connect({ natsUrl: 'nats://127.0.0.1:4222' })), 'INVALID_ARGUMENT', 'natsUrl must be a websocket URL');
    c.eq(await codeOf(nb.connect({ natsUrl: `ws://127.0.0.1:${cfg.closedPort}`, connectTimeout: 2000 })), 'NATS_CONNECTION_FAILED', 'server down');
  } finally {
    await down.close();
    await client.close();
  }
  c.eq(await codeOf(client.smartsend('a.b', [])), 'CLOSED', 'send after close');
};

tests['redirects are refused, 5xx retried with backoff'] = async (cfg, c) => {
  const link = (p) => JSON.stringify({ payloads: [{ dataname: 'x', payload_type: 'binary', transport: 'link', data: `${location.origin}${p}`, size: 3 }] });
  const opts = { fileserverUrl: cfg.fileserverUrl, allowedOrigins: [location.origin] };
  const e = await nb.smartreceive(link('/t/redirect'), opts).catch((err) => err);
  c.eq(e.code, 'DOWNLOAD_FAILED', `redirect: ${e.message}`);
  c.ok(/redirect/.test(e.message), `the message names the redirect: ${e.message}`);
  const t0 = performance.now();
  const env = await nb.smartreceive(link('/t/flaky'), opts);
  const took = performance.now() - t0;
  c.ok(new TextDecoder().decode(env.payloads[0].data) === 'abc', 'the third attempt delivers');
  c.ok(took >= 300, `backoff waited 100 + 200 ms (took ${Math.round(took)} ms)`);
  const hits = await (await fetch('/hits')).json();
  c.eq([hits['/t/redirect'], hits['/t/redirected-target'], hits['/t/flaky']], [1, undefined, 3], 'requests made');
  const always = await nb.smartreceive(link('/t/flaky-never'), { ...opts, downloadRetry: { maxAttempts: 2, baseDelay: 10 } }).catch((err) => err);
  c.eq(always.code, 'DOWNLOAD_FAILED', 'attempts exhausted');
  c.ok(/after 2 attempts/.test(always.message), always.message);
};

tests['golden vectors (tests/vectors)'] = async (cfg, c) => {
  const files = await (await fetch('/vectors/index.json')).json();
  c.ok(files.length >= 15, `found ${files.length} vectors`);
  for (const file of files) {
    const v = await (await fetch(`/vectors/${file}`)).json();
    const message = v.raw !== undefined ? v.raw
      : v.raw_hex !== undefined ? Uint8Array.from(v.raw_hex.match(/../g) || [], (h) => parseInt(h, 16))
        : JSON.stringify(v.envelope);
    let env;
    try {
      env = await nb.smartreceive(message, { fileserverUrl: null });
    } catch (e) {
      if (v.expect_error) c.eq(e.code, v.expect_error, `${file}: error code (${e.message})`);
      else c.ok(false, `${file}: ${e.code}: ${e.message}`);
      continue;
    }
    if (v.expect_error) {
      c.ok(false, `${file}: decoded, want ${v.expect_error}`);
      continue;
    }
    const { payloads: want, ...header } = v.expect;
    for (const [k, value] of Object.entries(header)) c.eq(env[k], value, `${file}: ${k}`);
    c.eq(env.payloads.length, want.length, `${file}: payload count`);
    for (let i = 0; i < Math.min(want.length, env.payloads.length); i++) {
      const p = env.payloads[i];
      const w = want[i];
      const where = `${file}: ${w.dataname}`;
      c.eq([p.dataname, p.payload_type, p.transport, p.size], [w.dataname, w.payload_type, w.transport, w.size], where);
      switch (p.payload_type) {
        case 'text':
          c.eq(await hex(new TextEncoder().encode(p.data)), w.sha256, `${where} sha256`);
          if ('value' in w) c.eq(p.data, w.value, `${where} value`);
          break;
        case 'dictionary':
        case 'jsontable':
          c.eq(p.data, w.value, `${where} value`);
          break;
        case 'arrowtable':
          c.eq(columns(p.data), w.value, `${where} columns`);
          break;
        default:
          c.ok(p.data instanceof Uint8Array, `${where}: a Uint8Array`);
          c.eq(await hex(p.data), w.sha256, `${where} sha256`);
      }
    }
  }
};

/** Runs every test (or those named); resolves with [{ name, ok, problems, ms }]. */
export async function run(cfg, only = null) {
  const out = [];
  for (const [name, fn] of Object.entries(tests)) {
    if (only && !only.includes(name)) continue;
    const c = new Check();
    const t0 = performance.now();
    try {
      await fn(cfg, c);
    } catch (e) {
      c.problems.push(`threw ${e && e.code ? `${e.code}: ` : ''}${e && e.stack ? e.stack : e}`);
    }
    out.push({ name, ok: c.problems.length === 0, problems: c.problems, ms: Math.round(performance.now() - t0) });
  }
  return out;
}
