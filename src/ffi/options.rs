//! What a send takes: `nb_payload_in` (a plain struct) and the `nb_send_options` builder.

use super::args::*;
use super::boundary::{self, FfiError, FfiResult};
use super::status::*;
use crate::bridge::{OutgoingPayload, SendOptions};
use crate::payload_type::PayloadType;
use bytes::Bytes;
use serde_json::{Map, Value};
use std::ffi::c_char;

/// One payload to send: the walkthrough's `(dataname, data, payload_type)` with serialized
/// bytes (wire format §3). Passed as an array with its length; read and copied during the
/// call, so the caller may free everything right after.
#[repr(C)]
pub struct nb_payload_in {
    /// The caller's name for it: non-empty NUL-terminated UTF-8.
    pub dataname: *const c_char,
    /// One of `"text"`, `"dictionary"`, `"arrowtable"`, `"jsontable"`, `"image"`, `"audio"`,
    /// `"video"`, `"binary"`.
    pub payload_type: *const c_char,
    /// The serialized bytes; NULL only when `len` is 0.
    pub data: *const u8,
    /// Number of bytes at `data`.
    pub len: usize,
    /// NULL, or a JSON object of extra payload metadata (`payload_bytes` and `sha256` are
    /// written by the library).
    pub metadata_json: *const c_char,
}

fn parse_object(json: &str, name: &str) -> FfiResult<Map<String, Value>> {
    match serde_json::from_str::<Value>(json) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(FfiError::invalid(format!("{name} must be a JSON object"))),
        Err(e) => Err(FfiError::invalid(format!("{name} is not valid JSON: {e}"))),
    }
}

/// Reads and copies `n` payloads.
///
/// # Safety
/// `p` must be NULL (with `n` 0) or point to `n` valid `nb_payload_in` whose pointers follow
/// their documented rules.
pub(crate) unsafe fn read_payloads(
    p: *const nb_payload_in,
    n: usize,
) -> FfiResult<Vec<OutgoingPayload>> {
    // SAFETY: forwarded caller guarantee.
    let items = unsafe { arg_slice(p, n, "payloads") }?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            // SAFETY: each field follows the struct's documented rules.
            let (dataname, type_name, data, meta) = unsafe {
                (
                    arg_str(item.dataname, &format!("payloads[{i}].dataname"))?,
                    arg_str(item.payload_type, &format!("payloads[{i}].payload_type"))?,
                    arg_bytes(item.data, item.len, &format!("payloads[{i}].data"))?,
                    opt_str(item.metadata_json, &format!("payloads[{i}].metadata_json"))?,
                )
            };
            let payload_type: PayloadType = type_name.parse()?;
            let mut out =
                OutgoingPayload::new(dataname, payload_type, Bytes::copy_from_slice(data));
            if let Some(m) = meta {
                out.metadata = parse_object(m, &format!("payloads[{i}].metadata_json"))?;
            }
            Ok(out)
        })
        .collect()
}

/// Per-call options of a send: every envelope field, and per-call transport settings. Unset
/// fields take the defaults of wire format §1 (new UUIDs, `msg_purpose` `"chat"`, the
/// client's sender). Made by `nb_send_options_new`, freed by `nb_send_options_free`; copied
/// by each call that takes it, so it may be reused or freed right after. Not thread-safe while
/// being changed.
pub struct nb_send_options {
    pub(crate) options: SendOptions,
}

/// The options, or the defaults for NULL.
///
/// # Safety
/// `p` must be NULL or a live `nb_send_options`.
pub(crate) unsafe fn read_options(p: *const nb_send_options) -> SendOptions {
    // SAFETY: forwarded caller guarantee.
    unsafe { p.as_ref() }
        .map(|o| o.options.clone())
        .unwrap_or_default()
}

/// Makes an empty set of send options. Free `*out` with `nb_send_options_free`.
#[no_mangle]
pub unsafe extern "C" fn nb_send_options_new(out: *mut *mut nb_send_options) -> nb_status {
    boundary::status(|| {
        // SAFETY: `out` is NULL or valid for one pointer.
        let out = required(unsafe { out_param(out) }, "out")?;
        *out = into_handle(nb_send_options {
            options: SendOptions::default(),
        });
        Ok(())
    })
}

