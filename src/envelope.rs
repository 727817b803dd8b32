//! The wire format v1 envelope: one NATS message = one JSON object (wire format §1–§2).
//!
//! `Envelope` serves both directions. A direct payload holds its serialized bytes and they are
//! base64-encoded straight into the output buffer when the envelope is written (never through an
//! intermediate JSON string); a link payload holds its URL, and its bytes once fetched.

use crate::error::{Error, ErrorCode, Result};
use crate::payload_type::PayloadType;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::fmt;
use std::io::Write;
use std::str::FromStr;

/// Standard alphabet, padded (wire format §2). SIMD-accelerated (AVX2/SSSE3/NEON, detected at
/// run time): base64 is most of the CPU cost of a large direct payload at both ends.
const B64: base64_simd::Base64 = base64_simd::STANDARD;

/// How a payload's bytes travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Inside the message, base64-encoded.
    Direct,
    /// On the file server; the message carries the URL (claim check).
    Link,
}

impl Transport {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Direct => "direct",
            Transport::Link => "link",
        }
    }

    /// The `encoding` written with this transport.
    pub fn encoding(self) -> &'static str {
        match self {
            Transport::Direct => "base64",
            Transport::Link => "none",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Transport {
    type Err = Error;
    fn from_str(s: &str) -> Result<Transport> {
        match s {
            "direct" => Ok(Transport::Direct),
            "link" => Ok(Transport::Link),
            other => Err(Error::new(
                ErrorCode::InvalidTransport,
                format!("unknown transport {other:?}; expected \"direct\" or \"link\""),
            )),
        }
    }
}

/// A new UUID v4 as text. Drawn from the thread's CSPRNG rather than a system call per id:
/// ids are generated several times per message.
pub fn new_uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = [b'-'; 36];
    let mut at = 0;
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            at += 1;
        }
        text[at] = HEX[usize::from(byte >> 4)];
        text[at + 1] = HEX[usize::from(byte & 0x0f)];
        at += 2;
    }
    std::str::from_utf8(&text).expect("ASCII").to_owned()
}

/// The values `msg_purpose` may take when we send.
pub const MSG_PURPOSES: [&str; 7] = [
    "ACK",
    "NACK",
    "updateStatus",
    "shutdown",
    "chat",
    "command",
    "event",
];

/// Checks a `msg_purpose` a caller wants to send (receivers accept any string).
pub fn validate_msg_purpose(purpose: &str) -> Result<()> {
    if MSG_PURPOSES.contains(&purpose) {
        Ok(())
    } else {
        Err(Error::invalid_argument(format!(
            "msg_purpose {purpose:?} is not one of {}",
            MSG_PURPOSES.join(", ")
        )))
    }
}

/// One payload of an envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    /// Unique id of the payload (UUID v4 when we send).
    pub id: String,
    /// The caller's name for it.
    pub dataname: String,
    /// Its type.
    pub payload_type: PayloadType,
    /// How it travels.
    pub transport: Transport,
    /// `base64` for direct, `none` for link, as written on the wire.
    pub encoding: String,
    /// Number of serialized bytes (before base64). For a received link payload whose
    /// envelope did not declare it, 0 until the bytes are fetched.
    pub size: u64,
    /// Link transport: the download URL.
    pub url: Option<String>,
    /// The serialized bytes: always present for direct; for link once fetched into memory.
    pub data: Option<Bytes>,
    /// A received link payload fetched into a file (when `LinkOptions::download_dir` is set)
    /// instead of memory. The file belongs to the caller.
    pub file: Option<std::path::PathBuf>,
    /// Payload metadata (`payload_bytes`, `sha256` for link payloads we write, and the caller's).
    pub metadata: Map<String, Value>,
}

impl Payload {
    /// The serialized bytes, when present.
    pub fn bytes(&self) -> Option<&[u8]> {
        self.data.as_deref()
    }

    /// The `sha256` from the payload metadata, when present.
    pub fn sha256(&self) -> Option<&str> {
        self.metadata.get("sha256").and_then(Value::as_str)
    }
}

/// A message envelope.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Envelope {
    /// Traces a flow across messages.
    pub correlation_id: String,
    /// Unique per message.
    pub msg_id: String,
    /// ISO 8601 UTC, millisecond precision.
    pub timestamp: String,
    /// The subject it was published to.
    pub send_to: String,
    /// `ACK`, `NACK`, `updateStatus`, `shutdown`, `chat`, `command` or `event`.
    pub msg_purpose: String,
    /// Sending application's name.
    pub sender_name: String,
    /// Sending application's id.
    pub sender_id: String,
    /// Receiving application's name (empty = broadcast).
    pub receiver_name: String,
    /// Receiving application's id (empty = broadcast).
    pub receiver_id: String,
    /// Subject a reply should go to.
    pub reply_to: String,
    /// The message this one replies to.
    pub reply_to_msg_id: String,
    /// The NATS URL the sender was connected to.
    pub broker_url: String,
    /// Message-level metadata.
    pub metadata: Map<String, Value>,
    /// The payloads, in order.
    pub payloads: Vec<Payload>,
}

/// The header fields in wire order, shared by the writer, the header JSON and the parser.
macro_rules! header_fields {
    ($m:ident) => {
        $m!(correlation_id);
        $m!(msg_id);
        $m!(timestamp);
        $m!(send_to);
        $m!(msg_purpose);
        $m!(sender_name);
        $m!(sender_id);
        $m!(receiver_name);
        $m!(receiver_id);
        $m!(reply_to);
        $m!(reply_to_msg_id);
        $m!(broker_url);
    };
}

