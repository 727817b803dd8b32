//! The library's one tokio runtime: created on first need (or by `nb_runtime_init`), with
//! named threads, and shut down by `nb_runtime_shutdown`. Blocking C calls run their future
//! with `block_on` on the caller's own thread; host code never runs on a runtime worker
//! except the wake and log callbacks, which must only signal.

use super::boundary::{self, FfiError, FfiResult};
use super::status::*;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::runtime::{Handle, Runtime};

enum State {
    NotStarted,
    Running(Runtime),
    ShutDown,
}

static RUNTIME: Mutex<State> = Mutex::new(State::NotStarted);

fn build(worker_threads: usize) -> FfiResult<Runtime> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.enable_all()
        .thread_name_fn(|| format!("nb-runtime-{}", NEXT.fetch_add(1, Ordering::Relaxed)));
    if worker_threads > 0 {
        b.worker_threads(worker_threads);
    }
    b.build()
        .map_err(|e| FfiError::new(NB_ERR_INTERNAL, format!("cannot start the runtime: {e}")))
}

fn lock() -> std::sync::MutexGuard<'static, State> {
    RUNTIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// A handle to the runtime, starting it with default settings if needed.
pub(crate) fn handle() -> FfiResult<Handle> {
    let mut state = lock();
    match &*state {
        State::Running(rt) => Ok(rt.handle().clone()),
        State::NotStarted => {
            let rt = build(0)?;
            let h = rt.handle().clone();
            *state = State::Running(rt);
            Ok(h)
        }
        State::ShutDown => Err(FfiError::new(
            NB_ERR_CLOSED,
            "the library's runtime was shut down by nb_runtime_shutdown; call nb_runtime_init \
             to start a new one (handles made before the shutdown stay unusable)",
        )),
    }
}

fn check_thread() -> FfiResult<()> {
    if Handle::try_current().is_ok() {
        return Err(FfiError::new(
            NB_ERR_WRONG_THREAD,
            "a blocking natsbridge call was made on a library thread (from a wake or log \
             callback); such callbacks must only signal another thread",
        ));
    }
    Ok(())
}

/// Runs `fut` to completion on the calling (host) thread. The future's state lives on the
/// heap: host threads may have small stacks (koffi's async calls, Julia tasks), and the
/// state of a send with uploads is large, in debug builds especially.
pub(crate) fn block_on<F: Future>(fut: F) -> FfiResult<F::Output> {
    check_thread()?;
    let h = handle()?;
    Ok(h.block_on(Box::pin(fut)))
}

/// Runs `fut` with a deadline (`None`: none beyond the future's own).
pub(crate) fn block_on_for<T, F>(limit: Option<Duration>, what: &str, fut: F) -> FfiResult<T>
where
    F: Future<Output = crate::Result<T>>,
{
    let r = block_on(async move {
        match limit {
            None => Some(fut.await),
            Some(d) => tokio::time::timeout(d, fut).await.ok(),
        }
    })?;
    match r {
        Some(r) => r.map_err(FfiError::from),
        None => Err(FfiError::new(
            NB_ERR_TIMEOUT,
            format!(
                "{what} did not complete within {} ms",
                limit.unwrap_or_default().as_millis()
            ),
        )),
    }
}

/// Starts the library's runtime with `worker_threads` threads (0: one per CPU core). Optional:
/// the first call that needs the runtime starts it with the defaults. Call it before any
/// other call that connects or receives; `NB_ERR_INVALID_ARGUMENT` if the runtime already
/// runs. After `nb_runtime_shutdown` it starts a new runtime. The threads are named
/// `nb-runtime-N`.
#[no_mangle]
pub extern "C" fn nb_runtime_init(worker_threads: u32) -> nb_status {
    boundary::status(|| {
        check_thread()?;
        let mut state = lock();
        if let State::Running(_) = &*state {
            return Err(FfiError::invalid(
                "the runtime is already running; nb_runtime_init must come before any call \
                 that uses it",
            ));
        }
        *state = State::Running(build(worker_threads as usize)?);
        Ok(())
    })
}

/// Stops the library's runtime, waiting up to `timeout_ms` for its threads to finish. Close
/// every subscription and client first: handles left open stop working (their calls fail).
/// Idempotent: `NB_OK` when nothing runs. `NB_ERR_WRONG_THREAD` when called from a wake or
/// log callback. Call it from the thread that owns the program's shutdown (e.g. before
/// `exit`), never concurrently with other calls.
#[no_mangle]
pub extern "C" fn nb_runtime_shutdown(timeout_ms: u64) -> nb_status {
    boundary::status(|| {
        check_thread()?;
        let old = std::mem::replace(&mut *lock(), State::ShutDown);
        match old {
            State::Running(rt) => rt.shutdown_timeout(Duration::from_millis(timeout_ms)),
            State::NotStarted => *lock() = State::NotStarted,
            State::ShutDown => {}
        }
        Ok(())
    })
}
