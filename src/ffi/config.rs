//! `nb_config`: the configuration builder. A client copies it at connect, so a config can be
//! changed or freed right after.

use super::args::*;
use super::boundary::{self, copy_out, ErrorSlot, FfiError, FfiResult};
use super::status::*;
use crate::config::{AllowedOrigins, Config, Credentials};
use std::ffi::c_char;
use std::path::PathBuf;
use std::time::Duration;

/// Configuration of a client (and of `nb_smartreceive`): NATS, file server, transport
/// selection, link options. Made by `nb_config_new` or `nb_config_from_env`, changed by the
/// `nb_config_set_*` functions, freed by `nb_config_free`. Not thread-safe while being
/// changed; once built it may be read by several threads at once (connects copy it).
pub struct nb_config {
    pub(crate) config: Config,
    pub(crate) last_error: ErrorSlot,
}

impl nb_config {
    fn wrap(config: Config) -> nb_config {
        nb_config {
            config,
            last_error: ErrorSlot::default(),
        }
    }
}

/// Runs a setter: checks `cfg`, records a failure on it.
fn set(cfg: *mut nb_config, f: impl FnOnce(&mut Config) -> FfiResult<()>) -> nb_status {
    boundary::status(|| {
        // SAFETY: `cfg` is NULL or a live config owned by the caller, by the API contract.
        let cfg = unsafe { arg_mut(cfg, "cfg") }?;
        let r = f(&mut cfg.config);
        cfg.last_error.track(r)
    })
}

fn millis(ms: u64, name: &str) -> FfiResult<Duration> {
    if ms == 0 {
        return Err(FfiError::invalid(format!("{name} must be at least 1 ms")));
    }
    Ok(Duration::from_millis(ms))
}

/// Makes a config with the built-in defaults (wire format §8), ignoring the environment:
/// NATS at `nats://localhost:4222`, file server `http://localhost:8080`, threshold 500000
/// bytes, connect timeout 5 s, operation timeout 10 s. `*out` is owned by the caller: free it
/// with `nb_config_free`.
#[no_mangle]
pub unsafe extern "C" fn nb_config_new(out: *mut *mut nb_config) -> nb_status {
    boundary::status(|| {
        // SAFETY: `out` is NULL or valid for one pointer.
        let out = required(unsafe { out_param(out) }, "out")?;
        *out = into_handle(nb_config::wrap(Config::default()));
        Ok(())
    })
}

/// Makes a config with the defaults and the environment applied: `NATS_URL`,
/// `FILESERVER_URL` (empty: no file server), `FILESERVER_TOKEN` and `SIZE_THRESHOLD`. A malformed
/// `SIZE_THRESHOLD` fails with `NB_ERR_INVALID_ARGUMENT`. Free `*out` with `nb_config_free`.
#[no_mangle]
pub unsafe extern "C" fn nb_config_from_env(out: *mut *mut nb_config) -> nb_status {
    boundary::status(|| {
        // SAFETY: `out` is NULL or valid for one pointer.
        let out = required(unsafe { out_param(out) }, "out")?;
        *out = into_handle(nb_config::wrap(Config::from_env()?));
        Ok(())
    })
}

/// Frees a config. NULL is a no-op. Clients connected with it are not affected.
#[no_mangle]
pub unsafe extern "C" fn nb_config_free(cfg: *mut nb_config) {
    let _ = boundary::boundary(|| {
        // SAFETY: `cfg` is NULL or from `nb_config_new`/`nb_config_from_env`, freed once.
        drop(unsafe { take_handle(cfg) });
        Ok(())
    });
}

/// Sets the NATS server URL, or several separated by commas (`nats://`, `tls://`).
#[no_mangle]
pub unsafe extern "C" fn nb_config_set_nats_url(
    cfg: *mut nb_config,
    url: *const c_char,
) -> nb_status {
    set(cfg, |c| {
        // SAFETY: `url` is NULL or a NUL-terminated string.
        c.nats_url = unsafe { arg_str(url, "url") }?.to_owned();
        Ok(())
    })
}

