//! smartreceive of arbitrary bytes as a received NATS message, through the library's own
//! `Receiver`, without NATS and without a file server. No file server is configured, so every
//! link payload must be refused before any connection; the store behind the receiver panics
//! if it is ever asked for anything, which the fuzzer reports as a crash.
//! Besides not panicking: a message is received exactly when it parses, has no link payload
//! and every payload's bytes pass its type's check, and then it is the parsed envelope.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natsbridge::store::{BoxFuture, DownloadRequest, PayloadStore, UploadRequest, Uploaded};
use natsbridge::{Config, Envelope, ErrorCode, Receiver, Result, Transport};
use std::sync::{Arc, OnceLock};

/// A store that must never be reached.
struct Unreachable;

impl PayloadStore for Unreachable {
    fn upload<'a>(&'a self, _: UploadRequest<'a>) -> BoxFuture<'a, Result<Uploaded>> {
        panic!("a receiver uploaded")
    }
    fn download<'a>(&'a self, r: DownloadRequest<'a>) -> BoxFuture<'a, Result<bytes::Bytes>> {
        panic!("a link payload reached the store: {}", r.url)
    }
    fn discard<'a>(&'a self, _: &'a Uploaded) -> BoxFuture<'a, ()> {
        panic!("a receiver discarded an upload")
    }
}

fn setup() -> &'static (tokio::runtime::Runtime, Receiver) {
    static SETUP: OnceLock<(tokio::runtime::Runtime, Receiver)> = OnceLock::new();
    SETUP.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a tokio runtime");
        let config = Config::default().with_fileserver_url(None);
        let receiver = Receiver::with_store(&config, Arc::new(Unreachable)).expect("a receiver");
        (runtime, receiver)
    })
}

fuzz_target!(|data: &[u8]| {
    let (runtime, receiver) = setup();
    let received = runtime.block_on(receiver.receive(data));
    let parsed = Envelope::from_json(data);
    match (received, parsed) {
        (Ok(got), Ok(env)) => {
            assert_eq!(got, env, "received differs from parsed");
            assert!(got
                .payloads
                .iter()
                .all(|p| p.transport == Transport::Direct));
        }
        (Ok(got), Err(e)) => panic!("received {got:?} from a message that does not parse: {e}"),
        (Err(e), Ok(env)) => {
            if env.payloads.iter().any(|p| p.transport == Transport::Link) {
                assert_eq!(e.code(), ErrorCode::LinkUrlRejected, "{e}");
            } else {
                assert_eq!(e.code(), ErrorCode::DeserializationError, "{e}");
                assert!(
                    env.payloads.iter().any(|p| p
                        .payload_type
                        .validate_incoming(p.bytes().unwrap())
                        .is_err()),
                    "refused though every payload checks: {e}"
                );
            }
        }
        (Err(a), Err(b)) => assert_eq!(a.code(), b.code(), "{a} / {b}"),
    }
});
