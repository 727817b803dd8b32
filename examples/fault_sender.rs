//! The Rust sender of the fault matrix (tests/faults/run.py): one envelope every interval on
//! one client until standard input closes, then a flush.
//!
//! ```text
//! fault_sender --nats URL --subject S --name NAME --log FILE [--interval-ms 10]
//!              [--operation-timeout-ms 2000]
//! ```
//!
//! Each envelope carries one text payload, its id `NAME-i`, also its `msg_id`. The log gets
//! one line per send: id, start, end (Unix seconds), `OK` or the error code. Standard output
//! gets `{"event":"ready"}` once connected and `{"event":"done",...}` at the end, with the
//! outcomes of the flush and the close and the client's `dropped()` count.

use natsbridge::{Client, Config, OutgoingPayload, SendOptions};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn emit(value: serde_json::Value) {
    println!("{value}");
    let _ = std::io::stdout().flush();
}

fn fatal(message: String) -> ! {
    emit(serde_json::json!({"event": "fatal", "message": message}));
    std::process::exit(2)
}

struct Args {
    nats: String,
    subject: String,
    name: String,
    log: String,
    interval: Duration,
    operation_timeout: Duration,
}

fn parse_args() -> Args {
    let mut it = std::env::args().skip(1);
    let (mut nats, mut subject, mut name, mut log) = (None, None, None, None);
    let (mut interval_ms, mut timeout_ms) = (10u64, 2000u64);
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .unwrap_or_else(|| fatal(format!("{flag} needs a value")));
        let number = || {
            value
                .parse::<u64>()
                .unwrap_or_else(|_| fatal(format!("{flag} needs a number, not {value:?}")))
        };
        match flag.as_str() {
            "--nats" => nats = Some(value),
            "--subject" => subject = Some(value),
            "--name" => name = Some(value),
            "--log" => log = Some(value),
            "--interval-ms" => interval_ms = number(),
            "--operation-timeout-ms" => timeout_ms = number(),
            other => fatal(format!("unknown option {other}")),
        }
    }
    let need =
        |v: Option<String>, what: &str| v.unwrap_or_else(|| fatal(format!("{what} is required")));
    Args {
        nats: need(nats, "--nats"),
        subject: need(subject, "--subject"),
        name: need(name, "--name"),
        log: need(log, "--log"),
        interval: Duration::from_millis(interval_ms),
        operation_timeout: Duration::from_millis(timeout_ms),
    }
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let mut config = Config::default()
        .with_nats_url(args.nats.clone())
        .with_fileserver_url(None);
    config.sender_name = args.name.clone();
    config.connect_timeout = Duration::from_secs(1);
    config.operation_timeout = args.operation_timeout;
    let client = Client::connect(config)
        .await
        .unwrap_or_else(|e| fatal(format!("connect: {e}")));

    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        flag.store(true, Ordering::SeqCst);
    });
    emit(serde_json::json!({"event": "ready"}));

    let mut log = String::new();
    let mut i = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let id = format!("{}-{i}", args.name);
        let t0 = now();
        let options = SendOptions {
            msg_id: Some(id.clone()),
            ..SendOptions::default()
        };
        let payloads = vec![OutgoingPayload::text("id", id.clone())];
        let status = match client.smartsend(&args.subject, payloads, options).await {
            Ok(_) => "OK".to_owned(),
            Err(e) => e.code().to_string(),
        };
        log.push_str(&format!("{id}\t{t0:.6}\t{:.6}\t{status}\n", now()));
        i += 1;
        tokio::time::sleep(args.interval).await;
    }
    let outcome = |r: natsbridge::Result<()>| match r {
        Ok(()) => "OK".to_owned(),
        Err(e) => e.code().to_string(),
    };
    let flush = outcome(client.flush().await);
    let dropped = client.dropped();
    let close = outcome(client.close().await);
    std::fs::write(&args.log, log).unwrap_or_else(|e| fatal(format!("{}: {e}", args.log)));
    emit(serde_json::json!({"event": "done", "flush": flush, "close": close, "dropped": dropped}));
}
