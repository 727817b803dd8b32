//! The envelope parsers on arbitrary bytes: `Envelope::from_json` (fast path and general
//! parser) and the payload type checks. Besides not panicking:
//! - the fast path never changes the outcome: the general parser gives the same envelope, or
//!   an error with the same code and message;
//! - what parses is written back by `to_json` (of exactly `json_len` bytes) into a message
//!   that parses again to an equal envelope, and writing that one gives the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natsbridge::{Envelope, PayloadType};

fuzz_target!(|data: &[u8]| {
    let parsed = Envelope::from_json(data);
    let general = Envelope::from_json_general(data);
    match (&parsed, &general) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "fast path and general parser disagree"),
        (Err(a), Err(b)) => {
            assert_eq!(a.code(), b.code(), "{a} / {b}");
            assert_eq!(a.message(), b.message());
        }
        _ => panic!("one parser accepts what the other refuses: {parsed:?} / {general:?}"),
    }
    if let Ok(env) = parsed {
        let json = env.to_json().expect("a parsed envelope is complete");
        assert_eq!(json.len(), env.json_len());
        let again = Envelope::from_json(&json)
            .unwrap_or_else(|e| panic!("what we wrote does not parse: {e}"));
        assert_eq!(again, env, "the written envelope parses to another one");
        assert_eq!(again.to_json().unwrap(), json, "writing is not stable");
        let _ = env.header_json();
    }
    for t in PayloadType::ALL {
        let incoming = t.validate_incoming(data);
        // Whatever may be sent may be received.
        if t.validate_outgoing(data).is_ok() {
            assert!(
                incoming.is_ok(),
                "{t}: sendable but not receivable: {incoming:?}"
            );
        }
    }
});
