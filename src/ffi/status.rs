//! Status codes: one per wire error code (wire format §6), plus those of the C boundary.
//! The numbers are stable and never reused; [`status_of`] is the one place that maps an
//! [`ErrorCode`] to its status.

use crate::error::ErrorCode;
use std::ffi::{c_char, CStr};

/// The result of every fallible function: `NB_OK` (0) or a negative error code.
pub type nb_status = i32;

/// Success.
pub const NB_OK: nb_status = 0;

// General (-1 .. -9).
/// INVALID_ARGUMENT: an argument has a bad value (empty subject, unknown msg_purpose, index
/// past the end, a call that does not fit the handle's mode, ...).
pub const NB_ERR_INVALID_ARGUMENT: nb_status = -1;
/// TIMEOUT: a deadline passed (publish, flush, request, ...).
pub const NB_ERR_TIMEOUT: nb_status = -2;
/// CLOSED: the client or subscription is closed (or the library's runtime was shut down).
pub const NB_ERR_CLOSED: nb_status = -3;
/// INTERNAL: a bug or an unexpected condition inside the library.
pub const NB_ERR_INTERNAL: nb_status = -4;

// NATS (-10 .. -19).
/// NATS_CONNECTION_FAILED: the NATS server could not be reached, or the connection failed.
pub const NB_ERR_NATS_CONNECTION_FAILED: nb_status = -10;
/// SLOW_CONSUMER: messages were dropped because the subscriber did not keep up.
pub const NB_ERR_SLOW_CONSUMER: nb_status = -11;
/// NO_RESPONDERS: a request found nobody subscribed to its subject.
pub const NB_ERR_NO_RESPONDERS: nb_status = -12;
/// MESSAGES_DROPPED: messages handed to the connection were not confirmed by the server when
/// the connection dropped; they may be lost (see `nb_client_dropped`).
pub const NB_ERR_MESSAGES_DROPPED: nb_status = -13;

// Envelope and payloads (-20 .. -29).
/// INVALID_ENVELOPE: the message is not JSON, or not an envelope of the wire format.
pub const NB_ERR_INVALID_ENVELOPE: nb_status = -20;
/// INVALID_PAYLOAD_TYPE: unknown payload_type.
pub const NB_ERR_INVALID_PAYLOAD_TYPE: nb_status = -21;
/// INVALID_TRANSPORT: unknown transport.
pub const NB_ERR_INVALID_TRANSPORT: nb_status = -22;
/// INVALID_PAYLOAD: bytes given to send do not match their declared type.
pub const NB_ERR_INVALID_PAYLOAD: nb_status = -23;
/// DESERIALIZATION_ERROR: received bytes do not decode as their declared type.
pub const NB_ERR_DESERIALIZATION_ERROR: nb_status = -24;
/// PAYLOAD_TOO_LARGE: the envelope does not fit the server's max_payload, or a download
/// exceeds its cap.
pub const NB_ERR_PAYLOAD_TOO_LARGE: nb_status = -25;

// File server and links (-30 .. -39).
/// UPLOAD_FAILED: the upload to the file server failed.
pub const NB_ERR_UPLOAD_FAILED: nb_status = -30;
/// DOWNLOAD_FAILED: a link payload could not be downloaded.
pub const NB_ERR_DOWNLOAD_FAILED: nb_status = -31;
/// LINK_URL_REJECTED: a link URL points outside the allowed origins.
pub const NB_ERR_LINK_URL_REJECTED: nb_status = -32;
/// INTEGRITY_ERROR: downloaded bytes do not match the declared sha256 or size.
pub const NB_ERR_INTEGRITY_ERROR: nb_status = -33;

// The C boundary (-100 ..).
/// NULL_ARG: a required pointer argument is NULL.
pub const NB_ERR_NULL_ARG: nb_status = -100;
/// UTF8: a string argument is not valid UTF-8.
pub const NB_ERR_UTF8: nb_status = -101;
/// BUFFER_TOO_SMALL: the caller's buffer is too small; the text was cut and `needed` says
/// how many bytes (with the NUL) it takes.
pub const NB_ERR_BUFFER_TOO_SMALL: nb_status = -102;
/// PANIC: a bug inside the library was caught at the boundary; the last error has its message.
pub const NB_ERR_PANIC: nb_status = -103;
/// PULL_TIMEOUT: a pull found no envelope before its timeout (with timeout 0: the queue is
/// empty). Not an error of any message: pull again later.
pub const NB_ERR_PULL_TIMEOUT: nb_status = -104;
/// OUT_OF_RANGE: a payload index is past the end.
pub const NB_ERR_OUT_OF_RANGE: nb_status = -105;
/// WRONG_THREAD: a blocking call was made from a library thread (inside a wake or log
/// callback), where it could deadlock.
pub const NB_ERR_WRONG_THREAD: nb_status = -106;
/// WOULD_BLOCK: a call that must not wait (`nb_client_try_smartsend`) would have had to;
/// nothing was done. Make the blocking call instead.
pub const NB_ERR_WOULD_BLOCK: nb_status = -107;