/// Sets the base URL of the Plik-compatible file server; NULL or `""` disables link transport
/// (large payloads then fail with `NB_ERR_PAYLOAD_TOO_LARGE` if they do not fit inline).
#[no_mangle]
pub unsafe extern "C" fn nb_config_set_fileserver_url(
    cfg: *mut nb_config,
    url: *const c_char,
) -> nb_status {
    set(cfg, |c| {
        // SAFETY: `url` is NULL or a NUL-terminated string.
        let url = unsafe { opt_str(url, "url") }?;
        c.fileserver_url = url.filter(|u| !u.is_empty()).map(str::to_owned);
        Ok(())
    })
}

/// Sets the upload token of a file server that requires one (sent as `X-PlikToken` when
/// creating an upload); NULL or `""` unsets it. Basic auth goes in the file server URL
/// instead (`http://user:password@host:8080`). Neither is ever put in link URLs or logs.
#[no_mangle]
pub unsafe extern "C" fn nb_config_set_fileserver_token(
    cfg: *mut nb_config,
    token: *const c_char,
) -> nb_status {
    set(cfg, |c| {
        // SAFETY: `token` is NULL or a NUL-terminated string.
        let token = unsafe { opt_str(token, "token") }?.filter(|t| !t.is_empty());
        if let Some(token) = token {
            crate::store::check_token(token)?;
        }
        c.fileserver_token = token.map(str::to_owned);
        Ok(())
    })
}

/// Sets the size threshold: payloads of at least this many serialized bytes go by link.
#[no_mangle]
pub unsafe extern "C" fn nb_config_set_size_threshold(
    cfg: *mut nb_config,
    bytes: usize,
) -> nb_status {
    set(cfg, |c| {
        if bytes == 0 {
            return Err(FfiError::invalid("size_threshold must be at least 1"));
        }
        c.size_threshold = bytes;
        Ok(())
    })
}

/// Sets the default `sender_name` of envelopes sent by clients made with this config.
#[no_mangle]
pub unsafe extern "C" fn nb_config_set_sender_name(
    cfg: *mut nb_config,
    name: *const c_char,
) -> nb_status {
    set(cfg, |c| {
        // SAFETY: `name` is NULL or a NUL-terminated string.
        c.sender_name = unsafe { arg_str(name, "name") }?.to_owned();
        Ok(())
    })
}

/// Sets the connection name shown by the NATS server; NULL unsets it.
#[no_mangle]
pub unsafe extern "C" fn nb_config_set_client_name(
    cfg: *mut nb_config,
    name: *const c_char,
) -> nb_status {
    set(cfg, |c| {
        // SAFETY: `name` is NULL or a NUL-terminated string.
        c.client_name = unsafe { opt_str(name, "name") }?.map(str::to_owned);
        Ok(())
    })
}

/// Sets the deadline to connect to NATS and to open an HTTP connection (at least 1 ms).
#[no_mangle]
pub unsafe extern "C" fn nb_config_set_connect_timeout_ms(
    cfg: *mut nb_config,
    ms: u64,
) -> nb_status {
    set(cfg, |c| {
        c.connect_timeout = millis(ms, "connect_timeout")?;
        Ok(())
    })
}

/// Sets the deadline of one NATS operation: publish, flush, subscribe, unsubscribe (at least
/// 1 ms). It also bounds `nb_client_close` and `nb_subscription_close`, and is the base of
/// an upload's deadline: `operation_timeout` plus the payload's size at 256 KiB/s.
#[no_mangle]
pub unsafe extern "C" fn nb_config_set_operation_timeout_ms(
    cfg: *mut nb_config,
    ms: u64,
) -> nb_status {
    set(cfg, |c| {
        c.operation_timeout = millis(ms, "operation_timeout")?;
        Ok(())
    })
}

