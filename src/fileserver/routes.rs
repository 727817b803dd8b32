//! The HTTP surface: routing, access checks shared by all upload routes, upload
//! creation/inspection/deletion and the miscellaneous endpoints. File transfer lives in
//! [`super::files`].

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use futures_util::StreamExt as _;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use tokio::sync::OwnedMutexGuard;

use super::error::ApiError;
use super::files;
use super::model::{random_alphanumeric, FileRecord, FileStatus, UploadRecord, TOKEN_LEN};
use super::request::{parse_create_request, CreateRequest};
use super::store::{Slot, Store, UploadState};

/// Limit on the JSON body of `POST /upload` (Plik reads at most 1 MiB).
const MAX_JSON_BODY: usize = 1 << 20;
/// Plik's default `MaxFilePerUpload`.
pub(crate) const MAX_FILES_PER_UPLOAD: usize = 1000;
/// Longest accepted file name, in bytes.
pub(crate) const MAX_FILE_NAME_LEN: usize = 1024;
/// The Plik release whose API this server follows.
const PLIK_API_VERSION: &str = "1.3.8";

/// Everything a request handler needs.
pub(crate) struct App {
    pub store: Store,
    pub max_file_size: u64,
    /// Seconds.
    pub default_ttl: i64,
    /// Seconds; 0 means no limit.
    pub max_ttl: i64,
    /// `http://host:port` of this server, for URLs when the request has no usable `Host`.
    pub base_url: String,
    /// Who may create uploads.
    pub auth: CreateAuth,
}

/// Who may create an upload: anyone, or (Plik's forced authentication) the holders of a
/// token (`X-PlikToken`) or of the basic-auth credentials. Only SHA-256 digests are kept.
pub(crate) struct CreateAuth {
    tokens: Vec<[u8; 32]>,
    basic: Option<[u8; 32]>,
}

impl CreateAuth {
    /// Fails (with the reason) on an empty token, a token that cannot travel in a header,
    /// or an empty basic-auth user or one containing `:`.
    pub(crate) fn new(
        tokens: &[String],
        basic: Option<&(String, String)>,
    ) -> Result<CreateAuth, String> {
        for token in tokens {
            if token.is_empty() {
                return Err("an upload token is empty".into());
            }
            if HeaderValue::from_str(token).is_err() {
                return Err(
                    "an upload token contains characters not allowed in an HTTP header".into(),
                );
            }
        }
        if let Some((user, _)) = basic {
            if user.is_empty() || user.contains(':') {
                return Err("the basic-auth user must be non-empty and contain no ':'".into());
            }
        }
        Ok(CreateAuth {
            tokens: tokens.iter().map(|t| digest(t.as_bytes())).collect(),
            basic: basic.map(|(user, password)| digest(format!("{user}:{password}").as_bytes())),
        })
    }

    /// Creating uploads needs credentials.
    pub(crate) fn is_forced(&self) -> bool {
        !self.tokens.is_empty() || self.basic.is_some()
    }

    /// Plik's order: a token, when tokens are configured, decides (403 if unknown); then
    /// basic auth, when configured (401 if wrong); then an anonymous caller is refused.
    pub(crate) fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if !self.is_forced() {
            return Ok(());
        }
        if let (false, Some(token)) = (self.tokens.is_empty(), headers.get("x-pliktoken")) {
            let token = digest(token.as_bytes());
            return if self.tokens.iter().any(|t| constant_time_eq(t, &token)) {
                Ok(())
            } else {
                Err(ApiError::forbidden("invalid token"))
            };
        }
        if let (Some(expected), Some(value)) = (&self.basic, headers.get(header::AUTHORIZATION)) {
            let credentials = basic_credentials(value).map_err(ApiError::unauthorized_create)?;
            return if constant_time_eq(&digest(&credentials), expected) {
                Ok(())
            } else {
                Err(ApiError::unauthorized_create("invalid credentials"))
            };
        }
        Err(ApiError::bad_request(
            "unable to create upload : anonymous uploads are disabled",
        ))
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", post(files::quick_upload))
        .route("/upload", post(create_upload))
        .route("/upload/{upload_id}", get(get_upload).delete(delete_upload))
        .route("/file/{upload_id}", post(files::add_new_file))
        .route(
            "/file/{upload_id}/{file_id}/{file_name}",
            get(files::get_file)
                .post(files::add_declared_file)
                .delete(files::delete_file),
        )
        .route(
            "/stream/{upload_id}/{file_id}/{file_name}",
            get(files::get_file).post(files::add_declared_file),
        )
        .route("/config", get(config))
        .route("/version", get(version))
        .route("/health", get(health))
        .fallback(not_found)
        // File bodies are limited by `max_file_size` while streaming, JSON bodies by
        // MAX_JSON_BODY; axum's blanket 2 MB limit would get in the way of both.
        .layer(DefaultBodyLimit::disable())
        .with_state(app)
}

// ---------------------------------------------------------------------------------------
// Shared helpers

pub(crate) fn json_response<T: Serialize>(value: &T) -> Result<Response, ApiError> {
    let body = serde_json::to_vec(value).map_err(|_| ApiError::internal())?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        )],
        body,
    )
        .into_response())
}

