'use strict';
// Envelopes and payloads as JavaScript objects. An Envelope carries the header with the wire's
// own key names (`correlation_id`, `msg_id`, ... exactly as in the message's JSON), and
// `payloads`: Payload objects that also destructure as the walkthrough's
// `[dataname, data, payload_type]` triple. Native envelopes are read once and freed at once:
// no JavaScript object holds library memory.

const { fn, status, copyBytes } = require('./ffi');
const { makeError, check } = require('./errors');
const { serialize, deserialize } = require('./values');

// The Envelope and Payload classes and the header keys are the browser module's (one
// definition for both; require() of an ES module, Node >= 20.19).
const { HEADER_KEYS, Payload, Envelope } = require('../../browser/lib/envelope.js');

function parseJson(text, what) {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw makeError('INTERNAL', `the library returned malformed JSON for ${what}: ${e.message}`);
  }
}

// Out-parameters of nb_envelope_payload_bytes, reused: it is called on this thread only.
const bytesPtr = [null];
const bytesLen = [0];

/** A Payload of the fields of a payload as the library describes it, with its value and URL. */
function payloadOf(p, data, url) {
  return new Payload({
    id: p.id,
    dataname: p.dataname,
    data,
    payload_type: p.payload_type,
    transport: p.transport,
    size: p.size,
    url,
    metadata: p.metadata,
  });
}

/**
 * Reads a native envelope into an Envelope, then frees it: the header and every payload's
 * fields from one nb_envelope_outline_json, then each payload's bytes. `values` (for an
 * envelope returned by a send) gives each payload's value as the caller passed it; otherwise
 * payload bytes are copied out and deserialized.
 */
function takeEnvelope(handle, values = null) {
  try {
    const outline = parseJson(fn.nb_envelope_outline_json(handle), 'an envelope');
    const wire = outline.payloads;
    const payloads = new Array(wire.length);
    for (let i = 0; i < wire.length; i++) {
      const p = wire[i];
      let data;
      if (values) {
        data = values[i];
      } else {
        check(fn.nb_envelope_payload_bytes(handle, i, bytesPtr, bytesLen));
        data = deserialize(p.dataname, copyBytes(bytesPtr[0], Number(bytesLen[0])), p.payload_type);
      }
      payloads[i] = payloadOf(p, data, p.url ?? null);
    }
    return new Envelope(outline, payloads);
  } finally {
    fn.nb_envelope_free(handle);
  }
}

/**
 * The Envelope of a published JSON (the `msg_json` a send returns), with each payload's value
 * from `values` as the caller passed it: what takeEnvelope gives for the same envelope.
 */
function envelopeFromJson(json, values) {
  const wire = parseJson(json, 'a published envelope');
  const list = wire.payloads;
  const payloads = new Array(list.length);
  for (let i = 0; i < list.length; i++) {
    const p = list[i];
    payloads[i] = payloadOf(p, values[i], p.transport === 'link' ? p.data : null);
  }
  return new Envelope(wire, payloads);
}

/**
 * Serializes the walkthrough's payload list — `[[dataname, data, payload_type], ...]`, each
 * entry optionally with a 4th element of payload metadata, or Payload objects of a received
 * envelope — into nb_payload_in records.
 * @returns {{ records: object[], values: any[], size: number }} `size`: the bytes of all payloads
 */
function preparePayloads(list) {
  if (!Array.isArray(list)) {
    throw makeError('INVALID_ARGUMENT', 'payloads must be an array of [dataname, data, payload_type] entries');
  }
  const records = [];
  const values = [];
  let size = 0;
  list.forEach((entry, i) => {
    let dataname, data, type, metadata;
    if (Array.isArray(entry)) {
      [dataname, data, type, metadata] = entry;
    } else if (entry instanceof Payload || (entry && typeof entry === 'object' && 'payload_type' in entry)) {
      ({ dataname, data, payload_type: type } = entry);
    } else {
      throw makeError('INVALID_ARGUMENT', `payload #${i} must be a [dataname, data, payload_type] array`);
    }
    if (typeof dataname !== 'string' || dataname === '') {
      throw makeError('INVALID_ARGUMENT', `payload #${i}: dataname must be a non-empty string`);
    }
    if (typeof type !== 'string') {
      throw makeError('INVALID_PAYLOAD_TYPE', `payload '${dataname}': payload_type must be a string`);
    }
    if (metadata != null && (typeof metadata !== 'object' || Array.isArray(metadata))) {
      throw makeError('INVALID_ARGUMENT', `payload '${dataname}': metadata must be an object`);
    }
    const bytes = serialize(dataname, data, type);
    records.push({
      dataname,
      payload_type: type,
      data: bytes,
      len: bytes.length,
      metadata_json: metadata == null ? null : JSON.stringify(metadata),
    });
    values.push(data);
    size += bytes.length;
  });
  return { records, values, size };
}

/**
 * The JSON of an envelope's header with no payloads: what the library needs to reply to it
 * (nb_client_reply takes a native envelope; one without payloads costs nothing to rebuild).
 */
function headerOnlyJson(env) {
  if (env == null || typeof env !== 'object') {
    throw makeError('INVALID_ARGUMENT', 'reply needs the received Envelope it answers');
  }
  const out = {};
  for (const k of HEADER_KEYS) {
    if (env[k] !== undefined && env[k] !== null) out[k] = env[k];
  }
  out.payloads = [];
  return JSON.stringify(out);
}

module.exports = { Envelope, Payload, HEADER_KEYS, takeEnvelope, envelopeFromJson, preparePayloads, headerOnlyJson, status };