/// Sets the longest an HTTP transfer (upload or download) may go without receiving data.
#[no_mangle]
pub unsafe extern "C" fn nb_config_set_http_idle_timeout_ms(
    cfg: *mut nb_config,
    ms: u64,
) -> nb_status {
    set(cfg, |c| {
        c.http_idle_timeout = millis(ms, "http_idle_timeout")?;
        Ok(())
    })
}

/// Sets how many envelopes one subscription queues for its consumer before further messages
/// are dropped and reported as `NB_ERR_SLOW_CONSUMER` (default 1024).
#[no_mangle]
pub unsafe extern "C" fn nb_config_set_subscription_queue(
    cfg: *mut nb_config,
    envelopes: usize,
) -> nb_status {
    set(cfg, |c| {
        if envelopes == 0 {
            return Err(FfiError::invalid("subscription_queue must be at least 1"));
        }
        c.subscription_queue = envelopes;
        Ok(())
    })
}

/// Authenticates to NATS with a token (replaces other credentials).
#[no_mangle]
pub unsafe extern "C" fn nb_config_set_token(
    cfg: *mut nb_config,
    token: *const c_char,
) -> nb_status {
    set(cfg, |c| {
        // SAFETY: `token` is NULL or a NUL-terminated string.
        c.credentials = Credentials::Token(unsafe { arg_str(token, "token") }?.to_owned());
        Ok(())
    })
}

/// Authenticates to NATS with a user and password (replaces other credentials).
#[no_mangle]
pub unsafe extern "C" fn nb_config_set_user_password(
    cfg: *mut nb_config,
    user: *const c_char,
    password: *const c_char,
) -> nb_status {
    set(cfg, |c| {
        // SAFETY: each is NULL or a NUL-terminated string.
        let (user, password) = unsafe { (arg_str(user, "user")?, arg_str(password, "password")?) };
        c.credentials = Credentials::UserPassword {
            user: user.to_owned(),
            password: password.to_owned(),
        };
        Ok(())
    })
}

/// Authenticates to NATS with a `.creds` file (JWT and NKey seed), read at connect
/// (replaces other credentials).
#[no_mangle]
pub unsafe extern "C" fn nb_config_set_creds_file(
    cfg: *mut nb_config,
    path: *const c_char,
) -> nb_status {
    set(cfg, |c| {
        // SAFETY: `path` is NULL or a NUL-terminated string.
        c.credentials = Credentials::CredsFile(PathBuf::from(unsafe { arg_str(path, "path") }?));
        Ok(())
    })
}

/// Removes the credentials: connect anonymously (or with those embedded in the URL).
#[no_mangle]
pub unsafe extern "C" fn nb_config_clear_credentials(cfg: *mut nb_config) -> nb_status {
    set(cfg, |c| {
        c.credentials = Credentials::None;
        Ok(())
    })
}

/// Refuses to connect to NATS without TLS when `required` is true.
#[no_mangle]
pub unsafe extern "C" fn nb_config_set_tls_required(
    cfg: *mut nb_config,
    required: bool,
) -> nb_status {
    set(cfg, |c| {
        c.tls.required = required;
        Ok(())
    })
}

/// Adds a PEM file of root certificates trusted for the NATS TLS connection.
#[no_mangle]
pub unsafe extern "C" fn nb_config_add_tls_root_certificate(
    cfg: *mut nb_config,
    pem_path: *const c_char,
) -> nb_status {
    set(cfg, |c| {
        // SAFETY: `pem_path` is NULL or a NUL-terminated string.
        let p = unsafe { arg_str(pem_path, "pem_path") }?;
        c.tls.root_certificates.push(PathBuf::from(p));
        Ok(())
    })
}

