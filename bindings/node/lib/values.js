'use strict';
// Host values <-> serialized payload bytes (wire format §3). The library works on bytes and
// validates them; this is the only place that knows what a JavaScript value of each type is.

const { makeError } = require('./errors');

const PAYLOAD_TYPES = Object.freeze([
  'text',
  'dictionary',
  'arrowtable',
  'jsontable',
  'image',
  'audio',
  'video',
  'binary',
]);
const BYTE_TYPES = new Set(['image', 'audio', 'video', 'binary']);

let arrowModule = null;
/** apache-arrow, loaded on first use (it takes a while to load and most messages need none). */
function arrow() {
  if (!arrowModule) arrowModule = require('apache-arrow');
  return arrowModule;
}

function isTable(v) {
  return v != null && typeof v === 'object' && v.schema != null && Array.isArray(v.batches);
}

/** The bytes of a Uint8Array / ArrayBuffer / other ArrayBufferView, as a Buffer (no copy). */
function asBytes(v) {
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (ArrayBuffer.isView(v)) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (v instanceof ArrayBuffer || v instanceof SharedArrayBuffer) return Buffer.from(v);
  return null;
}

function invalid(dataname, type, what) {
  return makeError('INVALID_PAYLOAD', `payload '${dataname}' of type ${type}: ${what}`);
}

/**
 * Serializes one payload's value to its wire bytes.
 * @returns {Buffer}
 */
function serialize(dataname, data, type) {
  if (!PAYLOAD_TYPES.includes(type)) {
    throw makeError(
      'INVALID_PAYLOAD_TYPE',
      `payload '${dataname}': unknown payload_type ${JSON.stringify(type)} (one of ${PAYLOAD_TYPES.join(', ')})`,
    );
  }
  if (BYTE_TYPES.has(type)) {
    const bytes = asBytes(data);
    if (!bytes) throw invalid(dataname, type, 'expected a Buffer, Uint8Array, ArrayBuffer or typed array');
    return bytes;
  }
  switch (type) {
    case 'text': {
      if (typeof data === 'string') return Buffer.from(data, 'utf8');
      const bytes = data instanceof Uint8Array ? asBytes(data) : null;
      if (!bytes) throw invalid(dataname, type, 'expected a string (or its UTF-8 bytes)');
      return bytes;
    }
    case 'dictionary':
    case 'jsontable': {
      if (type === 'jsontable' && !(Array.isArray(data) && data.every(isRow))) {
        throw invalid(dataname, type, 'expected an array of row objects');
      }
      let json;
      try {
        json = JSON.stringify(data);
      } catch (e) {
        throw invalid(dataname, type, `not serializable as JSON: ${e.message}`);
      }
      if (json === undefined) throw invalid(dataname, type, 'not serializable as JSON');
      return Buffer.from(json, 'utf8');
    }
    case 'arrowtable': {
      if (isTable(data)) {
        try {
          return asBytes(arrow().tableToIPC(data, 'stream'));
        } catch (e) {
          throw invalid(dataname, type, `cannot write the table as an Arrow IPC stream: ${e.message}`);
        }
      }
      const bytes = data instanceof Uint8Array ? asBytes(data) : null;
      if (!bytes) throw invalid(dataname, type, 'expected an apache-arrow Table (or Arrow IPC bytes)');
      return bytes;
    }
    default:
      throw invalid(dataname, type, 'unsupported');
  }
}

function isRow(r) {
  return r !== null && typeof r === 'object' && !Array.isArray(r);
}

/**
 * Turns received bytes (a Buffer owned by JavaScript) into the value of their type.
 */
function deserialize(dataname, bytes, type) {
  try {
    switch (type) {
      case 'text':
        return bytes.toString('utf8');
      case 'dictionary':
      case 'jsontable':
        return JSON.parse(bytes.toString('utf8'));
      case 'arrowtable':
        return arrow().tableFromIPC(bytes);
      default:
        if (BYTE_TYPES.has(type)) return bytes;
    }
  } catch (e) {
    throw makeError('DESERIALIZATION_ERROR', `payload '${dataname}' of type ${type}: ${e.message}`, { cause: e });
  }
  throw makeError('INVALID_PAYLOAD_TYPE', `payload '${dataname}': unknown payload_type ${JSON.stringify(type)}`);
}

module.exports = { PAYLOAD_TYPES, serialize, deserialize, asBytes };
