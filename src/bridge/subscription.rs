//! Subscriptions: NATS messages decoded (link payloads fetched, several at once, order kept)
//! into one bounded queue per subscription, which a consumer drains by awaiting, by blocking
//! with a deadline, or by polling after a wake-up.
//!
//! The queue is the only bound. When it is full, further messages are dropped *and counted*,
//! and the consumer receives a `SLOW_CONSUMER` error in their place, so nothing is lost silently.

use super::receive::{Decoded, Receiver};
use crate::envelope::Envelope;
use crate::error::{Error, ErrorCode, Result};
use crate::log::{trace, Level};
use futures_util::future::{self, Either, FutureExt};
use futures_util::stream::{FuturesOrdered, StreamExt};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

// Moved once per message; boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Item {
    Delivery(Result<Envelope>),
    /// Stands where dropped messages would have been.
    Dropped,
}

#[derive(Default)]
struct State {
    items: VecDeque<Item>,
    closed: bool,
    dropped_unreported: u64,
    dropped_marker_queued: bool,
    /// Threads blocked in `pop_blocking`: the condition variable is signalled only for them
    /// (a notification costs a system call even when nobody waits).
    blocked: usize,
}

/// Called when the queue goes from empty to non-empty (on the thread that filled it).
pub type WakeHook = Arc<dyn Fn() + Send + Sync>;

/// The queue of one subscription.
pub(crate) struct DeliveryQueue {
    state: Mutex<State>,
    ready: Condvar,
    notify: Notify,
    wake: Mutex<Option<WakeHook>>,
    capacity: usize,
    subject: String,
    dropped_total: AtomicU64,
}

/// What a blocking pull found.
#[allow(clippy::large_enum_variant)]
pub enum Pulled {
    /// An envelope, or an error for one message (decode failure, download failure, drops).
    Item(Result<Envelope>),
    /// The deadline passed with nothing queued.
    TimedOut,
    /// The subscription is closed and its queue is empty.
    Closed,
}

impl DeliveryQueue {
    fn new(capacity: usize, subject: String) -> DeliveryQueue {
        DeliveryQueue {
            state: Mutex::new(State::default()),
            ready: Condvar::new(),
            notify: Notify::new(),
            wake: Mutex::new(None),
            capacity,
            subject,
            dropped_total: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn signal(&self, was_empty: bool, blocked: bool) {
        if blocked {
            self.ready.notify_all();
        }
        self.notify.notify_waiters();
        if was_empty {
            let hook = self.wake.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if let Some(hook) = hook {
                hook();
            }
        }
    }

    /// Queues items (in order) and wakes consumers once for all of them.
    fn push_all(&self, items: impl IntoIterator<Item = Item>) {
        let (was_empty, blocked) = {
            let mut s = self.lock();
            let was_empty = s.items.is_empty();
            s.items.extend(items);
            if s.items.is_empty() {
                return;
            }
            (was_empty, s.blocked > 0)
        };
        self.signal(was_empty, blocked);
    }

    fn len(&self) -> usize {
        self.lock().items.len()
    }

    fn record_drop(&self) {
        self.dropped_total.fetch_add(1, Ordering::Relaxed);
        let (was_empty, blocked) = {
            let mut s = self.lock();
            s.dropped_unreported += 1;
            if s.dropped_marker_queued {
                return;
            }
            s.dropped_marker_queued = true;
            let was_empty = s.items.is_empty();
            s.items.push_back(Item::Dropped);
            (was_empty, s.blocked > 0)
        };
        self.signal(was_empty, blocked);
    }

    fn close(&self) {
        let (was_empty, blocked) = {
            let mut s = self.lock();
            if s.closed {
                return;
            }
            s.closed = true;
            (s.items.is_empty(), s.blocked > 0)
        };
        // Wake waiters so they see the end; readiness fds must become readable too.
        self.signal(was_empty, blocked);
    }

    fn is_closed(&self) -> bool {
        self.lock().closed
    }

    fn pop_locked(&self, s: &mut State) -> Option<Result<Envelope>> {
        match s.items.pop_front()? {
            Item::Delivery(r) => Some(r),
            Item::Dropped => {
                let n = std::mem::take(&mut s.dropped_unreported);
                s.dropped_marker_queued = false;
                Some(Err(Error::new(
                    ErrorCode::SlowConsumer,
                    format!(
                        "{n} message(s) on {:?} dropped: the subscription queue ({} envelopes) was full; \
                         consume faster or raise subscription_queue",
                        self.subject, self.capacity
                    ),
                )
                .with_detail("dropped", n)))
            }
        }
    }

    /// Takes the next item without waiting. `None`: nothing queued (see `is_closed`).
    pub(crate) fn try_pop(&self) -> Option<Result<Envelope>> {
        let mut s = self.lock();
        self.pop_locked(&mut s)
    }

    /// Waits for the next item from a non-async thread: `None` timeout waits forever.
    pub(crate) fn pop_blocking(&self, timeout: Option<Duration>) -> Pulled {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut s = self.lock();
        loop {
            if let Some(item) = self.pop_locked(&mut s) {
                return Pulled::Item(item);
            }
            if s.closed {
                return Pulled::Closed;
            }
            let wait = match deadline {
                None => None,
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Pulled::TimedOut;
                    }
                    Some(d - now)
                }
            };
            s.blocked += 1;
            s = match wait {
                None => self.ready.wait(s).unwrap_or_else(|e| e.into_inner()),
                Some(w) => {
                    self.ready
                        .wait_timeout(s, w)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
            s.blocked -= 1;
        }
    }

    /// Waits for the next item. `None`: closed and drained.
    pub(crate) async fn pop(&self) -> Option<Result<Envelope>> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut s = self.lock();
                if let Some(item) = self.pop_locked(&mut s) {
                    return Some(item);
                }
                if s.closed {
                    return None;
                }
            }
            notified.await;
        }
    }

    pub(crate) fn set_wake_hook(&self, hook: Option<WakeHook>) {
        *self.wake.lock().unwrap_or_else(|e| e.into_inner()) = hook;
        // A hook installed while items wait must still learn about them.
        let pending = !self.lock().items.is_empty() || self.is_closed();
        if pending {
            let hook = self.wake.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if let Some(hook) = hook {
                hook();
            }
        }
    }
}