/// Sets a client certificate and its key (PEM files) for mutual TLS with NATS.
#[no_mangle]
pub unsafe extern "C" fn nb_config_set_tls_client_certificate(
    cfg: *mut nb_config,
    cert_path: *const c_char,
    key_path: *const c_char,
) -> nb_status {
    set(cfg, |c| {
        // SAFETY: each is NULL or a NUL-terminated string.
        let (cert, key) = unsafe {
            (
                arg_str(cert_path, "cert_path")?,
                arg_str(key_path, "key_path")?,
            )
        };
        c.tls.client_certificate = Some((PathBuf::from(cert), PathBuf::from(key)));
        Ok(())
    })
}

/// Uploads link payloads one-shot (the file server deletes them on first download) when
/// `oneshot` is true. Default false.
#[no_mangle]
pub unsafe extern "C" fn nb_config_set_link_oneshot(
    cfg: *mut nb_config,
    oneshot: bool,
) -> nb_status {
    set(cfg, |c| {
        c.link.oneshot = oneshot;
        Ok(())
    })
}

/// Sets how long the file server keeps an upload, in seconds (default 86400).
#[no_mangle]
pub unsafe extern "C" fn nb_config_set_link_ttl_s(cfg: *mut nb_config, seconds: u64) -> nb_status {
    set(cfg, |c| {
        if seconds == 0 {
            return Err(FfiError::invalid("link ttl must be at least one second"));
        }
        c.link.ttl = Duration::from_secs(seconds);
        Ok(())
    })
}

/// When an upload fails but the envelope still fits inline, send the payload direct (true,
/// the default) or fail with `NB_ERR_UPLOAD_FAILED` (false).
#[no_mangle]
pub unsafe extern "C" fn nb_config_set_fallback_to_direct(
    cfg: *mut nb_config,
    fallback: bool,
) -> nb_status {
    set(cfg, |c| {
        c.link.fallback_to_direct = fallback;
        Ok(())
    })
}

/// Allows downloading link payloads from one more origin (`"https://files.example.com:8443"`),
/// besides the configured file server's; `"*"` allows any http(s) origin.
#[no_mangle]
pub unsafe extern "C" fn nb_config_add_allowed_origin(
    cfg: *mut nb_config,
    origin: *const c_char,
) -> nb_status {
    set(cfg, |c| {
        // SAFETY: `origin` is NULL or a NUL-terminated string.
        let origin = unsafe { arg_str(origin, "origin") }?;
        if origin.is_empty() {
            return Err(FfiError::invalid("origin is empty"));
        }
        let origins = std::mem::take(&mut c.link.allowed_origins);
        c.link.allowed_origins = match (origins, origin) {
            (_, "*") | (AllowedOrigins::Any, _) => AllowedOrigins::Any,
            (AllowedOrigins::FileServerOnly, o) => AllowedOrigins::These(vec![o.to_owned()]),
            (AllowedOrigins::These(mut v), o) => {
                v.push(o.to_owned());
                AllowedOrigins::These(v)
            }
        };
        Ok(())
    })
}

/// Sets the largest link payload a receiver accepts, in bytes (default 2 GiB).
#[no_mangle]
pub unsafe extern "C" fn nb_config_set_max_download_bytes(
    cfg: *mut nb_config,
    bytes: u64,
) -> nb_status {
    set(cfg, |c| {
        c.link.max_download_bytes = bytes;
        Ok(())
    })
}

/// Sets the download retries: `max_attempts` in all (at least 1), the first delay and the cap
/// on one delay, in milliseconds (defaults 5, 100, 5000; the delay doubles each time).
#[no_mangle]
pub unsafe extern "C" fn nb_config_set_download_retry(
    cfg: *mut nb_config,
    max_attempts: u32,
    base_delay_ms: u64,
    max_delay_ms: u64,
) -> nb_status {
    set(cfg, |c| {
        if max_attempts == 0 {
            return Err(FfiError::invalid("max_attempts must be at least 1"));
        }
        c.link.retry.max_attempts = max_attempts;
        c.link.retry.base_delay = Duration::from_millis(base_delay_ms);
        c.link.retry.max_delay = Duration::from_millis(max_delay_ms);
        Ok(())
    })
}

