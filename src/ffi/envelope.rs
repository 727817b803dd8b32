//! `nb_envelope`: a sent or received envelope, read through accessors. Text accessors return
//! pointers borrowed from the envelope, made on first use and valid until `nb_envelope_free`.

use super::args::*;
use super::boundary::{self, FfiError, FfiResult};
use super::status::*;
use crate::envelope::{Envelope, Payload, Transport};
use std::ffi::{c_char, CStr, CString};
use std::sync::OnceLock;

/// The header fields, in wire order.
#[derive(Clone, Copy)]
enum Field {
    CorrelationId,
    MsgId,
    Timestamp,
    SendTo,
    MsgPurpose,
    SenderName,
    SenderId,
    ReceiverName,
    ReceiverId,
    ReplyTo,
    ReplyToMsgId,
    BrokerUrl,
}

const FIELDS: usize = 12;

#[derive(Default)]
struct PayloadText {
    id: OnceLock<CString>,
    dataname: OnceLock<CString>,
    url: OnceLock<CString>,
    file: OnceLock<CString>,
    metadata_json: OnceLock<CString>,
    base64: OnceLock<Box<str>>,
}

/// An envelope: the header and its payloads with their bytes. Handed out by receive, pull
/// and send calls (owned by the caller, freed with `nb_envelope_free`) or lent to a
/// subscription callback (valid during the call only; copy it with `nb_envelope_clone`).
/// Read-only: any number of threads may read one envelope at once.
pub struct nb_envelope {
    env: Envelope,
    fields: [OnceLock<CString>; FIELDS],
    header_json: OnceLock<CString>,
    outline_json: OnceLock<CString>,
    metadata_json: OnceLock<CString>,
    payloads: Box<[PayloadText]>,
}

impl nb_envelope {
    pub(crate) fn new(env: Envelope) -> nb_envelope {
        let payloads = env
            .payloads
            .iter()
            .map(|_| PayloadText::default())
            .collect();
        nb_envelope {
            env,
            fields: Default::default(),
            header_json: OnceLock::new(),
            outline_json: OnceLock::new(),
            metadata_json: OnceLock::new(),
            payloads,
        }
    }

    pub(crate) fn envelope(&self) -> &Envelope {
        &self.env
    }

    fn field(&self, f: Field) -> *const c_char {
        let e = &self.env;
        let value = match f {
            Field::CorrelationId => &e.correlation_id,
            Field::MsgId => &e.msg_id,
            Field::Timestamp => &e.timestamp,
            Field::SendTo => &e.send_to,
            Field::MsgPurpose => &e.msg_purpose,
            Field::SenderName => &e.sender_name,
            Field::SenderId => &e.sender_id,
            Field::ReceiverName => &e.receiver_name,
            Field::ReceiverId => &e.receiver_id,
            Field::ReplyTo => &e.reply_to,
            Field::ReplyToMsgId => &e.reply_to_msg_id,
            Field::BrokerUrl => &e.broker_url,
        };
        self.fields[f as usize]
            .get_or_init(|| c_string(value))
            .as_ptr()
    }

    fn payload(&self, index: usize) -> FfiResult<(&Payload, &PayloadText)> {
        match (self.env.payloads.get(index), self.payloads.get(index)) {
            (Some(p), Some(t)) => Ok((p, t)),
            _ => Err(FfiError::new(
                NB_ERR_OUT_OF_RANGE,
                format!(
                    "payload index {index} is out of range: the envelope has {} payload(s)",
                    self.env.payloads.len()
                ),
            )),
        }
    }
}

/// `v` as JSON text for C. Serializing strings and JSON maps into memory cannot fail, and
/// serde_json escapes control characters, so the text has no NUL.
fn json_text(v: &impl serde::Serialize) -> CString {
    CString::new(serde_json::to_vec(v).unwrap_or_default()).unwrap_or_default()
}

/// Reads a header field; NULL (and the last error) for a NULL envelope.
fn header(env: *const nb_envelope, f: Field) -> *const c_char {
    boundary::value(std::ptr::null(), || {
        // SAFETY: `env` is NULL or a live envelope, by the API contract.
        Ok(unsafe { arg(env, "env") }?.field(f))
    })
}

