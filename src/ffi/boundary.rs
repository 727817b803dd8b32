//! The boundary every export runs inside: panics are caught and become `NB_ERR_PANIC`,
//! failures are written to the thread-local last error (and, by the caller, to the handle
//! concerned), and text is copied out to caller buffers.

use super::status::*;
use std::cell::{Cell, RefCell};
use std::ffi::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, Once};

/// A failure at the boundary: the status to return and the message for the last error.
#[derive(Debug, Clone)]
pub(crate) struct FfiError {
    pub status: nb_status,
    pub message: String,
    /// The correlation id of the message concerned, when known.
    pub correlation_id: Option<String>,
}

pub(crate) type FfiResult<T> = Result<T, FfiError>;

impl FfiError {
    pub fn new(status: nb_status, message: impl Into<String>) -> FfiError {
        FfiError {
            status,
            message: message.into(),
            correlation_id: None,
        }
    }

    pub fn null(name: &str) -> FfiError {
        FfiError::new(NB_ERR_NULL_ARG, format!("argument `{name}` is NULL"))
    }

    pub fn invalid(message: impl Into<String>) -> FfiError {
        FfiError::new(NB_ERR_INVALID_ARGUMENT, message)
    }
}

impl From<crate::Error> for FfiError {
    fn from(e: crate::Error) -> FfiError {
        FfiError {
            status: status_of(e.code()),
            message: e.to_string(),
            correlation_id: e.correlation_id().map(str::to_owned),
        }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
    static LAST_CORRELATION_ID: RefCell<String> = const { RefCell::new(String::new()) };
    /// Depth of boundaries on this thread: panics inside one are reported, not printed.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    static PANIC_WHERE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Sets this thread's last error (its message and correlation id).
pub(crate) fn set_last_error(e: &FfiError) {
    let put = |slot: &RefCell<String>, text: &str| {
        let mut l = slot.borrow_mut();
        l.clear();
        l.push_str(text);
    };
    LAST_ERROR.with(|l| put(l, &e.message));
    LAST_CORRELATION_ID.with(|l| put(l, e.correlation_id.as_deref().unwrap_or("")));
}

static HOOK: Once = Once::new();

/// A library must not print on its own: a panic inside a boundary is recorded (with its
/// location) for the last error instead of going to standard error. Panics elsewhere in the
/// process keep the previous hook.
fn install_panic_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if DEPTH.with(Cell::get) > 0 {
                let at = info
                    .location()
                    .map(|l| format!(" at {}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                PANIC_WHERE.with(|p| *p.borrow_mut() = Some(at));
            } else {
                previous(info);
            }
        }));
    });
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    let at = PANIC_WHERE
        .with(|p| p.borrow_mut().take())
        .unwrap_or_default();
    format!("PANIC: a bug inside natsbridge{at}: {what}")
}

/// Runs `f` inside the boundary. On failure the error goes to the thread-local last error;
/// the returned status says what happened.
pub(crate) fn boundary<T>(f: impl FnOnce() -> FfiResult<T>) -> FfiResult<T> {
    install_panic_hook();
    DEPTH.with(|d| d.set(d.get() + 1));
    let result = catch_unwind(AssertUnwindSafe(f));
    DEPTH.with(|d| d.set(d.get() - 1));
    let result = match result {
        Ok(r) => r,
        Err(payload) => Err(FfiError::new(NB_ERR_PANIC, panic_message(&*payload))),
    };
    if let Err(e) = &result {
        set_last_error(e);
    }
    result
}

/// `boundary` for a function returning a status.
pub(crate) fn status(f: impl FnOnce() -> FfiResult<()>) -> nb_status {
    match boundary(f) {
        Ok(()) => NB_OK,
        Err(e) => e.status,
    }
}

/// `boundary` for a function returning a value, with `fallback` on failure.
pub(crate) fn value<T>(fallback: T, f: impl FnOnce() -> FfiResult<T>) -> T {
    boundary(f).unwrap_or(fallback)
}

/// The last error of one handle, for callers that cannot read thread-locals (a binding's
/// worker threads). Written by every failing call on the handle, from any thread.
#[derive(Default)]
pub(crate) struct ErrorSlot(Mutex<String>);

impl ErrorSlot {
    pub fn record(&self, e: &FfiError) {
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        s.clear();
        s.push_str(&e.message);
    }

    /// Records the error of `r`, if any, and passes `r` on.
    pub fn track<T>(&self, r: FfiResult<T>) -> FfiResult<T> {
        if let Err(e) = &r {
            self.record(e);
        }
        r
    }

