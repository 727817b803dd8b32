//! A Plik protocol client (see `plik.md`): create an upload, add the file, build the URL;
//! download with exponential backoff, no redirects, a `plik_client` User-Agent, a size cap and
//! sha256 verification.

use super::{
    base_string, basic_auth_of, check_token, transfer_deadline, BoxFuture, DownloadRequest,
    PayloadStore, UploadRequest, Uploaded,
};
use crate::config::{Config, RetryPolicy};
use crate::error::{Error, ErrorCode, Result};
use crate::log::{trace, Level};
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::header::{HeaderValue, AUTHORIZATION};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// Characters kept as they are in a URL path segment (RFC 3986 unreserved).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The User-Agent: Plik answers clients whose agent starts with `plik_client` with plain
/// status codes instead of redirecting them to its web page.
pub(crate) const USER_AGENT: &str = concat!("plik_client/natsbridge-", env!("CARGO_PKG_VERSION"));

/// A [`PayloadStore`] speaking the Plik HTTP API.
#[derive(Debug, Clone)]
pub struct PlikStore {
    base: Option<String>,
    http: reqwest::Client,
    oneshot: bool,
    ttl_secs: u64,
    retry: RetryPolicy,
    /// Base of every upload's deadline, and the bound of one clean-up request.
    operation_timeout: Duration,
    /// `link.min_transfer_rate`.
    min_transfer_rate: u64,
    /// `X-PlikToken` for creating uploads (`Config::fileserver_token`).
    token: Option<HeaderValue>,
    /// `Authorization: Basic` from the base URL's user info, for the upload requests.
    basic_auth: Option<HeaderValue>,
}

#[derive(Deserialize)]
struct CreatedUpload {
    id: String,
    #[serde(rename = "uploadToken", default)]
    upload_token: Option<String>,
}

#[derive(Deserialize)]
struct AddedFile {
    id: String,
}

/// A file name Plik can route: no `/` or `\`, not `.` or `..`, not empty. The dataname travels
/// in the envelope, so the file name is only cosmetic.
fn routable_name(dataname: &str) -> String {
    let name: String = dataname
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    match name.as_str() {
        "" | "." | ".." => "payload".into(),
        _ => name,
    }
}

fn upload_failed(message: String) -> Error {
    Error::new(ErrorCode::UploadFailed, message)
}

/// The first line of a plain-text error body, shortened, for messages.
async fn error_text(resp: reqwest::Response) -> String {
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    let line = body.lines().next().unwrap_or("").trim();
    let line: String = line.chars().take(200).collect();
    if line.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {line}")
    }
}

impl PlikStore {
    /// A client for the Plik server at `base_url` (normally `config.fileserver_url`), set up
    /// from `config`: link options, timeouts, `fileserver_token`; without a base URL it can
    /// only download. User info in `base_url` becomes the basic auth of upload requests.
    pub fn new(base_url: Option<&str>, config: &Config) -> Result<PlikStore> {
        let url = base_url.map(super::parse_base_url).transpose()?;
        let base = url.as_ref().map(base_string);
        let basic_auth = url.as_ref().and_then(basic_auth_of).map(|credentials| {
            let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
            secret_header(&format!("Basic {encoded}"))
        });
        let token = match config.fileserver_token.as_deref() {
            Some(token) => {
                check_token(token)?;
                secret_header(token)
            }
            None => None,
        };
        let link = &config.link;
        Ok(PlikStore {
            base,
            http: http_client(config.connect_timeout, config.http_idle_timeout)?,
            oneshot: link.oneshot,
            ttl_secs: link.ttl.as_secs().max(1),
            retry: link.retry.clone(),
            operation_timeout: config.operation_timeout,
            min_transfer_rate: config.link.min_transfer_rate.max(1),
            token,
            basic_auth: basic_auth.flatten(),
        })
    }