/// Where the writer puts its output: a buffer, or a counter that only measures.
trait Sink: Write {
    fn put(&mut self, s: &[u8]);
    fn put_base64(&mut self, data: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, s: &[u8]) {
        self.extend_from_slice(s);
    }
    fn put_base64(&mut self, data: &[u8]) {
        // Encodes straight into the spare capacity: no zero-filling first.
        B64.encode_append(data, self);
    }
}

#[derive(Default)]
struct Counter(usize);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Sink for Counter {
    fn put(&mut self, s: &[u8]) {
        self.0 += s.len();
    }
    fn put_base64(&mut self, data: &[u8]) {
        self.0 += base64::encoded_len(data.len(), true).expect("base64 length overflows usize");
    }
}

fn put_json<S: Sink, T: serde::Serialize + ?Sized>(sink: &mut S, value: &T) {
    // Writing strings and maps of JSON values into memory cannot fail.
    serde_json::to_writer(&mut *sink, value).expect("serializing JSON into memory");
}

/// A JSON string: copied as it is when nothing in it needs escaping (ids, names, subjects),
/// else escaped by `serde_json` (the same bytes either way).
fn put_str<S: Sink>(sink: &mut S, value: &str) {
    if special_byte(value.as_bytes()).is_none() {
        sink.put(b"\"");
        sink.put(value.as_bytes());
        sink.put(b"\"");
    } else {
        put_json(sink, value);
    }
}

fn put_map<S: Sink>(sink: &mut S, map: &Map<String, Value>) {
    let flat = map.values().all(|v| v.is_string() || v.is_u64());
    if !flat {
        put_json(sink, map);
        return;
    }
    // Strings and unsigned integers only (`payload_bytes`, `sha256`): written as serde_json
    // writes them, without its generic machinery.
    sink.put(b"{");
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            sink.put(b",");
        }
        put_str(sink, k);
        sink.put(b":");
        match v {
            Value::String(s) => put_str(sink, s),
            _ => put_u64(sink, v.as_u64().unwrap_or_default()),
        }
    }
    sink.put(b"}");
}

fn put_u64<S: Sink>(sink: &mut S, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    sink.put(&digits[at..]);
}

/// The index of the first byte that a JSON string cannot hold as it is: `"`, `\\` or a
/// control character. Eight bytes at a time.
fn special_byte(s: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(LO) & !v & HI;
    let mut i = 0;
    while let Some(chunk) = s.get(i..i + 8) {
        let w = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let found = has_zero(w ^ (LO * u64::from(b'"')))
            | has_zero(w ^ (LO * u64::from(b'\\')))
            | (w.wrapping_sub(LO * 0x20) & !w & HI);
        if found != 0 {
            break;
        }
        i += 8;
    }
    s[i..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|p| i + p)
}

impl Envelope {
    /// The envelope as wire JSON. Every key is written. Fails with `INTERNAL` if a direct
    /// payload has no bytes or a link payload no URL (an envelope we built is always complete).
    pub fn to_json(&self) -> Result<Vec<u8>> {
        self.check_complete()?;
        // Room for the payload data plus a typical header; a large metadata map just grows it.
        let data: usize = self
            .payloads
            .iter()
            .map(|p| match p.transport {
                Transport::Direct => p.data.as_ref().map_or(0, |d| d.len().div_ceil(3) * 4),
                Transport::Link => p.url.as_ref().map_or(0, String::len),
            } + 256)
            .sum();
        let mut out = Vec::with_capacity(data + 512);
        self.write(&mut out);
        Ok(out)
    }

    /// The exact length of `to_json()`'s output, computed without building it.
    pub fn json_len(&self) -> usize {
        let mut c = Counter::default();
        self.write(&mut c);
        c.0
    }

    fn check_complete(&self) -> Result<()> {
        for p in &self.payloads {
            let ok = match p.transport {
                Transport::Direct => p.data.is_some(),
                Transport::Link => p.url.is_some(),
            };
            if !ok {
                return Err(Error::internal(format!(
                    "payload {:?} has no {} to write",
                    p.dataname,
                    if p.transport == Transport::Direct {
                        "bytes"
                    } else {
                        "URL"
                    }
                )));
            }
        }
        Ok(())
    }

    fn write<S: Sink>(&self, s: &mut S) {
        s.put(b"{");
        macro_rules! field {
            ($name:ident) => {
                s.put(concat!("\"", stringify!($name), "\":").as_bytes());
                put_str(s, &self.$name);
                s.put(b",");
            };
        }
        header_fields!(field);
        s.put(b"\"metadata\":");
        put_map(s, &self.metadata);
        s.put(b",\"payloads\":[");
        for (i, p) in self.payloads.iter().enumerate() {
            if i > 0 {
                s.put(b",");
            }
            s.put(b"{\"id\":");
            put_str(s, &p.id);
            s.put(b",\"dataname\":");
            put_str(s, &p.dataname);
            s.put(b",\"payload_type\":\"");
            s.put(p.payload_type.as_str().as_bytes());
            s.put(b"\",\"transport\":\"");
            s.put(p.transport.as_str().as_bytes());
            s.put(b"\",\"encoding\":");
            put_str(s, &p.encoding);
            s.put(b",\"size\":");
            put_u64(s, p.size);
            s.put(b",\"data\":");
            match p.transport {
                Transport::Direct => {
                    s.put(b"\"");
                    s.put_base64(p.data.as_deref().unwrap_or_default());
                    s.put(b"\"");
                }
                Transport::Link => put_str(s, p.url.as_deref().unwrap_or_default()),
            }
            s.put(b",\"metadata\":");
            put_map(s, &p.metadata);
            s.put(b"}");
        }
        s.put(b"]}");
    }

