//! natsbridge: typed payloads over NATS with the claim-check pattern.
//!
//! One call each way: [`Client::smartsend`] publishes an envelope of named payloads (text,
//! dictionary, Arrow table, JSON table, image, audio, video, binary); small payloads travel
//! inside the message as base64, large ones are uploaded to a Plik-compatible file server and
//! only their URL travels. [`Client::subscribe`] and [`Client::smartreceive`] give envelopes
//! back with every payload's bytes, link payloads fetched with exponential backoff.
//!
//! The wire format is the contract shared with every other implementation; see
//! [`envelope`]. The embedded [`fileserver`] makes a machine with a `nats-server` self-sufficient.

pub mod bridge;
pub mod config;
pub mod envelope;
pub mod error;
pub mod ffi;
pub mod fileserver;
pub mod log;
pub mod payload_type;
pub mod progress;
pub mod settings;
pub mod store;
pub mod time;
pub mod transport;

pub use bridge::{
    smartreceive, smartsend_once, Client, OutgoingPayload, Pulled, Receiver, SendOptions, Sent,
    Subscription, TrySent,
};
pub use config::{AllowedOrigins, Config, Credentials, LinkOptions, RetryPolicy, TlsOptions};
pub use envelope::{Envelope, Payload, Transport};
pub use error::{Error, ErrorCode, Result};
pub use payload_type::PayloadType;
pub use progress::Progress;

/// The library's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
