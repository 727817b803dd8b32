//! The async bridge: connect, smartsend, smartreceive, subscribe, request/reply, flush, close.

mod delivery;
mod nowait;
mod receive;
mod send;
mod subscription;

pub use nowait::TrySent;
pub use receive::{smartreceive, Receiver};
pub use send::{OutgoingPayload, SendOptions, Sent};
pub use subscription::{Pulled, Subscription, WakeHook};

use crate::config::{Config, Credentials};
use crate::envelope::Envelope;
use crate::error::{Error, ErrorCode, Result};
use crate::log::{trace, Level};
use crate::store::{PayloadStore, PlikStore};
use bytes::Bytes;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A connection to NATS with everything needed to send and receive envelopes.
/// Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    nats: async_nats::Client,
    config: Config,
    store: Option<Arc<dyn PayloadStore>>,
    link_base: Option<String>,
    receiver: Receiver,
    sender_id: String,
    closed: AtomicBool,
    events: Arc<Events>,
    /// The server's `max_payload`, read at connect and again after a reconnection.
    max_payload: std::sync::atomic::AtomicUsize,
    /// The one inbox subscription all requests share (made by the first request).
    requests: tokio::sync::OnceCell<RequestMux>,
    /// What reached the server, and the task confirming it.
    ledger: Arc<delivery::Ledger>,
    echo: tokio::task::AbortHandle,
    /// The runtime the client was made on, for the goodbye of a client dropped unclosed.
    runtime: tokio::runtime::Handle,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The echo task holds a handle on the connection: without this, a client dropped
        // without close() would keep its connection open.
        self.echo.abort();
        if !self.closed.load(Ordering::SeqCst) {
            // Dropped without close(): what was sent still goes out, then the connection
            // closes (in the background; close() is the way to learn how it went).
            let (nats, limit) = (self.nats.clone(), self.config.operation_timeout);
            self.runtime.spawn(async move {
                let _ = tokio::time::timeout(limit, nats.flush()).await;
                let _ = tokio::time::timeout(limit, nats.drain()).await;
            });
        }
    }
}

/// Replies to requests, multiplexed over one wildcard inbox subscription (`<inbox>.*`): a
/// request then costs one publish and one delivery, not a subscribe and an unsubscribe too.
/// Each request waits on its own token. There is no dispatcher task: a waiting request reads
/// the inbox itself (one at a time), takes its own reply and hands any other reply to its
/// waiter, so a reply reaches its caller with the same task wake-ups as async-nats's own
/// request.
struct RequestMux {
    prefix: String,
    next: AtomicU64,
    pending: std::sync::Mutex<std::collections::HashMap<u64, Waiter>>,
    /// The inbox subscription, read by the request holding the lock; `None` once it ended
    /// (the connection is gone).
    inbox: tokio::sync::Mutex<Option<async_nats::Subscriber>>,
}

type Waiter = tokio::sync::oneshot::Sender<async_nats::Message>;

impl RequestMux {
    async fn start(nats: &async_nats::Client, limit: Duration) -> Result<RequestMux> {
        let prefix = nats.new_inbox();
        let sub = deadline(limit, "subscribe", nats.subscribe(format!("{prefix}.*"))).await?;
        Ok(RequestMux {
            prefix,
            next: AtomicU64::new(0),
            pending: std::sync::Mutex::default(),
            inbox: tokio::sync::Mutex::new(Some(sub)),
        })
    }

    /// Waits for the reply to `token`: handed over by another request reading the inbox, or
    /// read from the inbox by this one. `None`: the inbox subscription ended.
    async fn wait(
        &self,
        token: u64,
        handed: &mut tokio::sync::oneshot::Receiver<async_nats::Message>,
    ) -> Option<async_nats::Message> {
        use futures_util::StreamExt as _;
        let mut inbox = tokio::select! {
            biased;
            r = &mut *handed => return r.ok(),
            inbox = self.inbox.lock() => inbox,
        };
        loop {
            let sub = inbox.as_mut()?;
            let msg = tokio::select! {
                biased;
                r = &mut *handed => return r.ok(),
                msg = sub.next() => msg,
            };
            let Some(msg) = msg else {
                // The connection is gone: waiting requests learn it from their dropped sender.
                *inbox = None;
                lock(&self.pending).clear();
                return None;
            };
            let Some(t) = msg
                .subject
                .rsplit('.')
                .next()
                .and_then(|t| t.parse::<u64>().ok())
            else {
                continue;
            };
            if t == token {
                return Some(msg);
            }
            let waiter = lock(&self.pending).remove(&t);
            if let Some(w) = waiter {
                let _ = w.send(msg);
            }
        }
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Takes a request's token out of the table when the request ends without its reply.
struct PendingGuard<'a> {
    table: &'a std::sync::Mutex<std::collections::HashMap<u64, Waiter>>,
    token: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        lock(self.table).remove(&self.token);
    }
}