    /// The header as a JSON object: every key of the envelope except `payloads`.
    pub fn header_json(&self) -> Value {
        let mut m = Map::new();
        macro_rules! field {
            ($name:ident) => {
                m.insert(stringify!($name).into(), Value::String(self.$name.clone()));
            };
        }
        header_fields!(field);
        m.insert("metadata".into(), Value::Object(self.metadata.clone()));
        Value::Object(m)
    }

    /// Parses wire JSON. Direct payloads are base64-decoded; link payloads keep their URL and
    /// have no bytes yet. Missing or `null` optional keys read as empty; unknown keys are ignored.
    ///
    /// Errors: `INVALID_ENVELOPE` (not UTF-8 JSON, wrong shape or field types), `INVALID_PAYLOAD_TYPE`,
    /// `INVALID_TRANSPORT`, `DESERIALIZATION_ERROR` (bad base64), `INTEGRITY_ERROR` (a direct
    /// payload whose `size` disagrees with its bytes).
    pub fn from_json(bytes: &[u8]) -> Result<Envelope> {
        // Envelopes laid out as our writer lays them out take a scan without serde; other
        // well-formed envelopes take the typed path; anything else is parsed again field by
        // field, so that the error names the field at fault.
        if let Some(result) = fast::parse(bytes) {
            return result;
        }
        Envelope::from_json_general(bytes)
    }

    /// `from_json` without the fast path: the same result, more slowly. Public for the fuzz
    /// target that checks so (`fuzz/`); not part of the API.
    #[doc(hidden)]
    pub fn from_json_general(bytes: &[u8]) -> Result<Envelope> {
        // serde_json checks UTF-8 only in the strings it reads, not in the values it skips
        // (unknown keys): the whole message is checked once here, then parsed as text. (The
        // fast path reads every byte of what it accepts as checked text.)
        let text = std::str::from_utf8(bytes).map_err(|e| {
            Error::new(
                ErrorCode::InvalidEnvelope,
                format!(
                    "message is not UTF-8 JSON: invalid byte at offset {}",
                    e.valid_up_to()
                ),
            )
        })?;
        if let Ok(typed) = serde_json::from_str::<TypedEnvelope>(text) {
            return typed.finish();
        }
        let raw: RawEnvelope = serde_json::from_str(text).map_err(|e| {
            Error::new(
                ErrorCode::InvalidEnvelope,
                format!("message is not a JSON envelope: {e}"),
            )
        })?;
        let mut env = Envelope::default();
        macro_rules! field {
            ($name:ident) => {
                env.$name = opt_string(raw.$name, stringify!($name))?.unwrap_or_default();
            };
        }
        header_fields!(field);
        let cid = env.correlation_id.clone();
        env.metadata = opt_object(raw.metadata, "metadata")?.unwrap_or_default();
        let payloads = raw.payloads.ok_or_else(|| {
            Error::new(
                ErrorCode::InvalidEnvelope,
                "envelope has no \"payloads\" array",
            )
        })?;
        env.payloads = payloads
            .into_iter()
            .enumerate()
            .map(|(i, p)| parse_payload(p, i))
            .collect::<Result<_>>()
            .map_err(|e| e.with_correlation_id(&cid))?;
        Ok(env)
    }
}

#[derive(Deserialize)]
struct TypedEnvelope<'a> {
    correlation_id: Option<String>,
    msg_id: Option<String>,
    timestamp: Option<String>,
    send_to: Option<String>,
    msg_purpose: Option<String>,
    sender_name: Option<String>,
    sender_id: Option<String>,
    receiver_name: Option<String>,
    receiver_id: Option<String>,
    reply_to: Option<String>,
    reply_to_msg_id: Option<String>,
    broker_url: Option<String>,
    metadata: Option<Map<String, Value>>,
    #[serde(borrow)]
    payloads: Vec<TypedPayload<'a>>,
}

#[derive(Deserialize)]
struct TypedPayload<'a> {
    id: Option<String>,
    dataname: String,
    #[serde(borrow)]
    payload_type: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    transport: std::borrow::Cow<'a, str>,
    encoding: Option<String>,
    size: Option<u64>,
    #[serde(borrow)]
    data: std::borrow::Cow<'a, str>,
    metadata: Option<Map<String, Value>>,
}

impl TypedEnvelope<'_> {
    fn finish(self) -> Result<Envelope> {
        let mut env = Envelope::default();
        macro_rules! field {
            ($name:ident) => {
                env.$name = self.$name.unwrap_or_default();
            };
        }
        header_fields!(field);
        env.metadata = self.metadata.unwrap_or_default();
        let cid = env.correlation_id.clone();
        env.payloads = self
            .payloads
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                finish_payload(
                    i,
                    Fields {
                        id: p.id.unwrap_or_default(),
                        dataname: p.dataname,
                        payload_type: &p.payload_type,
                        transport: &p.transport,
                        encoding: p.encoding,
                        size: p.size,
                        data: p.data,
                        metadata: p.metadata.unwrap_or_default(),
                    },
                )
            })
            .collect::<Result<_>>()
            .map_err(|e| e.with_correlation_id(&cid))?;
        Ok(env)
    }
}