    /// `request` with the basic auth of the base URL, if any.
    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.basic_auth {
            Some(value) => request.header(AUTHORIZATION, value.clone()),
            None => request,
        }
    }

    /// The base URL, without trailing `/`.
    pub fn base_url(&self) -> Option<&str> {
        self.base.as_deref()
    }

    /// Uploads within [`transfer_deadline`] (`operation_timeout` plus the payload's size at
    /// `link.min_transfer_rate`). If it fails after the upload was created (the file was
    /// refused, the transfer broke off or ran out of time), the upload is removed again.
    async fn do_upload(&self, req: UploadRequest<'_>) -> Result<Uploaded> {
        let base = self
            .base
            .as_deref()
            .ok_or_else(|| upload_failed("no file server is configured".into()))?;
        let (dataname, len) = (req.dataname, req.data.len() as u64);
        let deadline = transfer_deadline(self.operation_timeout, len, self.min_transfer_rate);
        let mut created = None;
        let result = tokio::time::timeout(deadline, self.upload_steps(base, req, &mut created))
            .await
            .unwrap_or_else(|_| {
                Err(upload_failed(format!(
                    "uploading {dataname:?} ({len} bytes) to {base} did not complete within {} ms \
                     (operation_timeout {} ms plus the size at {} bytes/s)",
                    deadline.as_millis(),
                    self.operation_timeout.as_millis(),
                    self.min_transfer_rate
                )))
            });
        if result.is_err() {
            if let Some((id, token)) = created {
                self.remove_upload(base, &id, &token).await;
            }
        }
        result
    }

    /// Creates the upload (recorded in `created` as soon as the server answers) and adds the
    /// file to it.
    async fn upload_steps(
        &self,
        base: &str,
        req: UploadRequest<'_>,
        created: &mut Option<(String, String)>,
    ) -> Result<Uploaded> {
        let (dataname, cid) = (req.dataname, req.correlation_id);
        let create = serde_json::json!({"OneShot": self.oneshot, "TTL": self.ttl_secs});
        let mut request = self
            .authorized(self.http.post(format!("{base}/upload")))
            .header("Content-Type", "application/json");
        if let Some(token) = &self.token {
            request = request.header("X-PlikToken", token.clone());
        }
        let sent = request.body(create.to_string()).send().await;
        let upload: CreatedUpload = plik_reply(
            sent,
            || format!("cannot reach file server {base}"),
            "create an upload",
        )
        .await?;
        checked_id(&upload.id, "upload")?;
        let (id, token) = (upload.id, upload.upload_token.unwrap_or_default());
        *created = Some((id.clone(), token.clone()));

        let name = routable_name(dataname);
        let len = req.data.len() as u64;
        let body = match req.progress {
            None => reqwest::Body::from(req.data),
            Some(progress) => counted_body(req.data, progress.clone()),
        };
        let part = reqwest::multipart::Part::stream_with_length(body, len)
            .file_name(name.clone())
            .mime_str("application/octet-stream")
            .map_err(|e| Error::internal(format!("multipart part: {e}")))?;
        let form = reqwest::multipart::Form::new().part("file", part);
        let sent = self
            .authorized(self.http.post(format!("{base}/file/{id}")))
            .header("X-UploadToken", &token)
            .multipart(form)
            .send()
            .await;
        let added: AddedFile = plik_reply(
            sent,
            || format!("uploading {dataname:?} to {base}"),
            &format!("accept the file {dataname:?}"),
        )
        .await?;
        checked_id(&added.id, "file")?;
        let url = format!(
            "{base}/file/{id}/{}/{}",
            added.id,
            utf8_percent_encode(&name, SEGMENT)
        );
        trace!(
            Level::Info,
            cid,
            "Uploaded '{dataname}' ({len} bytes) to {url}"
        );
        Ok(Uploaded {
            url,
            discard_token: Some(format!("{id}\n{token}")),
        })
    }

    /// Best-effort `DELETE /upload/{id}` as the upload's admin, within `operation_timeout`.
    async fn remove_upload(&self, base: &str, id: &str, token: &str) {
        let request = self
            .authorized(self.http.delete(format!("{base}/upload/{id}")))
            .header("X-UploadToken", token)
            .send();
        let _ = tokio::time::timeout(self.operation_timeout, request).await;
    }

    /// Downloads with retries into memory (`to` = None) or into the file `to` (rewritten by
    /// each attempt).
    async fn do_download(&self, req: DownloadRequest<'_>, to: Option<&Path>) -> Result<Fetched> {
        let mut last = String::new();
        let attempts = self.retry.max_attempts.max(1);
        for attempt in 1..=attempts {
            match self.attempt(&req, to).await {
                Ok(done) => return Ok(done),
                Err(Failure::Permanent(e)) => return Err(e),
                Err(Failure::Transient(why)) => {
                    last = why;
                    if attempt < attempts {
                        let delay = self.retry.delay_after(attempt);
                        trace!(
                            Level::Debug,
                            req.correlation_id,
                            "Download attempt {attempt}/{attempts} of {} failed ({last}); retrying in {} ms",
                            req.url,
                            delay.as_millis()
                        );
                        tokio::time::sleep(delay).await;
                    }
                }
            }
        }
        Err(Error::new(
            ErrorCode::DownloadFailed,
            format!("Failed to fetch data after {attempts} attempts: {last}"),
        )
        .with_detail("url", req.url)
        .with_detail("attempts", attempts))
    }

    async fn attempt(
        &self,
        req: &DownloadRequest<'_>,
        to: Option<&Path>,
    ) -> std::result::Result<Fetched, Failure> {
        // The first-byte deadline: a server that accepts and never answers costs one
        // operation timeout per attempt (the message's download deadline bounds them all).
        let resp = match tokio::time::timeout(self.operation_timeout, self.http.get(req.url).send())
            .await
        {
            Ok(r) => r.map_err(|e| Failure::Transient(format!("{e}")))?,
            Err(_) => {
                return Err(Failure::Transient(format!(
                    "no answer within {} ms",
                    self.operation_timeout.as_millis()
                )))
            }
        };
        let status = resp.status();
        if status != reqwest::StatusCode::OK {
            let permanent = status.is_redirection()
                || (status.is_client_error() && status.as_u16() != 408 && status.as_u16() != 429);
            let text = error_text(resp).await;
            return Err(if permanent {
                Failure::Permanent(
                    Error::new(
                        ErrorCode::DownloadFailed,
                        format!("file server answered {text} for {}", req.url),
                    )
                    .with_detail("url", req.url)
                    .with_detail("status", status.as_u16()),
                )
            } else {
                Failure::Transient(text)
            });
        }
        let cap = req.expected_size.unwrap_or(req.max_bytes);
        if let Some(len) = resp.content_length() {
            if len > cap {
                return Err(Failure::Permanent(integrity(
                    req,
                    format!("file server announces {len} bytes, more than the {cap} expected"),
                )));
            }
        }
        let mut sink = match to {
            None => Sink::Memory(BytesMut::with_capacity(
                cap.min(resp.content_length().unwrap_or(cap)) as usize,
            )),
            // A small buffer: what waits for the disk stays small however large the file
            // (the receiver's memory is flat in the payload size).
            Some(path) => Sink::File(tokio::io::BufWriter::with_capacity(
                256 << 10,
                tokio::fs::File::create(path)
                    .await
                    .map_err(|e| Failure::Permanent(local_io(path, e)))?,
            )),
        };
        let mut hasher = req.sha256.map(|_| Sha256::new());
        let mut received: u64 = 0;
        let mut resp = resp;
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    received += chunk.len() as u64;
                    if received > cap {
                        return Err(Failure::Permanent(integrity(
                            req,
                            format!("file server sent more than the {cap} bytes expected"),
                        )));
                    }
                    if let Some(h) = hasher.as_mut() {
                        h.update(&chunk);
                    }
                    match &mut sink {
                        Sink::Memory(buf) => buf.extend_from_slice(&chunk),
                        Sink::File(f) => f.write_all(&chunk).await.map_err(|e| {
                            Failure::Permanent(local_io(to.unwrap_or(Path::new("")), e))
                        })?,
                    }
                }
                Ok(None) => break,
                Err(e) => return Err(Failure::Transient(format!("download interrupted: {e}"))),
            }
        }
        if let Some(expected) = req.expected_size {
            if received != expected {
                return Err(Failure::Permanent(integrity(
                    req,
                    format!("received {received} bytes, the envelope declares {expected}"),
                )));
            }
        }
        if let (Some(h), Some(want)) = (hasher, req.sha256) {
            let got = hex::encode(h.finalize());
            if !got.eq_ignore_ascii_case(want) {
                return Err(Failure::Permanent(integrity(
                    req,
                    format!(
                        "sha256 mismatch: envelope declares {want}, received bytes hash to {got}"
                    ),
                )));
            }
        }
        match sink {
            Sink::Memory(buf) => Ok(Fetched::Memory(buf.freeze())),
            Sink::File(mut f) => {
                f.flush()
                    .await
                    .map_err(|e| Failure::Permanent(local_io(to.unwrap_or(Path::new("")), e)))?;
                Ok(Fetched::File(received))
            }
        }
    }
}

