//! File transfer: receiving a multipart upload onto disk, serving a download (with the
//! one-shot claim), and deleting a file. Data is streamed in both directions and never
//! held whole in memory.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::multipart::{Field, MultipartRejection};
use axum::extract::rejection::PathRejection;
use axum::extract::{Multipart, Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::response::Response;
use bytes::Bytes;
use futures_util::Stream;
use md5::{Digest as _, Md5};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};
use tokio::io::{AsyncWriteExt as _, BufWriter};
use tokio_util::io::ReaderStream;

use super::error::ApiError;
use super::model::{FileRecord, FileStatus};
use super::request::CreateRequest;
use super::routes::{
    bad_path, check_file_name, check_live, create, json_response, named_file, open_upload,
    text_response, App, MAX_FILES_PER_UPLOAD,
};
use super::sniff::{detect_content_type, safe_download_type, SNIFF_LEN};
use super::store::Slot;

/// Characters escaped in the file-name segment of a URL we hand out.
const PATH_SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// Read size for downloads.
const DOWNLOAD_CHUNK: usize = 64 * 1024;
/// Write buffer for uploads, so that small multipart chunks do not each cost a syscall.
const UPLOAD_BUFFER: usize = 256 * 1024;

// ---------------------------------------------------------------------------------------
// Upload

/// How to answer a successful upload.
enum Reply {
    /// The File JSON.
    Json,
    /// Quick mode (`POST /`): the download URL as text.
    Url { base: String },
}

/// `POST /`: create an upload with default settings and add the file to it. If the file
/// cannot be added, the upload made for it is removed again.
pub(crate) async fn quick_upload(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    app.auth.check(&headers)?;
    let (upload_id, slot, _) = create(&app, CreateRequest::default()).await?;
    let base = request_base(&headers).unwrap_or_else(|| app.base_url.clone());
    let result = receive(&app, &upload_id, None, multipart, Reply::Url { base }).await;
    if result.is_err() {
        let mut state = slot.lock().await;
        app.store.remove(&mut state).await;
    }
    result
}

/// `POST /file/{upload}`: add a new file.
pub(crate) async fn add_new_file(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let Path(upload_id) = path.map_err(bad_path)?;
    let (_, _, admin) = open_upload(&app, &upload_id, &headers).await?;
    if !admin {
        return Err(not_allowed_to_add());
    }
    receive(&app, &upload_id, None, multipart, Reply::Json).await
}

/// `POST /file|stream/{upload}/{file}/{name}`: upload a file declared at creation.
pub(crate) async fn add_declared_file(
    State(app): State<Arc<App>>,
    path: Result<Path<(String, String, String)>, PathRejection>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let Path((upload_id, file_id, file_name)) = path.map_err(bad_path)?;
    {
        let (_, state, admin) = open_upload(&app, &upload_id, &headers).await?;
        named_file(&state, &file_id, &file_name)?;
        if !admin {
            return Err(not_allowed_to_add());
        }
    }
    receive(&app, &upload_id, Some(file_id), multipart, Reply::Json).await
}

fn not_allowed_to_add() -> ApiError {
    ApiError::forbidden("you are not allowed to add file to this upload")
}

/// `http://<Host>` when the request carries a plain `host[:port]`.
fn request_base(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let valid = !host.is_empty()
        && !host.contains('@')
        && host.parse::<axum::http::uri::Authority>().is_ok();
    valid.then(|| format!("http://{host}"))
}

/// Receive the multipart part named `file` into the upload (the caller has checked the
/// caller's rights). `declared` is the file ID for a file declared at creation.
async fn receive(
    app: &Arc<App>,
    upload_id: &str,
    declared: Option<String>,
    multipart: Result<Multipart, MultipartRejection>,
    reply: Reply,
) -> Result<Response, ApiError> {
    let mut multipart = multipart.map_err(|e| {
        ApiError::bad_request(format!("invalid multipart form : {}", e.body_text()))
    })?;
    // Skip parts up to the one named `file`; later parts are never read.
    let mut field = loop {
        match multipart.next_field().await {
            Ok(Some(field)) if field.name() == Some("file") => break field,
            Ok(Some(_)) => continue,
            Ok(None) => return Err(ApiError::bad_request("missing file from multipart form")),
            Err(e) => {
                return Err(ApiError::bad_request(format!(
                    "invalid multipart form : {}",
                    e.body_text()
                )))
            }
        }
    };
    let file_name = part_file_name(&field)
        .ok_or_else(|| ApiError::bad_request("missing file name from multipart form"))?;

    let slot = app
        .store
        .get(upload_id)
        .ok_or_else(|| ApiError::upload_not_found(upload_id))?;
    // Refused before any file entry is made when nothing more fits.
    if app.store.quota.is_full() {
        return Err(ApiError::quota_exceeded(app.store.quota.limit()));
    }
    let (file_id, part_path, out) = claim_for_upload(&slot, upload_id, declared, file_name).await?;

    let mut guard = ReceiveGuard {
        app: app.clone(),
        slot,
        file_id,
        part_path,
        armed: true,
        reserved: 0,
    };
    let received = match write_field(&mut field, out, app, &mut guard.reserved).await {
        Ok(received) => received,
        Err(e) => {
            guard.fail().await;
            return Err(e);
        }
    };
    let file = guard.complete(upload_id, received).await?;

    match reply {
        Reply::Json => json_response(&file.reply()),
        Reply::Url { base } => Ok(text_response(format!(
            "{base}/file/{upload_id}/{}/{}\n",
            file.id,
            utf8_percent_encode(&file.name, PATH_SEGMENT)
        ))),
    }
}

