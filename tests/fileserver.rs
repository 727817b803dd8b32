//! The embedded Plik-compatible file server, exercised over real HTTP on loopback.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use md5::{Digest as _, Md5};
use natsbridge::fileserver::{FileServer, FileServerConfig};
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use reqwest::multipart::{Form, Part};
use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'?')
    .add(b'<')
    .add(b'>');

// ---------------------------------------------------------------------------------------
// Helpers

/// JSON without reqwest's `json` feature.
trait JsonBody {
    fn json_body(self, value: &Value) -> Self;
}

impl JsonBody for reqwest::RequestBuilder {
    fn json_body(self, value: &Value) -> Self {
        self.header("content-type", "application/json")
            .body(value.to_string())
    }
}

trait JsonReply {
    async fn json_value(self) -> Value;
}

impl JsonReply for Response {
    async fn json_value(self) -> Value {
        let body = self.bytes().await.unwrap();
        serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&body)))
    }
}

async fn start_with(dir: &Path, tweak: impl FnOnce(&mut FileServerConfig)) -> FileServer {
    let mut config = FileServerConfig::new("127.0.0.1:0".parse().unwrap(), dir);
    tweak(&mut config);
    FileServer::start(config).await.expect("file server starts")
}

async fn start(dir: &Path) -> FileServer {
    start_with(dir, |_| {}).await
}

/// What a Plik client should be: a client User-Agent and no redirects followed.
fn client() -> Client {
    Client::builder()
        .user_agent("plik_client/test")
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Deterministic pseudo-random bytes (xorshift), so payloads are not trivially compressible.
fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

async fn create_upload(c: &Client, base: &str, body: Value) -> Value {
    let response = c
        .post(format!("{base}/upload"))
        .json_body(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "create {body}");
    response.json_value().await
}

fn form(name: &str, data: Vec<u8>) -> Form {
    Form::new().part("file", Part::bytes(data).file_name(name.to_string()))
}

async fn post_file(
    c: &Client,
    url: String,
    token: Option<&str>,
    name: &str,
    data: Vec<u8>,
) -> Response {
    let mut request = c.post(url).multipart(form(name, data));
    if let Some(token) = token {
        request = request.header("X-UploadToken", token);
    }
    request.send().await.unwrap()
}

/// Create an upload with `settings`, add one file; returns (upload, file) JSON.
async fn upload_one(
    c: &Client,
    base: &str,
    settings: Value,
    name: &str,
    data: &[u8],
) -> (Value, Value) {
    let upload = create_upload(c, base, settings).await;
    let url = format!("{base}/file/{}", s(&upload["id"]));
    let response = post_file(c, url, Some(s(&upload["uploadToken"])), name, data.to_vec()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let file: Value = response.json_value().await;
    (upload, file)
}

fn file_url(base: &str, upload: &Value, file: &Value) -> String {
    format!(
        "{base}/file/{}/{}/{}",
        s(&upload["id"]),
        s(&file["id"]),
        utf8_percent_encode(s(&file["fileName"]), SEGMENT)
    )
}

fn s(v: &Value) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
}

/// Status and body of an error reply, checking Plik's plain-text error format.
async fn error_of(response: Response) -> (StatusCode, String) {
    let status = response.status();
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8",
        "error replies are plain text"
    );
    let body = response.text().await.unwrap();
    assert!(
        body.ends_with('\n'),
        "error body ends with a newline: {body:?}"
    );
    (status, body)
}

fn is_alnum(v: &str, len: usize) -> bool {
    v.len() == len && v.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Names of the entries in `dir` (sorted); empty if it does not exist.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The 404 of a claimed one-shot file: the file is gone, or the whole upload already is.
fn gone_one_shot(message: &str, upload: &Value, name: &str, file: &Value) -> bool {
    let prefix = format!("file {name} ({}) is not available : ", s(&file["id"]));
    message == format!("{prefix}removed\n")
        || message == format!("{prefix}deleted\n")
        || message == format!("upload {} not found\n", s(&upload["id"]))
}

fn upload_dir(data_dir: &Path, upload: &Value) -> PathBuf {
    data_dir.join(s(&upload["id"]))
}

/// Poll `check` until it holds, failing after `limit`.
async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Send a raw request line (no client-side path normalisation) and return the status.
async fn raw_status(addr: SocketAddr, method: &str, target: &str) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request =
        format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await.unwrap();
    let head = String::from_utf8_lossy(&reply);
    head.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"))
}

// ---------------------------------------------------------------------------------------
// Upload and download

#[tokio::test]
async fn create_upload_download_is_byte_exact() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let (c, base) = (client(), server.base_url());
    let data = payload(5 * 1024 * 1024 + 7, 1);

    let (upload, file) = upload_one(&c, &base, json!({"ttl": 3600}), "table.arrow", &data).await;
    assert!(is_alnum(s(&file["id"]), 16));
    assert_eq!(file["fileName"], "table.arrow");
    assert_eq!(file["status"], "uploaded");
    assert_eq!(file["fileSize"], data.len() as u64);
    assert_eq!(file["fileMd5"], md5_hex(&data));
    assert_eq!(file["fileType"], "application/octet-stream");

    let response = c.get(file_url(&base, &upload, &file)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let h = response.headers();
    assert_eq!(h["content-length"], data.len().to_string().as_str());
    assert_eq!(h["content-type"], "application/octet-stream");
    assert_eq!(h["content-disposition"], "filename=\"table.arrow\"");
    assert!(h.get("cache-control").is_none(), "not one-shot: cacheable");
    let body = response.bytes().await.unwrap();
    assert!(body[..] == data[..], "downloaded bytes differ");

    // Not one-shot: a second download works too.
    let again = c.get(file_url(&base, &upload, &file)).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.bytes().await.unwrap().len(), data.len());

    // On disk: the record and the data, under the upload's ID.
    let mut expected = vec![s(&file["id"]).to_string(), "upload.json".to_string()];
    expected.sort();
    assert_eq!(entries(&upload_dir(dir.path(), &upload)), expected);
    server.shutdown().await;
}