/// Sets how many link payloads one receiver downloads at once (default 4, at least 1).
#[no_mangle]
pub unsafe extern "C" fn nb_config_set_parallel_downloads(
    cfg: *mut nb_config,
    n: usize,
) -> nb_status {
    set(cfg, |c| {
        if n == 0 {
            return Err(FfiError::invalid("parallel_downloads must be at least 1"));
        }
        c.link.parallel_downloads = n;
        Ok(())
    })
}

/// Sets the base of a received message's download deadline, in milliseconds (default 30000,
/// at least 1): its link payloads must all arrive, retries included, within this plus their
/// declared sizes at the minimum transfer rate, or it fails with `NB_ERR_DOWNLOAD_FAILED`.
#[no_mangle]
pub unsafe extern "C" fn nb_config_set_download_timeout_ms(
    cfg: *mut nb_config,
    ms: u64,
) -> nb_status {
    set(cfg, |c| {
        c.link.download_timeout = millis(ms, "download_timeout")?;
        Ok(())
    })
}

/// Sets the slowest transfer tolerated, in bytes per second (default 262144, at least 1):
/// the part of an upload's and a download's deadline that grows with its size.
#[no_mangle]
pub unsafe extern "C" fn nb_config_set_min_transfer_rate(
    cfg: *mut nb_config,
    bytes_per_second: u64,
) -> nb_status {
    set(cfg, |c| {
        if bytes_per_second == 0 {
            return Err(FfiError::invalid(
                "min_transfer_rate must be at least 1 byte per second",
            ));
        }
        c.link.min_transfer_rate = bytes_per_second;
        Ok(())
    })
}

/// Whether the client's subscriptions deliver envelopes in order of arrival (true, the
/// default: an envelope waits for the link downloads of those before it, at most their
/// download deadline) or as soon as each is decoded (false: envelopes without link payloads
/// are never held behind downloads).
#[no_mangle]
pub unsafe extern "C" fn nb_config_set_ordered_subscriptions(
    cfg: *mut nb_config,
    ordered: bool,
) -> nb_status {
    set(cfg, |c| {
        c.ordered_subscriptions = ordered;
        Ok(())
    })
}

/// Streams received link payloads into new files in directory `path` instead of memory, so
/// memory stays flat whatever their size (`nb_envelope_payload_file` names each file; the
/// files are the caller's to delete). NULL or `""`: memory (the default).
#[no_mangle]
pub unsafe extern "C" fn nb_config_set_download_dir(
    cfg: *mut nb_config,
    path: *const c_char,
) -> nb_status {
    set(cfg, |c| {
        // SAFETY: `path` is NULL or a NUL-terminated string.
        let path = unsafe { opt_str(path, "path") }?;
        c.link.download_dir = path.filter(|p| !p.is_empty()).map(PathBuf::from);
        Ok(())
    })
}

/// Copies the message of the last failure concerning this config (a setter, or a connect or
/// `nb_smartreceive` that used it) into `buf`, like `nb_last_error_message`. Readable from any
/// thread.
#[no_mangle]
pub unsafe extern "C" fn nb_config_last_error(
    cfg: *const nb_config,
    buf: *mut c_char,
    cap: usize,
    needed: *mut usize,
) -> nb_status {
    boundary::value(NB_ERR_NULL_ARG, || {
        // SAFETY: `cfg` is NULL or a live config.
        let cfg = unsafe { arg(cfg, "cfg") }?;
        // SAFETY: `buf` valid for `cap` bytes, `needed` NULL or valid, by the contract.
        Ok(unsafe { copy_out(&cfg.last_error.get(), buf, cap, needed) })
    })
}
