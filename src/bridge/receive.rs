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
        let store = PlikStore::new(
            config.fileserver_url.as_deref(),
            &config.link,
            config.connect_timeout,
            config.http_idle_timeout,
        )?;
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

    /// Decodes one message: every payload comes back with its bytes.
    pub async fn receive(&self, message: &[u8]) -> Result<Envelope> {
        let mut env = Envelope::from_json(message)?;
        let cid = env.correlation_id.clone();
        trace!(
            Level::Info,
            &cid,
            "Received envelope {} on {} with {} payload(s)",
            env.msg_id,
            env.send_to,
            env.payloads.len()
        );
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
        let jobs: Vec<(usize, String, u64, Option<String>, String)> = env
            .payloads
            .iter()
            .enumerate()
            .filter(|(_, p)| p.transport == Transport::Link)
            .map(|(i, p)| {
                let url = p.url.clone().unwrap_or_default();
                (
                    i,
                    url,
                    p.size,
                    p.sha256().map(str::to_owned),
                    p.dataname.clone(),
                )
            })
            .collect();
        let fetched: Vec<(usize, bytes::Bytes)> = stream::iter(jobs)
            .map(|(i, url, size, sha, dataname)| self.fetch(i, url, size, sha, dataname, &cid))
            .buffer_unordered(self.link.parallel_downloads.max(1))
            .try_collect()
            .await?;
        for (i, bytes) in fetched {
            env.payloads[i].size = bytes.len() as u64;
            env.payloads[i].data = Some(bytes);
        }
        for p in &env.payloads {
            let bytes = p.data.as_deref().unwrap_or_default();
            p.payload_type.validate_incoming(bytes).map_err(|e| {
                e.with_correlation_id(&cid)
                    .with_detail("dataname", p.dataname.clone())
            })?;
            trace!(
                Level::Info,
                &cid,
                "Deserialized payload '{}' (type: {}, transport: {}) size: {} bytes",
                p.dataname,
                p.payload_type,
                p.transport,
                bytes.len()
            );
        }
        Ok(env)
    }
}

impl Receiver {
    async fn fetch(
        &self,
        i: usize,
        url: String,
        size: u64,
        sha256: Option<String>,
        dataname: String,
        cid: &str,
    ) -> Result<(usize, bytes::Bytes)> {
        let _permit = self
            .downloads
            .acquire()
            .await
            .map_err(|_| Error::new(crate::error::ErrorCode::Closed, "receiver is closed"))?;
        trace!(
            Level::Info,
            cid,
            "Fetching link payload '{dataname}' from {url}"
        );
        let req = DownloadRequest {
            url: &url,
            expected_size: (size > 0).then_some(size),
            sha256: sha256.as_deref(),
            max_bytes: self.link.max_download_bytes,
            correlation_id: cid,
        };
        self.store
            .download(req)
            .await
            .map(|b| (i, b))
            .map_err(|e| e.with_detail("dataname", dataname.clone()))
    }
}

/// smartreceive without a client: decode `message`, fetching link payloads as `config` allows.
pub async fn smartreceive(message: &[u8], config: &Config) -> Result<Envelope> {
    Receiver::new(config)?.receive(message).await
}
