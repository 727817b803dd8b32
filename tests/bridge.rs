//! End-to-end tests of the Rust core against a real nats-server and the embedded file server.

mod common;

use common::*;
use natsbridge::{
    Client, Config, Envelope, ErrorCode, OutgoingPayload, PayloadType, SendOptions, Transport,
};
use std::collections::BTreeSet;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

async fn next(sub: &natsbridge::Subscription) -> natsbridge::Result<Envelope> {
    tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("no envelope within 10 s")
        .expect("subscription ended")
}

fn keys(v: &serde_json::Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_through_both_transports_byte_exact() {
    let nats = NatsServer::start();
    let files = Files::start().await;
    let client = Client::connect(config(&nats, Some(&files))).await.unwrap();
    let sub = client.subscribe("types.>", None).await.unwrap();
    for t in PayloadType::ALL {
        for transport in [Transport::Direct, Transport::Link] {
            let data = sample_payload(t, 3000);
            let threshold = match transport {
                Transport::Direct => data.len() + 1,
                Transport::Link => data.len(),
            };
            let subject = format!("types.{t}.{transport}");
            let sent = client
                .smartsend(
                    &subject,
                    vec![OutgoingPayload::new("p", t, data.clone())],
                    SendOptions {
                        size_threshold: Some(threshold),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!(sent.envelope.payloads[0].transport, transport, "{t}");
            let env = next(&sub).await.unwrap();
            assert_eq!(env.msg_id, sent.envelope.msg_id);
            assert_eq!(env.send_to, subject);
            let p = &env.payloads[0];
            assert_eq!((p.payload_type, p.transport), (t, transport));
            assert_eq!(p.bytes().unwrap(), &data[..], "{t} via {transport}");
            assert_eq!(p.size, data.len() as u64);
            if transport == Transport::Link {
                assert_eq!(p.encoding, "none");
                assert_eq!(p.sha256().unwrap().len(), 64);
                assert!(p.url.as_deref().unwrap().starts_with(&files.url()));
            } else {
                assert_eq!(p.encoding, "base64");
            }
        }
    }
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threshold_boundary() {
    let nats = NatsServer::start();
    let files = Files::start().await;
    let mut cfg = config(&nats, Some(&files));
    cfg.size_threshold = 1000;
    let client = Client::connect(cfg).await.unwrap();
    let below = OutgoingPayload::binary("below", bytes_of(999, 1));
    let at = OutgoingPayload::binary("at", bytes_of(1000, 2));
    let sent = client
        .smartsend("edge", vec![below, at], SendOptions::default())
        .await
        .unwrap();
    assert_eq!(sent.envelope.payloads[0].transport, Transport::Direct);
    assert_eq!(sent.envelope.payloads[1].transport, Transport::Link);
    // The default threshold is 500,000 bytes.
    let client2 = Client::connect(config(&nats, Some(&files))).await.unwrap();
    let sent = client2
        .smartsend(
            "edge",
            vec![
                OutgoingPayload::binary("a", bytes_of(499_999, 3)),
                OutgoingPayload::binary("b", bytes_of(500_000, 4)),
            ],
            SendOptions::default(),
        )
        .await
        .unwrap();
    let t: Vec<_> = sent.envelope.payloads.iter().map(|p| p.transport).collect();
    assert_eq!(t, [Transport::Direct, Transport::Link]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_payloads_in_one_envelope_keep_order_and_fields() {
    let nats = NatsServer::start();
    let files = Files::start().await;
    let mut cfg = config(&nats, Some(&files));
    cfg.size_threshold = 10_000;
    cfg.sender_name = "sender-app".into();
    let client = Client::connect(cfg).await.unwrap();
    let sub = client
        .subscribe("/chat/user/v1/message", None)
        .await
        .unwrap();
    let image = bytes_of(50_000, 9);
    let table = arrow_stream(10);
    let payloads = vec![
        OutgoingPayload::text("msg", "Hello World"),
        OutgoingPayload::new("img", PayloadType::Image, image.clone()),
        OutgoingPayload::dictionary("cfg", &serde_json::json!({"key": "value"})),
        OutgoingPayload::new("tbl", PayloadType::ArrowTable, table.clone()),
        OutgoingPayload::new("audio", PayloadType::Audio, bytes_of(20_000, 5)),
    ];
    let mut meta = serde_json::Map::new();
    meta.insert("k".into(), serde_json::json!([1, 2]));
    let opts = SendOptions {
        correlation_id: Some("corr-1".into()),
        msg_purpose: Some("command".into()),
        receiver_name: Some("receiver-app".into()),
        receiver_id: Some("rid".into()),
        reply_to: Some("reply.subject".into()),
        reply_to_msg_id: Some("prev".into()),
        metadata: Some(meta.clone()),
        ..Default::default()
    };
    let sent = client
        .smartsend("/chat/user/v1/message", payloads, opts)
        .await
        .unwrap();
    let env = next(&sub).await.unwrap();
    let names: Vec<_> = env.payloads.iter().map(|p| p.dataname.as_str()).collect();
    assert_eq!(names, ["msg", "img", "cfg", "tbl", "audio"]);
    let transports: Vec<_> = env.payloads.iter().map(|p| p.transport).collect();
    assert_eq!(
        transports,
        [
            Transport::Direct,
            Transport::Link,
            Transport::Direct,
            Transport::Direct,
            Transport::Link
        ]
    );
    assert_eq!(env.payloads[0].bytes().unwrap(), b"Hello World");
    assert_eq!(env.payloads[1].bytes().unwrap(), &image[..]);
    assert_eq!(env.payloads[2].bytes().unwrap(), br#"{"key":"value"}"#);
    assert_eq!(env.payloads[3].bytes().unwrap(), &table[..]);
    assert_eq!(env.correlation_id, "corr-1");
    assert_eq!(env.msg_purpose, "command");
    assert_eq!(env.sender_name, "sender-app");
    assert_eq!(env.sender_id, client.sender_id());
    assert_eq!(env.receiver_name, "receiver-app");
    assert_eq!(env.receiver_id, "rid");
    assert_eq!(env.reply_to, "reply.subject");
    assert_eq!(env.reply_to_msg_id, "prev");
    assert_eq!(env.broker_url, nats.url());
    assert_eq!(env.metadata, meta);
    assert_eq!(env.timestamp, sent.envelope.timestamp);
    assert_eq!(env.timestamp.len(), "2026-03-13T07:02:50.443Z".len());
    assert!(env.timestamp.ends_with('Z'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelope_keys_match_the_walkthrough_example() {
    let vector: serde_json::Value =
        serde_json::from_str(include_str!("vectors/source/walkthrough_example.json")).unwrap();
    // The example decodes as the walkthrough says.
    let env = Envelope::from_json(vector.to_string().as_bytes()).unwrap();
    assert_eq!(env.payloads[0].bytes().unwrap(), b"Hello World");
    assert_eq!(env.reply_to, "reply.subject");

    let nats = NatsServer::start();
    let files = Files::start().await;
    let client = Client::connect(config(&nats, Some(&files))).await.unwrap();
    let sent = client
        .smartsend(
            "/chat/user/v1/message",
            vec![
                OutgoingPayload::text("msg", "Hello World"),
                OutgoingPayload::binary("big", bytes_of(600_000, 1)),
            ],
            SendOptions::default(),
        )
        .await
        .unwrap();
    let ours: serde_json::Value = serde_json::from_slice(&sent.json).unwrap();
    assert_eq!(keys(&ours), keys(&vector));
    for p in ours["payloads"].as_array().unwrap() {
        assert_eq!(keys(p), keys(&vector["payloads"][0]));
        assert_eq!(p["metadata"]["payload_bytes"], p["size"]);
    }
    // Text key order follows the wire format table.
    let text = sent.json_str();
    let pos: Vec<usize> = keys_in_order()
        .iter()
        .map(|k| text.find(&format!("\"{k}\":")).unwrap())
        .collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "{text:.300}");
    let direct = &ours["payloads"][0];
    assert_eq!(direct["data"], "SGVsbG8gV29ybGQ=");
    assert_eq!(direct["size"], 11);
    let link = &ours["payloads"][1];
    assert_eq!(link["transport"], "link");
    assert_eq!(link["metadata"]["sha256"].as_str().unwrap().len(), 64);
}

fn keys_in_order() -> [&'static str; 14] {
    [
        "correlation_id",
        "msg_id",
        "timestamp",
        "send_to",
        "msg_purpose",
        "sender_name",
        "sender_id",
        "receiver_name",
        "receiver_id",
        "reply_to",
        "reply_to_msg_id",
        "broker_url",
        "metadata",
        "payloads",
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receives_envelopes_with_optional_keys_missing_and_reports_malformed_ones() {
    let nats = NatsServer::start();
    let client = Client::connect(config(&nats, None)).await.unwrap();
    let sub = client.subscribe("raw", None).await.unwrap();
    let raw = client.nats();
    raw.publish(
        "raw",
        r#"{"payloads":[{"dataname":"m","payload_type":"text","transport":"direct","data":"aGk="}]}"#.into(),
    )
    .await
    .unwrap();
    let env = next(&sub).await.unwrap();
    assert_eq!(env.payloads[0].bytes().unwrap(), b"hi");
    assert_eq!(env.correlation_id, "");
    assert!(env.metadata.is_empty());

    let cases = [
        ("not json", ErrorCode::InvalidEnvelope),
        (
            r#"{"correlation_id":["x"],"payloads":[]}"#,
            ErrorCode::InvalidEnvelope,
        ),
        (
            r#"{"correlation_id":"c9","payloads":[{"dataname":"m","payload_type":"text","transport":"direct","data":"!!"}]}"#,
            ErrorCode::DeserializationError,
        ),
        (
            r#"{"payloads":[{"dataname":"m","payload_type":"text","transport":"pigeon","data":"aGk="}]}"#,
            ErrorCode::InvalidTransport,
        ),
        (
            r#"{"payloads":[{"dataname":"m","payload_type":"spreadsheet","transport":"direct","data":"aGk="}]}"#,
            ErrorCode::InvalidPayloadType,
        ),
        (
            r#"{"payloads":[{"dataname":"m","payload_type":"text","transport":"direct","data":"//4="}]}"#,
            ErrorCode::DeserializationError,
        ),
    ];
    for (body, _) in &cases {
        raw.publish("raw", body.to_string().into()).await.unwrap();
    }
    for (body, code) in cases {
        let e = next(&sub).await.unwrap_err();
        assert_eq!(e.code(), code, "{body}: {e}");
        if body.contains("c9") {
            assert_eq!(e.correlation_id(), Some("c9"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_succeeds_when_the_file_server_comes_up_after_the_message() {
    let nats = NatsServer::start();
    let mut files = Files::start().await;
    let client = Client::connect(config(&nats, Some(&files))).await.unwrap();
    let data = bytes_of(700_000, 3);
    let sent = client
        .smartsend(
            "late",
            vec![OutgoingPayload::binary("blob", data.clone())],
            SendOptions::default(),
        )
        .await
        .unwrap();
    files.stop().await;
    let _log = LOG_LOCK.lock().await;
    // The receiver tries while the server is down; we bring it back after a refused attempt.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    natsbridge::log::set_sink(Some(Box::new(move |_, line| {
        let _ = tx.send(line.to_owned());
    })));
    natsbridge::log::set_level(natsbridge::log::Level::Debug);
    let cid = sent.envelope.correlation_id.clone();
    let json = sent.json.clone();
    let c2 = client.clone();
    let receive = tokio::spawn(async move { c2.smartreceive(&json).await });
    loop {
        let line = tokio::time::timeout(WAIT, rx.recv())
            .await
            .unwrap()
            .unwrap();
        if line.contains(&cid) && line.contains("Download attempt 1/5") {
            break;
        }
    }
    files.restart().await;
    let env = receive.await.unwrap().unwrap();
    assert_eq!(env.payloads[0].bytes().unwrap(), &data[..]);
    natsbridge::log::set_sink(None);
    natsbridge::log::set_level(natsbridge::log::Level::Off);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oneshot_file_fetched_twice_fails_fast_without_retries() {
    let nats = NatsServer::start();
    let files = Files::start().await;
    let mut cfg = config(&nats, Some(&files));
    cfg.link.oneshot = true;
    let client = Client::connect(cfg).await.unwrap();
    let data = bytes_of(600_000, 4);
    let sent = client
        .smartsend(
            "once",
            vec![OutgoingPayload::binary("blob", data.clone())],
            SendOptions::default(),
        )
        .await
        .unwrap();
    let _log = LOG_LOCK.lock().await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    natsbridge::log::set_sink(Some(Box::new(move |_, line| {
        let _ = tx.send(line.to_owned());
    })));
    natsbridge::log::set_level(natsbridge::log::Level::Debug);
    let env = client.smartreceive(&sent.json).await.unwrap();
    assert_eq!(env.payloads[0].bytes().unwrap(), &data[..]);
    let started = std::time::Instant::now();
    let e = client.smartreceive(&sent.json).await.unwrap_err();
    let elapsed = started.elapsed();
    natsbridge::log::set_sink(None);
    natsbridge::log::set_level(natsbridge::log::Level::Off);
    assert_eq!(e.code(), ErrorCode::DownloadFailed, "{e}");
    assert!(e.message().contains("404"), "{e}");
    assert_eq!(e.details()["status"], 404);
    let mut retries = 0;
    while let Ok(line) = rx.try_recv() {
        if line.contains("retrying") && line.contains(&sent.envelope.correlation_id) {
            retries += 1;
        }
    }
    assert_eq!(retries, 0, "a permanent 404 must not be retried");
    // One request, no backoff: far below the first retry delay sum (100+200+400+800 ms).
    assert!(elapsed < Duration::from_millis(1500), "took {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_to_a_foreign_origin_is_refused_without_connecting() {
    let nats = NatsServer::start();
    let files = Files::start().await;
    let client = Client::connect(config(&nats, Some(&files))).await.unwrap();
    let trap = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    trap.set_nonblocking(true).unwrap();
    let url = format!("http://{}/file/aaaa/bbbb/x", trap.local_addr().unwrap());
    let body = format!(
        r#"{{"correlation_id":"c1","payloads":[{{"dataname":"x","payload_type":"binary","transport":"link","encoding":"none","size":5,"data":"{url}","metadata":{{}}}}]}}"#
    );
    let e = client.smartreceive(body.as_bytes()).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::LinkUrlRejected);
    assert_eq!(e.correlation_id(), Some("c1"));
    assert!(e.message().contains("not allowed"), "{e}");
    match trap.accept() {
        Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("a connection was made to the foreign origin: {other:?}"),
    }
    // file:// and other schemes are refused too.
    let body = body.replace(&url, "file:///etc/passwd");
    let e = client.smartreceive(body.as_bytes()).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::LinkUrlRejected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sha256_mismatch_is_refused() {
    let nats = NatsServer::start();
    let files = Files::start().await;
    let mut cfg = config(&nats, Some(&files));
    cfg.size_threshold = 100;
    let client = Client::connect(cfg).await.unwrap();
    let sent = client
        .smartsend(
            "sha",
            vec![OutgoingPayload::binary("blob", bytes_of(5000, 1))],
            SendOptions::default(),
        )
        .await
        .unwrap();
    let good = sent.envelope.payloads[0].sha256().unwrap().to_owned();
    let bad = format!(
        "{}{}",
        if good.starts_with('0') { "1" } else { "0" },
        &good[1..]
    );
    let tampered = sent.json_str().replace(&good, &bad);
    let e = client.smartreceive(tampered.as_bytes()).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::IntegrityError, "{e}");
    assert!(e.message().contains("sha256"), "{e}");
    // A size that disagrees with the file is refused as well.
    let resized = sent.json_str().replace("\"size\":5000", "\"size\":4000");
    let e = client.smartreceive(resized.as_bytes()).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::IntegrityError, "{e}");
    // The untouched envelope still decodes, and so does one from a peer that omits `size`.
    client.smartreceive(&sent.json).await.unwrap();
    let sizeless = sent.json_str().replace("\"size\":5000,", "");
    assert_ne!(sizeless, sent.json_str());
    let env = client.smartreceive(sizeless.as_bytes()).await.unwrap();
    assert_eq!(env.payloads[0].size, 5000);
    assert_eq!(env.payloads[0].bytes().unwrap(), &bytes_of(5000, 1)[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_failure_falls_back_to_direct_or_fails_without_publishing() {
    let nats = NatsServer::start();
    let dead = format!("http://127.0.0.1:{}", free_port());
    let mut cfg = config(&nats, None).with_fileserver_url(Some(dead));
    cfg.size_threshold = 1000;
    let client = Client::connect(cfg.clone()).await.unwrap();
    let sub = client.subscribe("fb", None).await.unwrap();
    let data = bytes_of(5000, 2);

    // With fallback (the default): it goes direct.
    let sent = client
        .smartsend(
            "fb",
            vec![OutgoingPayload::binary("blob", data.clone())],
            SendOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(sent.envelope.payloads[0].transport, Transport::Direct);
    let env = next(&sub).await.unwrap();
    assert_eq!(env.payloads[0].bytes().unwrap(), &data[..]);

    // Without: UPLOAD_FAILED, and nothing is published.
    let e = client
        .smartsend(
            "fb",
            vec![OutgoingPayload::binary("blob", data.clone())],
            SendOptions {
                fallback_to_direct: Some(false),
                correlation_id: Some("no-fallback".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::UploadFailed, "{e}");
    assert_eq!(e.correlation_id(), Some("no-fallback"));
    client
        .smartsend(
            "fb",
            vec![OutgoingPayload::text("m", "sentinel")],
            SendOptions::default(),
        )
        .await
        .unwrap();
    let env = next(&sub).await.unwrap();
    assert_eq!(env.payloads[0].bytes().unwrap(), b"sentinel");
}

/// A real TCP listener that accepts every connection and never answers (nor closes), until
/// dropped. Returns its `http://` URL.
struct SilentServer {
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl SilentServer {
    async fn start() -> SilentServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        SilentServer { url, task }
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_to_a_silent_file_server_ends_within_the_operation_timeout() {
    let nats = NatsServer::start();
    let silent = SilentServer::start().await;
    let mut cfg = config(&nats, None).with_fileserver_url(Some(silent.url.clone()));
    cfg.size_threshold = 1000;
    cfg.operation_timeout = Duration::from_secs(1);
    let bound = cfg.operation_timeout + Duration::from_secs(10);
    let client = Client::connect(cfg).await.unwrap();
    let sub = client.subscribe("silent", None).await.unwrap();
    let data = bytes_of(5000, 3);

    // Without fallback: UPLOAD_FAILED, and nothing is published.
    let started = std::time::Instant::now();
    let e = client
        .smartsend(
            "silent",
            vec![OutgoingPayload::binary("blob", data.clone())],
            SendOptions {
                fallback_to_direct: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    let took = started.elapsed();
    println!("silent file server, no fallback: UPLOAD_FAILED after {took:?}");
    assert_eq!(e.code(), ErrorCode::UploadFailed, "{e}");
    assert!(e.message().contains("did not complete within"), "{e}");
    assert!(took < bound, "took {took:?}, bound {bound:?}");

    // With fallback: direct, within the same bound.
    let started = std::time::Instant::now();
    let sent = client
        .smartsend(
            "silent",
            vec![OutgoingPayload::binary("blob", data.clone())],
            SendOptions::default(),
        )
        .await
        .unwrap();
    let took = started.elapsed();
    println!("silent file server, fallback: sent direct after {took:?}");
    assert_eq!(sent.envelope.payloads[0].transport, Transport::Direct);
    assert!(took < bound, "took {took:?}, bound {bound:?}");
    let env = next(&sub).await.unwrap();
    assert_eq!(
        env.msg_id, sent.envelope.msg_id,
        "the failed send published nothing"
    );
    assert_eq!(env.payloads[0].bytes().unwrap(), &data[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_upload_leaves_nothing_on_the_file_server() {
    let nats = NatsServer::start();
    let files = Files::start_with(|c| c.max_file_size = 3000).await;
    let mut cfg = config(&nats, Some(&files));
    cfg.size_threshold = 1000;
    let client = Client::connect(cfg).await.unwrap();
    let sub = client.subscribe("refused", None).await.unwrap();
    let payloads = vec![
        OutgoingPayload::binary("fits", bytes_of(2000, 4)),
        OutgoingPayload::binary("too-big", bytes_of(5000, 5)),
    ];

    // Without fallback the send fails, publishes nothing, and leaves no upload behind:
    // neither the first payload's (discarded) nor the one whose file was refused.
    let e = client
        .smartsend(
            "refused",
            payloads.clone(),
            SendOptions {
                fallback_to_direct: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::UploadFailed, "{e}");
    assert!(e.message().contains("file too big"), "{e}");
    assert_eq!(files.stored_uploads(), Vec::<String>::new());

    // With fallback the refused payload goes direct; its refused upload is gone as well,
    // and only the first payload's upload remains.
    let sent = client
        .smartsend("refused", payloads, SendOptions::default())
        .await
        .unwrap();
    assert_eq!(sent.envelope.payloads[0].transport, Transport::Link);
    assert_eq!(sent.envelope.payloads[1].transport, Transport::Direct);
    let url = sent.envelope.payloads[0].url.clone().unwrap();
    let stored = files.stored_uploads();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(url.contains(&format!("/file/{}/", stored[0])), "{url}");
    let env = next(&sub).await.unwrap();
    assert_eq!(
        env.msg_id, sent.envelope.msg_id,
        "the failed send published nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_refused_before_its_file_is_removed_by_the_sender() {
    // The server keeps an upload refused before any file entry was made (quota already
    // full) for its grace period; the sender removes it at once.
    let nats = NatsServer::start();
    let files = Files::start_with(|c| c.max_total_size = 2000).await;
    let mut cfg = config(&nats, Some(&files));
    cfg.size_threshold = 1000;
    cfg.link.fallback_to_direct = false;
    let client = Client::connect(cfg).await.unwrap();
    let sent = client
        .smartsend(
            "quota",
            vec![OutgoingPayload::binary("fills", bytes_of(2000, 6))],
            SendOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(sent.envelope.payloads[0].transport, Transport::Link);
    let first = files.stored_uploads();
    assert_eq!(first.len(), 1);
    let e = client
        .smartsend(
            "quota",
            vec![OutgoingPayload::binary("refused", bytes_of(1500, 7))],
            SendOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::UploadFailed, "{e}");
    assert!(e.message().contains("storage quota exceeded"), "{e}");
    assert_eq!(files.stored_uploads(), first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_authenticate_with_a_token_or_basic_auth_in_the_url() {
    const PASSWORD: &str = "s3cr3t-pw";
    const TOKEN: &str = "t0ken-value";
    let nats = NatsServer::start();
    let files = Files::start_with(|c| {
        c.upload_tokens = vec![TOKEN.into()];
        c.basic_auth = Some(("alice".into(), PASSWORD.into()));
    })
    .await;
    let _log = LOG_LOCK.lock().await;
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    natsbridge::log::set_sink(Some(Box::new(move |_, line| {
        sink.lock().unwrap().push(line.to_owned());
    })));
    natsbridge::log::set_level(natsbridge::log::Level::Debug);

    let receiver = Client::connect(config(&nats, Some(&files))).await.unwrap();
    let sub = receiver.subscribe("auth", None).await.unwrap();
    let data = bytes_of(5000, 8);
    let payloads = || vec![OutgoingPayload::binary("blob", data.clone())];
    let sender = |token: Option<&str>, url: String| {
        let mut cfg = config(&nats, None).with_fileserver_url(Some(url));
        cfg.size_threshold = 1000;
        cfg.link.fallback_to_direct = false;
        cfg.fileserver_token = token.map(str::to_owned);
        Client::connect(cfg)
    };
    let plain = files.url();
    let with_password = |password: &str| format!("http://alice:{password}@{}", files.addr);

    // Refused: anonymous, a wrong token, a wrong password; nothing is left on the server.
    for (token, url, why) in [
        (None, plain.clone(), "anonymous uploads are disabled"),
        (Some("wrong"), plain.clone(), "invalid token"),
        (None, with_password("nope"), "valid credentials"),
    ] {
        let e = sender(token, url)
            .await
            .unwrap()
            .smartsend("auth", payloads(), SendOptions::default())
            .await
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::UploadFailed, "{e}");
        assert!(e.message().contains(why), "{e}");
        assert!(!e.message().contains("nope"), "{e}");
    }
    assert_eq!(files.stored_uploads(), Vec::<String>::new());

    // Accepted with the token, or with basic auth from the URL; the credentials never
    // reach the envelope, and the receiver downloads without any.
    for (token, url) in [
        (Some(TOKEN), plain.clone()),
        (None, with_password(PASSWORD)),
    ] {
        let client = sender(token, url).await.unwrap();
        let sent = client
            .smartsend("auth", payloads(), SendOptions::default())
            .await
            .unwrap();
        client.close().await.unwrap();
        assert_eq!(sent.envelope.payloads[0].transport, Transport::Link);
        let json = sent.json_str();
        assert!(
            !json.contains(PASSWORD) && !json.contains("alice@"),
            "{json}"
        );
        assert!(!json.contains(TOKEN), "{json}");
        let link = sent.envelope.payloads[0].url.clone().unwrap();
        assert!(link.starts_with(&format!("{plain}/file/")), "{link}");
        let env = next(&sub).await.unwrap();
        assert_eq!(env.payloads[0].bytes().unwrap(), &data[..]);
    }
    assert_eq!(files.stored_uploads().len(), 2);

    // A bad URL's error does not show its password either.
    let e = Client::connect(
        config(&nats, None)
            .with_fileserver_url(Some(format!("http://alice:{PASSWORD}@{}/?x", files.addr))),
    )
    .await
    .err()
    .unwrap();
    assert_eq!(e.code(), ErrorCode::InvalidArgument, "{e}");
    assert!(!e.message().contains(PASSWORD), "{e}");

    natsbridge::log::set_sink(None);
    natsbridge::log::set_level(natsbridge::log::Level::Off);
    let lines = lines.lock().unwrap();
    assert!(lines.iter().any(|l| l.contains("Uploaded")), "{lines:?}");
    for line in lines.iter() {
        assert!(!line.contains(PASSWORD) && !line.contains(TOKEN), "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelope_too_big_for_max_payload() {
    let nats = NatsServer::with_config("max_payload: 8192");
    let client = Client::connect(config(&nats, None)).await.unwrap();
    assert_eq!(client.max_payload(), 8192);
    let files = Files::start().await;
    let client2 = Client::connect(config(&nats, Some(&files))).await.unwrap();
    let sub = client2.subscribe("big", None).await.unwrap();
    // 7000 bytes is under the threshold but ~9.4 KB of base64: no file server, so it fails.
    let e = client
        .smartsend(
            "big",
            vec![OutgoingPayload::binary("blob", bytes_of(7000, 1))],
            SendOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::PayloadTooLarge, "{e}");
    assert!(e.message().contains("8192"), "{e}");

    // With a file server, the payload moves to link by itself.
    let data = bytes_of(7000, 1);
    let sent = client2
        .smartsend(
            "big",
            vec![
                OutgoingPayload::text("small", "stays direct"),
                OutgoingPayload::binary("blob", data.clone()),
            ],
            SendOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(sent.envelope.payloads[0].transport, Transport::Direct);
    assert_eq!(sent.envelope.payloads[1].transport, Transport::Link);
    assert!(sent.json.len() <= 8192);
    // The first thing the subscriber sees is this envelope: the failed one was never published.
    let env = next(&sub).await.unwrap();
    assert_eq!(env.msg_id, sent.envelope.msg_id);
    assert_eq!(env.payloads[1].bytes().unwrap(), &data[..]);
    // Fallback to direct is refused when the envelope would not fit.
    let mut cfg =
        config(&nats, None).with_fileserver_url(Some(format!("http://127.0.0.1:{}", free_port())));
    cfg.size_threshold = 1000;
    let client3 = Client::connect(cfg).await.unwrap();
    let e = client3
        .smartsend(
            "big",
            vec![OutgoingPayload::binary("blob", bytes_of(7000, 1))],
            SendOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::UploadFailed, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_payloads_and_arguments_are_refused_at_the_sender() {
    let nats = NatsServer::start();
    let client = Client::connect(config(&nats, None)).await.unwrap();
    let send = |subject: &'static str, p: OutgoingPayload, opts: SendOptions| {
        let c = client.clone();
        async move { c.smartsend(subject, vec![p], opts).await.unwrap_err() }
    };
    let e = send(
        "s",
        OutgoingPayload::new("t", PayloadType::Text, vec![0xff, 0xfe]),
        SendOptions::default(),
    )
    .await;
    assert_eq!(e.code(), ErrorCode::InvalidPayload);
    assert_eq!(e.details()["dataname"], "t");
    let e = send(
        "s",
        OutgoingPayload::new("d", PayloadType::Dictionary, "{nope"),
        SendOptions::default(),
    )
    .await;
    assert_eq!(e.code(), ErrorCode::InvalidPayload);
    let e = send(
        "s",
        OutgoingPayload::new("j", PayloadType::JsonTable, "[1,2]"),
        SendOptions::default(),
    )
    .await;
    assert_eq!(e.code(), ErrorCode::InvalidPayload);
    let e = send(
        "s",
        OutgoingPayload::new("a", PayloadType::ArrowTable, "not arrow"),
        SendOptions::default(),
    )
    .await;
    assert_eq!(e.code(), ErrorCode::InvalidPayload);
    let e = send("s", OutgoingPayload::text("", "x"), SendOptions::default()).await;
    assert_eq!(e.code(), ErrorCode::InvalidArgument);
    let e = send(
        "a b",
        OutgoingPayload::text("m", "x"),
        SendOptions::default(),
    )
    .await;
    assert_eq!(e.code(), ErrorCode::InvalidArgument);
    let e = send(
        "s",
        OutgoingPayload::text("m", "x"),
        SendOptions {
            msg_purpose: Some("gossip".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(e.code(), ErrorCode::InvalidArgument);
    assert!(e.message().contains("gossip"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_reply_and_queue_groups() {
    let nats = NatsServer::start();
    let files = Files::start().await;
    let server = Client::connect(config(&nats, Some(&files))).await.unwrap();
    let requester = Client::connect(config(&nats, Some(&files))).await.unwrap();
    let w1 = server.subscribe("svc.echo", Some("workers")).await.unwrap();
    let w2 = server.subscribe("svc.echo", Some("workers")).await.unwrap();
    let responder = {
        let server = server.clone();
        tokio::spawn(async move {
            // Answer whichever worker gets the request.
            let req = tokio::select! {
                r = w1.next() => r,
                r = w2.next() => r,
            }
            .unwrap()
            .unwrap();
            let text = String::from_utf8(req.payloads[0].bytes().unwrap().to_vec()).unwrap();
            server
                .reply(
                    &req,
                    vec![OutgoingPayload::text("answer", text.to_uppercase())],
                    SendOptions {
                        msg_purpose: Some("ACK".into()),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            (w1, w2)
        })
    };
    let reply = requester
        .request(
            "svc.echo",
            vec![OutgoingPayload::text("q", "ping")],
            SendOptions {
                correlation_id: Some("flow-7".into()),
                ..Default::default()
            },
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(reply.payloads[0].bytes().unwrap(), b"PING");
    assert_eq!(reply.msg_purpose, "ACK");
    assert_eq!(reply.correlation_id, "flow-7");
    assert!(!reply.reply_to_msg_id.is_empty());
    assert_eq!(reply.receiver_id, requester.sender_id());
    let (w1, w2) = responder.await.unwrap();
    // The queue group delivered the request once.
    assert!(w1.try_next().is_none() && w2.try_next().is_none());

    let e = requester
        .request(
            "svc.nobody",
            vec![OutgoingPayload::text("q", "x")],
            SendOptions::default(),
            WAIT,
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::NoResponders, "{e}");
}

/// Requests share one inbox subscription: concurrent requests each get their own reply, a
/// reply that comes after its request timed out goes nowhere, and a caller's own `reply_to`
/// still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_each_get_their_own_reply() {
    let nats = NatsServer::start();
    let server = Client::connect(config(&nats, None)).await.unwrap();
    let requester = Client::connect(config(&nats, None)).await.unwrap();
    let sub = server.subscribe("svc.mux", None).await.unwrap();
    let responder = {
        let server = server.clone();
        tokio::spawn(async move {
            while let Some(Ok(req)) = sub.next().await {
                let text = String::from_utf8(req.payloads[0].bytes().unwrap().to_vec()).unwrap();
                if text == "slow" {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                server
                    .reply(
                        &req,
                        vec![OutgoingPayload::text("a", format!("re:{text}"))],
                        SendOptions::default(),
                    )
                    .await
                    .unwrap();
            }
        })
    };
    let e = requester
        .request(
            "svc.mux",
            vec![OutgoingPayload::text("q", "slow")],
            SendOptions::default(),
            Duration::from_millis(50),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Timeout, "{e}");
    let asks = (0..20).map(|i| {
        let requester = requester.clone();
        async move {
            let reply = requester
                .request(
                    "svc.mux",
                    vec![OutgoingPayload::text("q", i.to_string())],
                    SendOptions::default(),
                    WAIT,
                )
                .await
                .unwrap();
            assert_eq!(
                reply.payloads[0].bytes().unwrap(),
                format!("re:{i}").as_bytes()
            );
            reply.reply_to_msg_id.clone()
        }
    });
    let ids = futures_util::future::join_all(asks).await;
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len());
    // The late reply to the timed-out request has come and gone without harm.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let reply = requester
        .request(
            "svc.mux",
            vec![OutgoingPayload::text("q", "own")],
            SendOptions {
                reply_to: Some("my.own.inbox".into()),
                ..Default::default()
            },
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(reply.payloads[0].bytes().unwrap(), b"re:own");
    assert_eq!(reply.send_to, "my.own.inbox");
    responder.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_is_reported_not_silent() {
    let nats = NatsServer::start();
    let mut cfg = config(&nats, None);
    cfg.subscription_queue = 4;
    let client = Client::connect(cfg).await.unwrap();
    let sub = client.subscribe("flood", None).await.unwrap();
    let total = 40u64;
    for i in 0..total {
        client
            .smartsend(
                "flood",
                vec![OutgoingPayload::text("i", i.to_string())],
                SendOptions::default(),
            )
            .await
            .unwrap();
    }
    client.flush().await.unwrap();
    // Wait until every message was either queued or dropped.
    let deadline = std::time::Instant::now() + WAIT;
    // (The queue holds one marker standing for the dropped messages.)
    let accounted =
        |s: &natsbridge::Subscription| s.dropped() + s.queued() as u64 - u64::from(s.dropped() > 0);
    while accounted(&sub) < total {
        assert!(
            std::time::Instant::now() < deadline,
            "messages went missing"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let dropped = sub.dropped();
    assert!(dropped > 0);
    let mut got = 0u64;
    let mut reported = 0u64;
    while let Some(item) = sub.try_next() {
        match item {
            Ok(_) => got += 1,
            Err(e) => {
                assert_eq!(e.code(), ErrorCode::SlowConsumer);
                reported += e.details()["dropped"].as_u64().unwrap();
            }
        }
    }
    assert_eq!(reported, dropped);
    assert_eq!(got + dropped, total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_flushes_everything_queued() {
    let nats = NatsServer::start();
    let receiver = Client::connect(config(&nats, None)).await.unwrap();
    let sub = receiver.subscribe("bulk", None).await.unwrap();
    let sender = Client::connect(config(&nats, None)).await.unwrap();
    for i in 0..500 {
        sender
            .smartsend(
                "bulk",
                vec![OutgoingPayload::text("i", i.to_string())],
                SendOptions::default(),
            )
            .await
            .unwrap();
    }
    sender.close().await.unwrap();
    for i in 0..500 {
        let env = next(&sub).await.unwrap();
        assert_eq!(env.payloads[0].bytes().unwrap(), i.to_string().as_bytes());
    }
    let e = sender
        .smartsend(
            "bulk",
            vec![OutgoingPayload::text("i", "late")],
            SendOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Closed);
    sender.close().await.unwrap();
    sub.close().await;
    assert!(sub.next().await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_failures_and_credentials() {
    let e = Client::connect(
        Config::default().with_nats_url(format!("nats://127.0.0.1:{}", free_port())),
    )
    .await
    .err()
    .unwrap();
    assert_eq!(e.code(), ErrorCode::NatsConnectionFailed, "{e}");

    let nats = NatsServer::with_config("authorization { token: \"s3cret\" }");
    let e = Client::connect(config(&nats, None)).await.err().unwrap();
    assert_eq!(e.code(), ErrorCode::NatsConnectionFailed, "{e}");
    let mut cfg = config(&nats, None);
    cfg.credentials = natsbridge::Credentials::Token("s3cret".into());
    let client = Client::connect(cfg).await.unwrap();
    client.flush().await.unwrap();

    let nats = NatsServer::with_config("authorization { user: alice, password: wonder }");
    let mut cfg = config(&nats, None);
    cfg.credentials = natsbridge::Credentials::UserPassword {
        user: "alice".into(),
        password: "wonder".into(),
    };
    Client::connect(cfg).await.unwrap().flush().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shot_send_without_a_client() {
    let nats = NatsServer::start();
    let files = Files::start().await;
    let listener = Client::connect(config(&nats, Some(&files))).await.unwrap();
    let sub = listener.subscribe("once.sent", None).await.unwrap();
    let sent = natsbridge::smartsend_once(
        config(&nats, Some(&files)),
        "once.sent",
        vec![OutgoingPayload::text("msg", "Hello")],
        SendOptions::default(),
    )
    .await
    .unwrap();
    let env = next(&sub).await.unwrap();
    assert_eq!(env.msg_id, sent.envelope.msg_id);
    // And the standalone smartreceive decodes without a NATS connection.
    let env = natsbridge::smartreceive(&sent.json, &config(&nats, Some(&files)))
        .await
        .unwrap();
    assert_eq!(env.payloads[0].bytes().unwrap(), b"Hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_payloads_can_be_received_into_files() {
    let nats = NatsServer::start();
    let files = Files::start().await;
    let mut cfg = config(&nats, Some(&files));
    cfg.size_threshold = 1000;
    let sender = Client::connect(cfg.clone()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    cfg.link.download_dir = Some(dir.path().to_owned());
    let receiver = Client::connect(cfg).await.unwrap();
    let blob = bytes_of(300_000, 8);
    let rows = sample_payload(PayloadType::JsonTable, 5000);
    let sent = sender
        .smartsend(
            "files",
            vec![
                OutgoingPayload::text("small", "in memory"),
                OutgoingPayload::binary("../blob", blob.clone()),
                OutgoingPayload::new("rows", PayloadType::JsonTable, rows.clone()),
            ],
            SendOptions::default(),
        )
        .await
        .unwrap();
    let env = receiver.smartreceive(&sent.json).await.unwrap();
    assert_eq!(env.payloads[0].bytes().unwrap(), b"in memory");
    assert!(env.payloads[0].file.is_none());
    for (p, want) in env.payloads[1..].iter().zip([&blob, &rows]) {
        assert!(p.data.is_none());
        let path = p.file.as_ref().unwrap();
        assert_eq!(
            path.parent().unwrap(),
            dir.path(),
            "stays inside the directory"
        );
        assert_eq!(&std::fs::read(path).unwrap(), want);
        assert_eq!(p.size, want.len() as u64);
    }
    // A refused payload leaves no file behind.
    let good = sent.envelope.payloads[1].sha256().unwrap().to_owned();
    let bad = format!(
        "{}{}",
        if good.starts_with('0') { "1" } else { "0" },
        &good[1..]
    );
    let before = std::fs::read_dir(dir.path()).unwrap().count();
    let e = receiver
        .smartreceive(sent.json_str().replace(&good, &bad).as_bytes())
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::IntegrityError);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_progress_can_be_followed() {
    let nats = NatsServer::start();
    let files = Files::start().await;
    let mut cfg = config(&nats, Some(&files));
    cfg.size_threshold = 100_000;
    let client = Client::connect(cfg).await.unwrap();
    let progress = natsbridge::Progress::new();
    let watcher = {
        let progress = progress.clone();
        // Samples never go backwards and never pass the total.
        tokio::spawn(async move {
            let mut last = 0;
            loop {
                let (done, total) = (progress.done(), progress.total());
                assert!(done >= last && (total == 0 || done <= total));
                last = done;
                if total > 0 && done == total {
                    return;
                }
                tokio::task::yield_now().await;
            }
        })
    };
    let sent = client
        .smartsend(
            "progress",
            vec![
                OutgoingPayload::text("small", "direct, not counted"),
                OutgoingPayload::binary("a", bytes_of(3 << 20, 1)),
                OutgoingPayload::binary("b", bytes_of(700_000, 2)),
            ],
            SendOptions {
                progress: Some(progress.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(sent.envelope.payloads[1].transport, Transport::Link);
    assert_eq!(progress.total(), (3 << 20) + 700_000);
    assert_eq!(progress.done(), progress.total());
    tokio::time::timeout(WAIT, watcher).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_when_the_url_asks_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let (ca, ca_key, cert, key) = (
        path("ca.pem"),
        path("ca.key"),
        path("cert.pem"),
        path("key.pem"),
    );
    std::fs::write(
        path("leaf.ext"),
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\n",
    )
    .unwrap();
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl is needed for the TLS test (apt-get install openssl)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // A throwaway CA, and a server certificate it signs for 127.0.0.1.
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        &ca_key,
        "-out",
        &ca,
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        &key,
        "-out",
        &path("leaf.csr"),
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        &path("leaf.csr"),
        "-CA",
        &ca,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        &path("leaf.ext"),
        "-out",
        &cert,
    ]);
    let nats = NatsServer::with_config(&format!(
        "tls {{ cert_file: \"{}\", key_file: \"{}\" }}",
        cert, key
    ));
    let mut cfg = config(&nats, None).with_nats_url(format!("tls://127.0.0.1:{}", nats.port));
    // Without our root certificate the server is not trusted.
    let e = Client::connect(cfg.clone()).await.err().unwrap();
    assert_eq!(e.code(), ErrorCode::NatsConnectionFailed, "{e}");
    cfg.tls.root_certificates.push(ca.into());
    let client = Client::connect(cfg).await.unwrap();
    let sub = client.subscribe("secure", None).await.unwrap();
    client
        .smartsend(
            "secure",
            vec![OutgoingPayload::text("m", "over TLS")],
            SendOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        next(&sub).await.unwrap().payloads[0].bytes().unwrap(),
        b"over TLS"
    );
}

/// A consumer waiting in `next` or `next_blocking` reads NATS itself; the order of messages
/// stays that of arrival even when a link payload is still downloading, a wait that ends
/// (timeout, cancellation) leaves later messages to the queue and its wake hook, and the
/// blocking pull gets what arrives while it waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_consumers_keep_order_and_hand_over_to_the_queue() {
    let nats = NatsServer::start();
    let files = Files::start().await;
    let client = Client::connect(config(&nats, Some(&files))).await.unwrap();
    let sub = std::sync::Arc::new(client.subscribe("direct.>", None).await.unwrap());
    let send = |subject: &'static str, text: String, threshold: usize| {
        let client = client.clone();
        async move {
            client
                .smartsend(
                    subject,
                    vec![OutgoingPayload::text("t", text)],
                    SendOptions {
                        size_threshold: Some(threshold),
                        ..Default::default()
                    },
                )
                .await
                .unwrap()
        }
    };
    let text =
        |env: &Envelope| String::from_utf8(env.payloads[0].bytes().unwrap().to_vec()).unwrap();

    // A consumer awaits while a link message and direct ones behind it arrive.
    let consumer = {
        let sub = sub.clone();
        tokio::spawn(async move {
            let mut got = Vec::new();
            for _ in 0..6 {
                got.push(next(&sub).await.unwrap());
            }
            got
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    send("direct.a", "first".into(), 1 << 20).await;
    send("direct.a", "x".repeat(5000), 100).await;
    for i in 0..4 {
        send("direct.a", format!("after-{i}"), 1 << 20).await;
    }
    let got = consumer.await.unwrap();
    assert_eq!(text(&got[0]), "first");
    assert_eq!(got[1].payloads[0].transport, Transport::Link);
    assert_eq!(text(&got[1]), "x".repeat(5000));
    for (i, env) in got[2..].iter().enumerate() {
        assert_eq!(text(env), format!("after-{i}"));
    }

    // A wait that timed out: what comes next is queued and the wake hook fires.
    assert!(tokio::time::timeout(Duration::from_millis(30), sub.next())
        .await
        .is_err());
    let woken = std::sync::Arc::new(tokio::sync::Notify::new());
    let w = woken.clone();
    sub.set_wake_hook(Some(std::sync::Arc::new(move || w.notify_one())));
    send("direct.b", "queued".into(), 1 << 20).await;
    tokio::time::timeout(WAIT, woken.notified()).await.unwrap();
    assert_eq!(text(&sub.try_next().unwrap().unwrap()), "queued");
    sub.set_wake_hook(None);

    // A blocking pull: a timeout with nothing, then what arrives while it waits.
    let s = sub.clone();
    let pulled = tokio::task::spawn_blocking(move || {
        assert!(matches!(
            s.next_blocking(Some(Duration::from_millis(20))),
            natsbridge::Pulled::TimedOut
        ));
        (0..3)
            .map(|_| match s.next_blocking(Some(WAIT)) {
                natsbridge::Pulled::Item(r) => r.unwrap(),
                _ => panic!("no envelope"),
            })
            .collect::<Vec<_>>()
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    for i in 0..3 {
        send("direct.c", format!("pulled-{i}"), 1 << 20).await;
    }
    for (i, env) in pulled.await.unwrap().iter().enumerate() {
        assert_eq!(text(env), format!("pulled-{i}"));
    }

    // Close wakes a waiting consumer with the end.
    let s = sub.clone();
    let waiting = tokio::spawn(async move { s.next().await.is_none() });
    tokio::time::sleep(Duration::from_millis(30)).await;
    sub.close().await;
    assert!(tokio::time::timeout(WAIT, waiting).await.unwrap().unwrap());
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_smartsend_publishes_at_once_or_publishes_nothing() {
    use natsbridge::TrySent;
    let nats = NatsServer::start();
    let files = Files::start().await;
    let mut cfg = config(&nats, Some(&files));
    cfg.size_threshold = 1000;
    let client = Client::connect(cfg).await.unwrap();
    let sub = client.subscribe("try.at.once", None).await.unwrap();
    let text = |s: &str| OutgoingPayload::text("msg", s);

    // Direct: published at once, exactly the envelope smartsend would have made.
    let sent = match client
        .try_smartsend("try.at.once", vec![text("first")], SendOptions::default())
        .unwrap()
    {
        TrySent::Sent(sent) => sent,
        TrySent::WouldBlock(why) => panic!("a direct send would block: {why}"),
    };
    let got = next(&sub).await.unwrap();
    assert_eq!(got.msg_id, sent.envelope.msg_id);
    assert_eq!(got.payloads[0].data.as_deref(), Some(&b"first"[..]));
    assert_eq!(Envelope::from_json(&sent.json).unwrap(), sent.envelope);

    // A payload at the threshold needs an upload: nothing is published.
    let big = OutgoingPayload::binary("big", bytes_of(1000, 1));
    match client
        .try_smartsend(
            "try.at.once",
            vec![text("second"), big],
            SendOptions::default(),
        )
        .unwrap()
    {
        TrySent::WouldBlock(why) => assert!(why.contains("link"), "{why}"),
        TrySent::Sent(_) => panic!("a link payload was sent without waiting"),
    }
    // Nor does an envelope that only fits the server's max_payload with payloads by link.
    let mut cfg = config(&nats, Some(&files));
    cfg.size_threshold = 1 << 30;
    let roomy = Client::connect(cfg.clone()).await.unwrap();
    let half = roomy.max_payload() / 2;
    let two_halves = || {
        vec![
            OutgoingPayload::binary("a", bytes_of(half, 2)),
            OutgoingPayload::binary("b", bytes_of(half, 3)),
        ]
    };
    assert!(matches!(
        roomy
            .try_smartsend("try.at.once", two_halves(), SendOptions::default())
            .unwrap(),
        TrySent::WouldBlock(_)
    ));
    // Without a file server there is nothing to wait for: the smartsend error, at once.
    cfg.fileserver_url = None;
    let no_files = Client::connect(cfg).await.unwrap();
    let e = no_files
        .try_smartsend("try.at.once", two_halves(), SendOptions::default())
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::PayloadTooLarge);
    assert!(e.correlation_id().is_some());

    // What was refused never arrives: the next envelope is the one sent after it.
    client
        .smartsend("try.at.once", vec![text("third")], SendOptions::default())
        .await
        .unwrap();
    let got = next(&sub).await.unwrap();
    assert_eq!(got.payloads[0].data.as_deref(), Some(&b"third"[..]));

    // Bad input and a closed client fail as smartsend does.
    let e = client
        .try_smartsend("bad subject", vec![text("x")], SendOptions::default())
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidArgument);
    client.close().await.unwrap();
    let e = client
        .try_smartsend("try.at.once", vec![text("x")], SendOptions::default())
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Closed);
}
