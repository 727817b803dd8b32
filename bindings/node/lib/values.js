'use strict';
// Host values <-> serialized payload bytes (wire format §3). The library works on bytes and
// validates them; the conversions themselves are the JavaScript implementation shared with the
// browser module (bindings/browser/lib/values.js, an ES module: require() of it needs Node
// >= 20.19). This file binds it to apache-arrow and our errors, and keeps Buffers in and out.

const { makeError } = require('./errors');
const shared = require('../../browser/lib/values.js');

const { PAYLOAD_TYPES } = shared;

let arrowModule = null;
/** apache-arrow, loaded on first use (it takes a while to load and most messages need none). */
function arrow() {
  if (!arrowModule) arrowModule = require('apache-arrow');
  return arrowModule;
}

const codec = shared.createValues({ arrow, makeError });

/** A Buffer over the same memory as a Uint8Array (no copy). */
function toBuffer(bytes) {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The bytes of a Uint8Array / ArrayBuffer / other ArrayBufferView, as a Buffer (no copy). */
function asBytes(v) {
  const bytes = shared.asBytes(v);
  return bytes && toBuffer(bytes);
}

/**
 * Serializes one payload's value to its wire bytes.
 * @returns {Buffer}
 */
function serialize(dataname, data, type) {
  return toBuffer(codec.serialize(dataname, data, type));
}

/**
 * Turns received bytes (a Buffer owned by JavaScript) into the value of their type; the binary
 * types are that Buffer.
 */
function deserialize(dataname, bytes, type) {
  return codec.deserialize(dataname, bytes, type);
}

module.exports = { PAYLOAD_TYPES, serialize, deserialize, asBytes };