/// A subscription yielding decoded envelopes, in order of arrival.
///
/// Each item is a `Result`: a message that cannot be decoded or whose link payload cannot be
/// fetched arrives as its error (with the correlation id where known), and dropped messages as
/// one `SLOW_CONSUMER` error. `next()` returns `None` once the subscription is closed and drained.
pub struct Subscription {
    queue: Arc<DeliveryQueue>,
    stop: Arc<Notify>,
    stopped: AtomicBool,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    subject: String,
}

impl Subscription {
    pub(crate) fn start(
        subscriber: async_nats::Subscriber,
        subject: String,
        receiver: Receiver,
        capacity: usize,
    ) -> Subscription {
        let queue = Arc::new(DeliveryQueue::new(capacity, subject.clone()));
        let stop = Arc::new(Notify::new());
        let task = tokio::spawn(pump(subscriber, receiver, queue.clone(), stop.clone()));
        Subscription {
            queue,
            stop,
            stopped: AtomicBool::new(false),
            task: Mutex::new(Some(task)),
            subject,
        }
    }

    /// The subject (or wildcard) subscribed to.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The next envelope; `None` once closed and drained.
    pub async fn next(&self) -> Option<Result<Envelope>> {
        self.queue.pop().await
    }

    /// The next envelope if one is queued now.
    pub fn try_next(&self) -> Option<Result<Envelope>> {
        self.queue.try_pop()
    }

    /// Blocks the calling (non-async) thread for the next envelope, up to `timeout`.
    pub fn next_blocking(&self, timeout: Option<Duration>) -> Pulled {
        self.queue.pop_blocking(timeout)
    }

    /// Envelopes queued now.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Messages dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.queue.dropped_total.load(Ordering::Relaxed)
    }

    /// Whether the subscription is closed (its queue may still hold envelopes).
    pub fn is_closed(&self) -> bool {
        self.queue.is_closed()
    }

    /// Installs a hook called when the queue goes from empty to non-empty, and when it closes.
    /// The hook runs on a library thread: it must only signal (write to a pipe, `uv_async_send`).
    pub fn set_wake_hook(&self, hook: Option<WakeHook>) {
        self.queue.set_wake_hook(hook);
    }

    /// Stops receiving: unsubscribes from NATS, lets messages being decoded finish into the
    /// queue, then closes it. Envelopes already queued can still be taken.
    pub async fn close(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.stop.notify_one();
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
        self.queue.close();
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if !self.stopped.load(Ordering::SeqCst) {
            self.stop.notify_one();
        }
    }
}

/// Messages taken from NATS in one go before the queue is filled and consumers woken.
const BATCH: usize = 64;

/// Moves messages from NATS into the queue, in order. A message without link payloads is
/// decoded right here, and the messages already waiting are taken in one batch, so that a
/// stream of small messages costs one wake-up of the consumer per batch rather than one task
/// hand-off per message. Messages with link payloads are fetched concurrently (up to
/// `capacity` at once); a message behind them waits its turn to keep the order.
async fn pump(
    mut subscriber: async_nats::Subscriber,
    receiver: Receiver,
    queue: Arc<DeliveryQueue>,
    stop: Arc<Notify>,
) {
    let mut in_flight = FuturesOrdered::new();
    let mut ready: Vec<Item> = Vec::with_capacity(BATCH);
    let mut open = true;
    loop {
        tokio::select! {
            biased;
            _ = stop.notified(), if open => {
                let _ = subscriber.unsubscribe().await;
                open = false;
            }
            Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                queue.push_all([Item::Delivery(done)]);
            }
            msg = subscriber.next(), if open => {
                let mut next = msg;
                let mut room = queue.capacity.saturating_sub(queue.len() + in_flight.len());
                let mut taken = 0;
                loop {
                    taken += 1;
                    let Some(msg) = next else {
                        open = false;
                        break;
                    };
                    if room == 0 {
                        trace!(Level::Warn, "-", "Slow consumer on {}: message dropped", queue.subject);
                        queue.push_all(ready.drain(..));
                        queue.record_drop();
                    } else {
                        room -= 1;
                        match receiver.decode_direct(&msg.payload) {
                            Decoded::Done(r) if in_flight.is_empty() => ready.push(Item::Delivery(r)),
                            Decoded::Done(r) => in_flight.push_back(Either::Left(future::ready(r))),
                            Decoded::Links(env) => {
                                let receiver = receiver.clone();
                                in_flight.push_back(Either::Right(async move {
                                    receiver.receive_links(env).await
                                }));
                            }
                        }
                    }
                    if taken >= BATCH {
                        break;
                    }
                    // Whatever else has arrived already, without waiting.
                    match subscriber.next().now_or_never() {
                        Some(m) => next = m,
                        None => break,
                    }
                }
                queue.push_all(ready.drain(..));
            }
        }
        if !open && in_flight.is_empty() {
            break;
        }
    }
    queue.close();
}
