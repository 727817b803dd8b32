//! Subscriptions: NATS messages decoded (link payloads fetched, several at once, order kept)
//! into one bounded queue per subscription, which a consumer drains by awaiting, by blocking
//! with a deadline, or by polling after a wake-up.
//!
//! The queue is the only bound. When it is full, further messages are dropped *and counted*,
//! and the consumer receives a `SLOW_CONSUMER` error in their place, so nothing is lost silently.
//!
//! A pump task moves messages from NATS into the queue. A consumer waiting in `next` or
//! `next_blocking` while the queue is empty and no link payload is being fetched reads NATS
//! itself instead: the NATS client wakes it directly and it decodes on its own thread, one
//! task hand-off fewer than through the pump. Whoever reads holds the `Source` lock while it
//! reads, decodes and queues a batch, so messages keep their order whichever way they go.

use super::receive::{Decoded, Receiver};
use crate::envelope::Envelope;
use crate::error::{Error, ErrorCode, Result};
use crate::log::{trace, Level};
use futures_util::future::{self, Either};
use futures_util::stream::{FuturesOrdered, FuturesUnordered, StreamExt};
use futures_util::task::AtomicWaker;
use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, TryLockError, Weak};
use std::task::{Context, Poll, Wake, Waker};
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
    /// Wake-ups of a thread blocked in `pop_blocking` by a message arriving from NATS.
    kicks: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The NATS side of a subscription, read by the pump or by a waiting consumer.
struct Source {
    /// `None` once unsubscribed.
    subscriber: Option<async_nats::Subscriber>,
    /// No more messages will be read (unsubscribed, or the connection is gone).
    ended: bool,
    /// Messages read from NATS and not yet queued: those with link payloads being fetched,
    /// and every message behind them. A consumer reads NATS itself only when this is 0.
    in_flight: usize,
    /// Read but not yet handed to the pump's fetches (counted in `in_flight`).
    handoff: VecDeque<Decoded>,
    /// Reused for each batch.
    scratch: Vec<Item>,
}

/// Routes the NATS subscriber's wake-ups: to the consumer registered to read directly, if
/// any, otherwise to the pump. A consumer registers before each read; when it stops waiting,
/// a wake-up it was given and did not act on goes to the pump (`release`).
struct Router {
    consumer: Mutex<Option<(u64, Waker)>>,
    ids: AtomicU64,
    pump: AtomicWaker,
}

impl Wake for Router {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let consumer = lock(&self.consumer).take();
        match consumer {
            Some((_, w)) => w.wake(),
            None => self.pump.wake(),
        }
    }
}

impl Router {
    /// Registers consumer `id` for the next arrival; false when another consumer is.
    fn register(&self, id: u64, waker: &Waker) -> bool {
        let mut c = lock(&self.consumer);
        match &mut *c {
            Some((i, w)) if *i == id => {
                if !w.will_wake(waker) {
                    *w = waker.clone();
                }
                true
            }
            Some(_) => false,
            None => {
                *c = Some((id, waker.clone()));
                true
            }
        }
    }

    /// Consumer `id` stops waiting: withdraws its registration, or, when a wake-up already
    /// took it, passes that wake-up on to the pump (a message may wait unread).
    fn release(&self, id: u64) {
        let mut c = lock(&self.consumer);
        if matches!(&*c, Some((i, _)) if *i == id) {
            *c = None;
        } else {
            drop(c);
            self.pump.wake();
        }
    }
}

/// One wait of a consumer (a call of `pop` or `pop_blocking`).
struct Waiting<'a> {
    router: &'a Router,
    id: u64,
    registered: bool,
}