/// The status of an error code: the only mapping from [`ErrorCode`] to `nb_status`.
pub(crate) fn status_of(code: ErrorCode) -> nb_status {
    match code {
        ErrorCode::InvalidArgument => NB_ERR_INVALID_ARGUMENT,
        ErrorCode::Timeout => NB_ERR_TIMEOUT,
        ErrorCode::Closed => NB_ERR_CLOSED,
        ErrorCode::Internal => NB_ERR_INTERNAL,
        ErrorCode::NatsConnectionFailed => NB_ERR_NATS_CONNECTION_FAILED,
        ErrorCode::SlowConsumer => NB_ERR_SLOW_CONSUMER,
        ErrorCode::NoResponders => NB_ERR_NO_RESPONDERS,
        ErrorCode::MessagesDropped => NB_ERR_MESSAGES_DROPPED,
        ErrorCode::InvalidEnvelope => NB_ERR_INVALID_ENVELOPE,
        ErrorCode::InvalidPayloadType => NB_ERR_INVALID_PAYLOAD_TYPE,
        ErrorCode::InvalidTransport => NB_ERR_INVALID_TRANSPORT,
        ErrorCode::InvalidPayload => NB_ERR_INVALID_PAYLOAD,
        ErrorCode::DeserializationError => NB_ERR_DESERIALIZATION_ERROR,
        ErrorCode::PayloadTooLarge => NB_ERR_PAYLOAD_TOO_LARGE,
        ErrorCode::UploadFailed => NB_ERR_UPLOAD_FAILED,
        ErrorCode::DownloadFailed => NB_ERR_DOWNLOAD_FAILED,
        ErrorCode::LinkUrlRejected => NB_ERR_LINK_URL_REJECTED,
        ErrorCode::IntegrityError => NB_ERR_INTEGRITY_ERROR,
    }
}

/// Name and text of every status, for `nb_status_code_name` and `nb_status_str`.
fn describe(status: nb_status) -> (&'static CStr, &'static CStr) {
    match status {
        NB_OK => (c"OK", c"success"),
        NB_ERR_INVALID_ARGUMENT => (c"INVALID_ARGUMENT", c"invalid argument"),
        NB_ERR_TIMEOUT => (c"TIMEOUT", c"a deadline passed"),
        NB_ERR_CLOSED => (c"CLOSED", c"closed"),
        NB_ERR_INTERNAL => (c"INTERNAL", c"internal error"),
        NB_ERR_NATS_CONNECTION_FAILED => (c"NATS_CONNECTION_FAILED", c"NATS connection failed"),
        NB_ERR_SLOW_CONSUMER => (
            c"SLOW_CONSUMER",
            c"messages dropped: the consumer is too slow",
        ),
        NB_ERR_NO_RESPONDERS => (c"NO_RESPONDERS", c"no responders for the request"),
        NB_ERR_MESSAGES_DROPPED => (
            c"MESSAGES_DROPPED",
            c"messages may have been lost with a dropped connection",
        ),
        NB_ERR_INVALID_ENVELOPE => (c"INVALID_ENVELOPE", c"not a valid envelope"),
        NB_ERR_INVALID_PAYLOAD_TYPE => (c"INVALID_PAYLOAD_TYPE", c"unknown payload type"),
        NB_ERR_INVALID_TRANSPORT => (c"INVALID_TRANSPORT", c"unknown transport"),
        NB_ERR_INVALID_PAYLOAD => (c"INVALID_PAYLOAD", c"payload bytes do not match their type"),
        NB_ERR_DESERIALIZATION_ERROR => (
            c"DESERIALIZATION_ERROR",
            c"received bytes do not decode as their type",
        ),
        NB_ERR_PAYLOAD_TOO_LARGE => (c"PAYLOAD_TOO_LARGE", c"payload too large"),
        NB_ERR_UPLOAD_FAILED => (c"UPLOAD_FAILED", c"upload to the file server failed"),
        NB_ERR_DOWNLOAD_FAILED => (c"DOWNLOAD_FAILED", c"download of a link payload failed"),
        NB_ERR_LINK_URL_REJECTED => (
            c"LINK_URL_REJECTED",
            c"link URL outside the allowed origins",
        ),
        NB_ERR_INTEGRITY_ERROR => (
            c"INTEGRITY_ERROR",
            c"downloaded bytes fail their integrity check",
        ),
        NB_ERR_NULL_ARG => (c"NULL_ARG", c"a required pointer argument is NULL"),
        NB_ERR_UTF8 => (c"UTF8", c"a string argument is not valid UTF-8"),
        NB_ERR_BUFFER_TOO_SMALL => (c"BUFFER_TOO_SMALL", c"the buffer is too small"),
        NB_ERR_PANIC => (c"PANIC", c"a bug inside the library was caught"),
        NB_ERR_PULL_TIMEOUT => (c"PULL_TIMEOUT", c"no envelope before the pull's timeout"),
        NB_ERR_OUT_OF_RANGE => (c"OUT_OF_RANGE", c"index out of range"),
        NB_ERR_WRONG_THREAD => (c"WRONG_THREAD", c"blocking call from a library thread"),
        NB_ERR_WOULD_BLOCK => (c"WOULD_BLOCK", c"the call would have to wait"),
        _ => (c"UNKNOWN", c"unknown status"),
    }
}

/// Static English text for a status (`"download of a link payload failed"`); `"unknown
/// status"` for a number this library does not define. Never NULL; do not free.
#[no_mangle]
pub extern "C" fn nb_status_str(status: nb_status) -> *const c_char {
    describe(status).1.as_ptr()
}

/// The stable name of a status: the wire error code for those that have one
/// (`"DOWNLOAD_FAILED"`), `"OK"`, or the boundary's own (`"NULL_ARG"`, `"PULL_TIMEOUT"`, ...);
/// `"UNKNOWN"` for a number this library does not define. Never NULL; do not free.
#[no_mangle]
pub extern "C" fn nb_status_code_name(status: nb_status) -> *const c_char {
    describe(status).0.as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_own_status_named_after_it() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let s = status_of(code);
            assert!(s < 0 && seen.insert(s), "{code}");
            assert_eq!(describe(s).0.to_str().unwrap(), code.as_str());
        }
    }
}
