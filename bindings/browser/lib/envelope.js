// The envelope (wire format §1-2): the Envelope and Payload objects a page sees, the parser of
// received messages (the core's rules: src/envelope.rs) and the writer of sent ones.

import { NatsBridgeError } from './errors.js';
import { decodeBase64, encodeBase64 } from './base64.js';
import { PAYLOAD_TYPES } from './values.js';

/** The header keys, in the wire format's order (also the Node binding's Envelope's). */
export const HEADER_KEYS = Object.freeze([
  'correlation_id',
  'msg_id',
  'timestamp',
  'send_to',
  'msg_purpose',
  'sender_name',
  'sender_id',
  'receiver_name',
  'receiver_id',
  'reply_to',
  'reply_to_msg_id',
  'broker_url',
  'metadata',
]);

export const MSG_PURPOSES = Object.freeze(['ACK', 'NACK', 'updateStatus', 'shutdown', 'chat', 'command', 'event']);
export const TRANSPORTS = Object.freeze(['direct', 'link']);

export class Payload {
  constructor(fields) {
    /** The payload's UUID. */
    this.id = fields.id;
    /** The sender's name for it ("msg", "login_image"). */
    this.dataname = fields.dataname;
    /** The value: a string, a JSON value, an apache-arrow Table, an array of rows or a Uint8Array (a Buffer in Node). */
    this.data = fields.data;
    /** One of the eight payload types. */
    this.payload_type = fields.payload_type;
    /** 'direct' (inline, base64) or 'link' (through the file server). */
    this.transport = fields.transport;
    /** Number of serialized bytes. */
    this.size = fields.size;
    /** The download URL of a link payload; null for a direct one. */
    this.url = fields.url;
    /** Payload metadata (`payload_bytes`, and `sha256` for link payloads). */
    this.metadata = fields.metadata;
  }

  /** Destructures as the walkthrough's triple: `const [dataname, data, type] = payload`. */
  *[Symbol.iterator]() {
    yield this.dataname;
    yield this.data;
    yield this.payload_type;
  }
}

export class Envelope {
  constructor(header, payloads) {
    for (const k of HEADER_KEYS) this[k] = k === 'metadata' ? header[k] ?? {} : header[k] ?? '';
    /** @type {Payload[]} */
    this.payloads = payloads;
  }

  /** The first payload named `dataname`, or undefined. */
  payload(dataname) {
    return this.payloads.find((p) => p.dataname === dataname);
  }
}

