//! `make bench`, Rust part: the bridge against raw async-nats and raw HTTP, side by side in one
//! run on one machine. Prints one JSON line per measurement; tools/bench_report.py turns the
//! lines of every language into docs/benchmarks.md.
//!
//! Usage: cargo bench --bench bridge [-- --quick] [-- --only ID]
//! (internally also: `-- --receiver-mem SIZE MODE NATS_URL FILESERVER_URL SUBJECT`, and
//! `-- --native SIZE N` for the Python and Node benches: the Rust bridge's end-to-end
//! throughput with `SIZE` B binary payloads, one JSON line)

#[path = "../tests/common/mod.rs"]
mod common;

use common::{bytes_of, Files, NatsServer};
use futures_util::StreamExt;
use natsbridge::{Client, Config, OutgoingPayload, PayloadType, SendOptions};
use serde_json::json;
use std::time::{Duration, Instant};

fn emit(v: serde_json::Value) {
    println!("{v}");
}

fn bridge_config(nats: &NatsServer, files: Option<&Files>) -> Config {
    let mut c = common::config(nats, files);
    c.subscription_queue = 1 << 20;
    c.operation_timeout = Duration::from_secs(60);
    c
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// One end-to-end run of the bridge: `n` envelopes of one payload of `body` published by one
/// task and received, decoded and checked by another. Returns the seconds taken; failures
/// (lost messages, errors, slow consumers) go to `notes` and clear `valid`.
async fn bridge_run(
    nats: &NatsServer,
    subject: &str,
    payload_type: PayloadType,
    body: bytes::Bytes,
    n: usize,
    valid: &mut bool,
    notes: &mut Vec<String>,
) -> f64 {
    let size = body.len();
    let client = Client::connect(bridge_config(nats, None)).await.unwrap();
    let sub = client.subscribe(subject, None).await.unwrap();
    let start = Instant::now();
    let sender = {
        let client = client.clone();
        let subject = subject.to_owned();
        tokio::spawn(async move {
            for _ in 0..n {
                client
                    .smartsend(
                        &subject,
                        vec![OutgoingPayload::new("p", payload_type, body.clone())],
                        SendOptions::default(),
                    )
                    .await
                    .unwrap();
            }
        })
    };
    let mut got = 0;
    while got < n {
        match tokio::time::timeout(Duration::from_secs(30), sub.next()).await {
            Ok(Some(Ok(env))) => {
                assert_eq!(env.payloads[0].size as usize, size);
                got += 1;
            }
            Ok(Some(Err(e))) => {
                *valid = false;
                notes.push(format!("bridge error: {e}"));
                break;
            }
            _ => {
                *valid = false;
                notes.push(format!("bridge lost messages: {got}/{n}"));
                break;
            }
        }
    }
    let t = start.elapsed().as_secs_f64();
    sender.await.unwrap();
    if sub.dropped() > 0 || client.slow_consumer_events() > 0 {
        *valid = false;
        notes.push("slow consumer".into());
    }
    client.close().await.unwrap();
    t
}

/// `--native SIZE N`: the Rust bridge's throughput with `SIZE` B binary payloads (median of
/// three runs of `N` messages), for the bindings' benches to compare with.
async fn native(size: usize, n: usize) {
    let nats = NatsServer::start();
    let body = bytes::Bytes::from(bytes_of(size, 1));
    let mut valid = true;
    let mut notes = Vec::new();
    let mut runs = Vec::new();
    for round in 0..3 {
        let subject = format!("bench.native.{size}.{round}");
        runs.push(
            bridge_run(
                &nats,
                &subject,
                PayloadType::Binary,
                body.clone(),
                n,
                &mut valid,
                &mut notes,
            )
            .await,
        );
    }
    let t = median(runs);
    emit(json!({
        "id": format!("native_{size}"), "size": size, "n": n, "seconds": t,
        "msgs_per_s": n as f64 / t, "mb_per_s": (n * size) as f64 / t / 1e6,
        "valid": valid, "notes": notes.join("; "),
    }));
}

/// Throughput of `n` messages of `size` bytes: bridge end-to-end vs raw pub→sub.
async fn throughput(nats: &NatsServer, id: &str, size: usize, n: usize, target: &str) {
    let data = bytes_of(size, 1);
    let mut runs_bridge = Vec::new();
    let mut runs_raw = Vec::new();
    let mut valid = true;
    let mut notes = Vec::new();
    for round in 0..3 {
        // Bridge: build envelope → publish → receive → decode.
        let payload_type = if size <= 1024 {
            PayloadType::Text
        } else {
            PayloadType::Binary
        };
        let body = if payload_type == PayloadType::Text {
            bytes::Bytes::from("x".repeat(size))
        } else {
            bytes::Bytes::from(data.clone())
        };
        let subject = format!("bench.{id}.{round}");
        runs_bridge.push(
            bridge_run(
                nats,
                &subject,
                payload_type,
                body,
                n,
                &mut valid,
                &mut notes,
            )
            .await,
        );

        // Raw async-nats: the same bytes, publish → subscribe.
        let raw = async_nats::ConnectOptions::new()
            .subscription_capacity(1 << 20)
            .connect(nats.url())
            .await
            .unwrap();
        let subject = format!("bench.raw.{id}.{round}");
        let mut rsub = raw.subscribe(subject.clone()).await.unwrap();
        raw.flush().await.unwrap();
        let body = bytes::Bytes::from(data.clone());
        let start = Instant::now();
        let sender = {
            let raw = raw.clone();
            tokio::spawn(async move {
                for _ in 0..n {
                    raw.publish(subject.clone(), body.clone()).await.unwrap();
                }
                raw.flush().await.unwrap();
            })
        };
        let mut got = 0;
        while got < n {
            match tokio::time::timeout(Duration::from_secs(30), rsub.next()).await {
                Ok(Some(m)) => {
                    assert_eq!(m.payload.len(), size);
                    got += 1;
                }
                _ => {
                    valid = false;
                    notes.push(format!("raw lost messages: {got}/{n}"));
                    break;
                }
            }
        }
        runs_raw.push(start.elapsed().as_secs_f64());
        sender.await.unwrap();
    }
    let (tb, tr) = (median(runs_bridge), median(runs_raw));
    let per = |t: f64| {
        if size <= 1024 {
            n as f64 / t
        } else {
            (n * size) as f64 / t / 1e6
        }
    };
    let (b, r) = (per(tb), per(tr));
    emit(json!({
        "id": id, "what": if size <= 1024 { format!("{size} B text, end to end") } else { format!("{size} B binary, end to end") },
        "unit": if size <= 1024 { "msg/s" } else { "MB/s" },
        "bridge": b, "baseline": r, "baseline_name": "raw async-nats pub→sub",
        "ratio": b / r, "target": target, "valid": valid, "notes": notes.join("; "),
    }));
}

/// One 16 MiB link transfer vs raw keep-alive HTTP upload + download on the same server.
async fn link_transfer(nats: &NatsServer, files: &Files, size: usize) {
    let data = bytes::Bytes::from(bytes_of(size, 3));
    let sender = Client::connect(bridge_config(nats, Some(files)))
        .await
        .unwrap();
    let receiver = Client::connect(bridge_config(nats, Some(files)))
        .await
        .unwrap();
    let sub = receiver.subscribe("bench.link", None).await.unwrap();
    let http = reqwest::Client::builder()
        .user_agent("plik_client/bench")
        .build()
        .unwrap();
    let mut tb = Vec::new();
    let mut tr = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        sender
            .smartsend(
                "bench.link",
                vec![OutgoingPayload::binary("blob", data.clone())],
                SendOptions::default(),
            )
            .await
            .unwrap();
        let env = sub.next().await.unwrap().unwrap();
        assert_eq!(env.payloads[0].size as usize, size);
        tb.push(start.elapsed().as_secs_f64());

        let start = Instant::now();
        let created: serde_json::Value = serde_json::from_slice(
            &http
                .post(format!("{}/upload", files.url()))
                .body("{}")
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap(),
        )
        .unwrap();
        let (id, token) = (
            created["id"].as_str().unwrap(),
            created["uploadToken"].as_str().unwrap(),
        );
        let part = reqwest::multipart::Part::stream_with_length(
            reqwest::Body::from(data.clone()),
            size as u64,
        )
        .file_name("blob");
        let file: serde_json::Value = serde_json::from_slice(
            &http
                .post(format!("{}/file/{id}", files.url()))
                .header("X-UploadToken", token)
                .multipart(reqwest::multipart::Form::new().part("file", part))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap(),
        )
        .unwrap();
        let got = http
            .get(format!(
                "{}/file/{id}/{}/blob",
                files.url(),
                file["id"].as_str().unwrap()
            ))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(got.len(), size);
        tr.push(start.elapsed().as_secs_f64());
    }
    let (b, r) = (median(tb), median(tr));
    emit(json!({
        "id": "link_16mib", "what": "16 MiB link: upload + message + download + sha256",
        "unit": "s", "bridge": b, "baseline": r, "baseline_name": "raw HTTP upload then GET (keep-alive)",
        "ratio": b / r, "target": "<= 1.25", "valid": true, "notes": "",
    }));
}