/// Under the upload's lock: pick or create the file entry, move it to `uploading`, and
/// create its temp file.
async fn claim_for_upload(
    slot: &Slot,
    upload_id: &str,
    declared: Option<String>,
    file_name: String,
) -> Result<(String, PathBuf, tokio::fs::File), ApiError> {
    let mut state = slot.lock().await;
    check_live(&state, upload_id)?;
    let file_id = match declared {
        Some(file_id) => {
            let file = state
                .record
                .file_mut(&file_id)
                .ok_or_else(|| ApiError::not_found(format!("file {file_id} not found")))?;
            if file.name != file_name {
                return Err(ApiError::bad_request("invalid file name"));
            }
            if file.status != FileStatus::Missing {
                return Err(ApiError::bad_request(format!(
                    "invalid file status {}, expected missing",
                    file.status.as_str()
                )));
            }
            file.status = FileStatus::Uploading;
            file_id
        }
        None => {
            if state.record.files.len() >= MAX_FILES_PER_UPLOAD {
                return Err(ApiError::bad_request(format!(
                    "maximum number file per upload reached, limit is {MAX_FILES_PER_UPLOAD}"
                )));
            }
            check_file_name(&file_name)
                .map_err(|e| ApiError::bad_request(format!("unable to create file : {e}")))?;
            let file_id = state.record.new_file_id();
            state.record.files.push(FileRecord {
                id: file_id.clone(),
                name: file_name,
                status: FileStatus::Uploading,
                md5: String::new(),
                mime_type: String::new(),
                size: 0,
                reference: String::new(),
                created_at: SystemTime::now(),
            });
            file_id
        }
    };
    let part_path = state.part_path(&file_id);
    let opened = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&part_path)
        .await;
    match opened {
        Ok(out) => Ok((file_id, part_path, out)),
        Err(_) => {
            if let Some(file) = state.record.file_mut(&file_id) {
                file.status = FileStatus::Removed;
            }
            let _ = state.persist().await;
            Err(ApiError::internal())
        }
    }
}

/// What was learnt while receiving a file.
struct Received {
    size: u64,
    md5: String,
    mime_type: &'static str,
}