/// The bytes as a body sent in 256 KiB slices (no copies), counting each slice as it goes.
fn counted_body(data: Bytes, progress: crate::progress::Progress) -> reqwest::Body {
    const SLICE: usize = 256 * 1024;
    let len = data.len();
    let slices = (0..len.div_ceil(SLICE)).map(move |i| {
        let chunk = data.slice(i * SLICE..((i + 1) * SLICE).min(len));
        progress.advance(chunk.len() as u64);
        Ok::<_, std::io::Error>(chunk)
    });
    reqwest::Body::wrap_stream(futures_util::stream::iter(slices))
}

enum Sink {
    Memory(BytesMut),
    File(tokio::io::BufWriter<tokio::fs::File>),
}

enum Fetched {
    Memory(Bytes),
    File(u64),
}

fn local_io(path: &Path, e: std::io::Error) -> Error {
    Error::new(
        ErrorCode::DownloadFailed,
        format!(
            "cannot write the downloaded payload to {}: {e}",
            path.display()
        ),
    )
}

enum Failure {
    Transient(String),
    Permanent(Error),
}

fn integrity(req: &DownloadRequest<'_>, why: String) -> Error {
    Error::new(ErrorCode::IntegrityError, format!("{}: {why}", req.url)).with_detail("url", req.url)
}