    pub fn get(&self) -> String {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Copies `text` into `buf` (at most `cap` bytes, always NUL-terminated when `cap > 0`) and
/// stores the size it needs, NUL included, in `needed`. `BUFFER_TOO_SMALL` when it was cut.
/// Does not touch the last error: reading an error must not replace it.
///
/// # Safety
/// `buf` must be NULL or valid for `cap` bytes; `needed` NULL or valid for one `usize`.
pub(crate) unsafe fn copy_out(
    text: &str,
    buf: *mut c_char,
    cap: usize,
    needed: *mut usize,
) -> nb_status {
    let bytes = text.as_bytes();
    if !needed.is_null() {
        // SAFETY: the caller passes NULL or a valid pointer.
        unsafe { *needed = bytes.len() + 1 };
    }
    if cap == 0 {
        // Even the empty text needs its NUL.
        return NB_ERR_BUFFER_TOO_SMALL;
    }
    if buf.is_null() {
        return NB_ERR_NULL_ARG;
    }
    let n = bytes.len().min(cap - 1);
    // SAFETY: `buf` is valid for `cap` bytes and `n < cap`; the regions cannot overlap since
    // `text` is the library's own memory.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.cast::<u8>(), n);
        *buf.add(n) = 0;
    }
    if n < bytes.len() {
        NB_ERR_BUFFER_TOO_SMALL
    } else {
        NB_OK
    }
}

/// Copies this thread's last error message into `buf` (NUL-terminated, cut to `cap - 1`
/// bytes) and stores in `needed` (NULL allowed) the size the whole message takes, NUL
/// included. An empty string when no call on this thread has failed yet.
///
/// Returns `NB_OK`, `NB_ERR_BUFFER_TOO_SMALL` (the text was cut; call again with `needed`
/// bytes), or `NB_ERR_NULL_ARG` (`buf` NULL with `cap > 0`). Pass `buf = NULL, cap = 0` to
/// learn the size only (the status is then `NB_ERR_BUFFER_TOO_SMALL`). The message is that of the most recent failing call on the calling
/// thread; reading it does not clear it. Bindings that run calls on worker threads read the
/// copy kept by the handle instead (`nb_client_last_error`, `nb_subscription_last_error`,
/// `nb_config_last_error`).
#[no_mangle]
pub unsafe extern "C" fn nb_last_error_message(
    buf: *mut c_char,
    cap: usize,
    needed: *mut usize,
) -> nb_status {
    let text = LAST_ERROR.with(|l| l.borrow().clone());
    // SAFETY: forwarded caller guarantees.
    unsafe { copy_out(&text, buf, cap, needed) }
}

/// Copies the correlation id of the message this thread's last error concerns into `buf`, as
/// `nb_last_error_message` copies the message: an empty string when the last failure named no
/// message (a NULL argument, a closed handle) or no call on this thread has failed yet. A send
/// that fails reports the correlation id the envelope would have carried — the caller's, or
/// the one the library chose — so an error can be matched with logs on both sides.
#[no_mangle]
pub unsafe extern "C" fn nb_last_error_correlation_id(
    buf: *mut c_char,
    cap: usize,
    needed: *mut usize,
) -> nb_status {
    let text = LAST_CORRELATION_ID.with(|l| l.borrow().clone());
    // SAFETY: forwarded caller guarantees.
    unsafe { copy_out(&text, buf, cap, needed) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_status_with_its_message() {
        let r: FfiResult<()> = boundary(|| panic!("boom {}", 42));
        let e = r.unwrap_err();
        assert_eq!(e.status, NB_ERR_PANIC);
        assert!(e.message.contains("boom 42"), "{}", e.message);
        assert!(e.message.contains("boundary.rs"), "{}", e.message);
        let got = LAST_ERROR.with(|l| l.borrow().clone());
        assert_eq!(got, e.message);
    }

    #[test]
    fn copy_out_cuts_and_reports_the_size() {
        let mut buf = [0x55 as c_char; 4];
        let mut needed = 0usize;
        let s = unsafe { copy_out("hello", buf.as_mut_ptr(), buf.len(), &mut needed) };
        assert_eq!(s, NB_ERR_BUFFER_TOO_SMALL);
        assert_eq!(needed, 6);
        assert_eq!(buf.map(|c| c as u8), *b"hel\0");
        let mut big = [0 as c_char; 8];
        let s = unsafe { copy_out("hello", big.as_mut_ptr(), big.len(), std::ptr::null_mut()) };
        assert_eq!(s, NB_OK);
        let s = unsafe { copy_out("", std::ptr::null_mut(), 0, &mut needed) };
        assert_eq!((s, needed), (NB_ERR_BUFFER_TOO_SMALL, 1));
    }
}
