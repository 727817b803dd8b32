//! `nb_client`: connect, smartsend, smartreceive, request/reply, flush, close.

use super::args::*;
use super::boundary::{self, copy_out, ErrorSlot, FfiError, FfiResult};
use super::config::nb_config;
use super::envelope::nb_envelope;
use super::options::{nb_payload_in, nb_send_options, read_options, read_payloads};
use super::runtime;
use super::status::*;
use crate::bridge::{Client, OutgoingPayload, SendOptions, Sent, TrySent};
use crate::config::Config;
use std::ffi::c_char;
use std::time::Duration;

/// A connection to NATS with everything needed to send and receive envelopes. Made by
/// `nb_client_connect`, closed by `nb_client_close`, freed by `nb_client_free`. Thread-safe:
/// any number of threads may call functions on one client at once (except `nb_client_free`,
/// which must be the last call).
pub struct nb_client {
    pub(crate) client: Client,
    pub(crate) last_error: ErrorSlot,
}

impl nb_client {
    /// Reads the client argument of a call.
    ///
    /// # Safety
    /// `p` must be NULL or a live client.
    pub(crate) unsafe fn get<'a>(p: *const nb_client) -> FfiResult<&'a nb_client> {
        // SAFETY: forwarded.
        unsafe { arg(p, "client") }
    }
}

/// Connects to NATS with a copy of `cfg` (NULL: the defaults with the environment applied,
/// as `nb_config_from_env`). Blocks up to the config's connect timeout. On failure `*out` is
/// NULL and the message is in the last error and in `nb_config_last_error(cfg)`; statuses:
/// `NB_ERR_NATS_CONNECTION_FAILED`, `NB_ERR_INVALID_ARGUMENT` (a bad configuration value).
/// Free `*out` with `nb_client_free`.
#[no_mangle]
pub unsafe extern "C" fn nb_client_connect(
    cfg: *const nb_config,
    out: *mut *mut nb_client,
) -> nb_status {
    boundary::status(|| {
        // SAFETY: `out` is NULL or valid for one pointer; `cfg` NULL or a live config.
        let out = required(unsafe { out_param(out) }, "out")?;
        let cfg = unsafe { cfg.as_ref() };
        let config = match cfg {
            Some(c) => c.config.clone(),
            None => Config::from_env()?,
        };
        let r = runtime::block_on(Client::connect(config)).and_then(|r| r.map_err(Into::into));
        let client = match cfg {
            Some(c) => c.last_error.track(r)?,
            None => r?,
        };
        *out = into_handle(nb_client {
            client,
            last_error: ErrorSlot::default(),
        });
        Ok(())
    })
}

/// Runs one call on a client, recording a failure on it.
fn on_client(client: *const nb_client, f: impl FnOnce(&nb_client) -> FfiResult<()>) -> nb_status {
    boundary::status(|| {
        // SAFETY: `client` is NULL or live, by the API contract.
        let c = unsafe { nb_client::get(client) }?;
        let r = f(c);
        c.last_error.track(r)
    })
}

/// Waits until the server has confirmed everything published so far, up to the operation
/// timeout (`NB_ERR_TIMEOUT`). `NB_ERR_MESSAGES_DROPPED` when messages sent since the last
/// flush were not confirmed when the connection dropped (each reported once; see
/// `nb_client_dropped`). `NB_ERR_CLOSED` on a closed client.
#[no_mangle]
pub unsafe extern "C" fn nb_client_flush(client: *const nb_client) -> nb_status {
    on_client(client, |c| {
        runtime::block_on_for(None, "flush", c.client.flush())
    })
}

/// Flushes (as `nb_client_flush`, reporting `NB_ERR_MESSAGES_DROPPED` the same way), then
/// closes the connection: subscriptions end after delivering what they hold, and later calls
/// on the client, and sends racing this one, fail with `NB_ERR_CLOSED`. Bounded by three
/// times the operation timeout. Closing again is a no-op returning `NB_OK`. The handle stays valid: free it with
/// `nb_client_free`.
#[no_mangle]
pub unsafe extern "C" fn nb_client_close(client: *const nb_client) -> nb_status {
    on_client(client, |c| {
        runtime::block_on_for(None, "close", c.client.close())
    })
}

