//! What reached the server: the ledger of one connection's publishes.
//!
//! Core NATS gives no acknowledgement of a publish, and a publish that async-nats accepted
//! can still be lost: bytes in its write buffer (or the socket's) when the connection drops
//! are gone after the reconnection. So the client keeps a ledger:
//!
//! - Every envelope is handed to the connection under one lock and numbered in that order
//!   (`published`).
//! - An *echo* — an empty message to an inbox of the client's own, carrying the number of
//!   the last envelope handed over before it — comes back only after the server has
//!   processed everything before it on this connection. The echo task sends one every
//!   [`ECHO_EVERY`] while there is something unconfirmed; a flush or a confirmed send asks
//!   for one at once.
//! - When the connection drops, the envelopes handed over but not yet confirmed may not have
//!   reached the server: they are counted as dropped (an upper bound — some may have
//!   arrived), reported by the next `flush()`/`close()` as `MESSAGES_DROPPED`, and kept in
//!   [`Client::dropped`](super::Client::dropped).
//!
//! Echoes carry the connection's epoch (its count of disconnections), so that an echo that
//! travelled on a later connection never vouches for envelopes lost with an earlier one.

use super::timed_out;
use crate::error::{Error, ErrorCode, Result};
use crate::log::{trace, Level};
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// How often the echo task confirms what was published since the last echo.
pub(crate) const ECHO_EVERY: Duration = Duration::from_millis(50);

/// Disconnections remembered for confirmed sends still waiting.
const WRITE_OFFS_KEPT: usize = 64;

#[derive(Default)]
struct State {
    /// Envelopes handed to the connection (the number of the last one).
    published: u64,
    /// The highest number confirmed by an echo (or written off by a disconnection).
    confirmed: u64,
    /// Disconnections so far.
    epoch: u64,
    /// The numbers written off by recent disconnections: `(confirmed, published]` each.
    write_offs: VecDeque<(u64, u64)>,
    /// Dropped in all, and since the last flush reported them.
    dropped: u64,
    unreported: u64,
}

/// The ledger; shared by the client and its echo task.
pub(crate) struct Ledger {
    state: Mutex<State>,
    /// Bumped on every change that a waiting flush or confirmed send must look at.
    changed: watch::Sender<u64>,
    /// Asks the echo task for an echo now.
    echo_now: tokio::sync::Notify,
    /// Serializes handing envelopes (and echoes) to the connection, so that their numbers
    /// follow the connection's order. `close()` takes it to wait for sends in flight.
    pub(crate) handover: tokio::sync::Mutex<()>,
    /// The inbox echoes come back to.
    inbox: String,
    /// Set once the echo subscription is gone (the connection closed).
    ended: AtomicBool,
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What became of one numbered envelope.
enum Fate {
    Confirmed,
    Dropped,
    Pending,
}

impl Ledger {
    pub(crate) fn new(inbox: String) -> Ledger {
        Ledger {
            state: Mutex::default(),
            changed: watch::channel(0).0,
            echo_now: tokio::sync::Notify::new(),
            handover: tokio::sync::Mutex::new(()),
            inbox,
            ended: AtomicBool::new(false),
        }
    }

