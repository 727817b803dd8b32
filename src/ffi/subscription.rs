//! `nb_subscription`: one bounded queue of decoded envelopes per subscription, drained three
//! ways — pull (`next`, `next_batch`), readiness (a pollable fd, a wake callback) for hosts
//! that pull after a wake-up, or a serialized callback on a library-owned delivery thread.

use super::args::*;
use super::boundary::{self, copy_out, set_last_error, ErrorSlot, FfiError, FfiResult};
use super::client::{nb_client, timeout_of};
use super::envelope::nb_envelope;
use super::runtime;
use super::status::*;
use crate::bridge::{Pulled, Subscription};
use crate::envelope::Envelope;
use crate::log::{trace, Level};
use std::ffi::{c_char, c_int, c_void};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::{JoinHandle, ThreadId};
use std::time::Duration;

/// Receives one item of a callback subscription, on the subscription's delivery thread.
/// `env` is an envelope lent for the duration of the call (copy it with `nb_envelope_clone` to
/// keep it), with `status` `NB_OK`; or NULL with the error `status` of one message that could
/// not be delivered (`NB_ERR_DOWNLOAD_FAILED`, `NB_ERR_INVALID_ENVELOPE`,
/// `NB_ERR_SLOW_CONSUMER` for dropped messages, ...), whose text is then in
/// `nb_last_error_message` (on this thread) and `nb_subscription_last_error`. Must not throw
/// or unwind (C++ exceptions, longjmp) into the library.
pub type nb_envelope_callback = Option<
    unsafe extern "C" fn(user_data: *mut c_void, env: *const nb_envelope, status: nb_status),
>;

/// Releases the `user_data` of a callback subscription: called exactly once, on the delivery
/// thread, after the last call of the callback.
pub type nb_free_callback = Option<unsafe extern "C" fn(user_data: *mut c_void)>;

/// Wakes a host event loop; the signature of libuv's `uv_async_send`, so Julia can pass it with
/// an `AsyncCondition` handle. Called on a library thread (possibly a runtime worker) when the
/// queue goes from empty to non-empty and when the subscription closes; it must only signal
/// (no blocking, no calls into this library). Its return value is ignored.
pub type nb_wake_callback = Option<unsafe extern "C" fn(ctx: *mut c_void) -> c_int>;

/// A subscription to a subject. Made by `nb_client_subscribe` (pull and readiness) or
/// `nb_client_subscribe_callback`, closed by `nb_subscription_close`, freed by
/// `nb_subscription_free`. Pull calls on one subscription may come from any thread; use one
/// puller at a time to keep envelopes in order.
pub struct nb_subscription {
    shared: Arc<Shared>,
}

struct Shared {
    core: Subscription,
    last_error: ErrorSlot,
    operation_timeout: Duration,
    mode: Mode,
}

enum Mode {
    Pull(Pull),
    Callback(Delivery),
}

struct Pull {
    readiness: Arc<Readiness>,
    /// An error taken from the queue by a batch that already held envelopes: it is the next
    /// item, returned by the next pull.
    pending: Mutex<Option<crate::Error>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------
// Readiness: a socket pair whose read end becomes readable, and a wake callback.

/// A host pointer handed back to the host; the host vouches for its thread-safety.
#[derive(Clone, Copy)]
struct HostPtr(*mut c_void);
// SAFETY: the pointer is only passed back to host callbacks, whose contract says they may be
// called from library threads.
unsafe impl Send for HostPtr {}
// SAFETY: as above; the library never dereferences it.
unsafe impl Sync for HostPtr {}

struct Wake {
    f: unsafe extern "C" fn(*mut c_void) -> c_int,
    ctx: HostPtr,
}

struct Pipe {
    read: UnixStream,
    write: UnixStream,
}

#[derive(Default)]
struct Targets {
    pipe: Option<Pipe>,
    wake: Option<Wake>,
}

#[derive(Default)]
struct Readiness {
    /// Held while signalling, so that once `nb_subscription_free` has cleared the targets no
    /// wake call is still running or will start.
    targets: Mutex<Targets>,
}

impl Readiness {
    fn fire(&self) {
        let t = lock(&self.targets);
        if let Some(p) = &t.pipe {
            // Non-blocking: when the pipe is full it is readable already.
            let _ = (&p.write).write(&[1]);
        }
        if let Some(w) = &t.wake {
            // SAFETY: a function pointer given by the host for exactly this, with its context.
            let _ = unsafe { (w.f)(w.ctx.0) };
        }
    }