/// Counters of connection events.
#[derive(Default)]
struct Events {
    slow_consumer: AtomicU64,
    /// Set on (re)connection: the server, and so its `max_payload`, may have changed.
    reconnected: AtomicBool,
}

fn no_reply(subject: &str, timeout: Duration, cid: &str) -> Error {
    Error::new(
        ErrorCode::Timeout,
        format!("no reply on {subject} within {} ms", timeout.as_millis()),
    )
    .with_correlation_id(cid)
}

/// What a send hands back once its envelope is published (and says so in the log).
fn published(subject: &str, envelope: Envelope, json: Bytes) -> Sent {
    trace!(
        Level::Info,
        &envelope.correlation_id,
        "Published envelope {} ({} bytes) to {subject}",
        envelope.msg_id,
        json.len()
    );
    Sent { envelope, json }
}

/// The pause before reconnection attempt `attempts` (1-based).
fn reconnect_delay(attempts: usize) -> Duration {
    match attempts {
        0 | 1 => Duration::ZERO,
        n => Duration::from_millis(100u64 << (n - 2).min(4)).min(Duration::from_secs(1)),
    }
}

fn connect_error(url: &str, e: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorCode::NatsConnectionFailed,
        format!("cannot connect to NATS at {url}: {e}"),
    )
    .with_detail("url", url)
}

/// The error of a NATS operation that failed (`what`: "publish", "subscribe", ...).
fn nats_failure(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorCode::NatsConnectionFailed,
        format!("{what} failed: {e}"),
    )
}

/// Runs a NATS operation under the operation deadline.
async fn deadline<T, E: std::fmt::Display>(
    limit: Duration,
    what: &str,
    fut: impl Future<Output = std::result::Result<T, E>>,
) -> Result<T> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(nats_failure(what, e)),
        Err(_) => Err(timed_out(what, limit)),
    }
}

/// The `TIMEOUT` error of `what`, which did not complete within `limit`.
fn timed_out(what: &str, limit: Duration) -> Error {
    Error::new(
        ErrorCode::Timeout,
        format!("{what} did not complete within {} ms", limit.as_millis()),
    )
}

impl Client {
    /// Connects with `config`, using the Plik protocol for link payloads.
    /// Fails with `NATS_CONNECTION_FAILED` (server unreachable, bad credentials) or
    /// `INVALID_ARGUMENT` (a bad configuration value).
    pub async fn connect(config: Config) -> Result<Client> {
        config.validate()?;
        let store = match config.fileserver_url.as_deref() {
            Some(url) => {
                Some(Arc::new(PlikStore::new(Some(url), &config)?) as Arc<dyn PayloadStore>)
            }
            None => None,
        };
        Client::connect_with_store(config, store).await
    }

