//! smartreceive: parse an envelope, fetch its link payloads (several at once), check every
//! payload's bytes against its type.

use crate::config::{Config, LinkOptions};
use crate::envelope::{Envelope, Transport};
use crate::error::{Error, Result};
use crate::log::{trace, Level};
use crate::store::{check_link_url, DownloadRequest, PayloadStore, PlikStore};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use std::sync::Arc;

/// What a receiver needs: where links may come from and how to fetch them.
#[derive(Clone)]
pub struct Receiver {
    store: Arc<dyn PayloadStore>,
    fileserver: Option<url::Url>,
    link: LinkOptions,
    /// Bounds the downloads running at once across every message this receiver decodes.
    downloads: Arc<tokio::sync::Semaphore>,
}

impl Receiver {
    /// A receiver configured like a client with `config` (no NATS connection needed).
    pub fn new(config: &Config) -> Result<Receiver> {
        let store = PlikStore::new(config.fileserver_url.as_deref(), config)?;
        Receiver::with_store(config, Arc::new(store))
    }

    /// A receiver fetching links through `store`.
    pub fn with_store(config: &Config, store: Arc<dyn PayloadStore>) -> Result<Receiver> {
        let fileserver = config
            .fileserver_url
            .as_deref()
            .map(crate::store::parse_base_url)
            .transpose()?;
        Ok(Receiver {
            store,
            fileserver,
            downloads: Arc::new(tokio::sync::Semaphore::new(
                config.link.parallel_downloads.max(1),
            )),
            link: config.link.clone(),
        })
    }

    /// Decodes one message: every payload comes back with its bytes (or, for link payloads
    /// when `link.download_dir` is set, in a new file named by `Payload::file`).
    pub async fn receive(&self, message: &[u8]) -> Result<Envelope> {
        match self.decode_direct(message) {
            Decoded::Done(result) => result,
            Decoded::Links(env) => self.receive_links(env).await,
        }
    }

    /// Parses `message` and, when it has no link payloads, finishes decoding it at once
    /// (nothing to await): the path of every small message, without a task hand-off.
    pub(crate) fn decode_direct(&self, message: &[u8]) -> Decoded {
        let env = match Envelope::from_json(message) {
            Ok(env) => env,
            Err(e) => return Decoded::Done(Err(e)),
        };
        trace!(
            Level::Info,
            &env.correlation_id,
            "Received envelope {} on {} with {} payload(s)",
            env.msg_id,
            env.send_to,
            env.payloads.len()
        );
        if env.payloads.iter().any(|p| p.transport == Transport::Link) {
            return Decoded::Links(env);
        }
        for p in &env.payloads {
            if let Err(e) = check_in_memory(p, &env.correlation_id) {
                return Decoded::Done(Err(e));
            }
        }
        Decoded::Done(Ok(env))
    }

    /// The rest of `receive` for an envelope with link payloads: check, fetch, validate.
    pub(crate) async fn receive_links(&self, mut env: Envelope) -> Result<Envelope> {
        let cid = env.correlation_id.clone();
        // Check every link before fetching any, so a hostile URL costs no connection at all.
        for p in env
            .payloads
            .iter()
            .filter(|p| p.transport == Transport::Link)
        {
            let url = p.url.as_deref().unwrap_or_default();
            check_link_url(url, &self.link.allowed_origins, self.fileserver.as_ref()).map_err(
                |e| {
                    e.with_correlation_id(&cid)
                        .with_detail("dataname", p.dataname.clone())
                },
            )?;
            if p.size > self.link.max_download_bytes {
                return Err(Error::new(
                    crate::error::ErrorCode::PayloadTooLarge,
                    format!(
                        "link payload {:?} declares {} bytes, above max_download_bytes {}",
                        p.dataname, p.size, self.link.max_download_bytes
                    ),
                )
                .with_correlation_id(&cid)
                .with_detail("url", url));
            }
        }
        // Owned jobs: keeps the future free of borrowed closures, so it can be spawned.
        let jobs: Vec<Job> = env
            .payloads
            .iter()
            .enumerate()
            .filter(|(_, p)| p.transport == Transport::Link)
            .map(|(i, p)| Job {
                index: i,
                url: p.url.clone().unwrap_or_default(),
                size: p.size,
                sha256: p.sha256().map(str::to_owned),
                dataname: p.dataname.clone(),
                file: self
                    .link
                    .download_dir
                    .as_ref()
                    .map(|d| d.join(download_file_name(&p.dataname))),
            })
            .collect();
        let files: Vec<std::path::PathBuf> = jobs.iter().filter_map(|j| j.file.clone()).collect();
        let declared: u64 = jobs
            .iter()
            .map(|j| {
                if j.size > 0 {
                    j.size
                } else {
                    self.link.max_download_bytes
                }
            })
            .fold(0, u64::saturating_add);
        let limit = crate::store::transfer_deadline(
            self.link.download_timeout,
            declared,
            self.link.min_transfer_rate.max(1),
        );
        let deadline = Deadline {
            at: tokio::time::Instant::now() + limit,
            limit,
            declared,
        };
        let result = self.fetch_and_check(&mut env, jobs, &cid, &deadline).await;
        if result.is_err() {
            // Nothing half-received is left behind.
            for f in files {
                let _ = tokio::fs::remove_file(f).await;
            }
        }
        result.map(|()| env)
    }