    /// Empties the pipe, after which the caller must look at the queue again.
    fn drain(&self) {
        let t = lock(&self.targets);
        if let Some(p) = &t.pipe {
            let mut buf = [0u8; 64];
            while let Ok(n) = (&p.read).read(&mut buf) {
                if n < buf.len() {
                    break;
                }
            }
        }
    }

    fn clear(&self) {
        *lock(&self.targets) = Targets::default();
    }
}

// ---------------------------------------------------------------------------------------
// Callback delivery: one library-owned thread per subscription.

#[derive(Default)]
struct Signal {
    state: Mutex<SignalState>,
    cond: Condvar,
}

#[derive(Default)]
struct SignalState {
    signaled: bool,
    stop: bool,
}

impl Signal {
    fn notify(&self) {
        lock(&self.state).signaled = true;
        self.cond.notify_all();
    }

    fn stop(&self) {
        lock(&self.state).stop = true;
        self.cond.notify_all();
    }

    /// The next item to deliver; `None` when stopped, or closed and drained.
    fn next(&self, core: &Subscription) -> Option<crate::Result<Envelope>> {
        let mut st = lock(&self.state);
        loop {
            if st.stop {
                return None;
            }
            st.signaled = false;
            // Closed is read before the queue: an item pushed just before closing is seen.
            let closed = core.is_closed();
            if let Some(item) = core.try_next() {
                return Some(item);
            }
            if closed {
                return None;
            }
            st = self
                .cond
                .wait_while(st, |s| !s.signaled && !s.stop)
                .unwrap_or_else(|e| e.into_inner());
        }
    }
}

struct Delivery {
    signal: Arc<Signal>,
    thread: Mutex<Option<JoinHandle<()>>>,
    thread_id: Arc<OnceLock<ThreadId>>,
}

struct Callback {
    cb: unsafe extern "C" fn(*mut c_void, *const nb_envelope, nb_status),
    user_data: HostPtr,
    free_user_data: nb_free_callback,
}

impl Callback {
    fn call(&self, shared: &Shared, item: crate::Result<Envelope>) {
        match item {
            Ok(env) => {
                let env = nb_envelope::new(env);
                // SAFETY: the host's callback with its user data; `env` lives across the call.
                unsafe { (self.cb)(self.user_data.0, &env, NB_OK) };
            }
            Err(e) => {
                let e = FfiError::from(e);
                set_last_error(&e);
                shared.last_error.record(&e);
                // SAFETY: as above.
                unsafe { (self.cb)(self.user_data.0, std::ptr::null(), e.status) };
            }
        }
    }
}

impl Drop for Callback {
    fn drop(&mut self) {
        if let Some(free) = self.free_user_data.take() {
            // SAFETY: the host's release function for its user data; called once.
            unsafe { free(self.user_data.0) };
        }
    }
}

fn deliver(
    shared: Arc<Shared>,
    signal: Arc<Signal>,
    id: Arc<OnceLock<ThreadId>>,
    callback: Callback,
) {
    let _ = id.set(std::thread::current().id());
    // `callback` is dropped (releasing the user data) after the last call, even if a bug
    // panics in between.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        while let Some(item) = signal.next(&shared.core) {
            callback.call(&shared, item);
        }
    }));
    drop(callback);
    trace!(
        Level::Debug,
        "-",
        "Delivery thread of {} ends",
        shared.core.subject()
    );
}

// ---------------------------------------------------------------------------------------

impl Shared {
    fn pull_mode(&self) -> FfiResult<&Pull> {
        match &self.mode {
            Mode::Pull(p) => Ok(p),
            Mode::Callback(_) => Err(FfiError::invalid(
                "this subscription delivers by callback; pull and readiness calls do not apply",
            )),
        }
    }