pub(crate) fn text_response(text: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

pub(crate) fn bad_path(_: PathRejection) -> ApiError {
    ApiError::bad_request("invalid path")
}

/// Look up an upload and lock it, with Plik's checks in Plik's order: it exists, it has
/// not expired, and (unless the caller is its admin) the basic-auth password matches.
/// Returns the locked upload and whether the caller is admin (holds `X-UploadToken`).
pub(crate) async fn open_upload(
    app: &App,
    upload_id: &str,
    headers: &HeaderMap,
) -> Result<(Slot, OwnedMutexGuard<UploadState>, bool), ApiError> {
    let slot = app
        .store
        .get(upload_id)
        .ok_or_else(|| ApiError::upload_not_found(upload_id))?;
    let state = slot.clone().lock_owned().await;
    check_live(&state, upload_id)?;
    let admin = headers
        .get("x-uploadtoken")
        .is_some_and(|t| constant_time_eq(t.as_bytes(), state.record.upload_token.as_bytes()));
    if let Some(hash) = &state.record.password_hash {
        if !admin {
            check_basic_auth(headers, hash)?;
        }
    }
    Ok((slot, state, admin))
}

/// The upload still exists and has not expired.
pub(crate) fn check_live(state: &UploadState, upload_id: &str) -> Result<(), ApiError> {
    if state.gone {
        return Err(ApiError::upload_not_found(upload_id));
    }
    if state.record.is_expired(SystemTime::now()) {
        return Err(ApiError::not_found(format!(
            "upload {upload_id} has expired"
        )));
    }
    Ok(())
}

/// The file of a `/file/{upload}/{file}/{name}` URL: it exists, and the name in the URL
/// is exactly its name.
pub(crate) fn named_file<'a>(
    state: &'a UploadState,
    file_id: &str,
    file_name: &str,
) -> Result<&'a FileRecord, ApiError> {
    let file = state
        .record
        .file(file_id)
        .ok_or_else(|| ApiError::not_found(format!("file {file_id} not found")))?;
    if file.name != file_name {
        return Err(ApiError::bad_request("invalid file name"));
    }
    Ok(file)
}

fn check_basic_auth(headers: &HeaderMap, expected_hash: &str) -> Result<(), ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing Authorization header"))?;
    let credentials = basic_credentials(value).map_err(ApiError::unauthorized)?;
    if !constant_time_eq(
        credential_hash(&credentials).as_bytes(),
        expected_hash.as_bytes(),
    ) {
        return Err(ApiError::unauthorized("invalid credentials"));
    }
    Ok(())
}

/// The decoded `login:password` of an `Authorization: Basic` value, or why it is unusable.
fn basic_credentials(value: &HeaderValue) -> Result<Vec<u8>, &'static str> {
    let value = value.to_str().map_err(|_| "invalid Authorization header")?;
    let parts: Vec<&str> = value.split(' ').collect();
    let [scheme, encoded] = parts[..] else {
        return Err("invalid Authorization header");
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err("invalid http authorization scheme");
    }
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| "invalid credentials")
}