#[tokio::test]
async fn reply_json_uses_plik_field_names() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let (c, base) = (client(), server.base_url());

    // Create, no files declared.
    let upload = create_upload(&c, &base, json!({})).await;
    assert!(is_alnum(s(&upload["id"]), 16));
    assert!(is_alnum(s(&upload["uploadToken"]), 32));
    assert_eq!(upload["admin"], true);
    assert!(
        upload["files"].is_null(),
        "files is null when none were declared"
    );
    assert_eq!(upload["ttl"], 30 * 24 * 3600, "default TTL");
    for key in [
        "extend_ttl",
        "stream",
        "oneShot",
        "removable",
        "protectedByPassword",
    ] {
        assert_eq!(upload[key], false, "{key}");
    }
    assert_eq!(upload["downloadDomain"], "");
    assert_eq!(upload["comments"], "");
    for key in ["createdAt", "expireAt"] {
        let t = s(&upload[key]);
        assert!(
            t.len() == 30 && t.ends_with('Z') && &t[10..11] == "T",
            "{key}: {t}"
        );
    }
    for secret in ["login", "password", "uploadIp", "user", "token"] {
        assert!(upload.get(secret).is_none(), "{secret} must not be sent");
    }

    // Create with declared files: IDs and status `missing` up front.
    let upload = create_upload(
        &c,
        &base,
        json!({"files": [{"fileName": "a.txt", "fileType": "text/plain", "fileSize": 5, "reference": "r1"}]}),
    )
    .await;
    let declared = &upload["files"][0];
    assert!(is_alnum(s(&declared["id"]), 16));
    assert_eq!(declared["status"], "missing");
    assert_eq!(declared["fileMd5"], "");
    assert_eq!(declared["reference"], "r1");
    assert_eq!(declared["fileSize"], 5);
    let (id, token) = (s(&upload["id"]), s(&upload["uploadToken"]));

    // Add-file reply for the declared file.
    let url = format!("{base}/file/{id}/{}/a.txt", s(&declared["id"]));
    let response = post_file(&c, url.clone(), Some(token), "a.txt", b"hello".to_vec()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let file: Value = response.json_value().await;
    let mut keys: Vec<&str> = file
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "createdAt",
            "fileMd5",
            "fileName",
            "fileSize",
            "fileType",
            "id",
            "reference",
            "status"
        ]
    );
    assert_eq!(file["id"], declared["id"]);
    assert_eq!(
        file["fileType"], "text/plain; charset=utf-8",
        "sniffed, not declared"
    );
    assert_eq!(file["fileMd5"], md5_hex(b"hello"));
    assert_eq!(file["reference"], "r1");

    // A declared file is uploaded once only.
    let again = post_file(&c, url, Some(token), "a.txt", b"hello".to_vec()).await;
    assert_eq!(
        error_of(again).await,
        (
            StatusCode::BAD_REQUEST,
            "invalid file status uploaded, expected missing\n".into()
        )
    );

    // Get-upload: files listed; token and admin only for the token holder.
    let anonymous: Value = c
        .get(format!("{base}/upload/{id}"))
        .send()
        .await
        .unwrap()
        .json_value()
        .await;
    assert_eq!(anonymous["admin"], false);
    assert!(anonymous.get("uploadToken").is_none());
    assert_eq!(anonymous["files"][0]["status"], "uploaded");
    assert_eq!(anonymous["files"][0]["fileSize"], 5);
    let admin: Value = c
        .get(format!("{base}/upload/{id}"))
        .header("X-UploadToken", token)
        .send()
        .await
        .unwrap()
        .json_value()
        .await;
    assert_eq!(admin["admin"], true);
    assert_eq!(admin["uploadToken"], token);
    server.shutdown().await;
}

#[tokio::test]
async fn request_keys_are_case_insensitive() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let (c, base) = (client(), server.base_url());

    let upload = create_upload(
        &c,
        &base,
        json!({"OneShot": true, "TTL": 120, "REMOVABLE": true, "Comments": "hi", "unknownKey": [1]}),
    )
    .await;
    assert_eq!(upload["oneShot"], true);
    assert_eq!(upload["removable"], true);
    assert_eq!(upload["ttl"], 120);
    assert_eq!(upload["comments"], "hi");

    let upload = create_upload(&c, &base, json!({"oneshot": true, "ttl": 60})).await;
    assert_eq!(upload["oneShot"], true);
    assert_eq!(upload["ttl"], 60);

    // An empty body is allowed and means "defaults".
    let response = c.post(format!("{base}/upload")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    server.shutdown().await;
}