/// Closes the client if needed (as `nb_client_close`, errors ignored) and frees it. NULL is a
/// no-op. Must be the last call on the handle; subscriptions made from it stay valid (and
/// must still be freed).
#[no_mangle]
pub unsafe extern "C" fn nb_client_free(client: *mut nb_client) {
    let _ = boundary::boundary(|| {
        // SAFETY: `client` is NULL or from `nb_client_connect`, freed once.
        if let Some(c) = unsafe { take_handle(client) } {
            let _ = runtime::block_on(c.client.close());
        }
        Ok(())
    });
}

/// The inputs every send call shares: its payloads (array and count) and options.
type SendInputs = (*const nb_payload_in, usize, *const nb_send_options);
/// Its outputs: the envelope as sent and its JSON.
type SendOutputs = (*mut *mut nb_envelope, *mut *mut c_char);

/// The shape of every send call: clears the outputs, reads the inputs, sends with `send` on
/// the client (recording a failure on it), and hands out what was sent.
///
/// # Safety
/// Every pointer follows the rules documented on `nb_client_smartsend`.
unsafe fn send_call(
    client: *const nb_client,
    (payloads, payload_count, options): SendInputs,
    (out_envelope, out_json): SendOutputs,
    send: impl FnOnce(&nb_client, Vec<OutgoingPayload>, SendOptions) -> FfiResult<Sent>,
) -> nb_status {
    // SAFETY: out-parameters are NULL or valid for one pointer.
    let (out_envelope, out_json) = unsafe { (out_param(out_envelope), out_param(out_json)) };
    on_client(client, |c| {
        // SAFETY: the inputs follow their documented rules.
        let (payloads, options) = unsafe {
            (
                read_payloads(payloads, payload_count)?,
                read_options(options),
            )
        };
        let sent = send(c, payloads, options)?;
        if let Some(o) = out_json {
            *o = into_c_string(sent.json_str());
        }
        if let Some(o) = out_envelope {
            *o = into_handle(nb_envelope::new(sent.envelope));
        }
        Ok(())
    })
}

/// smartsend: serializes nothing (the bytes are given), picks each payload's transport,
/// uploads link payloads, and publishes one envelope on `subject`.
///
/// `payloads` is an array of `payload_count` items (NULL only when the count is 0); `options`
/// may be NULL (defaults). Everything is copied: the caller may free its buffers after the
/// call. On success, `*out_envelope` (if `out_envelope` is not NULL) is the envelope as sent
/// (free with `nb_envelope_free`) and `*out_json` (if not NULL) is the published JSON, the
/// walkthrough's `msg_json` (free with `nb_string_free`). Nothing is published when any step
/// fails. Bounded by the operation timeout for the publish and the HTTP timeouts for uploads.
#[no_mangle]
pub unsafe extern "C" fn nb_client_smartsend(
    client: *const nb_client,
    subject: *const c_char,
    payloads: *const nb_payload_in,
    payload_count: usize,
    options: *const nb_send_options,
    out_envelope: *mut *mut nb_envelope,
    out_json: *mut *mut c_char,
) -> nb_status {
    // SAFETY: the arguments follow their documented rules.
    unsafe {
        send_call(
            client,
            (payloads, payload_count, options),
            (out_envelope, out_json),
            |c, payloads, options| {
                let subject = arg_str(subject, "subject")?;
                runtime::block_on_for(
                    None,
                    "smartsend",
                    c.client.smartsend(subject, payloads, options),
                )
            },
        )
    }
}