/// Frees send options. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn nb_send_options_free(opts: *mut nb_send_options) {
    let _ = boundary::boundary(|| {
        // SAFETY: `opts` is NULL or from `nb_send_options_new`, freed once.
        drop(unsafe { take_handle(opts) });
        Ok(())
    });
}

fn set(opts: *mut nb_send_options, f: impl FnOnce(&mut SendOptions) -> FfiResult<()>) -> nb_status {
    boundary::status(|| {
        // SAFETY: `opts` is NULL or live and not shared while being changed, by the contract.
        let opts = unsafe { arg_mut(opts, "opts") }?;
        f(&mut opts.options)
    })
}

/// A string option: NULL resets it to its default.
fn set_string(
    opts: *mut nb_send_options,
    value: *const c_char,
    field: fn(&mut SendOptions) -> &mut Option<String>,
) -> nb_status {
    set(opts, |o| {
        // SAFETY: `value` is NULL or a NUL-terminated string.
        *field(o) = unsafe { opt_str(value, "value") }?.map(str::to_owned);
        Ok(())
    })
}

/// Sets `correlation_id` (default: a new UUID v4); NULL resets it.
#[no_mangle]
pub unsafe extern "C" fn nb_send_options_set_correlation_id(
    opts: *mut nb_send_options,
    value: *const c_char,
) -> nb_status {
    set_string(opts, value, |o| &mut o.correlation_id)
}

/// Sets `msg_id` (default: a new UUID v4); NULL resets it.
#[no_mangle]
pub unsafe extern "C" fn nb_send_options_set_msg_id(
    opts: *mut nb_send_options,
    value: *const c_char,
) -> nb_status {
    set_string(opts, value, |o| &mut o.msg_id)
}

/// Sets `msg_purpose`: `ACK`, `NACK`, `updateStatus`, `shutdown`, `chat` (the default),
/// `command` or `event` (others fail at send with `NB_ERR_INVALID_ARGUMENT`); NULL resets it.
#[no_mangle]
pub unsafe extern "C" fn nb_send_options_set_msg_purpose(
    opts: *mut nb_send_options,
    value: *const c_char,
) -> nb_status {
    set_string(opts, value, |o| &mut o.msg_purpose)
}

/// Sets `sender_name` (default: the config's); NULL resets it.
#[no_mangle]
pub unsafe extern "C" fn nb_send_options_set_sender_name(
    opts: *mut nb_send_options,
    value: *const c_char,
) -> nb_status {
    set_string(opts, value, |o| &mut o.sender_name)
}

/// Sets `sender_id` (default: the client's UUID); NULL resets it.
#[no_mangle]
pub unsafe extern "C" fn nb_send_options_set_sender_id(
    opts: *mut nb_send_options,
    value: *const c_char,
) -> nb_status {
    set_string(opts, value, |o| &mut o.sender_id)
}

/// Sets `receiver_name` (default `""`: broadcast); NULL resets it.
#[no_mangle]
pub unsafe extern "C" fn nb_send_options_set_receiver_name(
    opts: *mut nb_send_options,
    value: *const c_char,
) -> nb_status {
    set_string(opts, value, |o| &mut o.receiver_name)
}

/// Sets `receiver_id` (default `""`: broadcast); NULL resets it.
#[no_mangle]
pub unsafe extern "C" fn nb_send_options_set_receiver_id(
    opts: *mut nb_send_options,
    value: *const c_char,
) -> nb_status {
    set_string(opts, value, |o| &mut o.receiver_id)
}

/// Sets `reply_to`, the subject replies should go to (default `""`); NULL resets it.
#[no_mangle]
pub unsafe extern "C" fn nb_send_options_set_reply_to(
    opts: *mut nb_send_options,
    value: *const c_char,
) -> nb_status {
    set_string(opts, value, |o| &mut o.reply_to)
}

/// Sets `reply_to_msg_id`, the message this one answers (default `""`); NULL resets it.
#[no_mangle]
pub unsafe extern "C" fn nb_send_options_set_reply_to_msg_id(
    opts: *mut nb_send_options,
    value: *const c_char,
) -> nb_status {
    set_string(opts, value, |o| &mut o.reply_to_msg_id)
}