/// Request/reply latency with a 128 B envelope vs raw async-nats request/reply.
async fn latency(nats: &NatsServer, n: usize) {
    let server = Client::connect(bridge_config(nats, None)).await.unwrap();
    let client = Client::connect(bridge_config(nats, None)).await.unwrap();
    let sub = server.subscribe("bench.rr", None).await.unwrap();
    let responder = {
        let server = server.clone();
        tokio::spawn(async move {
            while let Some(Ok(req)) = sub.next().await {
                server
                    .reply(
                        &req,
                        vec![OutgoingPayload::text("r", "x".repeat(128))],
                        SendOptions::default(),
                    )
                    .await
                    .unwrap();
            }
        })
    };
    let raw_server = async_nats::connect(nats.url()).await.unwrap();
    let raw_client = async_nats::connect(nats.url()).await.unwrap();
    let mut rsub = raw_server.subscribe("bench.rawrr").await.unwrap();
    raw_server.flush().await.unwrap();
    let raw_responder = tokio::spawn(async move {
        while let Some(m) = rsub.next().await {
            if let Some(reply) = m.reply {
                raw_server.publish(reply, m.payload).await.unwrap();
            }
        }
    });
    // Bridge and raw requests alternate, so that both see the same moments of a shared,
    // noisy machine; the first 50 of each warm up.
    let body = bytes::Bytes::from(vec![b'y'; 128]);
    let mut bridge = Vec::with_capacity(n);
    let mut raw = Vec::with_capacity(n);
    for i in 0..n + 50 {
        let start = Instant::now();
        client
            .request(
                "bench.rr",
                vec![OutgoingPayload::text("q", "y".repeat(128))],
                SendOptions::default(),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
        let tb = start.elapsed().as_secs_f64() * 1e6;
        let start = Instant::now();
        raw_client
            .request("bench.rawrr", body.clone())
            .await
            .unwrap();
        let tr = start.elapsed().as_secs_f64() * 1e6;
        if i >= 50 {
            bridge.push(tb);
            raw.push(tr);
        }
    }
    responder.abort();
    raw_responder.abort();
    let pct = |v: &mut Vec<f64>, q: f64| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[((v.len() as f64 - 1.0) * q).round() as usize]
    };
    let (b50, b99) = (pct(&mut bridge, 0.5), pct(&mut bridge, 0.99));
    let (r50, r99) = (pct(&mut raw, 0.5), pct(&mut raw, 0.99));
    emit(json!({
        "id": "latency_p50", "what": "request/reply 128 B, p50", "unit": "µs",
        "bridge": b50, "baseline": r50, "baseline_name": "raw async-nats request/reply",
        "ratio": b50 / r50, "delta": b50 - r50, "target": "<= raw + 25 µs", "valid": true, "notes": "",
    }));
    emit(json!({
        "id": "latency_p99", "what": "request/reply 128 B, p99", "unit": "µs",
        "bridge": b99, "baseline": r99, "baseline_name": "raw async-nats request/reply",
        "ratio": b99 / r99, "target": "<= 1.2", "valid": true, "notes": "",
    }));
}

