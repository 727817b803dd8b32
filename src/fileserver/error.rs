//! The one place where a failure becomes an HTTP reply.
//!
//! Plik answers every error with `http.Error`: the status, `text/plain; charset=utf-8`,
//! `X-Content-Type-Options: nosniff`, and the plain message followed by `\n` (never JSON).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// A failed request: status plus the plain-text message Plik would send.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
    /// 401 replies carry `WWW-Authenticate: Basic realm="plik"` so browsers prompt.
    basic_challenge: bool,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            basic_challenge: false,
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub(crate) fn unauthorized(reason: &str) -> Self {
        ApiError {
            basic_challenge: true,
            ..Self::new(
                StatusCode::UNAUTHORIZED,
                format!("please provide valid credentials to access this upload : {reason}"),
            )
        }
    }

    /// Wrong or unusable basic-auth credentials for creating an upload.
    pub(crate) fn unauthorized_create(reason: &str) -> Self {
        ApiError {
            basic_challenge: true,
            ..Self::new(
                StatusCode::UNAUTHORIZED,
                format!("please provide valid credentials to create an upload : {reason}"),
            )
        }
    }

    /// The storage quota would be exceeded (507 Insufficient Storage).
    pub(crate) fn quota_exceeded(limit: u64) -> Self {
        Self::new(
            StatusCode::INSUFFICIENT_STORAGE,
            format!("storage quota exceeded (limit is set to {limit} bytes)"),
        )
    }

    /// Plik hides the cause of a 500 unless it runs in debug mode; so do we.
    pub(crate) fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
    }

    pub(crate) fn upload_not_found(upload_id: &str) -> Self {
        Self::not_found(format!("upload {upload_id} not found"))
    }
}

impl From<std::io::Error> for ApiError {
    fn from(_: std::io::Error) -> Self {
        ApiError::internal()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, format!("{}\n", self.message)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        if self.basic_challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"plik\""),
            );
        }
        response
    }
}