/// Parsing of the exact layout our writer produces: every key once, in wire order, no
/// whitespace, strings without escapes. Strings are borrowed from the message until the
/// envelope is built. Anything else is left to the general parser (`None`), so accepting an
/// envelope here never changes what it parses to.
mod fast {
    use super::{finish_payload, special_byte, Envelope, Fields, Map, Result, Value};
    struct Cursor<'a> {
        b: &'a [u8],
        i: usize,
    }

    impl<'a> Cursor<'a> {
        fn lit(&mut self, s: &[u8]) -> Option<()> {
            if self.b.get(self.i..self.i + s.len())? == s {
                self.i += s.len();
                Some(())
            } else {
                None
            }
        }

        fn string(&mut self) -> Option<&'a str> {
            if self.b.get(self.i) != Some(&b'"') {
                return None;
            }
            let start = self.i + 1;
            let len = special_byte(&self.b[start..])?;
            if self.b[start + len] != b'"' {
                return None;
            }
            self.i = start + len + 1;
            std::str::from_utf8(&self.b[start..start + len]).ok()
        }

        fn u64(&mut self) -> Option<u64> {
            let digits = self.b[self.i..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            if digits == 0 || (digits > 1 && self.b[self.i] == b'0') {
                return None;
            }
            let mut n: u64 = 0;
            for &c in &self.b[self.i..self.i + digits] {
                n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
            }
            self.i += digits;
            Some(n)
        }

        fn map(&mut self) -> Option<Map<String, Value>> {
            if self.lit(b"{}").is_some() {
                return Some(Map::new());
            }
            if self.b.get(self.i) != Some(&b'{') {
                return None;
            }
            let start = self.i;
            if let Some(map) = self.flat_map() {
                return Some(map);
            }
            self.i = start;
            let mut stream = serde_json::Deserializer::from_slice(&self.b[self.i..])
                .into_iter::<Map<String, Value>>();
            let map = stream.next()?.ok()?;
            self.i += stream.byte_offset();
            Some(map)
        }

        /// An object whose values are all strings or unsigned integers, such as a payload's
        /// `{"payload_bytes":128}`; `None` for anything else.
        fn flat_map(&mut self) -> Option<Map<String, Value>> {
            self.lit(b"{")?;
            let mut map = Map::new();
            loop {
                let key = self.string()?;
                self.lit(b":")?;
                let value = if self.b.get(self.i) == Some(&b'"') {
                    Value::String(self.string()?.to_owned())
                } else {
                    Value::from(self.u64()?)
                };
                map.insert(key.to_owned(), value);
                if self.lit(b",").is_none() {
                    self.lit(b"}")?;
                    return Some(map);
                }
            }
        }
    }

    struct RawPayload<'a> {
        id: &'a str,
        dataname: &'a str,
        payload_type: &'a str,
        transport: &'a str,
        encoding: &'a str,
        size: u64,
        data: &'a str,
        metadata: Map<String, Value>,
    }

    pub(super) fn parse(b: &[u8]) -> Option<Result<Envelope>> {
        let mut c = Cursor { b, i: 0 };
        c.lit(b"{")?;
        let mut first = true;
        let mut header: [&str; 12] = [""; 12];
        let mut n = 0;
        macro_rules! field {
            ($name:ident) => {
                if !first {
                    c.lit(b",")?;
                }
                first = false;
                c.lit(concat!("\"", stringify!($name), "\":").as_bytes())?;
                header[n] = c.string()?;
                n += 1;
            };
        }
        header_fields!(field);
        let _ = (first, n);
        c.lit(b",\"metadata\":")?;
        let metadata = c.map()?;
        c.lit(b",\"payloads\":[")?;
        let mut raw = Vec::with_capacity(1);
        if c.lit(b"]").is_none() {
            loop {
                c.lit(b"{\"id\":")?;
                let id = c.string()?;
                c.lit(b",\"dataname\":")?;
                let dataname = c.string()?;
                c.lit(b",\"payload_type\":")?;
                let payload_type = c.string()?;
                c.lit(b",\"transport\":")?;
                let transport = c.string()?;
                c.lit(b",\"encoding\":")?;
                let encoding = c.string()?;
                c.lit(b",\"size\":")?;
                let size = c.u64()?;
                c.lit(b",\"data\":")?;
                let data = c.string()?;
                c.lit(b",\"metadata\":")?;
                let metadata = c.map()?;
                c.lit(b"}")?;
                raw.push(RawPayload {
                    id,
                    dataname,
                    payload_type,
                    transport,
                    encoding,
                    size,
                    data,
                    metadata,
                });
                if c.lit(b",").is_none() {
                    c.lit(b"]")?;
                    break;
                }
            }
        }
        c.lit(b"}")?;
        if c.i != b.len() {
            return None;
        }
        let [correlation_id, msg_id, timestamp, send_to, msg_purpose, sender_name, sender_id, receiver_name, receiver_id, reply_to, reply_to_msg_id, broker_url] =
            header;
        let payloads = raw
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                finish_payload(
                    i,
                    Fields {
                        id: p.id.to_owned(),
                        dataname: p.dataname.to_owned(),
                        payload_type: p.payload_type,
                        transport: p.transport,
                        encoding: Some(p.encoding.to_owned()),
                        size: Some(p.size),
                        data: std::borrow::Cow::Borrowed(p.data),
                        metadata: p.metadata,
                    },
                )
            })
            .collect::<Result<_>>();
        let payloads = match payloads {
            Ok(p) => p,
            Err(e) => return Some(Err(e.with_correlation_id(correlation_id))),
        };
        Some(Ok(Envelope {
            correlation_id: correlation_id.to_owned(),
            msg_id: msg_id.to_owned(),
            timestamp: timestamp.to_owned(),
            send_to: send_to.to_owned(),
            msg_purpose: msg_purpose.to_owned(),
            sender_name: sender_name.to_owned(),
            sender_id: sender_id.to_owned(),
            receiver_name: receiver_name.to_owned(),
            receiver_id: receiver_id.to_owned(),
            reply_to: reply_to.to_owned(),
            reply_to_msg_id: reply_to_msg_id.to_owned(),
            broker_url: broker_url.to_owned(),
            metadata,
            payloads,
        }))
    }
}