    /// One pull. On `TimedOut` the pipe is drained and the queue looked at again, so an item
    /// pushed meanwhile is either returned now or signalled anew.
    fn pull(&self, p: &Pull, timeout: Option<Duration>) -> Pulled {
        let pending = lock(&p.pending).take();
        if let Some(e) = pending {
            return Pulled::Item(Err(e));
        }
        match self.core.next_blocking(timeout) {
            Pulled::TimedOut => self.take_now(p).map_or_else(
                || {
                    if self.core.is_closed() {
                        // Keep the fd readable: closed is a lasting state.
                        p.readiness.fire();
                        Pulled::Closed
                    } else {
                        Pulled::TimedOut
                    }
                },
                Pulled::Item,
            ),
            other => other,
        }
    }

    /// The next item if there is one now; when the queue is empty the pipe is drained first.
    fn take_now(&self, p: &Pull) -> Option<crate::Result<Envelope>> {
        self.core.try_next().or_else(|| {
            p.readiness.drain();
            self.core.try_next()
        })
    }

    fn close(&self) -> FfiResult<()> {
        if let Mode::Callback(d) = &self.mode {
            d.signal.stop();
            let inside = d.thread_id.get() == Some(&std::thread::current().id());
            if !inside {
                let thread = lock(&d.thread).take();
                if let Some(t) = thread {
                    // Waits for a running callback and for `free_user_data`.
                    let _ = t.join();
                }
            }
        }
        // Unsubscribe, and let messages being decoded finish into the queue, up to the
        // operation timeout; past it they are abandoned.
        let limit = self.operation_timeout;
        let done =
            runtime::block_on(async { tokio::time::timeout(limit, self.core.close()).await })?;
        if done.is_err() {
            trace!(
                Level::Warn,
                "-",
                "Closing subscription {}: in-flight messages still decoding after {} ms were abandoned",
                self.core.subject(),
                limit.as_millis()
            );
        }
        Ok(())
    }
}

/// Runs one call on a subscription, recording a failure on it (but not `NB_ERR_PULL_TIMEOUT`,
/// which is no failure of anything).
fn on_sub(sub: *const nb_subscription, f: impl FnOnce(&Shared) -> FfiResult<()>) -> nb_status {
    boundary::status(|| {
        // SAFETY: `sub` is NULL or live, by the API contract.
        let s = &unsafe { arg(sub, "sub") }?.shared;
        let r = f(s);
        if let Err(e) = &r {
            if e.status != NB_ERR_PULL_TIMEOUT {
                s.last_error.record(e);
            }
        }
        r
    })
}

fn subscribe(
    client: &nb_client,
    subject: &str,
    queue_group: Option<&str>,
) -> FfiResult<Subscription> {
    runtime::block_on_for(
        None,
        "subscribe",
        client.client.subscribe(subject, queue_group),
    )
}

/// Subscribes to `subject` (wildcards allowed), in queue group `queue_group` unless it is NULL
/// or empty. Envelopes arrive decoded, link payloads fetched, into the subscription's queue;
/// take them with `nb_subscription_next` / `nb_subscription_next_batch`, waking up with
/// `nb_subscription_fd` or `nb_subscription_set_wake` if wanted. When the call returns the
/// server knows the interest. Blocks up to the operation timeout. Free `*out` with
/// `nb_subscription_free`.
#[no_mangle]
pub unsafe extern "C" fn nb_client_subscribe(
    client: *const nb_client,
    subject: *const c_char,
    queue_group: *const c_char,
    out: *mut *mut nb_subscription,
) -> nb_status {
    boundary::status(|| {
        // SAFETY: pointers follow their documented rules.
        let out = required(unsafe { out_param(out) }, "out")?;
        let c = unsafe { nb_client::get(client) }?;
        let r = (|| {
            let (subject, queue) = unsafe {
                (
                    arg_str(subject, "subject")?,
                    opt_str(queue_group, "queue_group")?,
                )
            };
            let core = subscribe(c, subject, queue)?;
            let readiness = Arc::new(Readiness::default());
            let r = readiness.clone();
            core.set_wake_hook(Some(Arc::new(move || r.fire())));
            Ok(nb_subscription {
                shared: Arc::new(Shared {
                    core,
                    last_error: ErrorSlot::default(),
                    operation_timeout: c.client.config().operation_timeout,
                    mode: Mode::Pull(Pull {
                        readiness,
                        pending: Mutex::new(None),
                    }),
                }),
            })
        })();
        *out = into_handle(c.last_error.track(r)?);
        Ok(())
    })
}