/// Reads something of one payload; `fallback` (and the last error) for a NULL envelope or an
/// index past the end.
fn payload_value<T>(
    env: *const nb_envelope,
    index: usize,
    fallback: T,
    f: impl FnOnce(&Payload, &PayloadText) -> T,
) -> T {
    boundary::value(fallback, || {
        // SAFETY: `env` is NULL or a live envelope, by the API contract.
        let (p, t) = unsafe { arg(env, "env") }?.payload(index)?;
        Ok(f(p, t))
    })
}

/// Frees an envelope handed out by the library. NULL is a no-op. Never free the envelope lent
/// to a subscription callback.
#[no_mangle]
pub unsafe extern "C" fn nb_envelope_free(env: *mut nb_envelope) {
    let _ = boundary::boundary(|| {
        // SAFETY: `env` is NULL or an owned envelope from the library, freed once.
        drop(unsafe { take_handle(env) });
        Ok(())
    });
}

/// Copies an envelope (cheap: payload bytes are shared), e.g. to keep the one lent to a
/// subscription callback. Free `*out` with `nb_envelope_free`.
#[no_mangle]
pub unsafe extern "C" fn nb_envelope_clone(
    env: *const nb_envelope,
    out: *mut *mut nb_envelope,
) -> nb_status {
    boundary::status(|| {
        // SAFETY: `out` is NULL or valid for one pointer; `env` NULL or live.
        let out = required(unsafe { out_param(out) }, "out")?;
        let env = unsafe { arg(env, "env") }?;
        *out = into_handle(nb_envelope::new(env.env.clone()));
        Ok(())
    })
}

/// `correlation_id`, borrowed from `env` (valid until it is freed). NULL only if `env` is NULL.
/// A value containing U+0000 is cut there (the header JSON has it whole); the same holds for
/// every text accessor below.
#[no_mangle]
pub unsafe extern "C" fn nb_envelope_correlation_id(env: *const nb_envelope) -> *const c_char {
    header(env, Field::CorrelationId)
}

/// `msg_id`, borrowed from `env`. NULL only if `env` is NULL.
#[no_mangle]
pub unsafe extern "C" fn nb_envelope_msg_id(env: *const nb_envelope) -> *const c_char {
    header(env, Field::MsgId)
}

/// `timestamp` (ISO 8601 UTC), borrowed from `env`. NULL only if `env` is NULL.
#[no_mangle]
pub unsafe extern "C" fn nb_envelope_timestamp(env: *const nb_envelope) -> *const c_char {
    header(env, Field::Timestamp)
}

/// `send_to`, the subject it was published to, borrowed from `env`. NULL only if `env` is NULL.
#[no_mangle]
pub unsafe extern "C" fn nb_envelope_send_to(env: *const nb_envelope) -> *const c_char {
    header(env, Field::SendTo)
}

/// `msg_purpose`, borrowed from `env`. NULL only if `env` is NULL.
#[no_mangle]
pub unsafe extern "C" fn nb_envelope_msg_purpose(env: *const nb_envelope) -> *const c_char {
    header(env, Field::MsgPurpose)
}

/// `sender_name`, borrowed from `env`. NULL only if `env` is NULL.
#[no_mangle]
pub unsafe extern "C" fn nb_envelope_sender_name(env: *const nb_envelope) -> *const c_char {
    header(env, Field::SenderName)
}

/// `sender_id`, borrowed from `env`. NULL only if `env` is NULL.
#[no_mangle]
pub unsafe extern "C" fn nb_envelope_sender_id(env: *const nb_envelope) -> *const c_char {
    header(env, Field::SenderId)
}

/// `receiver_name`, borrowed from `env`. NULL only if `env` is NULL.
#[no_mangle]
pub unsafe extern "C" fn nb_envelope_receiver_name(env: *const nb_envelope) -> *const c_char {
    header(env, Field::ReceiverName)
}

/// `receiver_id`, borrowed from `env`. NULL only if `env` is NULL.
#[no_mangle]
pub unsafe extern "C" fn nb_envelope_receiver_id(env: *const nb_envelope) -> *const c_char {
    header(env, Field::ReceiverId)
}

/// `reply_to`, borrowed from `env`. NULL only if `env` is NULL.
#[no_mangle]
pub unsafe extern "C" fn nb_envelope_reply_to(env: *const nb_envelope) -> *const c_char {
    header(env, Field::ReplyTo)
}

