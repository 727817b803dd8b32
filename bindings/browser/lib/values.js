// Host values <-> serialized payload bytes (wire format §3): the one JavaScript implementation,
// used by the browser module and by the Node binding (bindings/node/lib/values.js wraps it with
// Buffers). Plain ES module with no imports: the caller hands in apache-arrow and its error
// constructor, so it loads the same in a page (no bundler) and under Node's require().

/** The eight payload types, in the wire format's order. */
export const PAYLOAD_TYPES = Object.freeze([
  'text',
  'dictionary',
  'arrowtable',
  'jsontable',
  'image',
  'audio',
  'video',
  'binary',
]);
export const BYTE_TYPES = Object.freeze(['image', 'audio', 'video', 'binary']);
const BYTE_SET = new Set(BYTE_TYPES);

const encoder = new TextEncoder();
// fatal: a received text that is not UTF-8 is an error, never silently replaced.
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The bytes of a Uint8Array / ArrayBuffer / other ArrayBufferView, as a Uint8Array (no copy). */
export function asBytes(v) {
  if (v instanceof Uint8Array) return v;
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (typeof SharedArrayBuffer !== 'undefined' && v instanceof SharedArrayBuffer) return new Uint8Array(v);
  return null;
}

/** Whether `v` looks like an apache-arrow Table (of whichever copy of the library). */
export function isTable(v) {
  return v != null && typeof v === 'object' && v.schema != null && Array.isArray(v.batches);
}

function isRow(r) {
  return r !== null && typeof r === 'object' && !Array.isArray(r);
}

/**
 * The conversions, bound to an apache-arrow module and an error constructor.
 * @param {{ arrow: () => any, makeError: (code: string, message: string, options?: object) => Error }} deps
 *   `arrow` returns the apache-arrow module (called on first use only: most messages need none).
 */
export function createValues({ arrow, makeError }) {
  const invalid = (dataname, type, what) =>
    makeError('INVALID_PAYLOAD', `payload '${dataname}' of type ${type}: ${what}`);
  const unknownType = (dataname, type) =>
    makeError(
      'INVALID_PAYLOAD_TYPE',
      `payload '${dataname}': unknown payload_type ${JSON.stringify(type)} (one of ${PAYLOAD_TYPES.join(', ')})`,
    );

  /** The table of Arrow IPC bytes (stream or file format); throws unless they hold a schema. */
  function readTable(bytes) {
    const a = arrow();
    const reader = a.RecordBatchReader.from(bytes);
    reader.open();
    if (!reader.schema) throw new Error('not an Arrow IPC stream (no schema message)');
    return a.tableFromIPC(bytes);
  }

  /**
   * Serializes one payload's value to its wire bytes (a view of the caller's bytes where the
   * value is bytes already).
   * @returns {Uint8Array}
   */
  function serialize(dataname, data, type) {
    if (!PAYLOAD_TYPES.includes(type)) throw unknownType(dataname, type);
    if (BYTE_SET.has(type)) {
      const bytes = asBytes(data);
      if (!bytes) throw invalid(dataname, type, 'expected a Uint8Array, ArrayBuffer or typed array');
      return bytes;
    }
    switch (type) {
      case 'text': {
        if (typeof data === 'string') return encoder.encode(data);
        const bytes = data instanceof Uint8Array ? data : null;
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
        return encoder.encode(json);
      }
      case 'arrowtable': {
        if (isTable(data)) {
          try {
            return arrow().tableToIPC(data, 'stream');
          } catch (e) {
            throw invalid(dataname, type, `cannot write the table as an Arrow IPC stream: ${e.message}`);
          }
        }
        const bytes = data instanceof Uint8Array ? data : null;
        if (!bytes) throw invalid(dataname, type, 'expected an apache-arrow Table (or Arrow IPC bytes)');
        return bytes;
      }
      default:
        throw invalid(dataname, type, 'unsupported');
    }
  }

  /**
   * Turns received bytes into the value of their type: a string, a JSON value, an
   * apache-arrow Table, an array of row objects, or (binary types) `bytes` itself.
   * Fails with DESERIALIZATION_ERROR when the bytes are not what the type says.
   */
  function deserialize(dataname, bytes, type) {
    let value;
    try {
      switch (type) {
        case 'text':
          return decoder.decode(bytes);
        case 'dictionary':
          return JSON.parse(decoder.decode(bytes));
        case 'jsontable':
          value = JSON.parse(decoder.decode(bytes));
          break;
        case 'arrowtable':
          return readTable(bytes);
        default:
          if (BYTE_SET.has(type)) return bytes;
          throw unknownType(dataname, type);
      }
    } catch (e) {
      if (e && e.code === 'INVALID_PAYLOAD_TYPE') throw e;
      throw makeError('DESERIALIZATION_ERROR', `payload '${dataname}' of type ${type}: ${e.message}`, { cause: e });
    }
    if (!(Array.isArray(value) && value.every(isRow))) {
      throw makeError('DESERIALIZATION_ERROR', `payload '${dataname}' of type jsontable: not a JSON array of row objects`);
    }
    return value;
  }

  /**
   * Checks bytes about to be sent against their type, as the core does before publishing
   * (only what the value did not guarantee: bytes given for text or arrowtable).
   * Fails with INVALID_PAYLOAD.
   */
  function checkOutgoing(dataname, data, bytes, type) {
    if (type === 'text' && typeof data !== 'string') {
      try {
        decoder.decode(bytes);
      } catch {
        throw invalid(dataname, type, 'the bytes are not valid UTF-8');
      }
    } else if (type === 'arrowtable' && !isTable(data)) {
      try {
        readTable(bytes);
      } catch (e) {
        throw invalid(dataname, type, `the bytes are not a readable Arrow IPC stream: ${e.message}`);
      }
    }
  }

  return { serialize, deserialize, checkOutgoing };
}