    async fn fetch_and_check(
        &self,
        env: &mut Envelope,
        jobs: Vec<Job>,
        cid: &str,
        deadline: &Deadline,
    ) -> Result<()> {
        let fetched: Vec<(Job, Fetched)> = stream::iter(jobs)
            .map(|job| self.fetch_by(job, cid, deadline))
            .buffer_unordered(self.link.parallel_downloads.max(1))
            .try_collect()
            .await?;
        for (job, got) in fetched {
            let p = &mut env.payloads[job.index];
            match got {
                Fetched::Memory(bytes) => {
                    p.size = bytes.len() as u64;
                    p.data = Some(bytes);
                }
                Fetched::File(len) => {
                    p.size = len;
                    p.file = job.file;
                }
            }
        }
        for p in &env.payloads {
            let checked = match &p.file {
                Some(path) => {
                    let (t, path) = (p.payload_type, path.clone());
                    tokio::task::spawn_blocking(move || t.validate_incoming_file(&path))
                        .await
                        .map_err(|e| Error::internal(format!("validation task failed: {e}")))?
                }
                None => {
                    check_in_memory(p, cid)?;
                    continue;
                }
            };
            checked.map_err(|e| {
                e.with_correlation_id(cid)
                    .with_detail("dataname", p.dataname.clone())
            })?;
            trace_deserialized(p, cid);
        }
        Ok(())
    }

    /// `fetch` within the message's download deadline.
    async fn fetch_by(&self, job: Job, cid: &str, deadline: &Deadline) -> Result<(Job, Fetched)> {
        let (dataname, url) = (job.dataname.clone(), job.url.clone());
        match tokio::time::timeout_at(deadline.at, self.fetch(job, cid)).await {
            Ok(r) => r,
            Err(_) => Err(Error::new(
                crate::error::ErrorCode::DownloadFailed,
                format!(
                    "link payload {dataname:?} from {url} did not arrive within the message's \
                     download deadline of {} ms (download_timeout {} ms plus {} declared bytes \
                     at {} bytes/s)",
                    deadline.limit.as_millis(),
                    self.link.download_timeout.as_millis(),
                    deadline.declared,
                    self.link.min_transfer_rate
                ),
            )
            .with_correlation_id(cid)
            .with_detail("url", url)
            .with_detail("dataname", dataname)
            .with_detail("deadline_ms", deadline.limit.as_millis() as u64)),
        }
    }

    async fn fetch(&self, job: Job, cid: &str) -> Result<(Job, Fetched)> {
        let _permit = self
            .downloads
            .acquire()
            .await
            .map_err(|_| Error::new(crate::error::ErrorCode::Closed, "receiver is closed"))?;
        trace!(
            Level::Info,
            cid,
            "Fetching link payload '{}' from {}",
            job.dataname,
            job.url
        );
        let req = DownloadRequest {
            url: &job.url,
            expected_size: (job.size > 0).then_some(job.size),
            sha256: job.sha256.as_deref(),
            max_bytes: self.link.max_download_bytes,
            correlation_id: cid,
        };
        let got = match &job.file {
            Some(path) => self
                .store
                .download_to_file(req, path)
                .await
                .map(Fetched::File),
            None => self.store.download(req).await.map(Fetched::Memory),
        };
        match got {
            Ok(f) => Ok((job, f)),
            Err(e) => Err(e.with_detail("dataname", job.dataname)),
        }
    }
}

/// When the link payloads of one message must all have arrived.
struct Deadline {
    at: tokio::time::Instant,
    limit: std::time::Duration,
    /// The bytes the deadline allows for (declared sizes; `max_download_bytes` for a
    /// payload that declares none).
    declared: u64,
}

/// What `Receiver::decode_direct` could do without awaiting.
// Both variants hold an envelope; boxing would add an allocation per message.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Decoded {
    /// Decoded (or failed): no link payload to fetch.
    Done(Result<Envelope>),
    /// Parsed; its link payloads remain to be fetched (`Receiver::receive_links`).
    Links(Envelope),
}

/// Checks a payload held in memory against its type.
fn check_in_memory(p: &crate::envelope::Payload, cid: &str) -> Result<()> {
    p.payload_type
        .validate_incoming(p.data.as_deref().unwrap_or_default())
        .map_err(|e| {
            e.with_correlation_id(cid)
                .with_detail("dataname", p.dataname.clone())
        })?;
    trace_deserialized(p, cid);
    Ok(())
}

fn trace_deserialized(p: &crate::envelope::Payload, cid: &str) {
    trace!(
        Level::Info,
        cid,
        "Deserialized payload '{}' (type: {}, transport: {}) size: {} bytes",
        p.dataname,
        p.payload_type,
        p.transport,
        p.size
    );
}

/// One link payload to fetch.
struct Job {
    index: usize,
    url: String,
    size: u64,
    sha256: Option<String>,
    dataname: String,
    file: Option<std::path::PathBuf>,
}

enum Fetched {
    Memory(bytes::Bytes),
    File(u64),
}

/// A new file name for a received payload: unique, and safe whatever the (remote) dataname.
fn download_file_name(dataname: &str) -> String {
    format!(
        "{}-{}",
        crate::envelope::new_uuid(),
        crate::store::safe_file_name(dataname)
    )
}

/// smartreceive without a client: decode `message`, fetching link payloads as `config` allows.
pub async fn smartreceive(message: &[u8], config: &Config) -> Result<Envelope> {
    Receiver::new(config)?.receive(message).await
}