    /// Connects with `config`, keeping link payloads in `store` (`None`: no link transport,
    /// and links in received envelopes are fetched over plain HTTP).
    pub async fn connect_with_store(
        config: Config,
        store: Option<Arc<dyn PayloadStore>>,
    ) -> Result<Client> {
        config.validate()?;
        let events = Arc::new(Events::default());
        let ledger = Arc::new(delivery::Ledger::new(format!(
            "_INBOX.{}",
            crate::envelope::new_uuid().replace('-', "")
        )));
        let mut opts = async_nats::ConnectOptions::new()
            .connection_timeout(config.connect_timeout)
            .request_timeout(Some(config.operation_timeout))
            // Reconnect attempts at once, then 100 ms apart doubling to at most 1 s: a server
            // that comes back is found within a second.
            .reconnect_delay_callback(reconnect_delay)
            .require_tls(config.tls.required);
        for root in &config.tls.root_certificates {
            opts = opts.add_root_certificates(root.clone());
        }
        if let Some((cert, key)) = &config.tls.client_certificate {
            opts = opts.add_client_certificate(cert.clone(), key.clone());
        }
        if let Some(name) = &config.client_name {
            opts = opts.name(name);
        }
        opts = match &config.credentials {
            Credentials::None => opts,
            Credentials::Token(t) => opts.token(t.clone()),
            Credentials::UserPassword { user, password } => {
                opts.user_and_password(user.clone(), password.clone())
            }
            Credentials::CredsFile(path) => opts.credentials_file(path).await.map_err(|e| {
                Error::invalid_argument(format!(
                    "cannot read NATS credentials file {}: {e}",
                    path.display()
                ))
            })?,
        };
        let ev = events.clone();
        let led = ledger.clone();
        opts = opts.event_callback(move |event| {
            let ev = ev.clone();
            let led = led.clone();
            async move {
                match event {
                    async_nats::Event::SlowConsumer(sid) => {
                        ev.slow_consumer.fetch_add(1, Ordering::Relaxed);
                        trace!(
                            Level::Warn,
                            "-",
                            "NATS reports a slow consumer on subscription {sid}"
                        );
                    }
                    async_nats::Event::Connected => {
                        ev.reconnected.store(true, Ordering::Release);
                    }
                    async_nats::Event::Disconnected => {
                        led.disconnected();
                        trace!(Level::Warn, "-", "Disconnected from NATS; reconnecting");
                    }
                    other => trace!(Level::Debug, "-", "NATS event: {other}"),
                }
            }
        });
        let url = config.nats_url.clone();
        let addrs: Vec<async_nats::ServerAddr> = url
            .split(',')
            .map(|u| u.trim().parse::<async_nats::ServerAddr>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::invalid_argument(format!("NATS URL {url:?} is invalid: {e}")))?;
        let nats = match tokio::time::timeout(
            config.connect_timeout + Duration::from_millis(500),
            opts.connect(addrs),
        )
        .await
        {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(connect_error(&url, e)),
            Err(_) => return Err(connect_error(&url, "timed out")),
        };
        let link_base = config
            .fileserver_url
            .as_deref()
            .filter(|_| store.is_some())
            .map(|u| crate::store::parse_base_url(u).map(|b| crate::store::base_string(&b)))
            .transpose()?;
        let receiver = match &store {
            Some(s) => Receiver::with_store(&config, s.clone())?,
            None => Receiver::new(&config)?,
        };
        trace!(Level::Info, "-", "Connected to NATS at {url}");
        let max_payload = nats.server_info().max_payload;
        let echo = delivery::start_echo(&nats, &ledger, config.operation_timeout).await?;
        Ok(Client {
            inner: Arc::new(Inner {
                nats,
                store,
                link_base,
                receiver,
                sender_id: crate::envelope::new_uuid(),
                closed: AtomicBool::new(false),
                max_payload: std::sync::atomic::AtomicUsize::new(max_payload),
                requests: tokio::sync::OnceCell::new(),
                ledger,
                echo,
                runtime: tokio::runtime::Handle::current(),
                events,
                config,
            }),
        })
    }

    fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::SeqCst) {
            Err(Error::new(ErrorCode::Closed, "the client is closed"))
        } else {
            Ok(())
        }
    }

    /// The configuration the client was built with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The `sender_id` written into envelopes unless a call sets another.
    pub fn sender_id(&self) -> &str {
        &self.inner.sender_id
    }

    /// The largest message the server accepts, as it announced at connect.
    pub fn max_payload(&self) -> usize {
        let inner = &self.inner;
        if inner.events.reconnected.swap(false, Ordering::AcqRel) {
            let fresh = inner.nats.server_info().max_payload;
            inner.max_payload.store(fresh, Ordering::Relaxed);
        }
        inner.max_payload.load(Ordering::Relaxed)
    }

    /// The underlying async-nats client, for what this library does not wrap.
    pub fn nats(&self) -> &async_nats::Client {
        &self.inner.nats
    }

    /// Slow-consumer events reported by the NATS client (our own queues report theirs as
    /// `SLOW_CONSUMER` items).
    pub fn slow_consumer_events(&self) -> u64 {
        self.inner.events.slow_consumer.load(Ordering::Relaxed)
    }

    /// Serializes `payloads`, picks each one's transport, uploads link payloads, and publishes
    /// one envelope on `subject`. Returns the envelope and the JSON published. Nothing is
    /// published when any step fails.
    pub async fn smartsend(
        &self,
        subject: &str,
        payloads: Vec<OutgoingPayload>,
        options: SendOptions,
    ) -> Result<Sent> {
        self.publish_envelope(subject, payloads, options, None)
            .await
    }

    /// What the client lends to one send on `subject` (with the file server, if it has one).
    fn send_context<'a>(
        &'a self,
        subject: &'a str,
        options: &SendOptions,
    ) -> send::SendContext<'a> {
        let inner = &self.inner;
        send::SendContext {
            subject,
            broker_url: &inner.config.nats_url,
            sender_name: &inner.config.sender_name,
            sender_id: &inner.sender_id,
            size_threshold: options
                .size_threshold
                .unwrap_or(inner.config.size_threshold),
            max_payload: self.max_payload(),
            fallback_to_direct: inner.config.link.fallback_to_direct,
            store: inner.store.as_ref().zip(inner.link_base.as_deref()),
        }
    }

    async fn publish_envelope(
        &self,
        subject: &str,
        payloads: Vec<OutgoingPayload>,
        options: SendOptions,
        nats_reply: Option<String>,
    ) -> Result<Sent> {
        self.check_open()?;
        let inner = &self.inner;
        let ctx = self.send_context(subject, &options);
        let confirm = options.confirm;
        let (envelope, json) = send::build(ctx, payloads, options).await?;
        let cid = envelope.correlation_id.clone();
        let json = Bytes::from(json);
        let limit = inner.config.operation_timeout;
        let publish = async {
            // Handed over under the ledger's lock, so that the numbering follows the
            // connection's order and close() waits for this publish.
            let _handover = inner.ledger.handover.lock().await;
            self.check_open()?;
            let sent = match nats_reply {
                Some(reply) => {
                    inner
                        .nats
                        .publish_with_reply(subject.to_owned(), reply, json.clone())
                        .await
                }
                None => inner.nats.publish(subject.to_owned(), json.clone()).await,
            };
            sent.map_err(|e| self.publish_failure(e))?;
            Ok(inner.ledger.handed_over())
        };
        let number = tokio::time::timeout(limit, publish)
            .await
            .unwrap_or_else(|_| Err(timed_out("publish", limit)))
            .map_err(|e| e.with_correlation_id(&cid))?;
        if confirm {
            inner
                .ledger
                .confirm(number, limit)
                .await
                .map_err(|e| e.with_correlation_id(&cid))?;
        }
        Ok(published(subject, envelope, json))
    }

    /// Decodes a received message: parses the envelope, fetches link payloads, checks types.
    pub async fn smartreceive(&self, message: &[u8]) -> Result<Envelope> {
        self.inner.receiver.receive(message).await
    }

    /// Subscribes to `subject` (wildcards allowed), optionally in a queue group. Envelopes
    /// arrive decoded, link payloads fetched.
    pub async fn subscribe(
        &self,
        subject: &str,
        queue_group: Option<&str>,
    ) -> Result<Subscription> {
        self.check_open()?;
        if subject.is_empty() || subject.chars().any(char::is_whitespace) {
            return Err(Error::invalid_argument(format!(
                "cannot subscribe to {subject:?}: empty or contains whitespace"
            )));
        }
        let nats = &self.inner.nats;
        let limit = self.inner.config.operation_timeout;
        let sub = match queue_group {
            Some(q) if !q.is_empty() => {
                deadline(
                    limit,
                    "subscribe",
                    nats.queue_subscribe(subject.to_owned(), q.to_owned()),
                )
                .await?
            }
            _ => deadline(limit, "subscribe", nats.subscribe(subject.to_owned())).await?,
        };
        // Make sure the server has registered the interest before returning, so a message
        // published right after this call (by anyone) is delivered.
        self.round_trip().await?;
        Ok(Subscription::start(
            sub,
            subject.to_owned(),
            self.inner.receiver.clone(),
            self.inner.config.subscription_queue,
            self.inner.config.ordered_subscriptions,
        ))
    }

    /// Sends a request and waits up to `timeout` for the first reply envelope. The request's
    /// `reply_to` is a fresh inbox (unless `options` sets one), used both in the envelope and
    /// as the NATS reply subject. Fails with `TIMEOUT`, or `NO_RESPONDERS` when the server
    /// knows nobody listens on `subject`.
    pub async fn request(
        &self,
        subject: &str,
        payloads: Vec<OutgoingPayload>,
        mut options: SendOptions,
        timeout: Duration,
    ) -> Result<Envelope> {
        self.check_open()?;
        if options.reply_to.as_deref().is_some_and(|r| !r.is_empty()) {
            return self
                .request_own_inbox(subject, payloads, options, timeout)
                .await;
        }
        let limit = self.inner.config.operation_timeout;
        let mux = self
            .inner
            .requests
            .get_or_try_init(|| RequestMux::start(&self.inner.nats, limit))
            .await?;
        let token = mux.next.fetch_add(1, Ordering::Relaxed);
        let inbox = format!("{}.{token}", mux.prefix);
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        lock(&mux.pending).insert(token, tx);
        let _guard = PendingGuard {
            table: &mux.pending,
            token,
        };
        options.reply_to = Some(inbox.clone());
        let sent = self
            .publish_envelope(subject, payloads, options, Some(inbox))
            .await?;
        let cid = &sent.envelope.correlation_id;
        let msg = match tokio::time::timeout(timeout, mux.wait(token, &mut rx)).await {
            Ok(Some(m)) => m,
            Ok(None) => {
                return Err(Error::new(
                    ErrorCode::Closed,
                    "connection closed while waiting for a reply",
                )
                .with_correlation_id(cid))
            }
            Err(_) => return Err(no_reply(subject, timeout, cid)),
        };
        self.reply_envelope(subject, msg, cid).await
    }

    /// `request` with a `reply_to` chosen by the caller: a subscription of its own.
    async fn request_own_inbox(
        &self,
        subject: &str,
        payloads: Vec<OutgoingPayload>,
        options: SendOptions,
        timeout: Duration,
    ) -> Result<Envelope> {
        let nats = &self.inner.nats;
        let inbox = options.reply_to.clone().unwrap_or_default();
        let limit = self.inner.config.operation_timeout;
        let mut sub = deadline(limit, "subscribe", nats.subscribe(inbox.clone())).await?;
        let sent = self
            .publish_envelope(subject, payloads, options, Some(inbox))
            .await?;
        let cid = sent.envelope.correlation_id.clone();
        use futures_util::StreamExt as _;
        let msg = match tokio::time::timeout(timeout, sub.next()).await {
            Ok(Some(m)) => m,
            Ok(None) => {
                return Err(Error::new(
                    ErrorCode::Closed,
                    "connection closed while waiting for a reply",
                )
                .with_correlation_id(&cid))
            }
            Err(_) => return Err(no_reply(subject, timeout, &cid)),
        };
        let _ = sub.unsubscribe().await;
        self.reply_envelope(subject, msg, &cid).await
    }

    /// Decodes the reply to a request (or reports that nobody listens on `subject`).
    async fn reply_envelope(
        &self,
        subject: &str,
        msg: async_nats::Message,
        cid: &str,
    ) -> Result<Envelope> {
        if msg.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
            return Err(Error::new(
                ErrorCode::NoResponders,
                format!("no responders are subscribed to {subject}"),
            )
            .with_correlation_id(cid));
        }
        self.smartreceive(&msg.payload).await
    }

    /// Replies to `request`: publishes to its `reply_to`, with `reply_to_msg_id` set to its
    /// `msg_id`, its correlation id, and its sender as receiver (unless `options` sets them).
    pub async fn reply(
        &self,
        request: &Envelope,
        payloads: Vec<OutgoingPayload>,
        mut options: SendOptions,
    ) -> Result<Sent> {
        if request.reply_to.is_empty() {
            return Err(Error::invalid_argument(
                "the request envelope has no reply_to subject to answer on",
            )
            .with_correlation_id(&request.correlation_id));
        }
        options
            .reply_to_msg_id
            .get_or_insert_with(|| request.msg_id.clone());
        options
            .correlation_id
            .get_or_insert_with(|| request.correlation_id.clone());
        options
            .receiver_name
            .get_or_insert_with(|| request.sender_name.clone());
        options
            .receiver_id
            .get_or_insert_with(|| request.sender_id.clone());
        self.smartsend(&request.reply_to, payloads, options).await
    }

    /// Waits until the server has processed everything sent so far (publishes and
    /// subscriptions) on this connection.
    ///
    /// Fails with `MESSAGES_DROPPED` when messages sent since the last flush (or connect)
    /// were not confirmed by the server when the connection dropped (see [`Client::dropped`]):
    /// they may be lost. Each such message is reported once.
    pub async fn flush(&self) -> Result<()> {
        self.check_open()?;
        self.settle().await
    }

    /// Waits for the server to confirm everything handed over so far, then reports what
    /// was dropped since the last report.
    async fn settle(&self) -> Result<()> {
        if self.inner.ledger.published() == 0 {
            self.round_trip().await?;
        }
        self.inner
            .ledger
            .flush(self.inner.config.operation_timeout)
            .await
    }

    /// Messages this client handed to the connection that the server had not confirmed when
    /// the connection dropped, since connect: they may not have arrived (an upper bound;
    /// the client confirms what it sent every 50 ms, so these are at most the last moments'
    /// sends before each disconnection). `flush()` and `close()` report them as
    /// `MESSAGES_DROPPED`; a send with `SendOptions::confirm` reports its own.
    pub fn dropped(&self) -> u64 {
        self.inner.ledger.dropped()
    }

    /// The error of a publish that failed: `CLOSED` when the client was closed meanwhile.
    fn publish_failure(&self, e: impl std::fmt::Display) -> Error {
        if self.inner.closed.load(Ordering::SeqCst) {
            Error::new(ErrorCode::Closed, "the client is closed")
        } else {
            nats_failure("publish", e)
        }
    }

    /// A round trip through the server: a message to a fresh inbox of our own comes back only
    /// after the server has processed every command we sent before it (it handles one
    /// connection's commands in order). The client's own flush only empties the socket buffer.
    async fn round_trip(&self) -> Result<()> {
        let nats = &self.inner.nats;
        let limit = self.inner.config.operation_timeout;
        let inbox = nats.new_inbox();
        let mut echo = deadline(limit, "flush", nats.subscribe(inbox.clone())).await?;
        deadline(limit, "flush", nats.publish(inbox, Bytes::new())).await?;
        deadline(limit, "flush", nats.flush()).await?;
        use futures_util::StreamExt as _;
        let came_back = tokio::time::timeout(limit, echo.next()).await;
        let _ = echo.unsubscribe().await;
        match came_back {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(Error::new(
                ErrorCode::Closed,
                "the connection closed during a flush",
            )),
            Err(_) => Err(Error::new(
                ErrorCode::Timeout,
                format!(
                    "the NATS server did not answer a flush within {} ms",
                    limit.as_millis()
                ),
            )),
        }
    }

    /// Waits for sends handing over their envelope, has the server confirm everything sent,
    /// then closes the connection (subscriptions end after delivering what they hold).
    /// Sends after (or racing) close fail with `CLOSED`. Fails with `MESSAGES_DROPPED` as
    /// [`Client::flush`] does (the client is closed all the same). Closing twice is harmless.
    pub async fn close(&self) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let limit = self.inner.config.operation_timeout;
        // Sends already handing their envelope over finish first (later ones see CLOSED);
        // then the server confirms everything, and the connection drains.
        let _ = tokio::time::timeout(limit, self.inner.ledger.handover.lock()).await;
        let settled = self.settle().await;
        let drained = deadline(limit, "drain", self.inner.nats.drain()).await;
        settled.and(drained)
    }
}

/// The walkthrough's one-shot form: connect to `config.nats_url`, send one envelope, flush and
/// close, without a long-lived client.
pub async fn smartsend_once(
    config: Config,
    subject: &str,
    payloads: Vec<OutgoingPayload>,
    options: SendOptions,
) -> Result<Sent> {
    let client = Client::connect(config).await?;
    let sent = client.smartsend(subject, payloads, options).await;
    let closed = client.close().await;
    let sent = sent?;
    closed.map_err(|e| e.with_correlation_id(&sent.envelope.correlation_id))?;
    Ok(sent)
}
