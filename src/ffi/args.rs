//! Reading arguments from C: pointers, NUL-terminated UTF-8 strings, byte buffers, and
//! out-parameters (set to NULL first, so a failing call never leaves garbage behind).

use super::boundary::{FfiError, FfiResult};
use super::status::NB_ERR_UTF8;
use std::ffi::{c_char, CStr, CString};

/// A required pointer to a handle.
///
/// # Safety
/// `p` must be NULL or point to a live `T` for the returned lifetime.
pub(crate) unsafe fn arg<'a, T>(p: *const T, name: &str) -> FfiResult<&'a T> {
    // SAFETY: the caller guarantees `p` is NULL or valid.
    unsafe { p.as_ref() }.ok_or_else(|| FfiError::null(name))
}

/// A required mutable pointer to a handle.
///
/// # Safety
/// `p` must be NULL or point to a live `T` not aliased for the returned lifetime.
pub(crate) unsafe fn arg_mut<'a, T>(p: *mut T, name: &str) -> FfiResult<&'a mut T> {
    // SAFETY: the caller guarantees `p` is NULL or valid and unaliased.
    unsafe { p.as_mut() }.ok_or_else(|| FfiError::null(name))
}

/// An optional NUL-terminated UTF-8 string: NULL gives `None`.
///
/// # Safety
/// `p` must be NULL or a NUL-terminated string alive for the returned lifetime.
pub(crate) unsafe fn opt_str<'a>(p: *const c_char, name: &str) -> FfiResult<Option<&'a str>> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's guarantee.
    let c = unsafe { CStr::from_ptr(p) };
    c.to_str().map(Some).map_err(|e| {
        FfiError::new(
            NB_ERR_UTF8,
            format!(
                "argument `{name}` is not valid UTF-8 (bad byte at offset {})",
                e.valid_up_to()
            ),
        )
    })
}

/// A required NUL-terminated UTF-8 string.
///
/// # Safety
/// As [`opt_str`].
pub(crate) unsafe fn arg_str<'a>(p: *const c_char, name: &str) -> FfiResult<&'a str> {
    // SAFETY: forwarded.
    unsafe { opt_str(p, name) }?.ok_or_else(|| FfiError::null(name))
}

/// A byte buffer: NULL is accepted only with length 0.
///
/// # Safety
/// `p` must be NULL or valid for reading `len` bytes for the returned lifetime.
pub(crate) unsafe fn arg_bytes<'a>(p: *const u8, len: usize, name: &str) -> FfiResult<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(FfiError::null(name));
    }
    // SAFETY: non-NULL, valid for `len` bytes by the caller's guarantee.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// An array of `n` items: NULL is accepted only with `n` 0.
///
/// # Safety
/// `p` must be NULL or valid for reading `n` items for the returned lifetime.
pub(crate) unsafe fn arg_slice<'a, T>(p: *const T, n: usize, name: &str) -> FfiResult<&'a [T]> {
    if n == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(FfiError::null(name));
    }
    // SAFETY: non-NULL, valid for `n` items by the caller's guarantee.
    Ok(unsafe { std::slice::from_raw_parts(p, n) })
}

/// The value an out-parameter holds after a failure: NULL or 0.
pub(crate) trait Zero {
    const ZERO: Self;
}

impl<T> Zero for *const T {
    const ZERO: Self = std::ptr::null();
}

impl<T> Zero for *mut T {
    const ZERO: Self = std::ptr::null_mut();
}

macro_rules! zero {
    ($($t:ty),*) => { $(impl Zero for $t { const ZERO: Self = 0; })* };
}
zero!(usize, u64, i32);

/// An out-parameter: `None` when the caller passed NULL; otherwise it is set to NULL / 0 right
/// away, so it holds no garbage if the call fails later.
///
/// # Safety
/// `p` must be NULL or valid for writing one `T`.
pub(crate) unsafe fn out_param<'a, T: Zero>(p: *mut T) -> Option<&'a mut T> {
    // SAFETY: the caller guarantees `p` is NULL or valid.
    let slot = unsafe { p.as_mut() }?;
    *slot = T::ZERO;
    Some(slot)
}

/// A required out-parameter.
pub(crate) fn required<'a, T>(o: Option<&'a mut T>, name: &str) -> FfiResult<&'a mut T> {
    o.ok_or_else(|| FfiError::null(name))
}

/// A handle handed to C.
pub(crate) fn into_handle<T>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// Takes back a handle handed out by [`into_handle`]; NULL gives `None`.
///
/// # Safety
/// `p` must be NULL or a pointer from `into_handle::<T>` not freed yet.
pub(crate) unsafe fn take_handle<T>(p: *mut T) -> Option<Box<T>> {
    if p.is_null() {
        None
    } else {
        // SAFETY: produced by `Box::into_raw` and not freed, by the caller's guarantee.
        Some(unsafe { Box::from_raw(p) })
    }
}

/// Text for C: cut at the first NUL (C cannot see past it anyway).
pub(crate) fn c_string(s: &str) -> CString {
    let end = s.find('\0').unwrap_or(s.len());
    CString::new(&s[..end]).unwrap_or_default()
}

/// A library-owned string handed to C, freed with `nb_string_free`.
pub(crate) fn into_c_string(s: &str) -> *mut c_char {
    c_string(s).into_raw()
}

/// Frees a string handed out by the library (`out_json` of `nb_client_smartsend`, ...).
/// NULL is a no-op. Never free such a string with libc `free`, and never pass a string that
/// the library did not hand out.
#[no_mangle]
pub unsafe extern "C" fn nb_string_free(s: *mut c_char) {
    let _ = super::boundary::boundary(|| {
        if !s.is_null() {
            // SAFETY: produced by `CString::into_raw` in `into_c_string`, by the contract.
            drop(unsafe { CString::from_raw(s) });
        }
        Ok(())
    });
}
