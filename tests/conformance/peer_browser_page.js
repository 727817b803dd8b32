// The in-page half of the browser peer (peer_browser.mjs drives it): sends or receives one
// envelope with bindings/browser/natsbridge.js, as a page would.

import * as nb from '/natsbridge.js';

const fromB64 = (s) => (Uint8Array.fromBase64 ? Uint8Array.fromBase64(s) : Uint8Array.from(atob(s), (c) => c.charCodeAt(0)));

async function sha256(bytes) {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return [...d].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Publishes one envelope: text as a string, dictionary and jsontable as parsed JSON (the
 * module serializes them), arrowtable as the IPC bytes and the binary types as Uint8Arrays
 * (forwarded as they are).
 */
export async function send(cfg, subject, spec, files) {
  const payloads = spec.payloads.map((p, i) => {
    const bytes = fromB64(files[i]);
    let value = bytes;
    if (p.payload_type === 'text') value = new TextDecoder().decode(bytes);
    else if (p.payload_type === 'dictionary' || p.payload_type === 'jsontable') value = JSON.parse(new TextDecoder().decode(bytes));
    return [p.dataname, value, p.payload_type];
  });
  const client = await nb.connect(cfg);
  try {
    await client.smartsend(subject, payloads, { ...spec.options, sizeThreshold: spec.threshold, confirm: true });
  } finally {
    await client.close();
  }
}

let pending = null;

/** Subscribes; resolves once the server has the subscription. */
export async function subscribe(cfg, subject) {
  const client = await nb.connect(cfg);
  const sub = await client.subscribe(subject);
  pending = { client, sub };
}

function columns(table) {
  const out = {};
  for (const field of table.schema.fields) {
    out[field.name] = [...table.getChild(field.name)].map((v) => (typeof v === 'bigint' ? Number(v) : v));
  }
  return out;
}

/** The report of the one envelope received (the Node peer's shape). */
export async function receive(timeoutS) {
  const { client, sub } = pending;
  let timer;
  try {
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`nothing received within ${timeoutS} s`)), timeoutS * 1000);
    });
    const { value: env } = await Promise.race([sub.next(), timeout]);
    const header = {};
    for (const k of nb.HEADER_KEYS) if (k in env) header[k] = env[k];
    const payloads = [];
    for (const p of env.payloads) {
      const item = { dataname: p.dataname, payload_type: p.payload_type, transport: p.transport, size: p.size };
      switch (p.payload_type) {
        case 'text':
          item.sha256 = await sha256(new TextEncoder().encode(p.data));
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
          item.sha256 = await sha256(p.data);
          item.length = p.data.length;
      }
      payloads.push(item);
    }
    return { header, payloads };
  } finally {
    clearTimeout(timer);
    await sub.close();
    await client.close();
  }
}
