//! Where link payloads live: the claim-check store behind a trait, so other stores can be added.
//!
//! [`PlikStore`] speaks the Plik HTTP protocol (our embedded file server, or a real Plik).
//! Link URLs arriving in messages are checked against the allowed origins here before any
//! connection is made.

mod plik;

pub use plik::PlikStore;

use crate::config::AllowedOrigins;
use crate::error::{Error, ErrorCode, Result};
use bytes::Bytes;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A boxed future, for the object-safe store trait.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What an upload produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Uploaded {
    /// The download URL that travels in the envelope.
    pub url: String,
    /// Store-specific token allowing [`PayloadStore::discard`] to remove the upload.
    pub discard_token: Option<String>,
}

/// One payload to upload.
#[derive(Debug, Clone)]
pub struct UploadRequest<'a> {
    /// The caller's name for it (used as the file name).
    pub dataname: &'a str,
    /// The serialized bytes.
    pub data: Bytes,
    /// For log lines and errors.
    pub correlation_id: &'a str,
    /// Advanced as bytes are sent, when the caller asked to follow the transfer.
    pub progress: Option<&'a crate::progress::Progress>,
}

/// What the receiver knows about a link payload before fetching it.
#[derive(Debug, Clone, Copy)]
pub struct DownloadRequest<'a> {
    /// The URL from the envelope (already checked against the allowed origins).
    pub url: &'a str,
    /// The declared size, when the envelope gives one; more bytes than this are refused.
    pub expected_size: Option<u64>,
    /// The declared sha256 (lowercase hex), verified before the bytes are returned.
    pub sha256: Option<&'a str>,
    /// Largest body accepted when no size is declared.
    pub max_bytes: u64,
    /// For log lines and errors.
    pub correlation_id: &'a str,
}

/// A claim-check store: upload bytes, get a URL; download a URL, get the bytes.
pub trait PayloadStore: Send + Sync + 'static {
    /// Uploads one payload. Fails with `UPLOAD_FAILED`.
    fn upload<'a>(&'a self, request: UploadRequest<'a>) -> BoxFuture<'a, Result<Uploaded>>;

    /// Downloads one payload with the retry policy. Fails with `DOWNLOAD_FAILED`,
    /// `INTEGRITY_ERROR` or `PAYLOAD_TOO_LARGE`.
    fn download<'a>(&'a self, request: DownloadRequest<'a>) -> BoxFuture<'a, Result<Bytes>>;

    /// Downloads one payload into the file `path` (created or truncated), never holding it
    /// whole in memory; returns its length. The default goes through memory: stores that can
    /// stream should override it.
    fn download_to_file<'a>(
        &'a self,
        request: DownloadRequest<'a>,
        path: &'a std::path::Path,
    ) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move {
            let bytes = self.download(request).await?;
            tokio::fs::write(path, &bytes).await.map_err(|e| {
                Error::new(
                    ErrorCode::DownloadFailed,
                    format!(
                        "cannot write the downloaded payload to {}: {e}",
                        path.display()
                    ),
                )
            })?;
            Ok(bytes.len() as u64)
        })
    }

    /// Best-effort removal of an upload that will not be announced (a send that failed
    /// after some uploads succeeded).
    fn discard<'a>(&'a self, uploaded: &'a Uploaded) -> BoxFuture<'a, ()>;
}

/// The deadline of one transfer of `bytes` bytes: `base` plus the time the bytes take at
/// `min_rate_bytes_per_s`, saturating at [`Duration::MAX`]. A rate of 0 tolerates any
/// slowness (no deadline: `Duration::MAX`).
pub(crate) fn transfer_deadline(base: Duration, bytes: u64, min_rate_bytes_per_s: u64) -> Duration {
    if min_rate_bytes_per_s == 0 {
        return Duration::MAX;
    }
    let secs = bytes / min_rate_bytes_per_s;
    let nanos =
        u128::from(bytes % min_rate_bytes_per_s) * 1_000_000_000 / u128::from(min_rate_bytes_per_s);
    // `nanos` < 1e9 because the remainder is below the rate.
    let size_time = Duration::new(secs, nanos as u32);
    base.saturating_add(size_time)
}