/// A payload's fields once their JSON types are known to be right.
struct Fields<'a> {
    id: String,
    dataname: String,
    payload_type: &'a str,
    transport: &'a str,
    encoding: Option<String>,
    size: Option<u64>,
    data: std::borrow::Cow<'a, str>,
    metadata: Map<String, Value>,
}

#[derive(Deserialize)]
struct RawEnvelope<'a> {
    #[serde(borrow)]
    correlation_id: Option<&'a RawValue>,
    #[serde(borrow)]
    msg_id: Option<&'a RawValue>,
    #[serde(borrow)]
    timestamp: Option<&'a RawValue>,
    #[serde(borrow)]
    send_to: Option<&'a RawValue>,
    #[serde(borrow)]
    msg_purpose: Option<&'a RawValue>,
    #[serde(borrow)]
    sender_name: Option<&'a RawValue>,
    #[serde(borrow)]
    sender_id: Option<&'a RawValue>,
    #[serde(borrow)]
    receiver_name: Option<&'a RawValue>,
    #[serde(borrow)]
    receiver_id: Option<&'a RawValue>,
    #[serde(borrow)]
    reply_to: Option<&'a RawValue>,
    #[serde(borrow)]
    reply_to_msg_id: Option<&'a RawValue>,
    #[serde(borrow)]
    broker_url: Option<&'a RawValue>,
    #[serde(borrow)]
    metadata: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "payload_array")]
    payloads: Option<Vec<RawPayload<'a>>>,
}

#[derive(Deserialize)]
struct RawPayload<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    dataname: Option<&'a RawValue>,
    #[serde(borrow)]
    payload_type: Option<&'a RawValue>,
    #[serde(borrow)]
    transport: Option<&'a RawValue>,
    #[serde(borrow)]
    encoding: Option<&'a RawValue>,
    #[serde(borrow)]
    size: Option<&'a RawValue>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    #[serde(borrow)]
    metadata: Option<&'a RawValue>,
}

/// `payloads` must be an array of objects; say so plainly when it is not.
fn payload_array<'de, D>(d: D) -> std::result::Result<Option<Vec<RawPayload<'de>>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::de::Error as _;
    let raw: Option<&'de RawValue> = Option::deserialize(d)?;
    let Some(raw) = raw else { return Ok(None) };
    let text = raw.get().trim_start();
    if !text.starts_with('[') {
        return Err(D::Error::custom("field \"payloads\" must be an array"));
    }
    let items: Vec<&'de RawValue> = serde_json::from_str(raw.get()).map_err(D::Error::custom)?;
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            if !item.get().trim_start().starts_with('{') {
                return Err(D::Error::custom(format!("payloads[{i}] must be an object")));
            }
            serde_json::from_str(item.get()).map_err(D::Error::custom)
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map(Some)
}

fn wrong_type(name: &str, expected: &str) -> Error {
    Error::new(
        ErrorCode::InvalidEnvelope,
        format!("field {name:?} must be {expected}"),
    )
}

fn is_null(raw: &RawValue) -> bool {
    raw.get() == "null"
}

fn opt_string(raw: Option<&RawValue>, name: &str) -> Result<Option<String>> {
    match raw {
        None => Ok(None),
        Some(r) if is_null(r) => Ok(None),
        Some(r) => serde_json::from_str::<String>(r.get())
            .map(Some)
            .map_err(|_| wrong_type(name, "a string")),
    }
}

fn opt_object(raw: Option<&RawValue>, name: &str) -> Result<Option<Map<String, Value>>> {
    match raw {
        None => Ok(None),
        Some(r) if is_null(r) => Ok(None),
        Some(r) => serde_json::from_str::<Map<String, Value>>(r.get())
            .map(Some)
            .map_err(|_| wrong_type(name, "an object")),
    }
}

fn required_string(raw: Option<&RawValue>, name: &str) -> Result<String> {
    opt_string(raw, name)?.ok_or_else(|| {
        Error::new(
            ErrorCode::InvalidEnvelope,
            format!("required field {name:?} is missing"),
        )
    })
}