#[tokio::test]
async fn create_upload_validates_settings() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let (c, base) = (client(), server.base_url());
    let create = |body: String| c.post(format!("{base}/upload")).body(body).send();

    let cases = [
        (
            r#"{"stream": true}"#,
            "unable to create upload : stream mode is disabled\n",
        ),
        (
            r#"{"ttl": 2592001}"#,
            "unable to create upload : invalid TTL. (maximum allowed is : 2592000)\n",
        ),
        (
            r#"{"ttl": -1}"#,
            "unable to create upload : cannot set infinite TTL (maximum allowed is : 2592000)\n",
        ),
        (
            r#"{"files": [{"fileSize": 3}]}"#,
            "unable to create upload : missing file name\n",
        ),
    ];
    for (body, message) in cases {
        let response = create(body.to_string()).await.unwrap();
        assert_eq!(
            error_of(response).await,
            (StatusCode::BAD_REQUEST, message.to_string()),
            "{body}"
        );
    }
    for body in [r#"{"oneShot": "yes"}"#, "{", "[]"] {
        let (status, message) = error_of(create(body.to_string()).await.unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            message.starts_with("unable to deserialize request body : "),
            "{message}"
        );
    }
    // The JSON body is limited to 1 MiB.
    let huge = format!(r#"{{"comments": "{}"}}"#, "x".repeat(1 << 20));
    let (status, _) = error_of(create(huge).await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    server.shutdown().await;

    // Without a maximum TTL a negative TTL means "never expires".
    let server = start_with(dir.path(), |cfg| cfg.max_ttl = Duration::ZERO).await;
    let upload = create_upload(&c, &server.base_url(), json!({"ttl": -1})).await;
    assert!(upload["expireAt"].is_null());
    assert_eq!(upload["ttl"], -1);
    server.shutdown().await;
}

#[tokio::test]
async fn adding_a_file_needs_the_upload_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let (c, base) = (client(), server.base_url());
    let upload = create_upload(&c, &base, json!({})).await;
    let url = format!("{base}/file/{}", s(&upload["id"]));

    for token in [None, Some("wrong-token")] {
        let response = post_file(&c, url.clone(), token, "x.bin", vec![1, 2, 3]).await;
        assert_eq!(
            error_of(response).await,
            (
                StatusCode::FORBIDDEN,
                "you are not allowed to add file to this upload\n".into()
            )
        );
    }
    let after: Value = c
        .get(format!("{base}/upload/{}", s(&upload["id"])))
        .send()
        .await
        .unwrap()
        .json_value()
        .await;
    assert!(
        after["files"].as_array().unwrap().is_empty(),
        "nothing was added"
    );

    // Malformed bodies are 400 with Plik's messages.
    let token = s(&upload["uploadToken"]);
    let not_multipart = c
        .post(url.clone())
        .header("X-UploadToken", token)
        .body("abc")
        .send()
        .await
        .unwrap();
    let (status, message) = error_of(not_multipart).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        message.starts_with("invalid multipart form : "),
        "{message}"
    );
    let no_file_part = c
        .post(url.clone())
        .header("X-UploadToken", token)
        .multipart(Form::new().text("other", "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(no_file_part).await,
        (
            StatusCode::BAD_REQUEST,
            "missing file from multipart form\n".into()
        )
    );
    let no_name = c
        .post(url)
        .header("X-UploadToken", token)
        .multipart(Form::new().part("file", Part::bytes(vec![1])))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(no_name).await,
        (
            StatusCode::BAD_REQUEST,
            "missing file name from multipart form\n".into()
        )
    );
    server.shutdown().await;
}

#[tokio::test]
async fn file_name_in_url_must_match_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let (c, base) = (client(), server.base_url());
    let name = "my report #1 (50%)?.txt";
    let (upload, file) = upload_one(&c, &base, json!({}), name, b"contents").await;
    assert_eq!(file["fileName"], name);

    // Percent-encoded, the exact name downloads.
    let response = c.get(file_url(&base, &upload, &file)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "contents");

    for wrong in [
        "other.txt",
        "my%20report",
        "MY%20REPORT%20%231%20(50%25)%3F.txt",
    ] {
        let url = format!(
            "{base}/file/{}/{}/{wrong}",
            s(&upload["id"]),
            s(&file["id"])
        );
        let response = c.get(url).send().await.unwrap();
        assert_eq!(
            error_of(response).await,
            (StatusCode::BAD_REQUEST, "invalid file name\n".into()),
            "{wrong}"
        );
    }

    // Unknown IDs: Plik's 404 messages.
    let unknown_file = format!("{base}/file/{}/AAAAAAAAAAAAAAAA/x", s(&upload["id"]));
    assert_eq!(
        error_of(c.get(unknown_file).send().await.unwrap()).await,
        (
            StatusCode::NOT_FOUND,
            "file AAAAAAAAAAAAAAAA not found\n".into()
        )
    );
    let unknown_upload = format!("{base}/file/BBBBBBBBBBBBBBBB/{}/x", s(&file["id"]));
    assert_eq!(
        error_of(c.get(unknown_upload).send().await.unwrap()).await,
        (
            StatusCode::NOT_FOUND,
            "upload BBBBBBBBBBBBBBBB not found\n".into()
        )
    );
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// One-shot

