//! What a send's success means when the connection is closed or lost under it: sends racing
//! close(), a nats-server killed and restarted under a sender, confirmed sends.

mod common;

use common::NatsServer;
use futures_util::StreamExt as _;
use natsbridge::{Client, ErrorCode, OutgoingPayload, SendOptions};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A raw subscriber that records the `msg_id` of every envelope on `subject`.
async fn raw_counter(
    url: &str,
    subject: &str,
) -> (async_nats::Client, Arc<Mutex<HashSet<String>>>) {
    let raw = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(url)
        .await
        .unwrap();
    let mut sub = raw.subscribe(subject.to_owned()).await.unwrap();
    raw.flush().await.unwrap();
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let s = seen.clone();
    tokio::spawn(async move {
        while let Some(m) = sub.next().await {
            let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
            s.lock()
                .unwrap()
                .insert(v["msg_id"].as_str().unwrap().to_owned());
        }
    });
    (raw, seen)
}

/// Waits (bounded) until `seen` holds every id of `want`; returns the ones missing.
async fn missing(seen: &Mutex<HashSet<String>>, want: &[String], limit: Duration) -> Vec<String> {
    let until = Instant::now() + limit;
    loop {
        let miss: Vec<String> = {
            let s = seen.lock().unwrap();
            want.iter().filter(|id| !s.contains(*id)).cloned().collect()
        };
        if miss.is_empty() || Instant::now() > until {
            return miss;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A TCP gate in front of nats-server for the sender: `cut()` resets its connections and
/// refuses new ones until `open()`. The raw subscriber connects to the server directly, and
/// the gate opens only once it has resubscribed, so it cannot miss what the sender sends.
struct Gate {
    port: u16,
    open: Arc<std::sync::atomic::AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Gate {
    async fn start(upstream: u16) -> Gate {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (o, c) = (open.clone(), conns.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut down, _)) = listener.accept().await else {
                    return;
                };
                if !o.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection close
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut up) =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
                c.lock().unwrap().push(task.abort_handle());
            }
        });
        Gate { port, open, conns }
    }

    fn cut(&self) {
        self.open.store(false, std::sync::atomic::Ordering::SeqCst);
        for t in self.conns.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    fn open(&self) {
        self.open.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

fn small(i: usize) -> (Vec<OutgoingPayload>, SendOptions) {
    let payloads = vec![OutgoingPayload::new(
        "a",
        natsbridge::PayloadType::Audio,
        vec![(i % 251) as u8; 2000],
    )];
    let options = SendOptions {
        msg_id: Some(format!("m{i}")),
        ..SendOptions::default()
    };
    (payloads, options)
}

/// Sends racing close(): each one either arrives or fails with CLOSED (before the fix some
/// failed with NATS_CONNECTION_FAILED "channel closed", and a send could return OK after
/// close had drained the connection, never to arrive).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_racing_close_fail_with_closed_and_every_ok_arrives() {
    let nats = NatsServer::start();
    let (_raw, seen) = raw_counter(&nats.url(), "race").await;
    let mut cfg = common::config(&nats, None);
    cfg.fileserver_url = None;
    for round in 0..5 {
        let client = Client::connect(cfg.clone()).await.unwrap();
        let started = Arc::new(tokio::sync::Barrier::new(41));
        let mut tasks = Vec::new();
        for t in 0..40 {
            let (c, started) = (client.clone(), started.clone());
            tasks.push(tokio::spawn(async move {
                started.wait().await;
                let mut results = Vec::new();
                // Until close() stops them.
                for k in 0..20_000 {
                    let i = round * 1_000_000 + t * 20_000 + k;
                    let (p, o) = small(i);
                    let r = c.smartsend("race", p, o).await;
                    let failed = r.is_err();
                    results.push((format!("m{i}"), r.map(|_| ()).map_err(|e| e.code())));
                    if failed {
                        break;
                    }
                }
                results
            }));
        }
        let before = seen.lock().unwrap().len();
        started.wait().await;
        // Close while the sends are in full flow.
        let until = Instant::now() + Duration::from_secs(5);
        while seen.lock().unwrap().len() < before + 200 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let closed = client.close().await;
        assert!(closed.is_ok(), "close: {closed:?}");
        let mut ok = Vec::new();
        let mut refused = 0;
        for t in tasks {
            for (id, r) in t.await.unwrap() {
                match r {
                    Ok(()) => ok.push(id),
                    Err(ErrorCode::Closed) => refused += 1,
                    Err(other) => panic!("a send racing close failed with {other}, not CLOSED"),
                }
            }
        }
        let lost = missing(&seen, &ok, Duration::from_secs(10)).await;
        println!(
            "round {round}: {} sent, {refused} refused with CLOSED, {} lost",
            ok.len(),
            lost.len()
        );
        assert!(
            lost.is_empty(),
            "sends that returned OK never arrived: {lost:?}"
        );
    }
}

/// A nats-server killed and restarted under a sender: every send that returned OK either
/// arrives or is counted in `dropped()` and reported by `flush()` as MESSAGES_DROPPED; a
/// confirmed send returns OK only for an envelope that arrived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restart_every_ok_send_arrives_or_is_reported_dropped() {
    let port = common::free_port();
    let mut nats = Some(NatsServer::on_port(port, ""));
    let url = nats.as_ref().unwrap().url();
    let (raw, seen) = raw_counter(&url, "restart").await;
    let gate = Gate::start(port).await;
    let mut cfg = common::config(nats.as_ref().unwrap(), None);
    cfg.nats_url = format!("nats://127.0.0.1:{}", gate.port);
    cfg.fileserver_url = None;
    cfg.operation_timeout = Duration::from_secs(3);
    let client = Client::connect(cfg).await.unwrap();

    let mut ok = Vec::new();
    let mut confirmed = Vec::new();
    let mut failed = 0usize;
    let mut longest = Duration::ZERO;
    let t0 = Instant::now();
    let mut restarted = false;
    let mut i = 0;
    while t0.elapsed() < Duration::from_secs(6) {
        if !restarted && nats.is_some() && t0.elapsed() > Duration::from_millis(1500) {
            nats = None; // SIGKILL
            gate.cut();
        }
        if !restarted && t0.elapsed() > Duration::from_millis(3000) {
            nats = Some(NatsServer::on_port(port, ""));
            restarted = true;
            let until = Instant::now() + Duration::from_secs(10);
            while raw.connection_state() != async_nats::connection::State::Connected {
                assert!(
                    Instant::now() < until,
                    "the raw subscriber did not reconnect"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            raw.flush().await.unwrap();
            gate.open();
        }
        let (p, mut o) = small(i);
        o.confirm = i % 10 == 0;
        let started = Instant::now();
        let r = client.smartsend("restart", p, o.clone()).await;
        longest = longest.max(started.elapsed());
        match r {
            Ok(_) if o.confirm => confirmed.push(format!("m{i}")),
            Ok(_) => ok.push(format!("m{i}")),
            Err(e) => {
                assert!(
                    matches!(
                        e.code(),
                        ErrorCode::Timeout
                            | ErrorCode::MessagesDropped
                            | ErrorCode::NatsConnectionFailed
                    ),
                    "{e}"
                );
                failed += 1;
            }
        }
        i += 1;
        if i % 20 == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let flushed = client.flush().await;
    let reported = match &flushed {
        Ok(()) => 0,
        Err(e) => {
            assert_eq!(e.code(), ErrorCode::MessagesDropped, "{e}");
            e.details()["dropped"].as_u64().unwrap()
        }
    };
    let dropped = client.dropped();
    let mut all = ok.clone();
    all.extend(confirmed.iter().cloned());
    let lost = missing(&seen, &all, Duration::from_secs(5)).await;
    let lost_confirmed: Vec<_> = lost.iter().filter(|id| confirmed.contains(id)).collect();
    println!(
        "restart: {i} sends, {} OK ({} confirmed), {failed} failed, {} never arrived, {dropped} counted dropped, flush reported {reported}; longest call {} ms",
        all.len(),
        confirmed.len(),
        lost.len(),
        longest.as_millis()
    );
    assert!(restarted && nats.is_some());
    assert!(
        lost_confirmed.is_empty(),
        "confirmed sends that never arrived: {lost_confirmed:?}"
    );
    assert!(
        lost.len() as u64 <= dropped,
        "{} sends returned OK and never arrived, but only {dropped} were counted dropped",
        lost.len()
    );
    assert_eq!(
        reported, dropped,
        "flush reports every dropped message once"
    );
    assert!(
        client.flush().await.is_ok(),
        "a second flush has nothing to report"
    );
    assert!(
        longest < Duration::from_secs(8),
        "a send blocked {longest:?}"
    );
}

/// A file server stand-in on a real socket: `Silent` accepts and never answers; `Trickle`
/// answers 200 with the declared length, then one byte per second.
#[derive(Clone, Copy)]
enum Faulty {
    Silent,
    Trickle,
}

async fn faulty_server(mode: Faulty, len: usize) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                if let Faulty::Trickle = mode {
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nContent-Type: application/octet-stream\r\n\r\n"
                    );
                    if s.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    for _ in 0..len {
                        if s.write_all(b"x").await.is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
                // Silent: hold the connection open, answer nothing.
                tokio::time::sleep(Duration::from_secs(600)).await;
                drop(s);
            });
        }
    });
    format!("http://{addr}")
}