/// `reply_to_msg_id`, borrowed from `env`. NULL only if `env` is NULL.
#[no_mangle]
pub unsafe extern "C" fn nb_envelope_reply_to_msg_id(env: *const nb_envelope) -> *const c_char {
    header(env, Field::ReplyToMsgId)
}

/// `broker_url`, borrowed from `env`. NULL only if `env` is NULL.
#[no_mangle]
pub unsafe extern "C" fn nb_envelope_broker_url(env: *const nb_envelope) -> *const c_char {
    header(env, Field::BrokerUrl)
}

/// The message-level `metadata` as a JSON object, borrowed from `env`. NULL only if `env` is
/// NULL.
#[no_mangle]
pub unsafe extern "C" fn nb_envelope_metadata_json(env: *const nb_envelope) -> *const c_char {
    boundary::value(std::ptr::null(), || {
        // SAFETY: `env` is NULL or a live envelope.
        let e = unsafe { arg(env, "env") }?;
        let text = e.metadata_json.get_or_init(|| json_text(&e.env.metadata));
        Ok(text.as_ptr())
    })
}

/// The header as one JSON object: every key of the envelope except `payloads`
/// (`correlation_id`, `msg_id`, ..., `metadata`). Borrowed from `env`; NULL only if `env` is
/// NULL.
#[no_mangle]
pub unsafe extern "C" fn nb_envelope_header_json(env: *const nb_envelope) -> *const c_char {
    boundary::value(std::ptr::null(), || {
        // SAFETY: `env` is NULL or a live envelope.
        let e = unsafe { arg(env, "env") }?;
        Ok(e.header_json
            .get_or_init(|| outline_json(&e.env, false))
            .as_ptr())
    })
}

/// The whole envelope but its payloads' bytes, as one JSON object: the header's keys (as
/// `nb_envelope_header_json`, in wire order) and `payloads`, an array with, for each payload in
/// order, `id`, `dataname`, `payload_type`, `transport`, `encoding`, `size`, `url` (the link's
/// URL, or null for a direct payload), `file` (the file a link payload was downloaded into, or
/// null when its bytes are in memory) and `metadata`. One call instead of a dozen accessors,
/// for bindings that pay per call; read the bytes with `nb_envelope_payload_bytes`. Borrowed
/// from `env`; NULL only if `env` is NULL.
#[no_mangle]
pub unsafe extern "C" fn nb_envelope_outline_json(env: *const nb_envelope) -> *const c_char {
    boundary::value(std::ptr::null(), || {
        // SAFETY: `env` is NULL or a live envelope.
        let e = unsafe { arg(env, "env") }?;
        Ok(e.outline_json
            .get_or_init(|| outline_json(&e.env, true))
            .as_ptr())
    })
}

/// The header, and optionally the payloads without their bytes, borrowed from an envelope
/// and written as JSON without building a `serde_json::Value` first.
#[derive(serde::Serialize)]
struct Outline<'a> {
    correlation_id: &'a str,
    msg_id: &'a str,
    timestamp: &'a str,
    send_to: &'a str,
    msg_purpose: &'a str,
    sender_name: &'a str,
    sender_id: &'a str,
    receiver_name: &'a str,
    receiver_id: &'a str,
    reply_to: &'a str,
    reply_to_msg_id: &'a str,
    broker_url: &'a str,
    metadata: &'a serde_json::Map<String, serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payloads: Option<Vec<PayloadOutline<'a>>>,
}

#[derive(serde::Serialize)]
struct PayloadOutline<'a> {
    id: &'a str,
    dataname: &'a str,
    payload_type: &'static str,
    transport: &'static str,
    encoding: &'a str,
    size: u64,
    url: Option<&'a str>,
    file: Option<std::borrow::Cow<'a, str>>,
    metadata: &'a serde_json::Map<String, serde_json::Value>,
}

/// The JSON of the header (`with_payloads`: and of the payloads, without their bytes).
fn outline_json(e: &Envelope, with_payloads: bool) -> CString {
    let payloads = with_payloads.then(|| {
        e.payloads
            .iter()
            .map(|p| PayloadOutline {
                id: &p.id,
                dataname: &p.dataname,
                payload_type: p.payload_type.as_str(),
                transport: p.transport.as_str(),
                encoding: &p.encoding,
                size: p.size,
                url: p.url.as_deref(),
                file: p.file.as_ref().map(|f| f.to_string_lossy()),
                metadata: &p.metadata,
            })
            .collect()
    });
    let outline = Outline {
        correlation_id: &e.correlation_id,
        msg_id: &e.msg_id,
        timestamp: &e.timestamp,
        send_to: &e.send_to,
        msg_purpose: &e.msg_purpose,
        sender_name: &e.sender_name,
        sender_id: &e.sender_id,
        receiver_name: &e.receiver_name,
        receiver_id: &e.receiver_id,
        reply_to: &e.reply_to,
        reply_to_msg_id: &e.reply_to_msg_id,
        broker_url: &e.broker_url,
        metadata: &e.metadata,
        payloads,
    };
    json_text(&outline)
}

