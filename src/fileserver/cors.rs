//! CORS, so that web pages served from another origin can upload and download.
//!
//! Off unless origins are configured ([`super::FileServerConfig::cors_origins`], CLI
//! `--cors-origin`): then no response carries CORS headers and browsers keep pages of other
//! origins out, as without this module. With origins configured, a request whose `Origin`
//! is one of them (or any, for `*`) gets `Access-Control-Allow-Origin`, and a preflight
//! (`OPTIONS` with `Access-Control-Request-Method`) is answered here, allowing the methods
//! and headers of the Plik API (`X-UploadToken`, `X-PlikToken`, `Authorization`,
//! `Content-Type`). A preflight from an origin not allowed gets 403 without CORS headers.
//! No credentials mode: pages send tokens as headers, never cookies.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

const ALLOW_METHODS: &str = "GET, HEAD, POST, DELETE, OPTIONS";
const ALLOW_HEADERS: &str = "Content-Type, X-UploadToken, X-PlikToken, Authorization";
/// What a page may read of a response besides the CORS-safelisted headers.
const EXPOSE_HEADERS: &str = "Content-Length, Content-Disposition";
/// How long a browser may cache a preflight answer, in seconds.
const MAX_AGE: &str = "600";

/// The origins allowed to make cross-origin requests.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cors {
    any: bool,
    /// Serialized origins (`http://127.0.0.1:8000`), lower-case.
    origins: Vec<String>,
}

impl Cors {
    /// From the configured list: `*` for any origin, otherwise `scheme://host[:port]` each.
    /// Fails (with the reason) on anything that is not an http(s) origin.
    pub(crate) fn new(list: &[String]) -> Result<Cors, String> {
        let mut cors = Cors::default();
        for entry in list {
            let entry = entry.trim();
            if entry == "*" {
                cors.any = true;
                continue;
            }
            let url = url::Url::parse(entry)
                .map_err(|e| format!("CORS origin {entry:?} is not a URL ({e})"))?;
            let bare = url.path() == "/" && url.query().is_none() && url.fragment().is_none();
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() || !bare {
                return Err(format!(
                    "CORS origin {entry:?} must be '*' or scheme://host[:port] (http or https, no path)"
                ));
            }
            cors.origins.push(url.origin().ascii_serialization());
        }
        Ok(cors)
    }

    pub(crate) fn is_enabled(&self) -> bool {
        self.any || !self.origins.is_empty()
    }

    /// The `Access-Control-Allow-Origin` value for a request's `Origin`, if it is allowed.
    fn allow(&self, origin: &HeaderValue) -> Option<HeaderValue> {
        if self.any {
            return Some(HeaderValue::from_static("*"));
        }
        let origin = origin.to_str().ok()?.to_ascii_lowercase();
        self.origins
            .contains(&origin)
            .then(|| HeaderValue::from_str(&origin).ok())
            .flatten()
    }
}

/// The middleware: answers preflights, adds the CORS headers to other responses.
pub(crate) async fn handle(
    State(cors): State<Arc<Cors>>,
    request: Request,
    next: Next,
) -> Response {
    if !cors.is_enabled() {
        return next.run(request).await;
    }
    let origin = request.headers().get(header::ORIGIN).cloned();
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let allowed = origin.as_ref().and_then(|o| cors.allow(o));
    if preflight {
        let Some(allowed) = allowed else {
            return (StatusCode::FORBIDDEN, "origin not allowed\n").into_response();
        };
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::NO_CONTENT;
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOW_METHODS),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOW_HEADERS),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(MAX_AGE),
        );
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
        return response;
    }
    let mut response = next.run(request).await;
    if let Some(allowed) = allowed {
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSE_HEADERS),
        );
    }
    if !cors.any {
        // The answer depends on the Origin: caches must keep them apart.
        response
            .headers_mut()
            .append(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_checked_and_normalized() {
        let cors = Cors::new(&["HTTP://Example.com:8000".into()]).unwrap();
        assert_eq!(cors.origins, vec!["http://example.com:8000"]);
        assert!(cors
            .allow(&HeaderValue::from_static("http://example.com:8000"))
            .is_some());
        assert!(cors
            .allow(&HeaderValue::from_static("http://example.com:8001"))
            .is_none());
        for bad in ["example.com", "ftp://x", "http://x/path", "http://x?q"] {
            assert!(Cors::new(&[bad.into()]).is_err(), "{bad}");
        }
        assert!(!Cors::new(&[]).unwrap().is_enabled());
        assert!(Cors::new(&["*".into()]).unwrap().is_enabled());
    }
}