/// A name that is safe as one file name on disk, whatever the (remote) text it comes from:
/// letters, digits, `-`, `_` and `.` kept, anything else (separators included) replaced by `_`,
/// no leading dot, at most 100 bytes, never empty.
pub fn safe_file_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        let c = if c.is_alphanumeric() || "-_.".contains(c) {
            c
        } else {
            '_'
        };
        if out.len() + c.len_utf8() > 100 {
            break;
        }
        out.push(c);
    }
    let trimmed = out.trim_start_matches('.');
    if trimmed.is_empty() {
        "payload".into()
    } else {
        trimmed.to_owned()
    }
}

/// Parses a file server base URL: http or https, no query or fragment; the trailing `/` is
/// removed (Plik redirects `//upload`, which turns a POST into a GET). User info
/// (`user:password@`) is accepted: it is the file server's basic auth (see
/// [`basic_auth_of`]) and [`base_string`] leaves it out. Errors never show the password.
pub fn parse_base_url(base: &str) -> Result<url::Url> {
    let shown = without_userinfo(base);
    let bad = |why: String| Error::invalid_argument(format!("file server URL {shown:?} {why}"));
    let url = url::Url::parse(base.trim()).map_err(|e| bad(format!("is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("must start with http:// or https://".into()));
    }
    if url.host_str().is_none() {
        return Err(bad("has no host".into()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not have a query or fragment".into()));
    }
    Ok(url)
}

/// The base URL as text without its trailing `/` and without user info: what link URLs and
/// messages are made from.
pub(crate) fn base_string(url: &url::Url) -> String {
    let mut url = url.clone();
    // Only fails for URLs that cannot have user info, which then have none.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.as_str().trim_end_matches('/').to_owned()
}

/// `user:password` from the URL's user info (percent-decoded), when it has any.
pub(crate) fn basic_auth_of(url: &url::Url) -> Option<String> {
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    Some(format!(
        "{}:{}",
        decode(url.username()),
        decode(url.password().unwrap_or(""))
    ))
}

/// `text` with the user info of a URL-looking string replaced by `***`, for messages.
fn without_userinfo(text: &str) -> std::borrow::Cow<'_, str> {
    let Some(start) = text.find("://").map(|i| i + 3) else {
        return text.into();
    };
    let rest = &text[start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &text[..start], &rest[at..]).into(),
        None => text.into(),
    }
}

/// Checks a file server upload token: not empty, and usable as an HTTP header value.
pub(crate) fn check_token(token: &str) -> Result<()> {
    if token.is_empty() {
        return Err(Error::invalid_argument("fileserver_token is empty"));
    }
    if reqwest::header::HeaderValue::from_str(token).is_err() {
        return Err(Error::invalid_argument(
            "fileserver_token contains characters not allowed in an HTTP header",
        ));
    }
    Ok(())
}

fn origin_of(url: &url::Url) -> String {
    url.origin().ascii_serialization()
}

/// Checks a link URL from an envelope before any connection is made: http(s), no embedded
/// credentials, and an allowed origin. Fails with `LINK_URL_REJECTED`.
pub fn check_link_url(
    link: &str,
    allowed: &AllowedOrigins,
    fileserver: Option<&url::Url>,
) -> Result<url::Url> {
    let reject = |why: String| {
        Error::new(
            ErrorCode::LinkUrlRejected,
            format!("link URL {link:?} refused: {why}"),
        )
        .with_detail("url", link)
    };
    let url = url::Url::parse(link).map_err(|e| reject(format!("not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(reject(format!(
            "scheme {:?} is not http or https",
            url.scheme()
        )));
    }
    if url.host_str().is_none() {
        return Err(reject("no host".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(reject("credentials embedded in the URL".into()));
    }
    let origin = origin_of(&url);
    let own = fileserver.map(origin_of);
    let ok = match allowed {
        AllowedOrigins::Any => true,
        AllowedOrigins::FileServerOnly => own.as_deref() == Some(origin.as_str()),
        AllowedOrigins::These(list) => {
            own.as_deref() == Some(origin.as_str())
                || list.iter().any(|o| {
                    url::Url::parse(o)
                        .map(|u| origin_of(&u) == origin)
                        .unwrap_or(false)
                })
        }
    };
    if ok {
        Ok(url)
    } else {
        Err(reject(format!(
            "origin {origin} is not allowed (allowed: {}); allow it with link.allowed_origins",
            match (allowed, own) {
                (AllowedOrigins::These(l), Some(o)) => format!("{o}, {}", l.join(", ")),
                (AllowedOrigins::These(l), None) => l.join(", "),
                (_, Some(o)) => o,
                (_, None) => "none: no file server configured".into(),
            }
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe() {
        assert_eq!(safe_file_name("../a b"), "_a_b");
        assert_eq!(safe_file_name(".."), "payload");
        assert_eq!(safe_file_name("img-1.png"), "img-1.png");
        assert_eq!(safe_file_name("ü/x"), "ü_x");
        assert!(safe_file_name(&"é".repeat(200)).len() <= 100);
    }

    #[test]
    fn transfer_deadlines_scale_with_size_and_saturate() {
        let base = Duration::from_secs(10);
        assert_eq!(transfer_deadline(base, 0, 1024), base);
        assert_eq!(
            transfer_deadline(base, 3 * 1024, 1024),
            Duration::from_secs(13)
        );
        assert_eq!(
            transfer_deadline(base, 512, 1024),
            Duration::from_millis(10_500)
        );
        let rate = crate::config::DEFAULT_MIN_TRANSFER_RATE;
        assert_eq!(
            transfer_deadline(base, 100 * rate, rate),
            Duration::from_secs(110)
        );
        assert_eq!(transfer_deadline(base, u64::MAX, 1), Duration::MAX);
        assert_eq!(transfer_deadline(Duration::MAX, 1, 1), Duration::MAX);
        assert_eq!(transfer_deadline(base, 1, 0), Duration::MAX);
    }

    #[test]
    fn origins() {
        let fs = parse_base_url("http://127.0.0.1:8080/").unwrap();
        assert_eq!(base_string(&fs), "http://127.0.0.1:8080");
        let ok = |u: &str, a: &AllowedOrigins| check_link_url(u, a, Some(&fs)).is_ok();
        let own = AllowedOrigins::FileServerOnly;
        assert!(ok("http://127.0.0.1:8080/file/a/b/c", &own));
        assert!(!ok("http://127.0.0.1:8081/file/a/b/c", &own));
        assert!(!ok("https://127.0.0.1:8080/file/a/b/c", &own));
        assert!(!ok("http://evil.example/file/a/b/c", &own));
        assert!(!ok("file:///etc/passwd", &AllowedOrigins::Any));
        assert!(!ok("http://u:p@127.0.0.1:8080/x", &own));
        let these = AllowedOrigins::These(vec!["https://files.example.com".into()]);
        assert!(ok("https://files.example.com:443/x", &these));
        assert!(ok("http://127.0.0.1:8080/x", &these));
        assert!(ok("http://anything:1/x", &AllowedOrigins::Any));
        let e = check_link_url("http://x/y", &own, None).unwrap_err();
        assert_eq!(e.code(), ErrorCode::LinkUrlRejected);
        assert!(parse_base_url("ftp://x").is_err());
        assert!(parse_base_url("http://x/?q=1").is_err());
    }

    #[test]
    fn user_info_is_basic_auth_and_never_shown() {
        let url = parse_base_url("http://al%40ice:p%3Ass@127.0.0.1:8080/").unwrap();
        assert_eq!(base_string(&url), "http://127.0.0.1:8080");
        assert_eq!(basic_auth_of(&url).as_deref(), Some("al@ice:p:ss"));
        let url = parse_base_url("http://bob@files.example/plik").unwrap();
        assert_eq!(base_string(&url), "http://files.example/plik");
        assert_eq!(basic_auth_of(&url).as_deref(), Some("bob:"));
        assert_eq!(basic_auth_of(&parse_base_url("http://h:1").unwrap()), None);
        for bad in [
            "http://u:secret@h:1/?q",
            "ftp://u:secret@h",
            "http://u:secret@",
        ] {
            let e = parse_base_url(bad).unwrap_err();
            assert!(!e.message().contains("secret"), "{e}");
            assert!(e.message().contains("***@"), "{e}");
        }
        assert!(check_token("abc").is_ok());
        assert!(check_token("").is_err());
        assert!(check_token("a\nb").is_err());
    }
}