#[tokio::test]
async fn one_shot_file_downloads_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let (c, base) = (client(), server.base_url());
    let data = payload(300_000, 2);
    let (upload, file) = upload_one(&c, &base, json!({"oneShot": true}), "once.bin", &data).await;
    let url = file_url(&base, &upload, &file);

    let first = c.get(&url).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(
        first.headers()["cache-control"],
        "no-cache, no-store, must-revalidate"
    );
    assert_eq!(first.headers()["pragma"], "no-cache");
    assert_eq!(first.headers()["expires"], "0");
    assert!(first.bytes().await.unwrap()[..] == data[..]);

    let (status, message) = error_of(c.get(&url).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        gone_one_shot(&message, &upload, "once.bin", &file),
        "{message}"
    );

    // The data left the disk at claim time; once the download is over, the upload (its last
    // file gone) leaves with its record.
    let upload_dir = upload_dir(dir.path(), &upload);
    assert!(!upload_dir.join(s(&file["id"])).exists());
    eventually(Duration::from_secs(5), "upload removed", || async {
        !upload_dir.exists()
    })
    .await;
    let info = c
        .get(format!("{base}/upload/{}", s(&upload["id"])))
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), StatusCode::NOT_FOUND);
    assert_eq!(entries(dir.path()), Vec::<String>::new());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_one_shot_downloads_have_exactly_one_winner() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let base = server.base_url();
    let data = payload(1_000_000, 3);
    let (upload, file) = upload_one(
        &client(),
        &base,
        json!({"OneShot": true}),
        "race.bin",
        &data,
    )
    .await;
    let url = file_url(&base, &upload, &file);

    // Separate clients, so the eight requests use eight connections at once.
    let attempts = (0..8).map(|_| {
        let url = url.clone();
        tokio::spawn(async move {
            let response = client().get(url).send().await.unwrap();
            let status = response.status();
            (status, response.bytes().await.unwrap())
        })
    });
    let results = futures_util::future::join_all(attempts).await;
    let mut winners = 0;
    for result in results {
        let (status, body) = result.unwrap();
        match status {
            StatusCode::OK => {
                winners += 1;
                assert!(body[..] == data[..], "the winner gets all the bytes");
            }
            StatusCode::NOT_FOUND => {
                let text = String::from_utf8(body.to_vec()).unwrap();
                assert!(gone_one_shot(&text, &upload, "race.bin", &file), "{text}");
                assert!(text.len() < 100, "a loser gets no file bytes");
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(winners, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn head_does_not_consume_a_one_shot_file() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let (c, base) = (client(), server.base_url());
    let (upload, file) =
        upload_one(&c, &base, json!({"oneShot": true}), "peek.txt", b"peekaboo").await;
    let url = file_url(&base, &upload, &file);

    for _ in 0..2 {
        let head = c.head(&url).send().await.unwrap();
        assert_eq!(head.status(), StatusCode::OK);
        assert_eq!(head.headers()["content-length"], "8");
        assert_eq!(
            head.headers()["content-disposition"],
            "filename=\"peek.txt\""
        );
        assert!(head.bytes().await.unwrap().is_empty());
    }
    let get = c.get(&url).send().await.unwrap();
    assert_eq!(get.status(), StatusCode::OK);
    assert_eq!(get.text().await.unwrap(), "peekaboo");
    assert_eq!(
        c.head(&url).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Limits, expiry, persistence

#[tokio::test]
async fn files_over_the_size_limit_are_refused_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with(dir.path(), |cfg| cfg.max_file_size = 1000).await;
    let (c, base) = (client(), server.base_url());
    let upload = create_upload(&c, &base, json!({})).await;
    let (id, token) = (s(&upload["id"]), s(&upload["uploadToken"]));

    let response = post_file(
        &c,
        format!("{base}/file/{id}"),
        Some(token),
        "big.bin",
        payload(5000, 4),
    )
    .await;
    assert_eq!(
        error_of(response).await,
        (
            StatusCode::BAD_REQUEST,
            "file too big (limit is set to 1000 bytes)\n".into()
        )
    );
    // Nothing is left on disk: the upload had no other file, so it went with its record.
    assert!(!upload_dir(dir.path(), &upload).exists());
    assert_eq!(entries(dir.path()), Vec::<String>::new());
    let info = c.get(format!("{base}/upload/{id}")).send().await.unwrap();
    assert_eq!(info.status(), StatusCode::NOT_FOUND);

    // Exactly at the limit is fine.
    let upload = create_upload(&c, &base, json!({})).await;
    let response = post_file(
        &c,
        format!("{base}/file/{}", s(&upload["id"])),
        Some(s(&upload["uploadToken"])),
        "max.bin",
        payload(1000, 5),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);

    // A declared size above the limit is refused at creation.
    let response = c
        .post(format!("{base}/upload"))
        .json_body(&json!({"files": [{"fileName": "x", "fileSize": 1001}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await.0, StatusCode::BAD_REQUEST);
    server.shutdown().await;
}

#[tokio::test]
async fn expired_uploads_answer_404_and_are_swept_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with(dir.path(), |cfg| {
        cfg.sweep_interval = Duration::from_millis(100)
    })
    .await;
    let (c, base) = (client(), server.base_url());
    let (upload, file) =
        upload_one(&c, &base, json!({"ttl": 1}), "short.txt", b"short-lived").await;
    let url = file_url(&base, &upload, &file);
    let dir_of_upload = upload_dir(dir.path(), &upload);
    assert!(dir_of_upload.join(s(&file["id"])).is_file());

    eventually(Duration::from_secs(10), "upload expires", || async {
        c.get(&url).send().await.unwrap().status() == StatusCode::NOT_FOUND
    })
    .await;
    eventually(
        Duration::from_secs(10),
        "sweeper deletes the upload",
        || async { !dir_of_upload.exists() },
    )
    .await;
    let (status, message) = error_of(c.get(&url).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(message, format!("upload {} not found\n", s(&upload["id"])));
    server.shutdown().await;
}

#[tokio::test]
async fn expired_uploads_answer_404_before_any_sweep() {
    let dir = tempfile::tempdir().unwrap();
    // Sweeper disabled: expiry alone must make the upload unavailable.
    let server = start_with(dir.path(), |cfg| cfg.sweep_interval = Duration::ZERO).await;
    let (c, base) = (client(), server.base_url());
    let (upload, file) = upload_one(&c, &base, json!({"ttl": 1}), "f.txt", b"data").await;
    let url = file_url(&base, &upload, &file);
    let expected = format!("upload {} has expired\n", s(&upload["id"]));

    eventually(Duration::from_secs(10), "upload expires", || async {
        c.get(&url).send().await.unwrap().status() == StatusCode::NOT_FOUND
    })
    .await;
    assert_eq!(
        error_of(c.get(&url).send().await.unwrap()).await.1,
        expected
    );
    let info = c
        .get(format!("{base}/upload/{}", s(&upload["id"])))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(info).await.1, expected);
    assert!(
        upload_dir(dir.path(), &upload)
            .join(s(&file["id"]))
            .is_file(),
        "not swept"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn uploads_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = payload(1_500_000, 6);
    let c = client();

    let server = start(dir.path()).await;
    let (upload, file) = upload_one(
        &c,
        &server.base_url(),
        json!({"comments": "kept"}),
        "persist.bin",
        &data,
    )
    .await;
    server.shutdown().await;

    let server = start(dir.path()).await;
    let base = server.base_url();
    let response = c.get(file_url(&base, &upload, &file)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.bytes().await.unwrap()[..] == data[..]);

    let id = s(&upload["id"]);
    let token = s(&upload["uploadToken"]);
    let info: Value = c
        .get(format!("{base}/upload/{id}"))
        .header("X-UploadToken", token)
        .send()
        .await
        .unwrap()
        .json_value()
        .await;
    assert_eq!(info["admin"], true, "the token still works");
    assert_eq!(info["comments"], "kept");
    assert_eq!(info["createdAt"], upload["createdAt"]);
    assert_eq!(info["expireAt"], upload["expireAt"]);
    assert_eq!(info["files"][0]["fileMd5"], md5_hex(&data));
    server.shutdown().await;
}

#[tokio::test]
async fn dropping_the_server_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let addr = server.local_addr();
    assert_eq!(raw_status(addr, "GET", "/health").await, 200);
    drop(server);
    eventually(Duration::from_secs(5), "listener closed", || async {
        tokio::net::TcpStream::connect(addr).await.is_err()
    })
    .await;
}

/// Add one file to a new upload; the status and (error or File JSON) body.
async fn try_upload(c: &Client, base: &str, name: &str, data: Vec<u8>) -> (Value, Response) {
    let upload = create_upload(c, base, json!({})).await;
    let url = format!("{base}/file/{}", s(&upload["id"]));
    let response = post_file(c, url, Some(s(&upload["uploadToken"])), name, data).await;
    (upload, response)
}

/// Bytes of the stored file data under `data_dir` (every file but the records).
fn stored_bytes(data_dir: &Path) -> u64 {
    let mut total = 0;
    for upload in entries(data_dir) {
        for name in entries(&data_dir.join(&upload)) {
            if !name.starts_with("upload.json") {
                total += std::fs::metadata(data_dir.join(&upload).join(name))
                    .unwrap()
                    .len();
            }
        }
    }
    total
}

#[tokio::test]
async fn the_quota_refuses_clearly_and_frees_space_on_delete_expiry_and_one_shot() {
    let dir = tempfile::tempdir().unwrap();
    let quota_error = (
        StatusCode::INSUFFICIENT_STORAGE,
        "storage quota exceeded (limit is set to 10000 bytes)\n".to_string(),
    );
    let server = start_with(dir.path(), |cfg| {
        cfg.max_total_size = 10_000;
        cfg.sweep_interval = Duration::from_millis(100);
    })
    .await;
    let (c, base) = (client(), server.base_url());

    let (a, response) = try_upload(&c, &base, "a.bin", payload(6000, 1)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let a_file: Value = response.json_value().await;
    // Over the quota part-way: refused, and the refused upload leaves nothing behind.
    let (_, response) = try_upload(&c, &base, "b.bin", payload(6000, 2)).await;
    assert_eq!(error_of(response).await, quota_error);
    assert_eq!(entries(dir.path()), [s(&a["id"]).to_string()]);
    assert_eq!(stored_bytes(dir.path()), 6000);

    // Exactly up to the quota is fine; then even one byte is refused, before any file entry
    // is made (the empty upload waits for its grace period or a client's DELETE).
    let (_, response) = try_upload(&c, &base, "c.bin", payload(4000, 3)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let (d, response) = try_upload(&c, &base, "d.bin", vec![1]).await;
    assert_eq!(error_of(response).await, quota_error);
    assert_eq!(entries(&upload_dir(dir.path(), &d)), ["upload.json"]);
    let quick = c
        .post(format!("{base}/"))
        .multipart(form("q.bin", vec![1]))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(quick).await, quota_error);
    assert_eq!(
        entries(dir.path()).len(),
        3,
        "the refused quick upload is gone"
    );

    // Deleting a file gives its bytes back.
    let deleted = c
        .delete(file_url(&base, &a, &a_file))
        .header("X-UploadToken", s(&a["uploadToken"]))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::OK);
    let url = format!("{base}/file/{}", s(&d["id"]));
    let response = post_file(
        &c,
        url,
        Some(s(&d["uploadToken"])),
        "d.bin",
        payload(6000, 4),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let (_, response) = try_upload(&c, &base, "e.bin", vec![1]).await;
    assert_eq!(error_of(response).await, quota_error);

    // So do a finished one-shot download and an expiry. Start again from an empty quota.
    server.shutdown().await;
    let dir = tempfile::tempdir().unwrap();
    let server = start_with(dir.path(), |cfg| {
        cfg.max_total_size = 10_000;
        cfg.sweep_interval = Duration::from_millis(100);
    })
    .await;
    let base = server.base_url();
    let (once, once_file) = upload_one(
        &c,
        &base,
        json!({"oneShot": true}),
        "once.bin",
        &payload(10_000, 5),
    )
    .await;
    let (_, response) = try_upload(&c, &base, "f.bin", vec![1]).await;
    assert_eq!(error_of(response).await, quota_error);
    let download = c
        .get(file_url(&base, &once, &once_file))
        .send()
        .await
        .unwrap();
    assert_eq!(download.bytes().await.unwrap().len(), 10_000);
    eventually(
        Duration::from_secs(5),
        "one-shot upload removed",
        || async { !upload_dir(dir.path(), &once).exists() },
    )
    .await;
    let (short, _) = upload_one(
        &c,
        &base,
        json!({"ttl": 1}),
        "short.bin",
        &payload(10_000, 6),
    )
    .await;
    let (_, response) = try_upload(&c, &base, "g.bin", vec![1]).await;
    assert_eq!(error_of(response).await, quota_error);
    eventually(Duration::from_secs(10), "expired upload swept", || async {
        !upload_dir(dir.path(), &short).exists()
    })
    .await;
    let (_, response) = try_upload(&c, &base, "h.bin", payload(10_000, 7)).await;
    assert_eq!(response.status(), StatusCode::OK);

    // After a restart the quota counts what is on disk.
    server.shutdown().await;
    let server = start_with(dir.path(), |cfg| cfg.max_total_size = 10_000).await;
    let (_, response) = try_upload(&c, &server.base_url(), "i.bin", vec![1]).await;
    assert_eq!(error_of(response).await, quota_error);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_uploads_never_exceed_the_quota_together() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with(dir.path(), |cfg| cfg.max_total_size = 100_000).await;
    let base = server.base_url();
    // Eight 30 kB uploads at once into 100 kB: at most three fit.
    let attempts = (0..8u64).map(|i| {
        let base = base.clone();
        tokio::spawn(async move {
            let c = client();
            let (upload, response) = try_upload(&c, &base, "c.bin", payload(30_000, i)).await;
            (upload, response.status())
        })
    });
    let results = futures_util::future::join_all(attempts).await;
    let mut accepted = Vec::new();
    for result in results {
        let (upload, status) = result.unwrap();
        match status {
            StatusCode::OK => accepted.push(upload),
            StatusCode::INSUFFICIENT_STORAGE => {}
            other => panic!("unexpected status {other}"),
        }
    }
    println!(
        "{} of 8 concurrent 30 kB uploads fit a 100 kB quota",
        accepted.len()
    );
    assert!((1..=3).contains(&accepted.len()), "{}", accepted.len());
    // The refused ones reserved bytes while streaming; all of it was given back: every
    // upload left on disk holds exactly one stored file, or none (refused before any
    // byte, awaiting its grace period).
    eventually(
        Duration::from_secs(5),
        "refused files cleaned up",
        || async {
            stored_bytes(dir.path()) == 30_000 * accepted.len() as u64
                && entries(dir.path()).iter().all(|u| {
                    entries(&dir.path().join(u))
                        .iter()
                        .all(|n| !n.ends_with(".part"))
                })
        },
    )
    .await;
    let c = client();
    for upload in &accepted {
        let response = c
            .delete(format!("{base}/upload/{}", s(&upload["id"])))
            .header("X-UploadToken", s(&upload["uploadToken"]))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let (_, response) = try_upload(&c, &base, "all.bin", payload(100_000, 9)).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "the whole quota is free again"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn no_record_outlives_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with(dir.path(), |cfg| {
        cfg.sweep_interval = Duration::from_millis(100);
        cfg.empty_upload_grace = Duration::from_millis(500);
    })
    .await;
    let (c, base) = (client(), server.base_url());
    let (kept, _) = upload_one(&c, &base, json!({}), "kept.txt", b"kept").await;

    // A connection cut in the middle of the file: the upload goes with it.
    let cut = create_upload(&c, &base, json!({})).await;
    let mut stream = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let boundary = "XyZ";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cut.bin\"\r\n\r\n"
    );
    let request = format!(
        "POST /file/{} HTTP/1.1\r\nHost: {}\r\nX-UploadToken: {}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: 1000000\r\n\r\n{head}",
        s(&cut["id"]),
        server.local_addr(),
        s(&cut["uploadToken"]),
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(&payload(100_000, 8)).await.unwrap();
    stream.flush().await.unwrap();
    let cut_dir = upload_dir(dir.path(), &cut);
    eventually(Duration::from_secs(5), "file being received", || async {
        entries(&cut_dir).iter().any(|n| n.ends_with(".part"))
    })
    .await;
    drop(stream);
    eventually(Duration::from_secs(5), "cut upload removed", || async {
        !cut_dir.exists()
    })
    .await;

    // An upload never given a file goes after its grace period; one with a file stays.
    let empty = create_upload(&c, &base, json!({})).await;
    eventually(Duration::from_secs(10), "empty upload swept", || async {
        !upload_dir(dir.path(), &empty).exists()
    })
    .await;
    assert_eq!(entries(dir.path()), [s(&kept["id"]).to_string()]);
    server.shutdown().await;
}

#[tokio::test]
async fn creating_uploads_needs_a_token_or_basic_auth_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with(dir.path(), |cfg| {
        cfg.upload_tokens = vec!["t-one".into(), "t-two".into()];
        cfg.basic_auth = Some(("alice".into(), "pw".into()));
    })
    .await;
    let (c, base) = (client(), server.base_url());
    let anonymous = (
        StatusCode::BAD_REQUEST,
        "unable to create upload : anonymous uploads are disabled\n".to_string(),
    );

    let response = c.post(format!("{base}/upload")).send().await.unwrap();
    assert_eq!(error_of(response).await, anonymous);
    let quick = c
        .post(format!("{base}/"))
        .multipart(form("q.txt", b"q".to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(quick).await, anonymous);
    let wrong = c
        .post(format!("{base}/upload"))
        .header("X-PlikToken", "t-three")
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(wrong).await,
        (StatusCode::FORBIDDEN, "invalid token\n".to_string())
    );
    let wrong = c
        .post(format!("{base}/upload"))
        .basic_auth("alice", Some("nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.headers()["www-authenticate"], "Basic realm=\"plik\"");
    assert_eq!(error_of(wrong).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        entries(dir.path()),
        Vec::<String>::new(),
        "nothing was created"
    );

    // Either credential creates; adding the file needs only the upload token, and the
    // download needs nothing.
    for request in [
        c.post(format!("{base}/upload"))
            .header("X-PlikToken", "t-two"),
        c.post(format!("{base}/upload"))
            .basic_auth("alice", Some("pw")),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let upload: Value = response.json_value().await;
        let url = format!("{base}/file/{}", s(&upload["id"]));
        let response = post_file(
            &c,
            url,
            Some(s(&upload["uploadToken"])),
            "f.txt",
            b"ok".to_vec(),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        let file: Value = response.json_value().await;
        let download = c.get(file_url(&base, &upload, &file)).send().await.unwrap();
        assert_eq!(download.text().await.unwrap(), "ok");
    }
    let quick = c
        .post(format!("{base}/"))
        .header("X-PlikToken", "t-one")
        .multipart(form("q.txt", b"quick".to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(quick.status(), StatusCode::OK);
    let url = quick.text().await.unwrap();
    assert_eq!(
        c.get(url.trim())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "quick"
    );
    let config: Value = c
        .get(format!("{base}/config"))
        .send()
        .await
        .unwrap()
        .json_value()
        .await;
    assert_eq!(config["feature_authentication"], "forced");
    server.shutdown().await;

    // Basic auth alone: a token header is not a credential then.
    let server = start_with(dir.path(), |cfg| {
        cfg.basic_auth = Some(("alice".into(), "pw".into()))
    })
    .await;
    let response = c
        .post(format!("{}/upload", server.base_url()))
        .header("X-PlikToken", "t-one")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await, anonymous);
    server.shutdown().await;

    // Unusable credentials are refused at start.
    for tweak in [
        (|cfg: &mut FileServerConfig| cfg.upload_tokens = vec![String::new()])
            as fn(&mut FileServerConfig),
        |cfg| cfg.upload_tokens = vec!["a\nb".into()],
        |cfg| cfg.basic_auth = Some(("a:b".into(), "c".into())),
    ] {
        let mut config = FileServerConfig::new("127.0.0.1:0".parse().unwrap(), dir.path());
        tweak(&mut config);
        let e = FileServer::start(config).await.err().unwrap();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}");
    }
    let mut config = FileServerConfig::new("127.0.0.1:0".parse().unwrap(), dir.path());
    config.upload_tokens = vec!["secret-token".into()];
    config.basic_auth = Some(("alice".into(), "secret-pw".into()));
    let shown = format!("{config:?}");
    assert!(!shown.contains("secret"), "{shown}");
}

// ---------------------------------------------------------------------------------------
// Other routes

#[tokio::test]
async fn quick_upload_returns_a_url_that_downloads() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let (c, base) = (client(), server.base_url());
    let data = payload(70_000, 7);

    let response = c
        .post(format!("{base}/"))
        .multipart(form("quick file.bin", data.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    let url = text.strip_suffix('\n').expect("URL plus newline");
    assert!(url.starts_with(&format!("{base}/file/")), "{url}");
    assert!(url.ends_with("/quick%20file.bin"), "{url}");

    let download = c.get(url).send().await.unwrap();
    assert_eq!(download.status(), StatusCode::OK);
    assert!(download.bytes().await.unwrap()[..] == data[..]);
    server.shutdown().await;
}

#[tokio::test]
async fn delete_needs_the_token_unless_removable() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let (c, base) = (client(), server.base_url());
    let (upload, file) = upload_one(&c, &base, json!({}), "del.txt", b"bye").await;
    let (id, token) = (s(&upload["id"]), s(&upload["uploadToken"]));
    let url = file_url(&base, &upload, &file);
    let kept: Value = post_file(
        &c,
        format!("{base}/file/{id}"),
        Some(token),
        "kept.txt",
        b"kept".to_vec(),
    )
    .await
    .json_value()
    .await;

    assert_eq!(
        error_of(c.delete(&url).send().await.unwrap()).await,
        (
            StatusCode::FORBIDDEN,
            "you are not allowed to remove files from this upload\n".into()
        )
    );
    let deleted = c
        .delete(&url)
        .header("X-UploadToken", token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::OK);
    assert_eq!(deleted.text().await.unwrap(), "ok");
    let (status, message) = error_of(c.get(&url).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        message.ends_with("is not available : deleted\n"),
        "{message}"
    );
    let mut expected = vec![s(&kept["id"]).to_string(), "upload.json".to_string()];
    expected.sort();
    assert_eq!(entries(&upload_dir(dir.path(), &upload)), expected);

    let upload_url = format!("{base}/upload/{id}");
    assert_eq!(
        error_of(c.delete(&upload_url).send().await.unwrap()).await,
        (
            StatusCode::FORBIDDEN,
            "you are not allowed to remove this upload\n".into()
        )
    );
    let deleted = c
        .delete(&upload_url)
        .header("X-UploadToken", token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::OK);
    assert_eq!(
        error_of(c.get(&upload_url).send().await.unwrap()).await,
        (StatusCode::NOT_FOUND, format!("upload {id} not found\n"))
    );
    assert!(!upload_dir(dir.path(), &upload).exists());

    // A removable upload can be deleted by anyone.
    let (upload, _) = upload_one(&c, &base, json!({"removable": true}), "r.txt", b"r").await;
    let response = c
        .delete(format!("{base}/upload/{}", s(&upload["id"])))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // Deleting the last file of an upload removes the upload with it.
    let (upload, file) = upload_one(&c, &base, json!({}), "last.txt", b"last").await;
    let deleted = c
        .delete(file_url(&base, &upload, &file))
        .header("X-UploadToken", s(&upload["uploadToken"]))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::OK);
    assert!(!upload_dir(dir.path(), &upload).exists());
    assert_eq!(entries(dir.path()), Vec::<String>::new());
    server.shutdown().await;
}

#[tokio::test]
async fn password_protected_uploads_need_basic_auth() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let (c, base) = (client(), server.base_url());
    let response = c
        .post(format!("{base}/upload"))
        .json_body(&json!({"login": "alice", "password": "s3cret"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // base64("alice:s3cret")
    assert_eq!(
        response.headers()["authorization"],
        "Basic YWxpY2U6czNjcmV0"
    );
    let upload: Value = response.json_value().await;
    assert_eq!(upload["protectedByPassword"], true);
    let token = s(&upload["uploadToken"]);
    let url = format!("{base}/file/{}", s(&upload["id"]));
    let file: Value = post_file(&c, url, Some(token), "p.txt", b"private".to_vec())
        .await
        .json_value()
        .await;
    let url = file_url(&base, &upload, &file);

    let anonymous = c.get(&url).send().await.unwrap();
    assert_eq!(
        anonymous.headers()["www-authenticate"],
        "Basic realm=\"plik\""
    );
    assert_eq!(
        error_of(anonymous).await,
        (
            StatusCode::UNAUTHORIZED,
            "please provide valid credentials to access this upload : missing Authorization header\n".into()
        )
    );
    let wrong = c
        .get(&url)
        .basic_auth("alice", Some("nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let info = c
        .get(format!("{base}/upload/{}", s(&upload["id"])))
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), StatusCode::UNAUTHORIZED);

    let right = c
        .get(&url)
        .basic_auth("alice", Some("s3cret"))
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), StatusCode::OK);
    assert_eq!(right.text().await.unwrap(), "private");
    let admin = c
        .get(&url)
        .header("X-UploadToken", token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        admin.status(),
        StatusCode::OK,
        "the upload token bypasses basic auth"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn hostile_paths_and_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    // A file next to the data directory that traversal would reach.
    std::fs::write(dir.path().join("secret.txt"), "secret").unwrap();
    let server = start(&data_dir).await;
    let (c, base) = (client(), server.base_url());
    let addr = server.local_addr();
    let (upload, file) = upload_one(&c, &base, json!({}), "../../evil.txt", b"payload").await;
    assert_eq!(
        file["fileName"], "evil.txt",
        "directories are stripped from multipart names"
    );
    let (id, fid) = (s(&upload["id"]), s(&file["id"]));

    let targets = [
        "/file/../secret.txt".to_string(),
        "/file/../../secret.txt/x/y".to_string(),
        "/upload/..".to_string(),
        "/upload/..%2Fsecret.txt".to_string(),
        "/upload/%2e%2e%2f%2e%2e%2fsecret.txt".to_string(),
        format!("/file/{id}/..%2F..%2Fsecret.txt/secret.txt"),
        format!("/file/{id}/{fid}/..%2F..%2Fsecret.txt"),
        format!("/file/{id}/{fid}/%FF%FE"),
        format!("/file/..%2F{id}/{fid}/evil.txt"),
        "/file/short/x/y".to_string(),
        "/upload/AAAAAAAAAAAAAAAA%00".to_string(),
        "/../../../etc/passwd".to_string(),
    ];
    for target in &targets {
        for method in ["GET", "HEAD", "DELETE", "POST"] {
            let status = raw_status(addr, method, target).await;
            assert!(
                (400..500).contains(&status),
                "{method} {target} -> {status}"
            );
        }
    }
    // The real file is still served, and nothing was written outside the data directory.
    let ok = c
        .get(format!("{base}/file/{id}/{fid}/evil.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.text().await.unwrap(), "payload");
    assert_eq!(entries(dir.path()), ["data", "secret.txt"]);
    server.shutdown().await;
}

#[tokio::test]
async fn health_config_and_version() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with(dir.path(), |cfg| cfg.max_file_size = 12345).await;
    let (c, base) = (client(), server.base_url());

    let health = c.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.text().await.unwrap(), "ok\n");

    let config: Value = c
        .get(format!("{base}/config"))
        .send()
        .await
        .unwrap()
        .json_value()
        .await;
    assert_eq!(config["maxFileSize"], 12345);
    assert_eq!(config["defaultTTL"], 2_592_000);
    assert_eq!(config["maxTTL"], 2_592_000);
    assert_eq!(config["feature_one_shot"], "enabled");
    assert_eq!(config["feature_authentication"], "disabled");
    assert_eq!(config["feature_stream"], "disabled");

    let version: Value = c
        .get(format!("{base}/version"))
        .send()
        .await
        .unwrap()
        .json_value()
        .await;
    assert!(version["version"].is_string());

    let missing = c.get(format!("{base}/no/such/route")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// CORS (browsers)

const PAGE: &str = "http://127.0.0.1:8123";

/// A preflight as a browser sends it before a cross-origin request with custom headers.
async fn preflight(c: &Client, url: &str, origin: &str, method: &str, headers: &str) -> Response {
    c.request(reqwest::Method::OPTIONS, url)
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header("access-control-request-headers", headers)
        .send()
        .await
        .unwrap()
}

fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
    r.headers().get(name).map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn no_cors_headers_unless_configured() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let base = server.base_url();
    let c = client();
    let r = c
        .get(format!("{base}/health"))
        .header("origin", PAGE)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "access-control-allow-origin"), None);
    let r = preflight(&c, &format!("{base}/upload"), PAGE, "POST", "content-type").await;
    assert_eq!(header(&r, "access-control-allow-origin"), None);
    assert_ne!(
        r.status(),
        StatusCode::NO_CONTENT,
        "no preflight is answered"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn cors_allows_configured_origins_through_upload_and_download() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with(dir.path(), |c| c.cors_origins = vec![PAGE.into()]).await;
    let base = server.base_url();
    let c = client();

    // Preflights of the three requests a page makes: create, add a file, download.
    let r = preflight(
        &c,
        &format!("{base}/upload"),
        PAGE,
        "POST",
        "content-type,x-pliktoken",
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&r, "access-control-allow-origin"), Some(PAGE));
    let allowed = header(&r, "access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    for h in [
        "x-uploadtoken",
        "x-pliktoken",
        "content-type",
        "authorization",
    ] {
        assert!(allowed.contains(h), "{h} not in {allowed}");
    }
    assert!(header(&r, "access-control-allow-methods")
        .unwrap()
        .contains("POST"));
    assert!(header(&r, "vary").unwrap().contains("Origin"));

    let upload = create_upload(&c, &base, json!({})).await;
    let id = s(&upload["id"]);
    let r = preflight(
        &c,
        &format!("{base}/file/{id}"),
        PAGE,
        "POST",
        "x-uploadtoken",
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&r, "access-control-allow-origin"), Some(PAGE));

    // The real requests carry the header too (the browser checks it on each response).
    let data = payload(1000, 7);
    let r = c
        .post(format!("{base}/file/{id}"))
        .header("origin", PAGE)
        .header("x-uploadtoken", s(&upload["uploadToken"]))
        .multipart(form("cors.bin", data.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "access-control-allow-origin"), Some(PAGE));
    let file = r.json_value().await;
    let url = file_url(&base, &upload, &file);
    let r = preflight(&c, &url, PAGE, "GET", "").await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = c.get(&url).header("origin", PAGE).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "access-control-allow-origin"), Some(PAGE));
    assert!(header(&r, "access-control-expose-headers")
        .unwrap()
        .contains("Content-Length"));
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[..]);

    // Errors carry it as well, so a page can read why.
    let r = c
        .get(format!("{base}/upload/nosuchupload0000"))
        .header("origin", PAGE)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(header(&r, "access-control-allow-origin"), Some(PAGE));

    // Another origin: its preflight is refused and nothing is allowed to it.
    let other = "http://127.0.0.1:9999";
    let r = preflight(&c, &format!("{base}/upload"), other, "POST", "content-type").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(header(&r, "access-control-allow-origin"), None);
    let r = c.get(&url).header("origin", other).send().await.unwrap();
    assert_eq!(header(&r, "access-control-allow-origin"), None);
    server.shutdown().await;
}

#[tokio::test]
async fn cors_any_origin_and_bad_settings() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with(dir.path(), |c| c.cors_origins = vec!["*".into()]).await;
    let base = server.base_url();
    let c = client();
    let r = preflight(
        &c,
        &format!("{base}/upload"),
        "https://anywhere.example",
        "POST",
        "content-type",
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&r, "access-control-allow-origin"), Some("*"));
    let r = c
        .get(format!("{base}/health"))
        .header("origin", "http://x.example")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "access-control-allow-origin"), Some("*"));
    server.shutdown().await;

    for bad in ["example.com", "http://a/b", "file:///x"] {
        let mut config = FileServerConfig::new("127.0.0.1:0".parse().unwrap(), dir.path());
        config.cors_origins = vec![bad.into()];
        let e = FileServer::start(config).await.err().expect("refused");
        assert!(e.to_string().contains("CORS origin"), "{bad}: {e}");
    }
}
