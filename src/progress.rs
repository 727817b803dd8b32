//! Transfer progress that the caller polls (no callbacks into host code from library threads).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Bytes moved so far of a transfer. Clone it into `SendOptions::progress`, then read
/// [`Progress::done`] and [`Progress::total`] from any thread while the send runs.
/// `total` is the sum of the link payloads' sizes (direct payloads need no transfer).
#[derive(Clone, Debug, Default)]
pub struct Progress(Arc<Counters>);

#[derive(Debug, Default)]
struct Counters {
    done: AtomicU64,
    total: AtomicU64,
}

impl Progress {
    /// A new counter at 0 of 0.
    pub fn new() -> Progress {
        Progress::default()
    }

    /// Bytes transferred so far.
    pub fn done(&self) -> u64 {
        self.0.done.load(Ordering::Relaxed)
    }

    /// Bytes to transfer in all (0 until the transfer starts, or when nothing goes by link).
    pub fn total(&self) -> u64 {
        self.0.total.load(Ordering::Relaxed)
    }

    pub(crate) fn start(&self, total: u64) {
        self.0.done.store(0, Ordering::Relaxed);
        self.0.total.store(total, Ordering::Relaxed);
    }

    pub(crate) fn advance(&self, n: u64) {
        self.0.done.fetch_add(n, Ordering::Relaxed);
    }
}

/// Two handles are equal when they follow the same transfer.
impl PartialEq for Progress {
    fn eq(&self, other: &Progress) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
