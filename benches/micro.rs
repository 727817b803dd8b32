//! CPU cost of writing and parsing one small envelope, without a network (for profiling).
//! Run: cargo bench --bench micro
use natsbridge::{Envelope, Payload, PayloadType, Transport};
use std::time::Instant;

fn main() {
    let n = 300_000;
    let data = bytes::Bytes::from(vec![b'x'; 128]);
    let make = || Envelope {
        correlation_id: natsbridge::envelope::new_uuid(),
        msg_id: natsbridge::envelope::new_uuid(),
        timestamp: natsbridge::time::now_iso8601(),
        send_to: "bench.small".into(),
        msg_purpose: "chat".into(),
        sender_id: natsbridge::envelope::new_uuid(),
        broker_url: "nats://127.0.0.1:4222".into(),
        payloads: vec![Payload {
            id: natsbridge::envelope::new_uuid(),
            dataname: "p".into(),
            payload_type: PayloadType::Text,
            transport: Transport::Direct,
            encoding: "base64".into(),
            size: 128,
            url: None,
            data: Some(data.clone()),
            file: None,
            metadata: serde_json::Map::from_iter([("payload_bytes".to_string(), 128.into())]),
        }],
        ..Default::default()
    };
    let start = Instant::now();
    let mut json = Vec::new();
    for _ in 0..n {
        let env = make();
        std::hint::black_box(env.json_len());
        json = env.to_json().unwrap();
    }
    let write = start.elapsed().as_secs_f64() / n as f64 * 1e6;
    let start = Instant::now();
    for _ in 0..n {
        let env = Envelope::from_json(&json).unwrap();
        let p = &env.payloads[0];
        p.payload_type
            .validate_incoming(p.bytes().unwrap())
            .unwrap();
    }
    let parse = start.elapsed().as_secs_f64() / n as f64 * 1e6;
    println!(
        "make + measure + write {write:.2} µs/msg, parse + validate {parse:.2} µs/msg, {} bytes",
        json.len()
    );

    // A large binary payload: base64 and the scan of its JSON string dominate.
    let big = make_big();
    let json = big.to_json().unwrap();
    let n = 300;
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(big.to_json().unwrap());
    }
    let write = start.elapsed().as_secs_f64() / n as f64 * 1e6;
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(Envelope::from_json(&json).unwrap());
    }
    let parse = start.elapsed().as_secs_f64() / n as f64 * 1e6;
    println!(
        "499,999 B binary: write {write:.0} µs/msg, parse {parse:.0} µs/msg, {} bytes",
        json.len()
    );
}

fn make_big() -> Envelope {
    let data: Vec<u8> = (0..499_999u32).map(|i| (i * 31 % 251) as u8).collect();
    Envelope {
        correlation_id: natsbridge::envelope::new_uuid(),
        msg_id: natsbridge::envelope::new_uuid(),
        timestamp: natsbridge::time::now_iso8601(),
        send_to: "bench.large".into(),
        msg_purpose: "chat".into(),
        payloads: vec![Payload {
            id: natsbridge::envelope::new_uuid(),
            dataname: "p".into(),
            payload_type: PayloadType::Binary,
            transport: Transport::Direct,
            encoding: "base64".into(),
            size: data.len() as u64,
            url: None,
            data: Some(data.into()),
            file: None,
            metadata: serde_json::Map::new(),
        }],
        ..Default::default()
    }
}