fn parse_payload(p: RawPayload<'_>, i: usize) -> Result<Payload> {
    let at = |f: &str| format!("payloads[{i}].{f}");
    let dataname = required_string(p.dataname, &at("dataname"))?;
    let payload_type = required_string(p.payload_type, &at("payload_type"))?;
    let transport = required_string(p.transport, &at("transport"))?;
    let size = match p.size {
        None => None,
        Some(r) if is_null(r) => None,
        Some(r) => Some(
            serde_json::from_str::<u64>(r.get())
                .map_err(|_| wrong_type(&at("size"), "a non-negative integer"))?,
        ),
    };
    let metadata = opt_object(p.metadata, &at("metadata"))?.unwrap_or_default();
    let id = opt_string(p.id, &at("id"))?.unwrap_or_default();
    let encoding = opt_string(p.encoding, &at("encoding"))?;
    let data_field = at("data");
    let data_raw = match p.data {
        Some(r) if !is_null(r) => r,
        _ => {
            return Err(Error::new(
                ErrorCode::InvalidEnvelope,
                format!("required field {data_field:?} is missing"),
            ))
        }
    };
    let data: std::borrow::Cow<'_, str> =
        serde_json::from_str(data_raw.get()).map_err(|_| wrong_type(&data_field, "a string"))?;
    finish_payload(
        i,
        Fields {
            id,
            dataname,
            payload_type: &payload_type,
            transport: &transport,
            encoding,
            size,
            data,
            metadata,
        },
    )
}