/// A header value kept out of `Debug` output; `None` if it cannot be a header value.
fn secret_header(value: &str) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_str(value).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// An id that is safe in a URL path: Plik's are 16 alphanumerics.
fn checked_id(id: &str, what: &str) -> Result<()> {
    if !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(upload_failed(format!(
            "file server returned an invalid {what} id {id:?}"
        )))
    }
}

/// The JSON reply of one upload step, or `UPLOAD_FAILED` saying which step failed and why.
async fn plik_reply<T: serde::de::DeserializeOwned>(
    sent: reqwest::Result<reqwest::Response>,
    unreachable: impl FnOnce() -> String,
    step: &str,
) -> Result<T> {
    let resp = sent.map_err(|e| upload_failed(format!("{}: {e}", unreachable())))?;
    if resp.status() != reqwest::StatusCode::OK {
        return Err(upload_failed(format!(
            "file server refused to {step}: {}",
            error_text(resp).await
        )));
    }
    let body = resp
        .bytes()
        .await
        .map_err(|e| upload_failed(format!("reading the reply to '{step}': {e}")))?;
    serde_json::from_slice(&body)
        .map_err(|e| upload_failed(format!("the reply to '{step}' is not Plik JSON: {e}")))
}

/// The HTTP client used for the file server: no redirects, Plik client agent, timeouts.
pub(crate) fn http_client(
    connect_timeout: Duration,
    idle_timeout: Duration,
) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(USER_AGENT)
        .connect_timeout(connect_timeout)
        .read_timeout(idle_timeout)
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| Error::internal(format!("cannot build the HTTP client: {e}")))
}

impl PayloadStore for PlikStore {
    fn upload<'a>(&'a self, request: UploadRequest<'a>) -> BoxFuture<'a, Result<Uploaded>> {
        let (dataname, correlation_id) = (request.dataname, request.correlation_id);
        Box::pin(async move {
            self.do_upload(request).await.map_err(|e| {
                e.with_correlation_id(correlation_id)
                    .with_detail("dataname", dataname)
            })
        })
    }

    fn download<'a>(&'a self, request: DownloadRequest<'a>) -> BoxFuture<'a, Result<Bytes>> {
        Box::pin(async move {
            match self.do_download(request, None).await {
                Ok(Fetched::Memory(b)) => Ok(b),
                Ok(Fetched::File(_)) => Err(Error::internal("download into memory wrote a file")),
                Err(e) => Err(e.with_correlation_id(request.correlation_id)),
            }
        })
    }

    fn download_to_file<'a>(
        &'a self,
        request: DownloadRequest<'a>,
        path: &'a Path,
    ) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move {
            match self.do_download(request, Some(path)).await {
                Ok(Fetched::File(n)) => Ok(n),
                Ok(Fetched::Memory(_)) => Err(Error::internal("download into a file kept memory")),
                Err(e) => Err(e.with_correlation_id(request.correlation_id)),
            }
        })
    }

    fn discard<'a>(&'a self, uploaded: &'a Uploaded) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let Some(base) = self.base.as_deref() else {
                return;
            };
            let Some((id, token)) = uploaded
                .discard_token
                .as_deref()
                .and_then(|t| t.split_once('\n'))
            else {
                return;
            };
            self.remove_upload(base, id, token).await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_routable() {
        assert_eq!(routable_name("a/b"), "a_b");
        assert_eq!(routable_name(".."), "payload");
        assert_eq!(routable_name("img 1.png"), "img 1.png");
        assert_eq!(
            utf8_percent_encode("img 1#?%é.png", SEGMENT).to_string(),
            "img%201%23%3F%25%C3%A9.png"
        );
    }
}