/// Copy one multipart part to `out`, counting, hashing and sniffing on the way. Every chunk
/// is checked against the file size limit and reserved in the quota (`reserved` counts
/// what was taken) before it is written.
async fn write_field(
    field: &mut Field<'_>,
    out: tokio::fs::File,
    app: &App,
    reserved: &mut u64,
) -> Result<Received, ApiError> {
    let max_file_size = app.max_file_size;
    let mut out = BufWriter::with_capacity(UPLOAD_BUFFER, out);
    let mut md5 = Md5::new();
    let mut size: u64 = 0;
    let mut head = Vec::with_capacity(SNIFF_LEN);
    loop {
        let chunk = field.chunk().await.map_err(|e| {
            ApiError::bad_request(format!(
                "unable to read data from request body : {}",
                e.body_text()
            ))
        })?;
        let Some(chunk) = chunk else { break };
        size += chunk.len() as u64;
        if size > max_file_size {
            return Err(ApiError::bad_request(format!(
                "file too big (limit is set to {max_file_size} bytes)"
            )));
        }
        if !app.store.quota.try_reserve(chunk.len() as u64) {
            return Err(ApiError::quota_exceeded(app.store.quota.limit()));
        }
        *reserved += chunk.len() as u64;
        if head.len() < SNIFF_LEN {
            let take = (SNIFF_LEN - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        md5.update(&chunk);
        out.write_all(&chunk).await?;
    }
    out.flush().await?;
    out.into_inner().sync_all().await?;
    Ok(Received {
        size,
        md5: hex::encode(md5.finalize()),
        mime_type: detect_content_type(&head),
    })
}

/// Owns a file that is being received. If the transfer fails or the request is dropped
/// half-way (client gone, server stopped), the temp file is removed, its bytes go back to
/// the quota, and the file is marked `removed` (which removes an upload left without files).
struct ReceiveGuard {
    app: Arc<App>,
    slot: Slot,
    file_id: String,
    part_path: PathBuf,
    armed: bool,
    /// Quota bytes taken for the data received so far.
    reserved: u64,
}

impl ReceiveGuard {
    /// The transfer failed: discard the data and mark the file `removed`.
    async fn fail(&mut self) {
        self.armed = false;
        let _ = tokio::fs::remove_file(&self.part_path).await;
        self.app
            .store
            .quota
            .release(std::mem::take(&mut self.reserved));
        mark_failed(&self.app, &self.slot, &self.file_id).await;
    }

    /// The transfer succeeded: move the data into place and record it as `uploaded`.
    /// Until it returns `Ok`, the guard stays armed, so a cancelled or failed completion
    /// still cleans up (the clean-up only touches a file that is still `uploading`).
    async fn complete(
        &mut self,
        upload_id: &str,
        received: Received,
    ) -> Result<FileRecord, ApiError> {
        let mut state = self.slot.lock().await;
        let status = state.record.file(&self.file_id).map(|f| f.status);
        let refused = if state.gone {
            Some(ApiError::upload_not_found(upload_id))
        } else if status != Some(FileStatus::Uploading) {
            // Deleted while it was being received.
            Some(ApiError::not_found(format!(
                "file {} not found",
                self.file_id
            )))
        } else {
            None
        };
        if let Some(error) = refused {
            let _ = tokio::fs::remove_file(&self.part_path).await;
            return Err(error);
        }
        let data_path = state.data_path(&self.file_id);
        let renamed = tokio::fs::rename(&self.part_path, &data_path).await;
        let Some(file) = state.record.file_mut(&self.file_id) else {
            return Err(ApiError::internal());
        };
        if renamed.is_err() {
            file.status = FileStatus::Removed;
            let _ = tokio::fs::remove_file(&self.part_path).await;
            let _ = state.persist().await;
            return Err(ApiError::internal());
        }
        file.status = FileStatus::Uploaded;
        file.size = i64::try_from(received.size).unwrap_or(i64::MAX);
        file.md5 = received.md5;
        file.mime_type = received.mime_type.to_string();
        let file = file.clone();
        if state.persist().await.is_err() {
            if let Some(file) = state.record.file_mut(&self.file_id) {
                file.status = FileStatus::Removed;
            }
            let _ = tokio::fs::remove_file(&data_path).await;
            return Err(ApiError::internal());
        }
        // The reserved bytes now belong to the stored file.
        self.reserved = 0;
        self.armed = false;
        Ok(file)
    }
}

impl Drop for ReceiveGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let _ = std::fs::remove_file(&self.part_path);
        self.app
            .store
            .quota
            .release(std::mem::take(&mut self.reserved));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let app = self.app.clone();
            let slot = self.slot.clone();
            let file_id = std::mem::take(&mut self.file_id);
            runtime.spawn(async move { mark_failed(&app, &slot, &file_id).await });
        }
    }
}

/// A file that was being received is `removed`; the upload goes if nothing is left of it.
async fn mark_failed(app: &App, slot: &Slot, file_id: &str) {
    let mut state = slot.lock().await;
    if let Some(file) = state.record.file_mut(file_id) {
        if file.status == FileStatus::Uploading {
            file.status = FileStatus::Removed;
            let _ = state.persist().await;
        }
    }
    app.store.retire_if_done(&mut state).await;
}

/// The file name of a multipart part, as Go's `Part.FileName()` gives it: the
/// `filename` (or RFC 5987 `filename*`) parameter, reduced to its last path component.
fn part_file_name(field: &Field<'_>) -> Option<String> {
    let raw = field
        .headers()
        .get(header::CONTENT_DISPOSITION)
        .and_then(|v| disposition_file_name(v.as_bytes()))
        .or_else(|| field.file_name().map(str::to_string))?;
    let trimmed = raw.trim_end_matches('/');
    let base = trimmed.rsplit('/').next().unwrap_or_default();
    (!base.is_empty()).then(|| base.to_string())
}

