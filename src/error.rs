//! Errors: one type for the whole library, carrying a stable wire code.
//!
//! The codes are those of the wire format (§6): the walkthrough's six, kept verbatim, and ours.
//! Every binding maps the same code to its own error type, so a Python `err.code` and a C
//! `nb_status` name the same thing.

use serde_json::{Map, Value};
use std::fmt;

/// The stable error codes. `as_str` gives the wire name (`"DOWNLOAD_FAILED"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// Unknown `payload_type`.
    InvalidPayloadType,
    /// Upload to the file server failed (and no fallback was allowed or possible).
    UploadFailed,
    /// Download of a link payload failed after retries, or with a permanent error.
    DownloadFailed,
    /// Unknown `transport`.
    InvalidTransport,
    /// The NATS server could not be reached, or the connection failed.
    NatsConnectionFailed,
    /// Received bytes do not decode as their declared type (or bad base64).
    DeserializationError,
    /// The message is not UTF-8 JSON, or not an envelope of the wire format.
    InvalidEnvelope,
    /// Bytes given to send do not match their declared type.
    InvalidPayload,
    /// A caller-supplied argument is invalid (empty subject, unknown msg_purpose, ...).
    InvalidArgument,
    /// The envelope does not fit the server's `max_payload`, or a download exceeds its cap.
    PayloadTooLarge,
    /// A link URL points outside the allowed origins, or is not a valid http(s) URL.
    LinkUrlRejected,
    /// Downloaded bytes do not match the declared `sha256` or `size`.
    IntegrityError,
    /// A deadline passed.
    Timeout,
    /// The client or subscription is closed.
    Closed,
    /// Messages were dropped because a subscriber did not keep up.
    SlowConsumer,
    /// A request found nobody subscribed to its subject.
    NoResponders,
    /// Messages handed to the connection were not confirmed by the server when the
    /// connection dropped: they may be lost.
    MessagesDropped,
    /// A bug or an unexpected condition inside the library.
    Internal,
}

impl ErrorCode {
    /// Every code, in a stable order.
    pub const ALL: [ErrorCode; 18] = [
        ErrorCode::InvalidPayloadType,
        ErrorCode::UploadFailed,
        ErrorCode::DownloadFailed,
        ErrorCode::InvalidTransport,
        ErrorCode::NatsConnectionFailed,
        ErrorCode::DeserializationError,
        ErrorCode::InvalidEnvelope,
        ErrorCode::InvalidPayload,
        ErrorCode::InvalidArgument,
        ErrorCode::PayloadTooLarge,
        ErrorCode::LinkUrlRejected,
        ErrorCode::IntegrityError,
        ErrorCode::Timeout,
        ErrorCode::Closed,
        ErrorCode::SlowConsumer,
        ErrorCode::NoResponders,
        ErrorCode::MessagesDropped,
        ErrorCode::Internal,
    ];

    /// The wire name of the code.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidPayloadType => "INVALID_PAYLOAD_TYPE",
            ErrorCode::UploadFailed => "UPLOAD_FAILED",
            ErrorCode::DownloadFailed => "DOWNLOAD_FAILED",
            ErrorCode::InvalidTransport => "INVALID_TRANSPORT",
            ErrorCode::NatsConnectionFailed => "NATS_CONNECTION_FAILED",
            ErrorCode::DeserializationError => "DESERIALIZATION_ERROR",
            ErrorCode::InvalidEnvelope => "INVALID_ENVELOPE",
            ErrorCode::InvalidPayload => "INVALID_PAYLOAD",
            ErrorCode::InvalidArgument => "INVALID_ARGUMENT",
            ErrorCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ErrorCode::LinkUrlRejected => "LINK_URL_REJECTED",
            ErrorCode::IntegrityError => "INTEGRITY_ERROR",
            ErrorCode::Timeout => "TIMEOUT",
            ErrorCode::Closed => "CLOSED",
            ErrorCode::SlowConsumer => "SLOW_CONSUMER",
            ErrorCode::NoResponders => "NO_RESPONDERS",
            ErrorCode::MessagesDropped => "MESSAGES_DROPPED",
            ErrorCode::Internal => "INTERNAL",
        }
    }

    /// The code for a wire name, if it is one of ours.
    pub fn from_wire(name: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error of the library: a code, a message for people, and where known the correlation id
/// of the message concerned and structured details (a URL, a field name, ...).
#[derive(Debug, Clone)]
pub struct Error(Box<Inner>);

// Boxed: errors are rare, and a small `Result` keeps every call's return value small.
#[derive(Debug, Clone)]
struct Inner {
    code: ErrorCode,
    message: String,
    correlation_id: Option<String>,
    details: Map<String, Value>,
}

/// `Result` with the library's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Error {
        Error(Box::new(Inner {
            code,
            message: message.into(),
            correlation_id: None,
            details: Map::new(),
        }))
    }

    /// The same error, tagged with the correlation id of the message concerned (kept if set).
    pub fn with_correlation_id(mut self, id: &str) -> Error {
        if self.0.correlation_id.is_none() && !id.is_empty() {
            self.0.correlation_id = Some(id.to_owned());
        }
        self
    }

    /// The same error with one more detail.
    pub fn with_detail(mut self, key: &str, value: impl Into<Value>) -> Error {
        self.0.details.insert(key.to_owned(), value.into());
        self
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        self.0.code
    }

    /// The message for people.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The correlation id of the message concerned, when known.
    pub fn correlation_id(&self) -> Option<&str> {
        self.0.correlation_id.as_deref()
    }

    /// Structured details.
    pub fn details(&self) -> &Map<String, Value> {
        &self.0.details
    }

    /// The walkthrough's error-report shape, for sending an error back over NATS:
    /// `{"correlation_id", "msg_id", "timestamp", "send_to", "error": {"code", "message", "details"}}`.
    pub fn to_report(&self, msg_id: &str, send_to: &str) -> Value {
        let correlation_id = self.0.correlation_id.clone().unwrap_or_default();
        let mut details = self.0.details.clone();
        details
            .entry("correlation_id")
            .or_insert_with(|| Value::String(correlation_id.clone()));
        serde_json::json!({
            "correlation_id": correlation_id,
            "msg_id": msg_id,
            "timestamp": crate::time::now_iso8601(),
            "send_to": send_to,
            "error": {"code": self.0.code.as_str(), "message": self.0.message, "details": details},
        })
    }

    pub(crate) fn invalid_argument(message: impl Into<String>) -> Error {
        Error::new(ErrorCode::InvalidArgument, message)
    }

    pub(crate) fn internal(message: impl Into<String>) -> Error {
        Error::new(ErrorCode::Internal, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.0.code, self.0.message)?;
        if let Some(id) = &self.0.correlation_id {
            write!(f, " (correlation_id {id})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()));
            assert_eq!(ErrorCode::from_wire(code.as_str()), Some(code));
        }
        assert_eq!(ErrorCode::from_wire("NOPE"), None);
    }

    #[test]
    fn report_has_the_walkthrough_shape() {
        let e = Error::new(
            ErrorCode::DownloadFailed,
            "Failed to fetch data after 5 attempts",
        )
        .with_correlation_id("abc")
        .with_detail("url", "http://x/file/a/b/c");
        let r = e.to_report("m1", "/chat");
        assert_eq!(r["error"]["code"], "DOWNLOAD_FAILED");
        assert_eq!(r["error"]["details"]["correlation_id"], "abc");
        assert_eq!(r["error"]["details"]["url"], "http://x/file/a/b/c");
        assert_eq!(r["correlation_id"], "abc");
        assert_eq!(r["send_to"], "/chat");
    }
}