/// smartsend that never waits, for a host's event-loop thread: publishes exactly what
/// `nb_client_smartsend` would when that can be done at once — every payload direct (below
/// the size threshold, and the envelope within the server's `max_payload`) and room in the
/// connection's outgoing queue. Otherwise returns `NB_ERR_WOULD_BLOCK` having published
/// nothing (the last error says why): make the blocking `nb_client_smartsend` call, e.g. on
/// a worker thread. To keep a sequence in order, once a send has gone to the blocking call,
/// send the following ones after it completes. Other statuses and the outputs are those of
/// `nb_client_smartsend`; `options` may ask for a progress counter, which stays at 0.
#[no_mangle]
pub unsafe extern "C" fn nb_client_try_smartsend(
    client: *const nb_client,
    subject: *const c_char,
    payloads: *const nb_payload_in,
    payload_count: usize,
    options: *const nb_send_options,
    out_envelope: *mut *mut nb_envelope,
    out_json: *mut *mut c_char,
) -> nb_status {
    // SAFETY: the arguments follow their documented rules.
    unsafe {
        send_call(
            client,
            (payloads, payload_count, options),
            (out_envelope, out_json),
            |c, payloads, options| {
                let subject = arg_str(subject, "subject")?;
                match c.client.try_smartsend(subject, payloads, options)? {
                    TrySent::Sent(sent) => Ok(sent),
                    TrySent::WouldBlock(why) => Err(FfiError::new(
                        NB_ERR_WOULD_BLOCK,
                        format!("smartsend would have to wait ({why}); nothing was published"),
                    )),
                }
            },
        )
    }
}

/// smartreceive with a client's settings: decodes the raw bytes of one NATS message (an
/// envelope's JSON), downloads its link payloads from allowed origins, and checks every
/// payload's bytes against its type. `message` is copied. Free `*out` with
/// `nb_envelope_free`. Bounded by the config's HTTP timeouts and download retries.
#[no_mangle]
pub unsafe extern "C" fn nb_client_smartreceive(
    client: *const nb_client,
    message: *const u8,
    len: usize,
    out: *mut *mut nb_envelope,
) -> nb_status {
    // SAFETY: `out` is NULL or valid for one pointer.
    let out = unsafe { out_param(out) };
    on_client(client, |c| {
        let out = required(out, "out")?;
        // SAFETY: `message` is valid for `len` bytes (NULL only with 0).
        let message = unsafe { arg_bytes(message, len, "message") }?;
        let env = runtime::block_on_for(None, "smartreceive", c.client.smartreceive(message))?;
        *out = into_handle(nb_envelope::new(env));
        Ok(())
    })
}

/// smartreceive without a client: as `nb_client_smartreceive`, with the link settings of
/// `cfg` (NULL: defaults with the environment applied). No NATS connection is made. A failure
/// is also recorded in `nb_config_last_error(cfg)`.
#[no_mangle]
pub unsafe extern "C" fn nb_smartreceive(
    cfg: *const nb_config,
    message: *const u8,
    len: usize,
    out: *mut *mut nb_envelope,
) -> nb_status {
    boundary::status(|| {
        // SAFETY: `out` NULL or valid; `cfg` NULL or live; `message` valid for `len` bytes.
        let out = required(unsafe { out_param(out) }, "out")?;
        let cfg = unsafe { cfg.as_ref() };
        let r = (|| {
            let message = unsafe { arg_bytes(message, len, "message") }?;
            let config = match cfg {
                Some(c) => c.config.clone(),
                None => Config::from_env()?,
            };
            let env = runtime::block_on_for(None, "smartreceive", async move {
                crate::bridge::smartreceive(message, &config).await
            })?;
            Ok(env)
        })();
        let env = match cfg {
            Some(c) => c.last_error.track(r)?,
            None => r?,
        };
        *out = into_handle(nb_envelope::new(env));
        Ok(())
    })
}

/// "No limit", as a duration that cannot overflow an `Instant`.
pub(crate) const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Milliseconds as a deadline: negative means none.
pub(crate) fn timeout_of(ms: i64) -> Option<Duration> {
    u64::try_from(ms).ok().map(Duration::from_millis)
}