impl<'a> Waiting<'a> {
    fn new(router: &'a Router) -> Waiting<'a> {
        Waiting {
            router,
            id: router.ids.fetch_add(1, Ordering::Relaxed),
            registered: false,
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.registered {
            self.router.release(self.id);
        }
    }
}

/// Wakes the threads blocked in `pop_blocking` (the waker they register for NATS arrivals).
struct Kick(Weak<DeliveryQueue>);

impl Wake for Kick {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(q) = self.0.upgrade() {
            q.lock().kicks += 1;
            q.ready.notify_all();
        }
    }
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
    /// Deliver in order of arrival (`Config::ordered_subscriptions`).
    ordered: bool,
    subject: String,
    dropped_total: AtomicU64,
    source: Mutex<Source>,
    receiver: Receiver,
    router: Arc<Router>,
    /// `router` as a waker: every read of the subscriber registers it.
    router_waker: Waker,
    /// `Kick` for this queue.
    kick: Waker,
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
    fn new(
        capacity: usize,
        subject: String,
        subscriber: async_nats::Subscriber,
        receiver: Receiver,
        ordered: bool,
    ) -> Arc<DeliveryQueue> {
        let router = Arc::new(Router {
            consumer: Mutex::new(None),
            ids: AtomicU64::new(0),
            pump: AtomicWaker::new(),
        });
        Arc::new_cyclic(|me| DeliveryQueue {
            state: Mutex::new(State::default()),
            ready: Condvar::new(),
            notify: Notify::new(),
            wake: Mutex::new(None),
            capacity,
            ordered,
            subject,
            dropped_total: AtomicU64::new(0),
            source: Mutex::new(Source {
                subscriber: Some(subscriber),
                ended: false,
                in_flight: 0,
                handoff: VecDeque::new(),
                scratch: Vec::with_capacity(BATCH),
            }),
            receiver,
            router_waker: Waker::from(router.clone()),
            router,
            kick: Waker::from(Arc::new(Kick(me.clone()))),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
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
        let mut waiting = Waiting::new(&self.router);
        loop {
            let kicks = {
                let mut s = self.lock();
                if let Some(item) = self.pop_locked(&mut s) {
                    return Pulled::Item(item);
                }
                if s.closed {
                    return Pulled::Closed;
                }
                s.kicks
            };
            if let Some(item) = self.read_direct(&mut waiting, &self.kick) {
                return Pulled::Item(item);
            }
            let mut s = self.lock();
            if !s.items.is_empty() || s.closed || s.kicks != kicks {
                continue;
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
        let mut waiting = Waiting::new(&self.router);
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
            // Woken by NATS (read it here) or by the queue (look at it again).
            let direct = future::poll_fn(|cx| {
                if let Some(item) = self.read_direct(&mut waiting, cx.waker()) {
                    return Poll::Ready(Some(item));
                }
                notified.as_mut().poll(cx).map(|()| None)
            })
            .await;
            if direct.is_some() {
                return direct;
            }
        }
    }

    /// A waiting consumer's read of NATS: when nothing is queued or being fetched, takes the
    /// next message and decodes it here, queueing whatever else has arrived behind it.
    /// Registers `waker` for the next arrival first. `None`: nothing for this consumer now.
    fn read_direct(&self, waiting: &mut Waiting<'_>, waker: &Waker) -> Option<Result<Envelope>> {
        if !self.router.register(waiting.id, waker) {
            return None;
        }
        waiting.registered = true;
        // Busy: the pump is reading, and will queue what it reads (or leave the subscriber
        // armed, and the next arrival wakes this consumer).
        let mut src = match self.source.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        if src.ended || src.in_flight > 0 || !self.lock().items.is_empty() {
            if src.in_flight > 0 && !src.ended {
                // The pump is fetching links: the arrival that woke this consumer is the
                // pump's to read (unordered, it is delivered at once; ordered, its own links
                // start downloading).
                drop(src);
                self.router.pump.wake();
            }
            return None;
        }
        let mut ready = std::mem::take(&mut src.scratch);
        self.read_batch(&mut src, 1, &mut ready);
        let first = ready.pop();
        let mut more = false;
        if first.is_some() {
            more = self.read_batch(&mut src, BATCH - 1, &mut ready) == BATCH - 1;
            self.push_all(ready.drain(..));
        }
        src.scratch = ready;
        // Left for the pump: link payloads to fetch, the end, or messages beyond the batch
        // (the subscriber is not armed then).
        let pump = more || src.ended || !src.handoff.is_empty();
        drop(src);
        if pump {
            self.router.pump.wake();
        }
        match first {
            Some(Item::Delivery(r)) => Some(r),
            _ => None,
        }
    }

    /// Reads up to `limit` messages that have already arrived, in order: decoded ones into
    /// `ready` while nothing is in flight, the rest into `handoff`; over capacity, drops.
    /// Returns how many it read. A read that finds nothing arms the subscriber (`router`).
    fn read_batch(&self, src: &mut Source, limit: usize, ready: &mut Vec<Item>) -> usize {
        let mut cx = Context::from_waker(&self.router_waker);
        let mut room = self.capacity.saturating_sub(self.len() + src.in_flight);
        let mut taken = 0;
        while taken < limit && !src.ended {
            let Some(sub) = src.subscriber.as_mut() else {
                src.ended = true;
                break;
            };
            let msg = match sub.poll_next_unpin(&mut cx) {
                Poll::Pending => break,
                Poll::Ready(None) => {
                    src.ended = true;
                    break;
                }
                Poll::Ready(Some(msg)) => msg,
            };
            taken += 1;
            if room == 0 {
                trace!(
                    Level::Warn,
                    "-",
                    "Slow consumer on {}: message dropped",
                    self.subject
                );
                self.push_all(ready.drain(..));
                self.record_drop();
                continue;
            }
            room -= 1;
            match self.receiver.decode_direct(&msg.payload) {
                // Ordered, a decoded message waits behind those still fetching links.
                Decoded::Done(r) if src.in_flight == 0 || !self.ordered => {
                    ready.push(Item::Delivery(r))
                }
                other => {
                    src.in_flight += 1;
                    src.handoff.push_back(other);
                }
            }
        }
        taken
    }

    /// The pump's read: hands over what consumers left to fetch, reads a batch and queues it.
    /// Ready when it made progress or there is nothing left to read.
    fn pump_read(&self, cx: &mut Context<'_>, in_flight: &mut InFlight) -> Poll<()> {
        self.router.pump.register(cx.waker());
        let mut src = lock(&self.source);
        let mut progress = !src.handoff.is_empty();
        if !src.ended {
            let mut ready = std::mem::take(&mut src.scratch);
            progress |= self.read_batch(&mut src, BATCH, &mut ready) > 0;
            self.push_all(ready.drain(..));
            src.scratch = ready;
        }
        while let Some(d) = src.handoff.pop_front() {
            in_flight.push(match d {
                Decoded::Done(r) => Either::Left(future::ready(r)),
                Decoded::Links(env) => {
                    let receiver = self.receiver.clone();
                    Either::Right(Box::pin(async move { receiver.receive_links(env).await }))
                }
            });
        }
        if progress || (src.ended && src.in_flight == 0) {
            Poll::Ready(())
        } else {
            Poll::Pending
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
        ordered: bool,
    ) -> Subscription {
        let queue = DeliveryQueue::new(capacity, subject.clone(), subscriber, receiver, ordered);
        let stop = Arc::new(Notify::new());
        let task = tokio::spawn(pump(queue.clone(), stop.clone()));
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

type Fetching = Either<
    future::Ready<Result<Envelope>>,
    std::pin::Pin<Box<dyn Future<Output = Result<Envelope>> + Send>>,
>;

/// Messages read and waiting for their link payloads: ordered, with those behind them, in
/// order of arrival; unordered, each delivered when its downloads are done.
enum InFlight {
    Ordered(FuturesOrdered<Fetching>),
    Unordered(FuturesUnordered<Fetching>),
}

impl InFlight {
    fn new(ordered: bool) -> InFlight {
        if ordered {
            InFlight::Ordered(FuturesOrdered::new())
        } else {
            InFlight::Unordered(FuturesUnordered::new())
        }
    }

    fn push(&mut self, f: Fetching) {
        match self {
            InFlight::Ordered(q) => q.push_back(f),
            InFlight::Unordered(q) => q.push(f),
        }
    }

    fn poll_next_unpin(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Envelope>>> {
        match self {
            InFlight::Ordered(q) => q.poll_next_unpin(cx),
            InFlight::Unordered(q) => q.poll_next_unpin(cx),
        }
    }
}

/// Moves messages from NATS into the queue, in order, when no consumer is reading NATS
/// itself. A message without link payloads is decoded right here, and the messages already
/// waiting are taken in one batch, so that a stream of small messages costs one wake-up of
/// the consumer per batch rather than one task hand-off per message. Messages with link
/// payloads are fetched concurrently (up to `capacity` at once); a message behind them waits
/// its turn to keep the order.
async fn pump(queue: Arc<DeliveryQueue>, stop: Arc<Notify>) {
    let mut in_flight = InFlight::new(queue.ordered);
    let mut stopped = false;
    loop {
        {
            let src = lock(&queue.source);
            if src.ended && src.in_flight == 0 {
                break;
            }
        }
        tokio::select! {
            biased;
            _ = stop.notified(), if !stopped => {
                stopped = true;
                let sub = {
                    let mut src = lock(&queue.source);
                    src.ended = true;
                    src.subscriber.take()
                };
                if let Some(mut sub) = sub {
                    let _ = sub.unsubscribe().await;
                }
            }
            done = future::poll_fn(|cx| {
                if let Poll::Ready(Some(done)) = in_flight.poll_next_unpin(cx) {
                    return Poll::Ready(Some(done));
                }
                queue.pump_read(cx, &mut in_flight).map(|()| None)
            }) => {
                if let Some(done) = done {
                    let mut src = lock(&queue.source);
                    queue.push_all([Item::Delivery(done)]);
                    src.in_flight -= 1;
                }
            }
        }
    }
    queue.close();
}