/// The `filename` parameter of a `Content-Disposition` value, quoted-string escapes undone;
/// `filename*=utf-8''…` wins when present.
fn disposition_file_name(value: &[u8]) -> Option<String> {
    let value = std::str::from_utf8(value).ok()?;
    let (_, mut rest) = value.split_once(';')?;
    let mut plain = None;
    let mut extended = None;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ';']);
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key.trim().to_ascii_lowercase();
        let after = after.trim_start_matches([' ', '\t']);
        let (param, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let mut param = String::new();
            let mut chars = quoted.char_indices().peekable();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    '\\' if chars
                        .peek()
                        .is_some_and(|&(_, n)| "()<>@,;:\\\"/[]?= \t".contains(n)) =>
                    {
                        if let Some((_, n)) = chars.next() {
                            param.push(n);
                        }
                    }
                    c => param.push(c),
                }
            }
            (param, &quoted[end?..])
        } else {
            let end = after.find(';').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        match key.as_str() {
            "filename" => plain = Some(param),
            "filename*" => extended = decode_extended(&param),
            _ => {}
        }
        rest = remaining;
    }
    extended.or(plain)
}

/// RFC 5987 `charset'lang'percent-encoded`, UTF-8 (or ASCII) only.
fn decode_extended(value: &str) -> Option<String> {
    let mut parts = value.splitn(3, '\'');
    let charset = parts.next()?.to_ascii_lowercase();
    let _language = parts.next()?;
    let encoded = parts.next()?;
    if charset != "utf-8" && charset != "us-ascii" {
        return None;
    }
    percent_decode_str(encoded)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

// ---------------------------------------------------------------------------------------
// Download

/// `GET|HEAD /file|stream/{upload}/{file}/{name}`.
pub(crate) async fn get_file(
    State(app): State<Arc<App>>,
    method: Method,
    path: Result<Path<(String, String, String)>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Path((upload_id, file_id, file_name)) = path.map_err(bad_path)?;
    let (slot, mut state, _) = open_upload(&app, &upload_id, &headers).await?;
    let file = named_file(&state, &file_id, &file_name)?.clone();
    if file.status != FileStatus::Uploaded {
        return Err(ApiError::not_found(format!(
            "file {} ({}) is not available : {}",
            file.name,
            file.id,
            file.status.as_str()
        )));
    }
    let one_shot = state.record.one_shot;
    let data_path = state.data_path(&file_id);

    let body = if method == Method::HEAD {
        // Headers only; a HEAD never consumes a one-shot file.
        Body::empty()
    } else if one_shot {
        // The claim: flip to `removed` and persist before a single byte is sent. Other
        // downloaders wait on the lock and then see `removed`.
        set_status(&mut state, &file_id, FileStatus::Removed);
        if state.persist().await.is_err() {
            set_status(&mut state, &file_id, FileStatus::Uploaded);
            return Err(ApiError::internal());
        }
        let opened = tokio::fs::File::open(&data_path).await;
        // Unlink now: the data can never be served again, even after a crash.
        let _ = tokio::fs::remove_file(&data_path).await;
        let data = match opened {
            Ok(data) => data,
            Err(_) => {
                set_status(&mut state, &file_id, FileStatus::Deleted);
                app.store.quota.release(file.size.max(0).unsigned_abs());
                let _ = state.persist().await;
                app.store.retire_if_done(&mut state).await;
                return Err(ApiError::internal());
            }
        };
        drop(state);
        Body::from_stream(OneShotStream {
            inner: ReaderStream::with_capacity(data, DOWNLOAD_CHUNK),
            app: app.clone(),
            slot,
            file_id: file_id.clone(),
        })
    } else {
        let data = tokio::fs::File::open(&data_path).await?;
        drop(state);
        Body::from_stream(ReaderStream::with_capacity(data, DOWNLOAD_CHUNK))
    };

    let mut response = Response::new(body);
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(safe_download_type(&file.mime_type))
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(file.size.max(0)));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let attachment = query.as_deref().is_some_and(wants_attachment);
    h.insert(
        header::CONTENT_DISPOSITION,
        content_disposition(&file.name, attachment),
    );
    if one_shot {
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache, no-store, must-revalidate"),
        );
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        h.insert(header::EXPIRES, HeaderValue::from_static("0"));
    }
    Ok(response)
}

fn set_status(state: &mut super::store::UploadState, file_id: &str, status: FileStatus) {
    if let Some(file) = state.record.file_mut(file_id) {
        file.status = status;
    }
}