/// Number of payloads (0 for a NULL envelope).
#[no_mangle]
pub unsafe extern "C" fn nb_envelope_payload_count(env: *const nb_envelope) -> usize {
    boundary::value(0, || {
        // SAFETY: `env` is NULL or a live envelope.
        Ok(unsafe { arg(env, "env") }?.env.payloads.len())
    })
}

/// The `id` of payload `index`, borrowed from `env`. NULL (and the last error) for a NULL
/// envelope or an index past the end; the same holds for every payload accessor below.
#[no_mangle]
pub unsafe extern "C" fn nb_envelope_payload_id(
    env: *const nb_envelope,
    index: usize,
) -> *const c_char {
    payload_value(env, index, std::ptr::null(), |p, t| {
        t.id.get_or_init(|| c_string(&p.id)).as_ptr()
    })
}

/// The `dataname` of payload `index`, borrowed from `env`.
#[no_mangle]
pub unsafe extern "C" fn nb_envelope_payload_dataname(
    env: *const nb_envelope,
    index: usize,
) -> *const c_char {
    payload_value(env, index, std::ptr::null(), |p, t| {
        t.dataname.get_or_init(|| c_string(&p.dataname)).as_ptr()
    })
}

fn static_text(s: &'static str) -> &'static CStr {
    // The wire names of payload types and transports; a short, fixed list.
    match s {
        "text" => c"text",
        "dictionary" => c"dictionary",
        "arrowtable" => c"arrowtable",
        "jsontable" => c"jsontable",
        "image" => c"image",
        "audio" => c"audio",
        "video" => c"video",
        "binary" => c"binary",
        "direct" => c"direct",
        "link" => c"link",
        _ => c"",
    }
}

/// The `payload_type` of payload `index` (`"text"`, `"arrowtable"`, ...): static text.
#[no_mangle]
pub unsafe extern "C" fn nb_envelope_payload_type(
    env: *const nb_envelope,
    index: usize,
) -> *const c_char {
    payload_value(env, index, std::ptr::null(), |p, _| {
        static_text(p.payload_type.as_str()).as_ptr()
    })
}

/// The `transport` of payload `index`: `"direct"` or `"link"` (static text).
#[no_mangle]
pub unsafe extern "C" fn nb_envelope_payload_transport(
    env: *const nb_envelope,
    index: usize,
) -> *const c_char {
    payload_value(env, index, std::ptr::null(), |p, _| {
        static_text(p.transport.as_str()).as_ptr()
    })
}

/// Whether payload `index` went by link (false for direct, a NULL envelope or a bad index).
#[no_mangle]
pub unsafe extern "C" fn nb_envelope_payload_is_link(
    env: *const nb_envelope,
    index: usize,
) -> bool {
    payload_value(env, index, false, |p, _| p.transport == Transport::Link)
}

/// The `size` of payload `index`: its number of serialized bytes (0 for a NULL envelope or a
/// bad index).
#[no_mangle]
pub unsafe extern "C" fn nb_envelope_payload_size(env: *const nb_envelope, index: usize) -> u64 {
    payload_value(env, index, 0, |p, _| p.size)
}

/// The download URL of a link payload, borrowed from `env`; NULL for a direct payload.
#[no_mangle]
pub unsafe extern "C" fn nb_envelope_payload_url(
    env: *const nb_envelope,
    index: usize,
) -> *const c_char {
    payload_value(env, index, std::ptr::null(), |p, t| match &p.url {
        Some(u) => t.url.get_or_init(|| c_string(u)).as_ptr(),
        None => std::ptr::null(),
    })
}

/// The file a received link payload was downloaded into (when the config set a download
/// directory with `nb_config_set_download_dir`), borrowed from `env`; NULL when the bytes are
/// in memory. The file is the caller's: the library never deletes it.
#[no_mangle]
pub unsafe extern "C" fn nb_envelope_payload_file(
    env: *const nb_envelope,
    index: usize,
) -> *const c_char {
    payload_value(env, index, std::ptr::null(), |p, t| match &p.file {
        Some(f) => t
            .file
            .get_or_init(|| c_string(&f.to_string_lossy()))
            .as_ptr(),
        None => std::ptr::null(),
    })
}

/// The payload's `metadata` as a JSON object, borrowed from `env`.
#[no_mangle]
pub unsafe extern "C" fn nb_envelope_payload_metadata_json(
    env: *const nb_envelope,
    index: usize,
) -> *const c_char {
    payload_value(env, index, std::ptr::null(), |p, t| {
        t.metadata_json
            .get_or_init(|| json_text(&p.metadata))
            .as_ptr()
    })
}

/// The bytes of a payload, or why there are none in memory.
fn payload_data(p: &Payload) -> FfiResult<&[u8]> {
    match (&p.data, &p.file) {
        (Some(b), _) => Ok(b),
        (None, Some(f)) => Err(FfiError::invalid(format!(
            "payload {:?} was downloaded into the file {}; read it from there \
             (nb_envelope_payload_file)",
            p.dataname,
            f.display()
        ))),
        (None, None) => Err(FfiError::invalid(format!(
            "payload {:?} went by link and this envelope (from a send) does not keep its bytes",
            p.dataname
        ))),
    }
}

/// Reads payload `index` of `env` with `f` and lends the bytes it picks through `data` /
/// `len` (NULL data when empty). Both outputs are zeroed first, so they are NULL / 0 on
/// any failure.
///
/// # Safety
/// `env` must be NULL or live; `data` and `len` NULL or valid for one value each.
unsafe fn lend_payload(
    env: *const nb_envelope,
    index: usize,
    data: *mut *const u8,
    len: *mut usize,
    f: impl for<'e> FnOnce(&'e Payload, &'e PayloadText) -> FfiResult<&'e [u8]>,
) -> nb_status {
    boundary::status(|| {
        // SAFETY: forwarded.
        let (data, len) = unsafe { (out_param(data), out_param(len)) };
        let (data, len) = (required(data, "data")?, required(len, "len")?);
        // SAFETY: forwarded.
        let e = unsafe { arg(env, "env") }?;
        let (p, t) = e.payload(index)?;
        let bytes = f(p, t)?;
        if !bytes.is_empty() {
            *data = bytes.as_ptr();
        }
        *len = bytes.len();
        Ok(())
    })
}

/// The serialized bytes of payload `index` (link payloads of a received envelope: as
/// downloaded). `*data` is borrowed from `env` (valid until it is freed), NULL when `*len` is
/// 0. Fails with `NB_ERR_OUT_OF_RANGE` for a bad index, and with `NB_ERR_INVALID_ARGUMENT`
/// for a link payload of an envelope returned by a send (its bytes are not kept) or one
/// received into a file (see `nb_envelope_payload_file`).
#[no_mangle]
pub unsafe extern "C" fn nb_envelope_payload_bytes(
    env: *const nb_envelope,
    index: usize,
    data: *mut *const u8,
    len: *mut usize,
) -> nb_status {
    // SAFETY: forwarded caller guarantees.
    unsafe { lend_payload(env, index, data, len, |p, _| payload_data(p)) }
}

/// The bytes of payload `index` as the wire carries a direct payload: standard, padded base64
/// (ASCII, not NUL-terminated). Made on first use and borrowed from `env`, like
/// `nb_envelope_payload_bytes`, with the same failures. With `nb_envelope_outline_json` it
/// rebuilds the wire form of an envelope (`data` is this text for a direct payload, the `url`
/// for a link) without parsing the published JSON.
#[no_mangle]
pub unsafe extern "C" fn nb_envelope_payload_base64(
    env: *const nb_envelope,
    index: usize,
    text: *mut *const u8,
    len: *mut usize,
) -> nb_status {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        lend_payload(env, index, text, len, |p, t| {
            let encoded = match t.base64.get() {
                Some(done) => done,
                None => {
                    let bytes = payload_data(p)?;
                    t.base64
                        .get_or_init(|| base64_simd::STANDARD.encode_to_string(bytes).into())
                }
            };
            Ok(encoded.as_bytes())
        })
    }
}