/// Subscribes like `nb_client_subscribe`, delivering each item to `cb(user_data, env, status)`
/// on a thread the library owns for this subscription (never a runtime worker): calls are
/// serialized and in order of arrival. `free_user_data` (may be NULL) runs exactly once, on
/// that thread, after the last call: when the subscription is closed, or when its client
/// closes and the queue is drained. On failure neither function is ever called and
/// `user_data` stays the caller's. The callback may call any function of this library,
/// including `nb_subscription_close` / `nb_subscription_free` on its own subscription.
#[no_mangle]
pub unsafe extern "C" fn nb_client_subscribe_callback(
    client: *const nb_client,
    subject: *const c_char,
    queue_group: *const c_char,
    cb: nb_envelope_callback,
    user_data: *mut c_void,
    free_user_data: nb_free_callback,
    out: *mut *mut nb_subscription,
) -> nb_status {
    boundary::status(|| {
        // SAFETY: pointers follow their documented rules.
        let out = required(unsafe { out_param(out) }, "out")?;
        let c = unsafe { nb_client::get(client) }?;
        let r = (|| {
            let cb = cb.ok_or_else(|| FfiError::null("cb"))?;
            let (subject, queue) = unsafe {
                (
                    arg_str(subject, "subject")?,
                    opt_str(queue_group, "queue_group")?,
                )
            };
            let core = subscribe(c, subject, queue)?;
            let signal = Arc::new(Signal::default());
            let s = signal.clone();
            core.set_wake_hook(Some(Arc::new(move || s.notify())));
            let thread_id = Arc::new(OnceLock::new());
            let shared = Arc::new(Shared {
                core,
                last_error: ErrorSlot::default(),
                operation_timeout: c.client.config().operation_timeout,
                mode: Mode::Callback(Delivery {
                    signal: signal.clone(),
                    thread: Mutex::new(None),
                    thread_id: thread_id.clone(),
                }),
            });
            // Built only once nothing can fail, so a failure never releases the user data.
            let spawn = {
                let shared = shared.clone();
                let user_data = HostPtr(user_data);
                std::thread::Builder::new()
                    .name("nb-delivery".into())
                    .spawn(move || {
                        let callback = Callback {
                            cb,
                            user_data,
                            free_user_data,
                        };
                        deliver(shared, signal, thread_id, callback)
                    })
            };
            match spawn {
                Ok(t) => {
                    if let Mode::Callback(d) = &shared.mode {
                        *lock(&d.thread) = Some(t);
                    }
                    Ok(nb_subscription { shared })
                }
                Err(e) => {
                    let _ = runtime::block_on(shared.core.close());
                    Err(FfiError::new(
                        NB_ERR_INTERNAL,
                        format!("cannot start the delivery thread: {e}"),
                    ))
                }
            }
        })();
        *out = into_handle(c.last_error.track(r)?);
        Ok(())
    })
}

/// Takes the next envelope, waiting up to `timeout_ms` (0: do not wait; negative: wait
/// without limit). Statuses: `NB_OK` with `*out` set (free it with `nb_envelope_free`);
/// `NB_ERR_PULL_TIMEOUT` when nothing came in time; `NB_ERR_CLOSED` once the subscription is
/// closed and its queue drained; or the error of one message that could not be delivered
/// (`NB_ERR_DOWNLOAD_FAILED`, `NB_ERR_INVALID_ENVELOPE`, `NB_ERR_SLOW_CONSUMER` standing for
/// dropped messages, ...), with its text in the last error — pull again for the next one.
/// `NB_ERR_INVALID_ARGUMENT` on a callback subscription. Call it from a host thread that may
/// block; the host's own locks (GIL) should be released around it.
#[no_mangle]
pub unsafe extern "C" fn nb_subscription_next(
    sub: *const nb_subscription,
    timeout_ms: i64,
    out: *mut *mut nb_envelope,
) -> nb_status {
    // SAFETY: `out` is NULL or valid for one pointer.
    let out = unsafe { out_param(out) };
    on_sub(sub, |s| {
        let out = required(out, "out")?;
        let p = s.pull_mode()?;
        let env = pulled(s.pull(p, timeout_of(timeout_ms)), timeout_ms)?;
        *out = into_handle(nb_envelope::new(env));
        Ok(())
    })
}