fn link_envelope(msg_id: &str, url: &str, size: usize) -> String {
    format!(
        r#"{{"correlation_id":"c-{msg_id}","msg_id":"{msg_id}","payloads":[{{"dataname":"x","payload_type":"binary","transport":"link","encoding":"none","size":{size},"data":"{url}/file/aaaa/bbbb/x","metadata":{{}}}}]}}"#
    )
}

fn direct_envelope(msg_id: &str) -> String {
    format!(
        r#"{{"correlation_id":"c-{msg_id}","msg_id":"{msg_id}","payloads":[{{"dataname":"t","payload_type":"text","transport":"direct","encoding":"base64","size":2,"data":"aGk=","metadata":{{}}}}]}}"#
    )
}

fn deadline_config(nats: &NatsServer) -> natsbridge::Config {
    let mut cfg = common::config(nats, None);
    cfg.fileserver_url = None;
    cfg.link.allowed_origins = natsbridge::AllowedOrigins::Any;
    cfg.link.download_timeout = Duration::from_secs(1);
    cfg.operation_timeout = Duration::from_millis(500);
    cfg
}

/// A silent or trickling file server fails the download within the message's deadline
/// (`download_timeout` plus the declared size at `min_transfer_rate`), not after minutes
/// (before the fix: 151 s silent, still blocked after 150 s trickling).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_or_trickling_file_server_fails_within_the_download_deadline() {
    let nats = NatsServer::start();
    let client = Client::connect(deadline_config(&nats)).await.unwrap();
    for (mode, name) in [
        (Faulty::Silent, "silent"),
        (Faulty::Trickle, "trickle 1 B/s"),
    ] {
        let url = faulty_server(mode, 2000).await;
        let started = Instant::now();
        let e = client
            .smartreceive(link_envelope("m1", &url, 2000).as_bytes())
            .await
            .unwrap_err();
        let took = started.elapsed();
        println!("{name}: {} after {} ms: {e}", e.code(), took.as_millis());
        assert_eq!(e.code(), ErrorCode::DownloadFailed, "{e}");
        assert!(e.message().contains("deadline"), "{e}");
        // 1 s + 2000 B at 256 KiB/s; generous margin for a loaded machine.
        assert!(took >= Duration::from_millis(900), "{took:?}");
        assert!(took < Duration::from_secs(6), "{name} took {took:?}");
    }
}

