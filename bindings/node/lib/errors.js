'use strict';
// Errors: one Error subclass per wire error code (wire format §6), each with `.code` set to that
// code and `.status` to the library's numeric status. Library statuses are turned into these in
// one place, `fromStatus`.

const { fn, status, readErrorText } = require('./ffi');

// The library ends the message of an error that concerns a message with its correlation id.
const CORRELATION = /\(correlation_id ([^()\s]+)\)\s*$/;

class NatsBridgeError extends Error {
  /**
   * @param {string} message
   * @param {string} [code] the wire error code, e.g. 'DOWNLOAD_FAILED'
   * @param {object} [options] { status, cause, correlationId }
   */
  constructor(message, code = 'INTERNAL', options = {}) {
    super(message, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = new.target.name;
    this.code = code;
    this.status = options.status ?? status[code] ?? status.INTERNAL;
    // The correlation id of the message concerned (a send's, even one the library chose; a
    // received envelope's), when there is one.
    const found = CORRELATION.exec(message);
    this.correlationId = found ? found[1] : options.correlationId;
  }
}

// Classes by wire code; the boundary's own codes map onto the nearest one (keeping their code).
const CODES = {
  INVALID_ARGUMENT: 'InvalidArgumentError',
  TIMEOUT: 'TimeoutError',
  CLOSED: 'ClosedError',
  INTERNAL: 'InternalError',
  NATS_CONNECTION_FAILED: 'NatsConnectionFailedError',
  SLOW_CONSUMER: 'SlowConsumerError',
  NO_RESPONDERS: 'NoRespondersError',
  MESSAGES_DROPPED: 'MessagesDroppedError',
  INVALID_ENVELOPE: 'InvalidEnvelopeError',
  INVALID_PAYLOAD_TYPE: 'InvalidPayloadTypeError',
  INVALID_TRANSPORT: 'InvalidTransportError',
  INVALID_PAYLOAD: 'InvalidPayloadError',
  DESERIALIZATION_ERROR: 'DeserializationError',
  PAYLOAD_TOO_LARGE: 'PayloadTooLargeError',
  UPLOAD_FAILED: 'UploadFailedError',
  DOWNLOAD_FAILED: 'DownloadFailedError',
  LINK_URL_REJECTED: 'LinkUrlRejectedError',
  INTEGRITY_ERROR: 'IntegrityError',
};
const ALIASES = {
  NULL_ARG: 'INVALID_ARGUMENT',
  UTF8: 'INVALID_ARGUMENT',
  OUT_OF_RANGE: 'INVALID_ARGUMENT',
  BUFFER_TOO_SMALL: 'INTERNAL',
  PANIC: 'INTERNAL',
  WRONG_THREAD: 'INTERNAL',
  WOULD_BLOCK: 'INTERNAL', // handled inside the binding (the send goes to the pool); never expected here
  PULL_TIMEOUT: 'TIMEOUT',
};

const classes = { NatsBridgeError };
const byCode = {};
for (const [code, name] of Object.entries(CODES)) {
  // A named class per code, so stack traces and `err.name` say what went wrong.
  const cls = {
    [name]: class extends NatsBridgeError {
      constructor(message, options = {}) {
        super(message, options.code ?? code, options);
      }
    },
  }[name];
  classes[name] = cls;
  byCode[code] = cls;
}

// A MESSAGES_DROPPED error says how many messages it reports: "N message(s) ..." (one for a
// confirmed send's own).
const DROPPED = /(?:^|: )(\d+) message\(s\)/;
Object.defineProperty(classes.MessagesDroppedError.prototype, 'dropped', {
  /** The number of messages this error reports as possibly lost. */
  get() {
    const found = DROPPED.exec(this.message);
    return found ? Number(found[1]) : 1;
  },
});

/** Makes the error for `code` (a wire code or a boundary code) with `message`. */
function makeError(code, message, options = {}) {
  const cls = byCode[code] ?? byCode[ALIASES[code]] ?? NatsBridgeError;
  if (cls === NatsBridgeError) return new NatsBridgeError(message, code, options);
  return new cls(message, { ...options, code });
}

/**
 * The error for a failed status. `detail` reads the library's message for it (from the handle
 * concerned, since async calls run on pool threads whose thread-local error is not ours).
 */
function fromStatus(st, detail) {
  const code = fn.nb_status_code_name(st);
  let message = '';
  try {
    message = detail ? detail() : '';
  } catch (_) {
    message = '';
  }
  // A handle keeps its most recent failure: when that is another code's (a concurrent call
  // failed meanwhile), it does not describe this one.
  const prefix = /^([A-Z][A-Z0-9_]*): /.exec(message);
  if (prefix && prefix[1] !== code) message = '';
  if (!message) message = `${code}: ${fn.nb_status_str(st)}`;
  return makeError(code, message, { status: st });
}

/** Detail readers for the handles that keep a copy of their last failure. */
const detail = {
  thread: () => readErrorText((b, c, n) => fn.nb_last_error_message(b, c, n)),
  client: (h) => () => readErrorText((b, c, n) => fn.nb_client_last_error(h, b, c, n)),
  config: (h) => () => readErrorText((b, c, n) => fn.nb_config_last_error(h, b, c, n)),
  subscription: (h) => () => readErrorText((b, c, n) => fn.nb_subscription_last_error(h, b, c, n)),
};

/** Throws the error for `st` unless it is OK (synchronous calls on this thread). */
function check(st, read = detail.thread) {
  if (st !== status.OK) throw fromStatus(st, read);
}

module.exports = { ...classes, classes, makeError, fromStatus, check, detail };
