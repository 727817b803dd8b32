//! The C ABI of natsbridge (`libnatsbridge.so`, header `include/natsbridge.h`, generated from
//! this module by cbindgen). Every `extern "C"` function and every `unsafe` cast of the crate
//! lives here; the rest is the safe Rust core, which this layer only wraps.
//!
//! Conventions (see the header's preamble and `shared/design/c-abi.md`):
//! - functions `nb_<noun>_<verb>`; opaque handles (`nb_client`, `nb_subscription`,
//!   `nb_envelope`, `nb_config`, `nb_send_options`) made through out-parameters and released by
//!   their `nb_<type>_free`, which accepts NULL;
//! - every fallible function returns `nb_status` (`NB_OK` = 0, errors negative and stable); the
//!   detail goes to a thread-local last error and to the handle concerned; out-parameters are
//!   NULL / 0 after a failure; a NULL required pointer gives `NB_ERR_NULL_ARG`, bad UTF-8
//!   `NB_ERR_UTF8`, a panic `NB_ERR_PANIC`;
//! - inputs are copied before a call returns; accessors return pointers borrowed from their
//!   handle; strings handed out are freed with `nb_string_free`;
//! - blocking calls run on the caller's thread with a deadline, on the library's own runtime.
#![allow(non_camel_case_types, clippy::missing_safety_doc)]
#![deny(unsafe_op_in_unsafe_fn)]

mod args;
mod boundary;
mod client;
mod config;
mod envelope;
mod options;
mod runtime;
mod status;
mod subscription;

pub use args::nb_string_free;
pub use boundary::nb_last_error_message;
pub use client::*;
pub use config::*;
pub use envelope::*;
pub use options::*;
pub use runtime::{nb_runtime_init, nb_runtime_shutdown};
pub use status::*;
pub use subscription::*;

use std::ffi::{c_char, c_void, CStr};

/// The ABI version of this library. It changes whenever a function, type or constant of the
/// header changes incompatibly; a binding compares `nb_abi_version()` with the number it was
/// written for when it loads the library.
pub const NB_ABI_VERSION: u32 = 1;

/// Log level: nothing (the default: the library is silent unless asked).
pub const NB_LOG_OFF: i32 = 0;
/// Log level: warnings (upload fallbacks, dropped messages).
pub const NB_LOG_WARN: i32 = 1;
/// Log level: every step of sending and receiving, with its correlation id.
pub const NB_LOG_INFO: i32 = 2;
/// Log level: everything, including retries.
pub const NB_LOG_DEBUG: i32 = 3;

const VERSION: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(v) => v,
        Err(_) => c"unknown",
    };

/// The library's version (`"0.1.0"`): static text, never NULL, do not free.
#[no_mangle]
pub extern "C" fn nb_version() -> *const c_char {
    VERSION.as_ptr()
}

/// The ABI version (`NB_ABI_VERSION` of the header the library was built with). Bindings
/// check it when they load the library and refuse a number they were not written for.
#[no_mangle]
pub extern "C" fn nb_abi_version() -> u32 {
    NB_ABI_VERSION
}

/// Sets how much the library logs: `NB_LOG_OFF` (default), `NB_LOG_WARN`, `NB_LOG_INFO` or
/// `NB_LOG_DEBUG`; overrides the `NATSBRIDGE_LOG` environment variable. Lines go to standard
/// error unless a callback is installed with `nb_log_set_callback`.
/// `NB_ERR_INVALID_ARGUMENT` for another number.
#[no_mangle]
pub extern "C" fn nb_log_set_level(level: i32) -> nb_status {
    boundary::status(|| {
        use crate::log::Level;
        let level = match level {
            NB_LOG_OFF => Level::Off,
            NB_LOG_WARN => Level::Warn,
            NB_LOG_INFO => Level::Info,
            NB_LOG_DEBUG => Level::Debug,
            other => {
                return Err(boundary::FfiError::invalid(format!(
                    "log level {other} is not one of NB_LOG_OFF (0) .. NB_LOG_DEBUG (3)"
                )))
            }
        };
        crate::log::set_level(level);
        Ok(())
    })
}

/// Receives one log line (`[timestamp] [Correlation: id] text`, no newline) and its level.
/// `line` is borrowed for the call. Called on library threads, runtime workers included: it
/// must return quickly and must not call into this library.
pub type nb_log_callback =
    Option<unsafe extern "C" fn(ctx: *mut c_void, level: i32, line: *const c_char)>;

/// A host context handed back to the log callback.
struct LogCtx(*mut c_void);
// SAFETY: only handed back to the host's callback, which may be called from any thread by
// its contract; never dereferenced here.
unsafe impl Send for LogCtx {}
// SAFETY: as above.
unsafe impl Sync for LogCtx {}

impl LogCtx {
    /// Taken through a method so closures capture the whole (Send) wrapper.
    fn ptr(&self) -> *mut c_void {
        self.0
    }
}

/// Sends log lines to `cb(ctx, level, line)` instead of standard error; NULL restores
/// standard error. Once this returns, the previous callback is no longer running and will not
/// be called again. The level is set separately (`nb_log_set_level`).
#[no_mangle]
pub unsafe extern "C" fn nb_log_set_callback(cb: nb_log_callback, ctx: *mut c_void) -> nb_status {
    boundary::status(|| {
        let sink = cb.map(|f| {
            let ctx = LogCtx(ctx);
            Box::new(move |level: crate::log::Level, line: &str| {
                let line = args::c_string(line);
                // SAFETY: the host's callback and context, given for exactly this.
                unsafe { f(ctx.ptr(), level as i32, line.as_ptr()) };
            }) as Box<dyn Fn(crate::log::Level, &str) + Send + Sync>
        });
        crate::log::set_sink(sink);
        Ok(())
    })
}