/// Request/reply: sends an envelope whose `reply_to` is a fresh inbox (unless `options` sets
/// one) and waits up to `timeout_ms` (negative: no limit) for the first reply, decoded like
/// `nb_client_smartreceive`. `NB_ERR_TIMEOUT` when no reply came, `NB_ERR_NO_RESPONDERS` when
/// nobody listens on `subject`. Free `*out_reply` with `nb_envelope_free`.
#[no_mangle]
pub unsafe extern "C" fn nb_client_request(
    client: *const nb_client,
    subject: *const c_char,
    payloads: *const nb_payload_in,
    payload_count: usize,
    options: *const nb_send_options,
    timeout_ms: i64,
    out_reply: *mut *mut nb_envelope,
) -> nb_status {
    // SAFETY: `out_reply` is NULL or valid for one pointer.
    let out_reply = unsafe { out_param(out_reply) };
    on_client(client, |c| {
        let out_reply = required(out_reply, "out_reply")?;
        // SAFETY: arguments follow their documented rules.
        let (subject, payloads, options) = unsafe {
            (
                arg_str(subject, "subject")?,
                read_payloads(payloads, payload_count)?,
                read_options(options),
            )
        };
        // The core waits for the reply without a limit of its own beyond this one.
        let wait = timeout_of(timeout_ms).unwrap_or(FOREVER);
        let reply = runtime::block_on_for(
            None,
            "request",
            c.client.request(subject, payloads, options, wait),
        )?;
        *out_reply = into_handle(nb_envelope::new(reply));
        Ok(())
    })
}

/// Replies to `request` (a received envelope): publishes to its `reply_to` with
/// `reply_to_msg_id` = its `msg_id`, its `correlation_id`, and its sender as receiver, unless
/// `options` sets them. `NB_ERR_INVALID_ARGUMENT` when the request has no `reply_to`. Outputs
/// as `nb_client_smartsend` (both may be NULL).
#[no_mangle]
pub unsafe extern "C" fn nb_client_reply(
    client: *const nb_client,
    request: *const nb_envelope,
    payloads: *const nb_payload_in,
    payload_count: usize,
    options: *const nb_send_options,
    out_envelope: *mut *mut nb_envelope,
    out_json: *mut *mut c_char,
) -> nb_status {
    // SAFETY: the arguments follow their documented rules.
    unsafe {
        send_call(
            client,
            (payloads, payload_count, options),
            (out_envelope, out_json),
            |c, payloads, options| {
                let request = arg(request, "request")?;
                runtime::block_on_for(
                    None,
                    "reply",
                    c.client.reply(request.envelope(), payloads, options),
                )
            },
        )
    }
}

/// The largest message the server accepts, as announced at connect, in `*out`.
#[no_mangle]
pub unsafe extern "C" fn nb_client_max_payload(
    client: *const nb_client,
    out: *mut usize,
) -> nb_status {
    // SAFETY: `out` is NULL or valid for one `size_t`.
    let out = unsafe { out_param(out) };
    on_client(client, |c| {
        *required(out, "out")? = c.client.max_payload();
        Ok(())
    })
}

/// Messages this client handed to the connection that the server had not confirmed when the
/// connection dropped (since connect), in `*out`: they may not have arrived. `nb_client_flush`
/// and `nb_client_close` report them once as `NB_ERR_MESSAGES_DROPPED`.
#[no_mangle]
pub unsafe extern "C" fn nb_client_dropped(client: *const nb_client, out: *mut u64) -> nb_status {
    // SAFETY: `out` is NULL or valid for one `uint64_t`.
    let out = unsafe { out_param(out) };
    on_client(client, |c| {
        *required(out, "out")? = c.client.dropped();
        Ok(())
    })
}

/// Copies the message of the last failing call on this client (from any thread) into `buf`,
/// like `nb_last_error_message`. For bindings whose calls run on worker threads.
#[no_mangle]
pub unsafe extern "C" fn nb_client_last_error(
    client: *const nb_client,
    buf: *mut c_char,
    cap: usize,
    needed: *mut usize,
) -> nb_status {
    boundary::value(NB_ERR_NULL_ARG, || {
        // SAFETY: `client` NULL or live; `buf` valid for `cap` bytes; `needed` NULL or valid.
        let c = unsafe { nb_client::get(client) }?;
        Ok(unsafe { copy_out(&c.last_error.get(), buf, cap, needed) })
    })
}
