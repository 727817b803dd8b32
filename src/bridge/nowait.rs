//! smartsend without waiting: for callers that must never block (an event loop's own thread).

use super::send::{self, OutgoingPayload, SendOptions, Sent};
use super::{published, Client};
use crate::envelope::Transport;
use crate::error::{Error, ErrorCode, Result};
use crate::transport::select;
use bytes::Bytes;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// What `try_smartsend` did.
// Returned once per call; boxing `Sent` would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum TrySent {
    /// Published (handed to the connection, as `smartsend` does).
    Sent(Sent),
    /// Nothing was published: the send needs to wait — a payload goes by link (an upload), or
    /// the connection's outgoing queue is full. Say why; call `smartsend` instead.
    WouldBlock(&'static str),
}

/// Polls `fut` once, on the calling thread, with a waker that does nothing.
fn poll_once<F: Future>(fut: F) -> Poll<F::Output> {
    let fut = pin!(fut);
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

impl Client {
    /// `smartsend` when it can complete at once: every payload direct and room in the
    /// connection's outgoing queue. Never waits and never uploads; the envelope and its JSON
    /// are exactly what `smartsend` would have published. `TrySent::WouldBlock` publishes
    /// nothing. Errors are those of `smartsend` (invalid arguments, a closed client, an
    /// envelope too large for the server with no file server to move payloads to).
    pub fn try_smartsend(
        &self,
        subject: &str,
        payloads: Vec<OutgoingPayload>,
        options: SendOptions,
    ) -> Result<TrySent> {
        self.check_open()?;
        if options.confirm {
            return Ok(TrySent::WouldBlock("a confirmed send waits for the server"));
        }
        let inner = &self.inner;
        let mut ctx = self.send_context(subject, &options);
        if ctx.store.is_some()
            && payloads
                .iter()
                .any(|p| select(p.data.len(), ctx.size_threshold) == Transport::Link)
        {
            return Ok(TrySent::WouldBlock("a payload goes by link"));
        }
        // Without a store nothing is uploaded, so building never waits.
        let has_store = ctx.store.take().is_some();
        let built = match poll_once(send::build(ctx, payloads, options)) {
            Poll::Ready(r) => r,
            Poll::Pending => {
                return Err(Error::internal(
                    "building an envelope without uploads waited",
                ))
            }
        };
        let (envelope, json) = match built {
            Ok(b) => b,
            // With the file server, smartsend would move payloads to link to make it fit.
            Err(e) if has_store && e.code() == ErrorCode::PayloadTooLarge => {
                return Ok(TrySent::WouldBlock(
                    "the envelope must move payloads to link to fit the server's max_payload",
                ))
            }
            Err(e) => return Err(e),
        };
        let json = Bytes::from(json);
        // Handed over under the ledger's lock, as smartsend does; another send holding it
        // means waiting.
        let Ok(_handover) = inner.ledger.handover.try_lock() else {
            return Ok(TrySent::WouldBlock(
                "another send is handing over its envelope",
            ));
        };
        self.check_open()?;
        // A bounded channel's send completes on its first poll when there is room; dropped
        // while pending, it sends nothing.
        match poll_once(inner.nats.publish(subject.to_owned(), json.clone())) {
            Poll::Ready(Ok(())) => {
                inner.ledger.handed_over();
            }
            Poll::Ready(Err(e)) => {
                return Err(self
                    .publish_failure(e)
                    .with_correlation_id(&envelope.correlation_id))
            }
            Poll::Pending => {
                return Ok(TrySent::WouldBlock(
                    "the connection's outgoing queue is full",
                ))
            }
        }
        Ok(TrySent::Sent(published(subject, envelope, json)))
    }
}