/// What is stored for a password: SHA-256 of `login:password`, hex.
fn credential_hash(credentials: &[u8]) -> String {
    hex::encode(Sha256::digest(credentials))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ---------------------------------------------------------------------------------------
// Uploads

/// `POST /upload`.
async fn create_upload(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    app.auth.check(&headers)?;
    let body = read_limited(body, MAX_JSON_BODY).await?;
    let request = parse_create_request(&body)
        .map_err(|e| ApiError::bad_request(format!("unable to deserialize request body : {e}")))?;
    let (_, slot, credentials) = create(&app, request).await?;
    let state = slot.lock().await;
    let mut response = json_response(&state.record.reply(true, true))?;
    if let Some(credentials) = credentials {
        // Plik hands the ready-made header back so clients can copy it.
        let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
        if let Ok(value) = HeaderValue::from_str(&format!("Basic {encoded}")) {
            response.headers_mut().insert(header::AUTHORIZATION, value);
        }
    }
    Ok(response)
}

async fn read_limited(body: Body, limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut stream = body.into_data_stream();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::bad_request(format!("unable to read request body : {e}")))?;
        if out.len() + chunk.len() > limit {
            return Err(ApiError::bad_request(
                "unable to read request body : http: request body too large",
            ));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Validate a create request and store the new upload. Also returns `login:password`
/// when the upload is password-protected.
pub(crate) async fn create(
    app: &App,
    request: CreateRequest,
) -> Result<(String, Slot, Option<String>), ApiError> {
    let now = SystemTime::now();
    let (record, credentials) = new_record(app, request, now)
        .map_err(|e| ApiError::bad_request(format!("unable to create upload : {e}")))?;
    let (id, slot) = app.store.create(record).await?;
    Ok((id, slot, credentials))
}

fn new_record(
    app: &App,
    request: CreateRequest,
    now: SystemTime,
) -> Result<(UploadRecord, Option<String>), String> {
    if request.stream {
        return Err("stream mode is disabled".into());
    }
    if request.extend_ttl {
        return Err("extend ttl is disabled".into());
    }
    let mut record = UploadRecord::new(String::new(), random_alphanumeric(TOKEN_LEN), now);
    record.one_shot = request.one_shot;
    record.removable = request.removable;
    record.comments = request.comments;

    // TTL: 0 → default; negative → never expires, allowed only without a maximum.
    let ttl = if request.ttl == 0 {
        app.default_ttl
    } else {
        request.ttl
    };
    if app.max_ttl > 0 {
        if ttl <= 0 {
            return Err(format!(
                "cannot set infinite TTL (maximum allowed is : {})",
                app.max_ttl
            ));
        }
        if ttl > app.max_ttl {
            return Err(format!(
                "invalid TTL. (maximum allowed is : {})",
                app.max_ttl
            ));
        }
    }
    record.ttl = ttl;
    if ttl > 0 {
        let expire_at = now
            .checked_add(Duration::from_secs(ttl.unsigned_abs()))
            .ok_or("invalid TTL")?;
        record.expire_at = Some(expire_at);
    }

    // Password: the login defaults to "plik", and the hash covers the login actually
    // used (the fix of Plik PR #533).
    record.login = if request.login.is_empty() {
        "plik".to_string()
    } else {
        request.login
    };
    let credentials =
        (!request.password.is_empty()).then(|| format!("{}:{}", record.login, request.password));
    record.password_hash = credentials
        .as_deref()
        .map(|c| credential_hash(c.as_bytes()));

    if request.files.len() > MAX_FILES_PER_UPLOAD {
        return Err(format!("too many files. maximum is {MAX_FILES_PER_UPLOAD}"));
    }
    for declared in request.files {
        check_file_name(&declared.name)?;
        if declared.size > 0 && declared.size.unsigned_abs() > app.max_file_size {
            return Err(format!(
                "file is too big ({} bytes), maximum file size is {} bytes",
                declared.size, app.max_file_size
            ));
        }
        let file = FileRecord {
            id: record.new_file_id(),
            name: declared.name,
            status: FileStatus::Missing,
            md5: String::new(),
            mime_type: declared.mime_type,
            size: declared.size,
            reference: declared.reference,
            created_at: now,
        };
        record.files.push(file);
    }
    Ok((record, credentials))
}

/// Plik's rules for a file name: present and at most 1024 bytes.
pub(crate) fn check_file_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("missing file name".into());
    }
    if name.len() > MAX_FILE_NAME_LEN {
        let start: String = name.chars().take(20).collect();
        return Err(format!(
            "file name {start}... is too long, maximum length is {MAX_FILE_NAME_LEN} characters"
        ));
    }
    Ok(())
}

/// `GET /upload/{id}`: metadata with every file in every status.
async fn get_upload(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Path(upload_id) = path.map_err(bad_path)?;
    let (_, state, admin) = open_upload(&app, &upload_id, &headers).await?;
    json_response(&state.record.reply(admin, false))
}

/// `DELETE /upload/{id}`: allowed when removable or for the upload's admin.
async fn delete_upload(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Path(upload_id) = path.map_err(bad_path)?;
    let (_, mut state, admin) = open_upload(&app, &upload_id, &headers).await?;
    if !state.record.removable && !admin {
        return Err(ApiError::forbidden(
            "you are not allowed to remove this upload",
        ));
    }
    app.store.remove(&mut state).await;
    Ok(text_response("ok".into()))
}

// ---------------------------------------------------------------------------------------
// Miscellaneous

async fn health() -> Response {
    text_response("ok\n".into())
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        text_response("404 page not found\n".into()),
    )
        .into_response()
}

/// `GET /config`: the limits and feature flags a client may read (plik.md §11).
async fn config(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    let enabled = "enabled";
    let disabled = "disabled";
    let authentication = if app.auth.is_forced() {
        "forced"
    } else {
        disabled
    };
    json_response(&serde_json::json!({
        "maxFileSize": app.max_file_size,
        "maxUserSize": -1,
        "maxFilePerUpload": MAX_FILES_PER_UPLOAD,
        "defaultTTL": app.default_ttl,
        "maxTTL": app.max_ttl,
        "downloadDomain": "",
        "feature_authentication": authentication,
        "feature_one_shot": enabled,
        "feature_removable": enabled,
        "feature_stream": disabled,
        "feature_password": enabled,
        "feature_comments": enabled,
        "feature_set_ttl": enabled,
        "feature_extend_ttl": disabled,
        "feature_clients": disabled,
        "feature_github": disabled,
        "feature_text": enabled,
    }))
}

/// `GET /version`: Plik's build-info shape, naming the Plik API version we follow.
async fn version() -> Result<Response, ApiError> {
    json_response(&serde_json::json!({
        "version": PLIK_API_VERSION,
        "date": 0,
        "user": "",
        "host": "",
        "goVersion": "",
        "gitShortRevision": "",
        "gitFullRevision": "",
        "isRelease": false,
        "isMint": false,
        "clients": [],
        "releases": [],
        "server": concat!("natsbridge/", env!("CARGO_PKG_VERSION")),
    }))
}