const bad = (message) => new NatsBridgeError('INVALID_ENVELOPE', message);
const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function optString(obj, key, name) {
  const v = obj[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw bad(`field ${JSON.stringify(name)} must be a string`);
  return v;
}

function optObject(obj, key, name) {
  const v = obj[key];
  if (v === undefined || v === null) return null;
  if (!isObject(v)) throw bad(`field ${JSON.stringify(name)} must be an object`);
  return v;
}

function requiredString(obj, key, name) {
  const v = optString(obj, key, name);
  if (v === null) throw bad(`required field ${JSON.stringify(name)} is missing`);
  return v;
}

/** The message's text: a string, its UTF-8 bytes, or a NATS message (`.data`). */
function messageText(msg) {
  if (typeof msg === 'string') return msg;
  let bytes = msg;
  if (msg && !(msg instanceof Uint8Array) && !(msg instanceof ArrayBuffer) && 'data' in msg) bytes = msg.data;
  if (typeof bytes === 'string') return bytes;
  if (bytes instanceof ArrayBuffer) bytes = new Uint8Array(bytes);
  if (!(bytes instanceof Uint8Array)) {
    throw new NatsBridgeError('INVALID_ARGUMENT', 'smartreceive takes a NATS message, its bytes (Uint8Array) or its text');
  }
  try {
    return utf8.decode(bytes);
  } catch {
    throw bad('message is not UTF-8 JSON: invalid byte');
  }
}

/**
 * One payload of a parsed message, before its value is made: the core's payload (direct
 * payloads with their bytes, link payloads with their URL).
 */
function parsePayload(p, i) {
  const at = (f) => `payloads[${i}].${f}`;
  const dataname = requiredString(p, 'dataname', at('dataname'));
  const payloadType = requiredString(p, 'payload_type', at('payload_type'));
  const transport = requiredString(p, 'transport', at('transport'));
  let size = null;
  if (p.size !== undefined && p.size !== null) {
    if (!Number.isSafeInteger(p.size) || p.size < 0) throw bad(`field ${JSON.stringify(at('size'))} must be a non-negative integer`);
    size = p.size;
  }
  const metadata = optObject(p, 'metadata', at('metadata')) ?? {};
  const id = optString(p, 'id', at('id')) ?? '';
  const encoding = optString(p, 'encoding', at('encoding'));
  if (p.data === undefined || p.data === null) throw bad(`required field ${JSON.stringify(at('data'))} is missing`);
  if (typeof p.data !== 'string') throw bad(`field ${JSON.stringify(at('data'))} must be a string`);
  const details = { dataname };
  if (!PAYLOAD_TYPES.includes(payloadType)) {
    throw new NatsBridgeError('INVALID_PAYLOAD_TYPE', `unknown payload_type ${JSON.stringify(payloadType)} (one of ${PAYLOAD_TYPES.join(', ')})`, { details });
  }
  if (!TRANSPORTS.includes(transport)) {
    throw new NatsBridgeError('INVALID_TRANSPORT', `unknown transport ${JSON.stringify(transport)} (direct or link)`, { details });
  }
  if (transport === 'direct') {
    if (encoding !== null && encoding !== 'base64') {
      throw new NatsBridgeError('DESERIALIZATION_ERROR', `${at('encoding')} is ${JSON.stringify(encoding)}; direct payloads must be base64`, { details });
    }
    const bytes = decodeBase64(p.data);
    if (bytes === null) {
      throw new NatsBridgeError('DESERIALIZATION_ERROR', `${at('data')} is not valid base64 (standard alphabet, padded)`, { details });
    }
    if (size !== null && size !== bytes.length) {
      throw new NatsBridgeError('INTEGRITY_ERROR', `payload ${JSON.stringify(dataname)} declares size ${size} but carries ${bytes.length} bytes`, { details });
    }
    return { id, dataname, payload_type: payloadType, transport, size: bytes.length, url: null, bytes, metadata };
  }
  const declared = size ?? (Number.isSafeInteger(metadata.payload_bytes) && metadata.payload_bytes >= 0 ? metadata.payload_bytes : 0);
  return { id, dataname, payload_type: payloadType, transport, size: declared, url: p.data, bytes: null, metadata };
}

/**
 * Parses a received message (wire format §1-2). Missing or null optional keys read as
 * empty; unknown keys are ignored.
 * @returns {{ header: object, payloads: object[] }}
 */
export function parseMessage(msg) {
  const text = messageText(msg);
  let obj;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    throw bad(`message is not a JSON envelope: ${e.message}`);
  }
  if (!isObject(obj)) throw bad('message is not a JSON envelope: not an object');
  const header = {};
  for (const k of HEADER_KEYS) {
    header[k] = k === 'metadata' ? optObject(obj, k, k) ?? {} : optString(obj, k, k) ?? '';
  }
  const cid = header.correlation_id;
  if (obj.payloads === undefined || obj.payloads === null) {
    throw new NatsBridgeError('INVALID_ENVELOPE', 'envelope has no "payloads" array', { correlationId: cid });
  }
  if (!Array.isArray(obj.payloads)) {
    throw new NatsBridgeError('INVALID_ENVELOPE', 'field "payloads" must be an array', { correlationId: cid });
  }
  const payloads = obj.payloads.map((p, i) => {
    try {
      if (!isObject(p)) throw bad(`payloads[${i}] must be an object`);
      return parsePayload(p, i);
    } catch (e) {
      if (e instanceof NatsBridgeError && cid) e.correlationId = cid;
      throw e;
    }
  });
  return { header, payloads };
}

/** A new UUID v4 (crypto.randomUUID where the page is a secure context). */
export function newUuid() {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * The payload object as written: every key, in the wire format's order. `p` has dataname,
 * payload_type, transport, size, metadata, and `bytes` (direct) or `url` (link).
 */
export function wirePayload(p) {
  return {
    id: p.id,
    dataname: p.dataname,
    payload_type: p.payload_type,
    transport: p.transport,
    encoding: p.transport === 'direct' ? 'base64' : 'none',
    size: p.size,
    data: p.transport === 'direct' ? encodeBase64(p.bytes) : p.url,
    metadata: p.metadata,
  };
}

/** The envelope's JSON: every header key (wire order), then the payloads. */
export function writeEnvelope(header, wirePayloads) {
  const out = {};
  for (const k of HEADER_KEYS) out[k] = header[k];
  out.payloads = wirePayloads;
  return JSON.stringify(out);
}