/// Sets the message-level `metadata` from a JSON object (default `{}`); NULL resets it.
/// `NB_ERR_INVALID_ARGUMENT` when it is not a JSON object.
#[no_mangle]
pub unsafe extern "C" fn nb_send_options_set_metadata_json(
    opts: *mut nb_send_options,
    json: *const c_char,
) -> nb_status {
    set(opts, |o| {
        // SAFETY: `json` is NULL or a NUL-terminated string.
        o.metadata = match unsafe { opt_str(json, "json") }? {
            Some(j) => Some(parse_object(j, "metadata")?),
            None => None,
        };
        Ok(())
    })
}

/// Sets the size threshold for this send (0 resets it to the config's).
#[no_mangle]
pub unsafe extern "C" fn nb_send_options_set_size_threshold(
    opts: *mut nb_send_options,
    bytes: usize,
) -> nb_status {
    set(opts, |o| {
        o.size_threshold = (bytes > 0).then_some(bytes);
        Ok(())
    })
}

/// Sets whether a failed upload falls back to direct transport for this send (default: the
/// config's).
#[no_mangle]
pub unsafe extern "C" fn nb_send_options_set_fallback_to_direct(
    opts: *mut nb_send_options,
    fallback: bool,
) -> nb_status {
    set(opts, |o| {
        o.fallback_to_direct = Some(fallback);
        Ok(())
    })
}

/// Makes the send return only once the NATS server has confirmed it received the envelope
/// (a round trip, within the config's operation timeout): `NB_ERR_MESSAGES_DROPPED` when the
/// connection dropped first, `NB_ERR_TIMEOUT` when no confirmation came in time; the
/// envelope may then be lost. Default false: return once the envelope is handed to the
/// connection. `nb_client_try_smartsend` answers `NB_ERR_WOULD_BLOCK` for a confirmed send.
#[no_mangle]
pub unsafe extern "C" fn nb_send_options_set_confirm(
    opts: *mut nb_send_options,
    confirm: bool,
) -> nb_status {
    set(opts, |o| {
        o.confirm = confirm;
        Ok(())
    })
}

/// Transfer progress of a send, polled by the caller from any thread while the send runs (the
/// library never calls host code for it). Made by `nb_progress_new`, attached to sends with
/// `nb_send_options_set_progress`, freed by `nb_progress_free` (at any time: a running send
/// keeps its own reference).
pub struct nb_progress {
    progress: crate::progress::Progress,
}

/// Makes a progress counter at 0 of 0. Free `*out` with `nb_progress_free`.
#[no_mangle]
pub unsafe extern "C" fn nb_progress_new(out: *mut *mut nb_progress) -> nb_status {
    boundary::status(|| {
        // SAFETY: `out` is NULL or valid for one pointer.
        let out = required(unsafe { out_param(out) }, "out")?;
        *out = into_handle(nb_progress {
            progress: crate::progress::Progress::new(),
        });
        Ok(())
    })
}

/// Frees a progress counter. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn nb_progress_free(progress: *mut nb_progress) {
    let _ = boundary::boundary(|| {
        // SAFETY: `progress` is NULL or from `nb_progress_new`, freed once.
        drop(unsafe { take_handle(progress) });
        Ok(())
    });
}

/// Bytes of link payloads uploaded so far by the send that uses this counter (0 for NULL).
#[no_mangle]
pub unsafe extern "C" fn nb_progress_done(progress: *const nb_progress) -> u64 {
    boundary::value(0, || {
        // SAFETY: `progress` is NULL or live.
        Ok(unsafe { arg(progress, "progress") }?.progress.done())
    })
}

/// Bytes of link payloads to upload in all (0 before the upload starts, when nothing goes by
/// link, or for NULL).
#[no_mangle]
pub unsafe extern "C" fn nb_progress_total(progress: *const nb_progress) -> u64 {
    boundary::value(0, || {
        // SAFETY: `progress` is NULL or live.
        Ok(unsafe { arg(progress, "progress") }?.progress.total())
    })
}

/// Makes sends with these options report their upload progress to `progress` (NULL: none).
#[no_mangle]
pub unsafe extern "C" fn nb_send_options_set_progress(
    opts: *mut nb_send_options,
    progress: *const nb_progress,
) -> nb_status {
    set(opts, |o| {
        // SAFETY: `progress` is NULL or live.
        o.progress = unsafe { progress.as_ref() }.map(|p| p.progress.clone());
        Ok(())
    })
}