/// Ordered, an envelope behind a stalled download waits at most the download's deadline;
/// unordered, an envelope without links is delivered at once (before the fix, a direct
/// envelope behind a trickling link had not arrived after 60 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_download_holds_later_envelopes_at_most_its_deadline_and_not_at_all_unordered() {
    let nats = NatsServer::start();
    let url = faulty_server(Faulty::Trickle, 2000).await;
    let raw = async_nats::connect(nats.url()).await.unwrap();
    for ordered in [true, false] {
        let mut cfg = deadline_config(&nats);
        cfg.ordered_subscriptions = ordered;
        let client = Client::connect(cfg).await.unwrap();
        let subject = format!("hol.{ordered}");
        let sub = client.subscribe(&subject, None).await.unwrap();
        let started = Instant::now();
        raw.publish(subject.clone(), link_envelope("link", &url, 2000).into())
            .await
            .unwrap();
        raw.publish(subject.clone(), direct_envelope("direct").into())
            .await
            .unwrap();
        raw.flush().await.unwrap();
        let mut order = Vec::new();
        for _ in 0..2 {
            let item = tokio::time::timeout(Duration::from_secs(10), sub.next())
                .await
                .expect("an item within 10 s")
                .expect("the subscription is open");
            let what = match item {
                Ok(env) => env.msg_id,
                Err(e) => {
                    assert_eq!(e.code(), ErrorCode::DownloadFailed, "{e}");
                    "link failed".to_owned()
                }
            };
            order.push((what, started.elapsed()));
        }
        println!("ordered={ordered}: {order:?}");
        if ordered {
            assert_eq!(order[0].0, "link failed");
            assert_eq!(order[1].0, "direct");
            assert!(order[1].1 < Duration::from_secs(6), "held {:?}", order[1].1);
        } else {
            assert_eq!(order[0].0, "direct");
            assert!(
                order[0].1 < Duration::from_millis(900),
                "held {:?}",
                order[0].1
            );
            assert_eq!(order[1].0, "link failed");
        }
        client.close().await.unwrap();
    }
}
