'use strict';
// natsbridge for Node.js: typed payloads over NATS with the claim-check pattern, on top of
// libnatsbridge (the Rust core's C ABI) loaded with koffi.

const { fn, logLevel, ABI_VERSION, libraryPath } = require('./lib/ffi');
const errors = require('./lib/errors');
const { Envelope, Payload } = require('./lib/envelope');
const { PAYLOAD_TYPES } = require('./lib/values');
const { Client, Subscription, connect, smartsend, smartreceive } = require('./lib/client');

/**
 * Sets how much the library logs, to standard error: 'off' (the default), 'warn', 'info'
 * (every step, with its correlation id) or 'debug'. Overrides NATSBRIDGE_LOG.
 */
function setLogLevel(level) {
  const n = typeof level === 'string' ? logLevel[level] : level;
  if (n === undefined) {
    throw errors.makeError('INVALID_ARGUMENT', `log level must be one of ${Object.keys(logLevel).join(', ')}`);
  }
  errors.check(fn.nb_log_set_level(n));
}

module.exports = {
  connect,
  smartsend,
  smartreceive,
  Client,
  Subscription,
  Envelope,
  Payload,
  PAYLOAD_TYPES,
  setLogLevel,
  /** The library's version ("0.1.0"). */
  version: fn.nb_version(),
  /** The C ABI version of the loaded library. */
  abiVersion: ABI_VERSION,
  /** The path libnatsbridge was loaded from. */
  libraryPath,
  NatsBridgeError: errors.NatsBridgeError,
  ...errors.classes,
};