/// Peak RSS growth (bytes) of this process, from /proc.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// The receiver side of the memory measurement, in its own process.
async fn receiver_mem(size: u64, mode: &str, nats_url: &str, fs_url: &str, subject: &str) {
    let mut c = Config::default()
        .with_nats_url(nats_url)
        .with_fileserver_url(Some(fs_url.into()));
    let dir = tempfile::tempdir().unwrap();
    if mode == "file" {
        c.link.download_dir = Some(dir.path().to_owned());
    }
    c.link.max_download_bytes = 4 << 30;
    let client = Client::connect(c).await.unwrap();
    let sub = client.subscribe(subject, None).await.unwrap();
    let base = peak_rss();
    println!("ready");
    let env = sub.next().await.unwrap().unwrap();
    assert_eq!(env.payloads[0].size, size);
    let peak = peak_rss();
    println!("{} {}", peak.saturating_sub(base), peak);
}

async fn memory(nats: &NatsServer, files: &Files, sizes: &[u64]) {
    use std::io::BufRead;
    let exe = std::env::current_exe().unwrap();
    let sender = Client::connect(bridge_config(nats, Some(files)))
        .await
        .unwrap();
    let mut rows = Vec::new();
    for mode in ["file", "memory"] {
        for &size in sizes {
            let subject = format!("bench.mem.{mode}.{size}");
            let mut child = std::process::Command::new(&exe)
                .args([
                    "--receiver-mem",
                    &size.to_string(),
                    mode,
                    &nats.url(),
                    &files.url(),
                    &subject,
                ])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            assert_eq!(line.trim(), "ready");
            let data = bytes::Bytes::from(vec![7u8; size as usize]);
            sender
                .smartsend(
                    &subject,
                    vec![OutgoingPayload::binary("big", data)],
                    SendOptions::default(),
                )
                .await
                .unwrap();
            line.clear();
            out.read_line(&mut line).unwrap();
            child.wait().unwrap();
            let mut fields = line
                .split_whitespace()
                .map(|x| x.parse::<u64>().unwrap_or(u64::MAX));
            let growth = fields.next().unwrap_or(u64::MAX);
            let peak = fields.next().unwrap_or(u64::MAX);
            rows.push((mode, size, if mode == "file" { peak } else { growth }));
        }
    }
    let growth = |mode: &str| -> Vec<(u64, u64)> {
        rows.iter()
            .filter(|r| r.0 == mode)
            .map(|r| (r.1, r.2))
            .collect()
    };
    let file = growth("file");
    let (small, large) = (file[0].1 as f64, file[file.len() - 1].1 as f64);
    emit(json!({
        "id": "memory_file", "what": format!("receiver peak RSS saving to a file: {} MiB payload vs {} MiB", file[file.len() - 1].0 >> 20, file[0].0 >> 20),
        "unit": "MiB", "bridge": large / 1048576.0, "baseline": small / 1048576.0, "baseline_name": "same at the smallest size",
        "ratio": large / small.max(1.0), "target": "0.9 – 1.1 (flat)", "valid": true,
        "notes": file.iter().map(|(s, g)| format!("{} MiB payload: peak {:.1} MiB", s >> 20, *g as f64 / 1048576.0)).collect::<Vec<_>>().join(", "),
    }));
    for (size, g) in growth("memory") {
        emit(json!({
            "id": format!("memory_in_memory_{}mib", size >> 20), "what": format!("receiver peak RSS growth receiving {} MiB into memory", size >> 20),
            "unit": "MiB", "bridge": g as f64 / 1048576.0, "baseline": (size as f64) / 1048576.0 + 64.0, "baseline_name": "payload size + 64 MiB",
            "ratio": g as f64 / (size as f64 + 64.0 * 1048576.0), "target": "<= 1.0", "valid": true, "notes": "",
        }));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if let Some(i) = args.iter().position(|a| a == "--receiver-mem") {
        let a = &args[i + 1..];
        rt.block_on(receiver_mem(
            a[0].parse().unwrap(),
            &a[1],
            &a[2],
            &a[3],
            &a[4],
        ));
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--native") {
        let a = &args[i + 1..];
        rt.block_on(native(a[0].parse().unwrap(), a[1].parse().unwrap()));
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    // `--only ID` runs one measurement (for profiling).
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let run = |id: &str| only.as_deref().is_none_or(|o| o == id);
    rt.block_on(async {
        let nats = NatsServer::start();
        let files = Files::start().await;
        if run("small_direct") {
            throughput(
                &nats,
                "small_direct",
                128,
                if quick { 2_000 } else { 20_000 },
                ">= 0.8",
            )
            .await;
        }
        if run("large_direct") {
            throughput(
                &nats,
                "large_direct",
                499_999,
                if quick { 20 } else { 200 },
                ">= 0.65",
            )
            .await;
        }
        if run("link_16mib") {
            link_transfer(&nats, &files, 16 << 20).await;
        }
        if run("latency") {
            latency(&nats, if quick { 200 } else { 2_000 }).await;
        }
        if run("memory") {
            let sizes: &[u64] = if quick {
                &[16 << 20, 64 << 20]
            } else {
                &[16 << 20, 256 << 20, 1 << 30]
            };
            memory(&nats, &files, sizes).await;
        }
    });
}