fn pulled(p: Pulled, timeout_ms: i64) -> FfiResult<Envelope> {
    match p {
        Pulled::Item(Ok(env)) => Ok(env),
        Pulled::Item(Err(e)) => Err(e.into()),
        Pulled::TimedOut => Err(FfiError::new(
            NB_ERR_PULL_TIMEOUT,
            format!("no envelope within {timeout_ms} ms"),
        )),
        Pulled::Closed => Err(FfiError::new(
            NB_ERR_CLOSED,
            "the subscription is closed and its queue is drained",
        )),
    }
}

/// Takes up to `cap` envelopes at once: waits up to `timeout_ms` (as `nb_subscription_next`)
/// for the first, then takes those already queued without waiting. On `NB_OK`,
/// `envs[0 .. *count]` are set (each freed with `nb_envelope_free`) and `*count >= 1`. The
/// other statuses are those of `nb_subscription_next`, with `*count` 0. An undeliverable
/// message met after some envelopes ends the batch and is returned by the next pull, so order
/// is kept. `envs` must have room for `cap` pointers (`cap >= 1`); all of them are set to NULL
/// first.
#[no_mangle]
pub unsafe extern "C" fn nb_subscription_next_batch(
    sub: *const nb_subscription,
    envs: *mut *mut nb_envelope,
    cap: usize,
    timeout_ms: i64,
    count: *mut usize,
) -> nb_status {
    // SAFETY: `count` is NULL or valid for one `size_t`.
    let count = unsafe { out_param(count) };
    let slots: &mut [*mut nb_envelope] = if envs.is_null() || cap == 0 {
        &mut []
    } else {
        // SAFETY: `envs` has room for `cap` pointers, by the contract.
        unsafe { std::slice::from_raw_parts_mut(envs, cap) }
    };
    slots.fill(std::ptr::null_mut());
    on_sub(sub, |s| {
        let count = required(count, "count")?;
        if envs.is_null() {
            return Err(FfiError::null("envs"));
        }
        if cap == 0 {
            return Err(FfiError::invalid("cap must be at least 1"));
        }
        let p = s.pull_mode()?;
        let first = pulled(s.pull(p, timeout_of(timeout_ms)), timeout_ms)?;
        slots[0] = into_handle(nb_envelope::new(first));
        let mut n = 1;
        while n < cap {
            match s.take_now(p) {
                Some(Ok(env)) => {
                    slots[n] = into_handle(nb_envelope::new(env));
                    n += 1;
                }
                Some(Err(e)) => {
                    *lock(&p.pending) = Some(e);
                    // The pending error is the next item: keep the fd readable for it.
                    p.readiness.fire();
                    break;
                }
                None => break,
            }
        }
        *count = n;
        Ok(())
    })
}

/// A file descriptor that becomes readable when the queue goes from empty to non-empty, and
/// stays readable once the subscription is closed: watch it with poll/epoll, Node's
/// `net.Socket`, asyncio's `add_reader` or Julia's `FDWatcher`, then pull with timeout 0 until
/// `NB_ERR_PULL_TIMEOUT`. It is one end of a non-blocking, close-on-exec socket pair that the
/// library drains itself (in pulls that find the queue empty): only poll it — never read,
/// write or close it. The same fd every call; valid until `nb_subscription_free` (stop
/// watching it first). `NB_ERR_INVALID_ARGUMENT` on a callback subscription.
#[no_mangle]
pub unsafe extern "C" fn nb_subscription_fd(
    sub: *const nb_subscription,
    fd: *mut c_int,
) -> nb_status {
    // SAFETY: `fd` is NULL or valid for one int.
    let fd_out = unsafe { out_param(fd) };
    on_sub(sub, |s| {
        let fd_out = required(fd_out, "fd")?;
        let p = s.pull_mode()?;
        let mut t = lock(&p.readiness.targets);
        if t.pipe.is_none() {
            let (read, write) = UnixStream::pair()
                .and_then(|(r, w)| {
                    r.set_nonblocking(true)?;
                    w.set_nonblocking(true)?;
                    Ok((r, w))
                })
                .map_err(|e| {
                    FfiError::new(
                        NB_ERR_INTERNAL,
                        format!("cannot make the readiness fd: {e}"),
                    )
                })?;
            // Something may already wait: make the new fd say so.
            if s.core.queued() > 0 || s.core.is_closed() || lock(&p.pending).is_some() {
                let _ = (&write).write(&[1]);
            }
            t.pipe = Some(Pipe { read, write });
        }
        *fd_out = t.pipe.as_ref().map_or(-1, |p| p.read.as_raw_fd());
        Ok(())
    })
}