/// Checks type and transport, decodes direct data: the part shared by both parsing paths.
fn finish_payload(i: usize, f: Fields<'_>) -> Result<Payload> {
    let dataname = f.dataname;
    let payload_type: PayloadType = f
        .payload_type
        .parse()
        .map_err(|e: Error| e.with_detail("dataname", dataname.clone()))?;
    let transport: Transport = f
        .transport
        .parse()
        .map_err(|e: Error| e.with_detail("dataname", dataname.clone()))?;
    match transport {
        Transport::Direct => {
            if let Some(enc) = f.encoding.as_deref() {
                if enc != "base64" {
                    return Err(Error::new(
                        ErrorCode::DeserializationError,
                        format!(
                            "payloads[{i}].encoding is {enc:?}; direct payloads must be base64"
                        ),
                    ));
                }
            }
            let bytes = B64.decode_to_vec(f.data.as_bytes()).map_err(|_| {
                Error::new(
                    ErrorCode::DeserializationError,
                    format!("payloads[{i}].data is not valid base64 (standard alphabet, padded)"),
                )
                .with_detail("dataname", dataname.clone())
            })?;
            let actual = bytes.len() as u64;
            if let Some(declared) = f.size {
                if declared != actual {
                    return Err(Error::new(
                        ErrorCode::IntegrityError,
                        format!(
                            "payload {dataname:?} declares size {declared} but carries {actual} bytes"
                        ),
                    ));
                }
            }
            Ok(Payload {
                id: f.id,
                dataname,
                payload_type,
                transport,
                encoding: f.encoding.unwrap_or_else(|| "base64".into()),
                size: actual,
                url: None,
                data: Some(Bytes::from(bytes)),
                file: None,
                metadata: f.metadata,
            })
        }
        Transport::Link => Ok(Payload {
            id: f.id,
            dataname,
            payload_type,
            transport,
            encoding: f.encoding.unwrap_or_else(|| "none".into()),
            // Missing: unknown until fetched (0 never describes a link payload we write).
            size: f
                .size
                .or_else(|| f.metadata.get("payload_bytes").and_then(Value::as_u64))
                .unwrap_or(0),
            url: Some(f.data.into_owned()),
            data: None,
            file: None,
            metadata: f.metadata,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Envelope {
        Envelope {
            correlation_id: "c\"1".into(),
            msg_id: "m1".into(),
            timestamp: "2026-03-13T07:02:50.443Z".into(),
            send_to: "/chat".into(),
            msg_purpose: "chat".into(),
            metadata: serde_json::json!({"k": [1, "é"]})
                .as_object()
                .unwrap()
                .clone(),
            payloads: vec![
                Payload {
                    id: "p1".into(),
                    dataname: "msg".into(),
                    payload_type: PayloadType::Text,
                    transport: Transport::Direct,
                    encoding: "base64".into(),
                    size: 11,
                    url: None,
                    data: Some(Bytes::from_static(b"Hello World")),
                    file: None,
                    metadata: serde_json::json!({"payload_bytes": 11})
                        .as_object()
                        .unwrap()
                        .clone(),
                },
                Payload {
                    id: "p2".into(),
                    dataname: "big".into(),
                    payload_type: PayloadType::Binary,
                    transport: Transport::Link,
                    encoding: "none".into(),
                    size: 5,
                    url: Some("http://h/file/a/b/big".into()),
                    data: None,
                    file: None,
                    metadata: Map::new(),
                },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn writes_and_reads_back() {
        let env = sample();
        let json = env.to_json().unwrap();
        assert_eq!(json.len(), env.json_len());
        let v: Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["payloads"][0]["data"], "SGVsbG8gV29ybGQ=");
        assert_eq!(v["correlation_id"], "c\"1");
        let back = Envelope::from_json(&json).unwrap();
        assert_eq!(back, env);
    }

    #[test]
    fn missing_optional_keys_read_as_empty() {
        let env = Envelope::from_json(
            br#"{"payloads":[{"dataname":"x","payload_type":"text","transport":"direct","data":"aGk=","sender_id":null}],"msg_id":null}"#,
        )
        .unwrap();
        assert_eq!(env.msg_id, "");
        assert_eq!(env.payloads[0].data.as_deref(), Some(&b"hi"[..]));
        assert_eq!(env.payloads[0].size, 2);
    }

    #[test]
    fn base64_is_strict_and_round_trips_every_length() {
        let direct = |d: &str| {
            format!(
                r#"{{"payloads":[{{"dataname":"x","payload_type":"binary","transport":"direct","data":"{d}"}}]}}"#
            )
        };
        // Unpadded, non-canonical trailing bits, URL-safe alphabet, whitespace: all refused.
        for bad in ["aGk", "aGl=", "a-_=", "aG k=", "aGk=="] {
            let e = Envelope::from_json(direct(bad).as_bytes()).unwrap_err();
            assert_eq!(e.code(), ErrorCode::DeserializationError, "{bad:?}");
        }
        for n in 0..200usize {
            let data: Vec<u8> = (0..n).map(|i| (i * 37 + n) as u8).collect();
            let mut env = sample();
            env.payloads.truncate(1);
            env.payloads[0].payload_type = PayloadType::Binary;
            env.payloads[0].size = n as u64;
            env.payloads[0].data = Some(Bytes::from(data.clone()));
            let json = env.to_json().unwrap();
            assert_eq!(json.len(), env.json_len());
            let v: Value = serde_json::from_slice(&json).unwrap();
            let reference =
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &data);
            assert_eq!(v["payloads"][0]["data"], reference.as_str());
            let back = Envelope::from_json(&json).unwrap();
            assert_eq!(back.payloads[0].data.as_deref(), Some(&data[..]));
        }
    }

    /// Whatever the fast path accepts, it parses exactly as the general parser does (value,
    /// or error code, message and details); what it does not accept, it leaves to it.
    #[test]
    fn fast_path_agrees_with_the_general_parser() {
        let mut env = sample();
        env.payloads[1].metadata = serde_json::json!({"sha256": "ab", "n": [1, {"x": null}]})
            .as_object()
            .unwrap()
            .clone();
        env.receiver_name = "é ✓".into();
        env.correlation_id = "c1".into();
        let ours = String::from_utf8(env.to_json().unwrap()).unwrap();
        let mut cases = vec![ours.clone()];
        // Our layout with other values, errors to report, and layouts left to the general path.
        for (from, to) in [
            ("\"size\":11", "\"size\":12"),
            ("\"size\":11", "\"size\":011"),
            ("\"size\":11", "\"size\":-1"),
            ("\"size\":11", "\"size\":99999999999999999999999"),
            ("SGVsbG8gV29ybGQ=", "SGVsbG8gV29ybGQ"),
            ("SGVsbG8gV29ybGQ=", "SGVsbG8gV29ybGQ\\u003d"),
            ("\"text\"", "\"pdf\""),
            ("\"direct\"", "\"carrier\""),
            ("\"base64\"", "\"hex\""),
            ("\"msg_id\":\"m1\"", "\"msg_id\":null"),
            ("\"msg_id\":\"m1\"", "\"msg_id\": \"m1\""),
            ("\"msg_id\":\"m1\"", "\"msg_id\":\"m\\n1\""),
            ("\"msg_id\":\"m1\"", "\"msg_id\":\"m\u{1}1\""),
            ("\"metadata\":{\"k\"", "\"metadata\":{\"k\":1,\"k\""),
            ("\"metadata\":{\"k\"", "\"metadata\":[{\"k\""),
            ("{\"correlation_id\"", "{\"x\":1,\"correlation_id\""),
            ("\"payload_bytes\":11", "\"payload_bytes\":1.5"),
            ("\"payload_bytes\":11", "\"payload_bytes\":-1"),
            ("\"payload_bytes\":11", "\"payload_bytes\":011"),
            (
                "\"payload_bytes\":11",
                "\"payload_bytes\":18446744073709551616",
            ),
            (
                "\"payload_bytes\":11",
                "\"payload_bytes\":\"a\\\"b\",\"c\":\"d\"",
            ),
            (
                "\"payload_bytes\":11",
                "\"payload_bytes\":1,\"payload_bytes\":2,\"z\":\"\"",
            ),
            ("\"payload_bytes\":11", "\"payload_bytes\":true"),
            ("\"payload_bytes\":11", "\"payload_bytes\":11,"),
        ] {
            assert!(ours.contains(from), "{from}");
            cases.push(ours.replacen(from, to, 1));
        }
        cases.push(format!("{ours} "));
        cases.push(format!("{ours}x"));
        cases.push(ours[..ours.len() - 1].to_owned());
        cases.push(
            ours.replace("\"payloads\":[{", "\"payloads\":[]}")
                .split("]}")
                .next()
                .unwrap()
                .to_owned()
                + "]}",
        );
        for case in &cases {
            let public = Envelope::from_json(case.as_bytes());
            let general = Envelope::from_json_general(case.as_bytes());
            assert_eq!(public.is_ok(), general.is_ok(), "{case}");
        }
        let mut cases: Vec<Vec<u8>> = cases.into_iter().map(String::into_bytes).collect();
        // The golden vectors, as written by other implementations.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
                cases.push(match (v.get("raw"), v.get("raw_hex")) {
                    (Some(raw), _) => raw.as_str().unwrap().as_bytes().to_vec(),
                    (None, Some(raw)) => hex::decode(raw.as_str().unwrap()).unwrap(),
                    (None, None) => v["envelope"].to_string().into_bytes(),
                });
            }
        }
        let mut fast_taken = 0;
        for case in &cases {
            let general = Envelope::from_json_general(case);
            if let Some(fast) = fast::parse(case) {
                let case = String::from_utf8_lossy(case);
                fast_taken += 1;
                match (&fast, &general) {
                    (Ok(a), Ok(b)) => assert_eq!(a, b, "{case}"),
                    (Err(a), Err(b)) => {
                        assert_eq!(a.code(), b.code(), "{case}");
                        assert_eq!(a.message(), b.message(), "{case}");
                        assert_eq!(a.details(), b.details(), "{case}");
                    }
                    _ => panic!("fast {fast:?} vs general {general:?} for {case}"),
                }
            }
        }
        assert!(fast_taken >= 7, "{fast_taken}");
        assert_eq!(Envelope::from_json(ours.as_bytes()).unwrap(), env);
    }

    #[test]
    fn maps_are_written_as_serde_json_writes_them() {
        for m in [
            serde_json::json!({}),
            serde_json::json!({"payload_bytes": 0}),
            serde_json::json!({"payload_bytes": u64::MAX, "sha256": "ab", "q\"\n": "é\u{1}"}),
            serde_json::json!({"a": -1, "b": 1.5, "c": null, "d": [1], "e": {"f": "g"}}),
        ] {
            let map = m.as_object().unwrap();
            let mut ours = Vec::new();
            put_map(&mut ours, map);
            assert_eq!(ours, serde_json::to_vec(map).unwrap());
            let mut c = Counter::default();
            put_map(&mut c, map);
            assert_eq!(c.0, ours.len());
        }
    }

    #[test]
    fn ids_are_uuid_v4_text() {
        for _ in 0..100 {
            let id = new_uuid();
            let parsed = uuid::Uuid::parse_str(&id).unwrap();
            assert_eq!(parsed.get_version_num(), 4);
            assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122);
            assert_eq!(parsed.hyphenated().to_string(), id);
        }
        assert_ne!(new_uuid(), new_uuid());
    }

    /// A message is UTF-8 JSON throughout: a byte that is not UTF-8 is refused wherever it
    /// stands, in a value we read or in one we skip, on every parsing path.
    #[test]
    fn invalid_utf8_anywhere_is_refused() {
        let ours = String::from_utf8(sample().to_json().unwrap()).unwrap();
        // `@` marks where the bad bytes go; each template is valid with `@` as it is.
        let templates = [
            r#"{"payloads":[],"x":"@"}"#.to_owned(),
            r#"{"payloads":[],"x":{"y":["@"]}}"#.to_owned(),
            r#"{"payloads":[],"@":1}"#.to_owned(),
            r#"{"payloads":[{"dataname":"x","payload_type":"text","transport":"direct","data":"aGk=","z":"@"}]}"#.to_owned(),
            r#"{"payloads":[],"msg_id":"@"}"#.to_owned(),
            r#"{"payloads":[],"metadata":{"k":"@"}}"#.to_owned(),
            // The fast path's layout.
            ours.replacen("\"m1\"", "\"@\"", 1),
            ours.replacen("\"p2\"", "\"@\"", 1),
        ];
        let bad: [&[u8]; 5] = [
            b"\xff",             // never in UTF-8
            b"\xc3",             // a sequence cut short
            b"\xc0\xaf",         // overlong
            b"\xed\xa0\x80",     // a surrogate
            b"\xf4\x90\x80\x80", // above U+10FFFF
        ];
        for t in &templates {
            assert!(Envelope::from_json(t.as_bytes()).is_ok(), "{t}");
            let (head, tail) = t.split_once('@').unwrap();
            for b in bad {
                let case = [head.as_bytes(), b, tail.as_bytes()].concat();
                let shown = String::from_utf8_lossy(&case);
                let e = Envelope::from_json(&case).expect_err(&shown);
                assert_eq!(e.code(), ErrorCode::InvalidEnvelope, "{shown}: {e}");
                assert!(e.message().contains("not UTF-8"), "{shown}: {e}");
                let e = Envelope::from_json_general(&case).expect_err(&shown);
                assert_eq!(e.code(), ErrorCode::InvalidEnvelope, "{shown}: {e}");
            }
        }
    }

    #[test]
    fn malformed_envelopes_give_their_codes() {
        let code = |s: &str| Envelope::from_json(s.as_bytes()).unwrap_err().code();
        assert_eq!(code("not json"), ErrorCode::InvalidEnvelope);
        assert_eq!(code("[]"), ErrorCode::InvalidEnvelope);
        assert_eq!(
            code(r#"{"correlation_id":5,"payloads":[]}"#),
            ErrorCode::InvalidEnvelope
        );
        assert_eq!(code(r#"{"payloads":{}}"#), ErrorCode::InvalidEnvelope);
        assert_eq!(code(r#"{"payloads":[1]}"#), ErrorCode::InvalidEnvelope);
        assert_eq!(
            code(r#"{"metadata":"x","payloads":[]}"#),
            ErrorCode::InvalidEnvelope
        );
        let p = |t: &str, tr: &str, d: &str| {
            format!(
                r#"{{"payloads":[{{"dataname":"x","payload_type":"{t}","transport":"{tr}","data":{d}}}]}}"#
            )
        };
        assert_eq!(
            code(&p("text", "direct", "\"%%%\"")),
            ErrorCode::DeserializationError
        );
        assert_eq!(
            code(&p("text", "carrier", "\"aGk=\"")),
            ErrorCode::InvalidTransport
        );
        assert_eq!(
            code(&p("pdf", "direct", "\"aGk=\"")),
            ErrorCode::InvalidPayloadType
        );
        assert_eq!(code(&p("text", "direct", "42")), ErrorCode::InvalidEnvelope);
        let e = Envelope::from_json(p("text", "direct", "42").as_bytes()).unwrap_err();
        assert!(e.message().contains("payloads[0].data"), "{}", e.message());
    }
}
