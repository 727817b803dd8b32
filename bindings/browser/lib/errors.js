// Errors: one class, NatsBridgeError, with the wire format's codes (§6) in `.code`, as the
// core and the other bindings report them.

/** The codes this module raises. */
export const ERROR_CODES = Object.freeze([
  'INVALID_PAYLOAD_TYPE',
  'UPLOAD_FAILED',
  'DOWNLOAD_FAILED',
  'INVALID_TRANSPORT',
  'NATS_CONNECTION_FAILED',
  'DESERIALIZATION_ERROR',
  'INVALID_ENVELOPE',
  'INVALID_PAYLOAD',
  'INVALID_ARGUMENT',
  'PAYLOAD_TOO_LARGE',
  'LINK_URL_REJECTED',
  'INTEGRITY_ERROR',
  'TIMEOUT',
  'CLOSED',
  'NO_RESPONDERS',
  'INTERNAL',
]);

export class NatsBridgeError extends Error {
  /**
   * @param {string} code one of ERROR_CODES
   * @param {string} message
   * @param {{ cause?: unknown, correlationId?: string, details?: object }} [options]
   */
  constructor(code, message, options = {}) {
    super(message, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'NatsBridgeError';
    /** The wire error code, e.g. 'DOWNLOAD_FAILED'. */
    this.code = code;
    /** The correlation id of the message the error concerns, when known. */
    if (options.correlationId) this.correlationId = options.correlationId;
    /** Details (url, dataname, status, ...), as the core's error details. */
    this.details = { ...(options.details || {}) };
  }
}

/** A NatsBridgeError (the constructor the shared value conversions are given). */
export function makeError(code, message, options = {}) {
  return new NatsBridgeError(code, message, options);
}

/** `e` tagged with a correlation id (and details) unless it has one. */
export function tagged(e, correlationId, details) {
  if (e instanceof NatsBridgeError) {
    if (correlationId && !e.correlationId) e.correlationId = correlationId;
    if (details) Object.assign(e.details, details);
    return e;
  }
  return new NatsBridgeError('INTERNAL', `unexpected error: ${e && e.message ? e.message : e}`, { cause: e, correlationId });
}