/// Installs `wake(ctx)`, called on a library thread when the queue goes from empty to
/// non-empty and when the subscription closes (see `nb_wake_callback`); NULL removes it.
/// Called once at once if envelopes already wait. After a wake, pull with timeout 0 until
/// `NB_ERR_PULL_TIMEOUT`. It may run until `nb_subscription_free` returns, never after.
/// `NB_ERR_INVALID_ARGUMENT` on a callback subscription.
#[no_mangle]
pub unsafe extern "C" fn nb_subscription_set_wake(
    sub: *const nb_subscription,
    wake: nb_wake_callback,
    ctx: *mut c_void,
) -> nb_status {
    on_sub(sub, |s| {
        let p = s.pull_mode()?;
        lock(&p.readiness.targets).wake = wake.map(|f| Wake {
            f,
            ctx: HostPtr(ctx),
        });
        if wake.is_some()
            && (s.core.queued() > 0 || s.core.is_closed() || lock(&p.pending).is_some())
        {
            p.readiness.fire();
        }
        Ok(())
    })
}

/// Messages dropped so far because the queue was full (each gap is also reported once as an
/// `NB_ERR_SLOW_CONSUMER` item), in `*out`.
#[no_mangle]
pub unsafe extern "C" fn nb_subscription_dropped(
    sub: *const nb_subscription,
    out: *mut u64,
) -> nb_status {
    // SAFETY: `out` is NULL or valid for one uint64_t.
    let o = unsafe { out_param(out) };
    on_sub(sub, |s| {
        *required(o, "out")? = s.core.dropped();
        Ok(())
    })
}

/// Closes the subscription: unsubscribes and stops taking messages. A callback subscription
/// stops calling back: this waits for a running callback and for `free_user_data` to
/// return — except when called from inside the callback, where it returns at once and both
/// finish after the callback returns. A pull subscription keeps what is queued: pulls return
/// it, then `NB_ERR_CLOSED` (a puller blocked in `nb_subscription_next` wakes up). Messages
/// still being decoded get up to the operation timeout to reach the queue. Closing again is a
/// no-op returning `NB_OK`. The handle stays valid: free it with `nb_subscription_free`.
#[no_mangle]
pub unsafe extern "C" fn nb_subscription_close(sub: *const nb_subscription) -> nb_status {
    on_sub(sub, Shared::close)
}

/// Closes the subscription if needed (as `nb_subscription_close`) and frees it; its fd is
/// closed and its wake callback is no longer called once this returns. NULL is a no-op. Must
/// be the last call on the handle (wake blocked pullers with `nb_subscription_close` first).
/// May be called from inside its own callback.
#[no_mangle]
pub unsafe extern "C" fn nb_subscription_free(sub: *mut nb_subscription) {
    let _ = boundary::boundary(|| {
        // SAFETY: `sub` is NULL or from a subscribe call, freed once.
        if let Some(s) = unsafe { take_handle(sub) } {
            let _ = s.shared.close();
            if let Mode::Pull(p) = &s.shared.mode {
                p.readiness.clear();
            }
        }
        Ok(())
    });
}

/// Copies the message of the last failure on this subscription (a failing call other than a
/// pull timeout, or an undeliverable message) into `buf`, like `nb_last_error_message`.
/// Readable from any thread.
#[no_mangle]
pub unsafe extern "C" fn nb_subscription_last_error(
    sub: *const nb_subscription,
    buf: *mut c_char,
    cap: usize,
    needed: *mut usize,
) -> nb_status {
    boundary::value(NB_ERR_NULL_ARG, || {
        // SAFETY: `sub` NULL or live; `buf` valid for `cap` bytes; `needed` NULL or valid.
        let s = unsafe { arg(sub, "sub") }?;
        Ok(unsafe { copy_out(&s.shared.last_error.get(), buf, cap, needed) })
    })
}