    fn bump(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Numbers an envelope just handed to the connection (call with `handover` held).
    pub(crate) fn handed_over(&self) -> u64 {
        let mut s = lock(&self.state);
        s.published += 1;
        s.published
    }

    /// The number of the last envelope handed to the connection.
    pub(crate) fn published(&self) -> u64 {
        lock(&self.state).published
    }

    /// Messages counted as dropped since the client connected.
    pub(crate) fn dropped(&self) -> u64 {
        lock(&self.state).dropped
    }

    /// The connection dropped: what was handed over and not confirmed may be lost.
    pub(crate) fn disconnected(&self) {
        let at_risk = {
            let mut s = lock(&self.state);
            s.epoch += 1;
            let (c, p) = (s.confirmed, s.published);
            let at_risk = p - c;
            if at_risk > 0 {
                s.dropped += at_risk;
                s.unreported += at_risk;
                if s.write_offs.len() == WRITE_OFFS_KEPT {
                    s.write_offs.pop_front();
                }
                s.write_offs.push_back((c, p));
                s.confirmed = p;
            }
            at_risk
        };
        if at_risk > 0 {
            trace!(
                Level::Warn,
                "-",
                "Disconnected from NATS with {at_risk} message(s) not yet confirmed by the server; they may be lost"
            );
        }
        self.bump();
    }

    fn echo_came_back(&self, payload: &[u8]) {
        let Some((epoch, upto)) = std::str::from_utf8(payload).ok().and_then(|t| {
            let (e, n) = t.split_once(' ')?;
            Some((e.parse::<u64>().ok()?, n.parse::<u64>().ok()?))
        }) else {
            return;
        };
        {
            let mut s = lock(&self.state);
            if epoch != s.epoch || upto <= s.confirmed {
                return;
            }
            s.confirmed = upto;
        }
        self.bump();
    }

    fn fate(&self, n: u64) -> Fate {
        let s = lock(&self.state);
        if s.write_offs.iter().any(|&(c, p)| c < n && n <= p) {
            Fate::Dropped
        } else if n <= s.confirmed {
            Fate::Confirmed
        } else if s.write_offs.len() == WRITE_OFFS_KEPT && s.write_offs[0].0 >= n {
            // Older than every disconnection remembered: say it may be lost.
            Fate::Dropped
        } else {
            Fate::Pending
        }
    }

    /// Takes the count of dropped messages not yet reported.
    fn take_unreported(&self) -> u64 {
        std::mem::take(&mut lock(&self.state).unreported)
    }

    /// A confirmed send that failed is reported by its own error, not again by a flush.
    fn unreport_one(&self) {
        let mut s = lock(&self.state);
        s.unreported = s.unreported.saturating_sub(1);
        s.dropped = s.dropped.saturating_sub(1);
    }

    /// Waits until envelope `n` is confirmed by the server: `MESSAGES_DROPPED` when the
    /// connection dropped before, `TIMEOUT` after `limit`.
    pub(crate) async fn confirm(&self, n: u64, limit: Duration) -> Result<()> {
        match self.wait_for(n, limit).await? {
            Fate::Confirmed => Ok(()),
            _ => {
                self.unreport_one();
                Err(dropped_error(
                    1,
                    "the connection to NATS was lost before the server confirmed the message"
                        .to_owned(),
                ))
            }
        }
    }

    /// Waits until everything handed over so far is confirmed; then reports what was
    /// dropped since the last report (`MESSAGES_DROPPED`).
    pub(crate) async fn flush(&self, limit: Duration) -> Result<()> {
        let n = {
            let _h = tokio::time::timeout(limit, self.handover.lock())
                .await
                .map_err(|_| timed_out("flush", limit))?;
            lock(&self.state).published
        };
        if n > 0 {
            self.wait_for(n, limit).await?;
        }
        match self.take_unreported() {
            0 => Ok(()),
            k => Err(dropped_error(
                k,
                format!(
                    "{k} message(s) were handed to the connection but not confirmed by the \
                     server when the connection to NATS was lost; they may not have arrived"
                ),
            )),
        }
    }

    async fn wait_for(&self, n: u64, limit: Duration) -> Result<Fate> {
        let mut changed = self.changed.subscribe();
        let wait = async {
            loop {
                match self.fate(n) {
                    Fate::Pending => {}
                    done => return Ok(done),
                }
                if self.ended.load(Ordering::Acquire) {
                    return Err(Error::new(
                        ErrorCode::Closed,
                        "the connection closed before the server confirmed the messages",
                    ));
                }
                self.echo_now.notify_one();
                if changed.changed().await.is_err() {
                    return Err(Error::internal("the delivery ledger is gone"));
                }
            }
        };
        tokio::time::timeout(limit, wait)
            .await
            .map_err(|_| timed_out("confirmation by the NATS server", limit))?
    }
}

fn dropped_error(count: u64, message: String) -> Error {
    Error::new(ErrorCode::MessagesDropped, message).with_detail("dropped", count)
}

/// Starts the echo task of a connection: subscribes to the ledger's inbox and confirms what
/// was published, every [`ECHO_EVERY`] while something is unconfirmed or at once when asked.
/// It ends when the connection closes or the returned handle is aborted.
pub(crate) async fn start_echo(
    nats: &async_nats::Client,
    ledger: &Arc<Ledger>,
    limit: Duration,
) -> Result<tokio::task::AbortHandle> {
    let mut sub = super::deadline(limit, "subscribe", nats.subscribe(ledger.inbox.clone())).await?;
    let (nats, ledger) = (nats.clone(), ledger.clone());
    let task = tokio::spawn(async move {
        use futures_util::StreamExt as _;
        let mut echoed = 0u64;
        let mut tick = tokio::time::interval(ECHO_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = sub.next() => match msg {
                    Some(m) => { ledger.echo_came_back(&m.payload); continue; }
                    None => break,
                },
                _ = tick.tick() => {}
                _ = ledger.echo_now.notified() => {}
            }
            let _h = ledger.handover.lock().await;
            let (epoch, published, confirmed) = {
                let s = lock(&ledger.state);
                (s.epoch, s.published, s.confirmed)
            };
            // Idle (nothing new since the last echo, or all confirmed): send nothing.
            if published <= confirmed || (published == echoed && !ledger_wanted(&ledger)) {
                continue;
            }
            let body = Bytes::from(format!("{epoch} {published}"));
            if nats.publish(ledger.inbox.clone(), body).await.is_err() {
                break;
            }
            echoed = published;
        }
        ledger.ended.store(true, Ordering::Release);
        ledger.bump();
    });
    Ok(task.abort_handle())
}

/// Whether someone waits for a confirmation (then an echo is worth repeating: the last one
/// may have been lost with a connection).
fn ledger_wanted(ledger: &Ledger) -> bool {
    ledger.changed.receiver_count() > 0
}