/// `?dl=<non-empty>` asks for `attachment`.
fn wants_attachment(query: &str) -> bool {
    query.split('&').any(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        key == "dl" && !value.is_empty()
    })
}

/// `filename="<name>"`, with the name made safe for a quoted header parameter.
fn content_disposition(name: &str, attachment: bool) -> HeaderValue {
    let mut safe = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '"' | '\\' => {
                safe.push('\\');
                safe.push(c);
            }
            c if c.is_control() => safe.push('_'),
            c => safe.push(c),
        }
    }
    let prefix = if attachment { "attachment; " } else { "" };
    HeaderValue::from_str(&format!("{prefix}filename=\"{safe}\""))
        .unwrap_or(HeaderValue::from_static("attachment"))
}

/// Streams a claimed one-shot file; when the response body is finished or dropped, the
/// file is marked `deleted` (its data was unlinked at claim time), its bytes go back to the
/// quota, and the upload is removed if that was its last file.
struct OneShotStream {
    inner: ReaderStream<tokio::fs::File>,
    app: Arc<App>,
    slot: Slot,
    file_id: String,
}

impl Stream for OneShotStream {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

impl Drop for OneShotStream {
    fn drop(&mut self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let app = self.app.clone();
        let slot = self.slot.clone();
        let file_id = std::mem::take(&mut self.file_id);
        runtime.spawn(async move {
            let mut state = slot.lock().await;
            if let Some(file) = state.record.file_mut(&file_id) {
                if file.status == FileStatus::Removed {
                    file.status = FileStatus::Deleted;
                    app.store.quota.release(file.size.max(0).unsigned_abs());
                    let _ = state.persist().await;
                }
            }
            app.store.retire_if_done(&mut state).await;
        });
    }
}

// ---------------------------------------------------------------------------------------
// Delete

/// `DELETE /file/{upload}/{file}/{name}`: allowed when removable or for the admin.
pub(crate) async fn delete_file(
    State(app): State<Arc<App>>,
    path: Result<Path<(String, String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Path((upload_id, file_id, file_name)) = path.map_err(bad_path)?;
    let (_, mut state, admin) = open_upload(&app, &upload_id, &headers).await?;
    let status = named_file(&state, &file_id, &file_name)?.status;
    if !state.record.removable && !admin {
        return Err(ApiError::forbidden(
            "you are not allowed to remove files from this upload",
        ));
    }
    // A file still being received is only marked; its receiver discards the data (and
    // gives its bytes back to the quota).
    let new_status = if status == FileStatus::Uploading {
        FileStatus::Removed
    } else {
        FileStatus::Deleted
    };
    match tokio::fs::remove_file(state.data_path(&file_id)).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(_) => return Err(ApiError::internal()),
    }
    if status == FileStatus::Uploaded {
        let size = named_file(&state, &file_id, &file_name)?.size;
        app.store.quota.release(size.max(0).unsigned_abs());
    }
    set_status(&mut state, &file_id, new_status);
    state.persist().await?;
    app.store.retire_if_done(&mut state).await;
    Ok(text_response("ok".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_disposition_file_names() {
        let f = |v: &str| disposition_file_name(v.as_bytes());
        assert_eq!(
            f(r#"form-data; name="file"; filename="a b.txt""#).as_deref(),
            Some("a b.txt")
        );
        assert_eq!(
            f(r#"form-data; name="file"; filename="q\"uo\\te""#).as_deref(),
            Some("q\"uo\\te")
        );
        assert_eq!(
            f("form-data; name=file; filename=plain.bin").as_deref(),
            Some("plain.bin")
        );
        assert_eq!(
            f("form-data; name=\"file\"; filename=\"x\"; filename*=UTF-8''%C3%A9t%C3%A9.txt")
                .as_deref(),
            Some("été.txt")
        );
        assert_eq!(f(r#"form-data; name="file""#), None);
        assert_eq!(f(r#"form-data; name="file"; filename="unterminated"#), None);
    }

    #[test]
    fn attachment_query() {
        assert!(wants_attachment("dl=1"));
        assert!(wants_attachment("x=2&dl=yes"));
        assert!(!wants_attachment("dl="));
        assert!(!wants_attachment("dl"));
        assert!(!wants_attachment("xdl=1"));
    }

    #[test]
    fn disposition_header_is_always_valid() {
        let v = content_disposition("a\"b\\c\r\nd é", false);
        assert_eq!(v.as_bytes(), "filename=\"a\\\"b\\\\c__d é\"".as_bytes());
        assert!(content_disposition("x", true)
            .to_str()
            .unwrap()
            .starts_with("attachment; "));
    }
}
