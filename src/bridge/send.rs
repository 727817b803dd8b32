//! smartsend: validate, choose transports, fit `max_payload`, upload, build the envelope.
//! Publishing is the client's; this module produces the bytes to publish.

use crate::envelope::{validate_msg_purpose, Envelope, Payload, Transport};
use crate::error::{Error, ErrorCode, Result};
use crate::log::{trace, Level};
use crate::payload_type::PayloadType;
use crate::store::{PayloadStore, UploadRequest, Uploaded};
use crate::transport::{fit_max_payload, placeholder_url, select};
use bytes::Bytes;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// One payload to send: the walkthrough's `(dataname, data, payload_type)` with serialized bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingPayload {
    /// The caller's name for it; non-empty.
    pub dataname: String,
    /// Its type; the bytes must match it.
    pub payload_type: PayloadType,
    /// Serialized bytes (wire format §3).
    pub data: Bytes,
    /// Extra payload metadata (`payload_bytes` and `sha256` are written by the library).
    pub metadata: Map<String, Value>,
}

impl OutgoingPayload {
    /// A payload of any type from its serialized bytes.
    pub fn new(
        dataname: impl Into<String>,
        payload_type: PayloadType,
        data: impl Into<Bytes>,
    ) -> Self {
        OutgoingPayload {
            dataname: dataname.into(),
            payload_type,
            data: data.into(),
            metadata: Map::new(),
        }
    }

    /// A `text` payload.
    pub fn text(dataname: impl Into<String>, text: impl Into<String>) -> Self {
        Self::new(dataname, PayloadType::Text, Bytes::from(text.into()))
    }

    /// A `dictionary` payload from any JSON value.
    pub fn dictionary(dataname: impl Into<String>, value: &Value) -> Self {
        Self::new(
            dataname,
            PayloadType::Dictionary,
            Bytes::from(value.to_string()),
        )
    }

    /// A `binary` payload.
    pub fn binary(dataname: impl Into<String>, data: impl Into<Bytes>) -> Self {
        Self::new(dataname, PayloadType::Binary, data)
    }
}

/// Per-call options of smartsend: every envelope field, and per-call transport settings.
/// Unset fields take the defaults of wire format §1.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SendOptions {
    /// Correlation id (default: a new UUID v4).
    pub correlation_id: Option<String>,
    /// Message id (default: a new UUID v4).
    pub msg_id: Option<String>,
    /// `msg_purpose` (default `chat`).
    pub msg_purpose: Option<String>,
    /// `sender_name` (default: the client's).
    pub sender_name: Option<String>,
    /// `sender_id` (default: the client's UUID).
    pub sender_id: Option<String>,
    /// `receiver_name`.
    pub receiver_name: Option<String>,
    /// `receiver_id`.
    pub receiver_id: Option<String>,
    /// `reply_to`: the subject replies should go to.
    pub reply_to: Option<String>,
    /// `reply_to_msg_id`: the message this one replies to.
    pub reply_to_msg_id: Option<String>,
    /// Message-level metadata.
    pub metadata: Option<Map<String, Value>>,
    /// Size threshold for this call.
    pub size_threshold: Option<usize>,
    /// Fall back to direct when an upload fails, for this call.
    pub fallback_to_direct: Option<bool>,
    /// Follows the uploads of link payloads (poll it from another task or thread).
    pub progress: Option<crate::progress::Progress>,
    /// Return only once the NATS server has confirmed it received the envelope (a round
    /// trip, within `operation_timeout`): `MESSAGES_DROPPED` if the connection dropped
    /// first, `TIMEOUT` if no confirmation came. Default false: return once the envelope is
    /// handed to the connection.
    pub confirm: bool,
}

/// What smartsend returns: the envelope as sent, and the JSON published (`msg_json`).
#[derive(Debug, Clone)]
pub struct Sent {
    /// The envelope (direct payloads hold their bytes, link payloads their URL).
    pub envelope: Envelope,
    /// The exact bytes published.
    pub json: Bytes,
}

impl Sent {
    /// The published JSON as text.
    pub fn json_str(&self) -> &str {
        // Built by our writer from UTF-8 strings and ASCII: always valid.
        std::str::from_utf8(&self.json).unwrap_or_default()
    }
}

/// Checks a subject for publishing: non-empty, no whitespace, no wildcard tokens.
pub(crate) fn validate_publish_subject(subject: &str) -> Result<()> {
    if subject.is_empty() {
        return Err(Error::invalid_argument("subject is empty"));
    }
    if subject.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid_argument(format!(
            "subject {subject:?} contains whitespace or control characters"
        )));
    }
    if subject
        .split('.')
        .any(|t| t == "*" || t == ">" || t.is_empty())
    {
        return Err(Error::invalid_argument(format!(
            "subject {subject:?} has an empty or wildcard token; publish to a concrete subject"
        )));
    }
    Ok(())
}

/// What the client lends to one send.
pub(crate) struct SendContext<'a> {
    pub subject: &'a str,
    pub broker_url: &'a str,
    pub sender_name: &'a str,
    pub sender_id: &'a str,
    pub size_threshold: usize,
    pub max_payload: usize,
    pub fallback_to_direct: bool,
    pub store: Option<(&'a Arc<dyn PayloadStore>, &'a str)>,
}

fn payload_metadata(p: &OutgoingPayload, sha256: Option<String>) -> Map<String, Value> {
    let mut m = p.metadata.clone();
    m.insert("payload_bytes".into(), Value::from(p.data.len() as u64));
    if let Some(h) = sha256 {
        m.insert("sha256".into(), Value::String(h));
    } else {
        m.remove("sha256");
    }
    m
}

/// Builds the envelope to publish, uploading link payloads. Nothing is published here; on error
/// any upload already made is discarded.
pub(crate) async fn build(
    ctx: SendContext<'_>,
    payloads: Vec<OutgoingPayload>,
    opts: SendOptions,
) -> Result<(Envelope, Vec<u8>)> {
    let cid = opts
        .correlation_id
        .filter(|c| !c.is_empty())
        .unwrap_or_else(crate::envelope::new_uuid);
    let tag = |e: Error| e.with_correlation_id(&cid);
    validate_publish_subject(ctx.subject).map_err(tag)?;
    let purpose = opts.msg_purpose.unwrap_or_else(|| "chat".into());
    validate_msg_purpose(&purpose).map_err(tag)?;
    if ctx.size_threshold == 0 {
        return Err(tag(Error::invalid_argument(
            "size_threshold must be at least 1",
        )));
    }
    trace!(
        Level::Info,
        &cid,
        "Starting smartsend for subject: {}",
        ctx.subject
    );

    let link_base = ctx.store.map(|(_, base)| base);
    let mut wire = Vec::with_capacity(payloads.len());
    for p in &payloads {
        if p.dataname.is_empty() {
            return Err(tag(Error::invalid_argument(
                "a payload has an empty dataname",
            )));
        }
        p.payload_type
            .validate_outgoing(&p.data)
            .map_err(|e| tag(e.with_detail("dataname", p.dataname.clone())))?;
        let size = p.data.len();
        trace!(
            Level::Info,
            &cid,
            "Serialized payload '{}' (type: {}) size: {} bytes",
            p.dataname,
            p.payload_type,
            size
        );
        let transport = match (select(size, ctx.size_threshold), link_base) {
            (Transport::Link, Some(_)) => Transport::Link,
            _ => Transport::Direct,
        };
        wire.push(Payload {
            id: crate::envelope::new_uuid(),
            dataname: p.dataname.clone(),
            payload_type: p.payload_type,
            transport,
            encoding: transport.encoding().into(),
            size: size as u64,
            url: link_base
                .filter(|_| transport == Transport::Link)
                .map(|b| placeholder_url(b, &p.dataname)),
            data: Some(p.data.clone()),
            file: None,
            metadata: payload_metadata(p, None),
        });
    }
    let mut env = Envelope {
        correlation_id: cid.clone(),
        msg_id: opts
            .msg_id
            .filter(|m| !m.is_empty())
            .unwrap_or_else(crate::envelope::new_uuid),
        timestamp: crate::time::now_iso8601(),
        send_to: ctx.subject.to_owned(),
        msg_purpose: purpose,
        sender_name: opts
            .sender_name
            .unwrap_or_else(|| ctx.sender_name.to_owned()),
        sender_id: opts.sender_id.unwrap_or_else(|| ctx.sender_id.to_owned()),
        receiver_name: opts.receiver_name.unwrap_or_default(),
        receiver_id: opts.receiver_id.unwrap_or_default(),
        reply_to: opts.reply_to.unwrap_or_default(),
        reply_to_msg_id: opts.reply_to_msg_id.unwrap_or_default(),
        broker_url: ctx.broker_url.to_owned(),
        metadata: opts.metadata.unwrap_or_default(),
        payloads: wire,
    };
    // The common case: every payload direct. Write the envelope once; only when it does not
    // fit `max_payload` is it measured again with placeholder URLs while payloads move to link.
    let mut written = None;
    if env
        .payloads
        .iter()
        .all(|p| p.transport == Transport::Direct)
    {
        let json = env.to_json().map_err(tag)?;
        if json.len() <= ctx.max_payload {
            written = Some(json);
        }
    }
    if written.is_none() {
        fit_max_payload(&mut env, ctx.max_payload, link_base).map_err(tag)?;
    }

    if let Some(progress) = &opts.progress {
        let total = env
            .payloads
            .iter()
            .filter(|p| p.transport == Transport::Link)
            .map(|p| p.size)
            .sum();
        progress.start(total);
    }
    // Each link payload's sha256 is computed on a blocking thread while it uploads (it used
    // to follow the upload: ~8 ms more per 16 MiB).
    let mut hashes: std::collections::HashMap<usize, tokio::task::JoinHandle<String>> = env
        .payloads
        .iter()
        .enumerate()
        .filter(|(_, p)| p.transport == Transport::Link)
        .map(|(i, _)| {
            let data = payloads[i].data.clone();
            let job = tokio::task::spawn_blocking(move || hex::encode(Sha256::digest(&data)));
            (i, job)
        })
        .collect();
    let uploaded = upload_links(&ctx, &mut env, &payloads, &cid, opts.progress.as_ref()).await;
    let fallback = opts.fallback_to_direct.unwrap_or(ctx.fallback_to_direct);
    let mut done: Vec<Uploaded> = Vec::new();
    let mut failure: Option<Error> = None;
    for (i, result) in uploaded {
        match result {
            Ok(up) => {
                let p = &mut env.payloads[i];
                p.url = Some(up.url.clone());
                let hash = match hashes.remove(&i) {
                    Some(job) => job.await.ok(),
                    None => None,
                }
                .unwrap_or_else(|| hex::encode(Sha256::digest(&payloads[i].data)));
                p.metadata = payload_metadata(&payloads[i], Some(hash));
                trace!(
                    Level::Info,
                    &cid,
                    "Using link transport for '{}' ({} bytes)",
                    p.dataname,
                    p.size
                );
                done.push(up);
            }
            Err(e) => {
                let p = &mut env.payloads[i];
                p.transport = Transport::Direct;
                p.encoding = Transport::Direct.encoding().into();
                p.url = None;
                if fallback && env.json_len() <= ctx.max_payload {
                    trace!(
                        Level::Warn,
                        &cid,
                        "Upload of '{}' failed ({}); falling back to direct transport",
                        env.payloads[i].dataname,
                        e.message()
                    );
                } else if failure.is_none() {
                    failure = Some(if fallback {
                        Error::new(
                            ErrorCode::UploadFailed,
                            format!(
                                "{}; falling back to direct is impossible: the envelope would exceed max_payload ({} bytes)",
                                e.message(),
                                ctx.max_payload
                            ),
                        )
                        .with_detail("dataname", env.payloads[i].dataname.clone())
                    } else {
                        e
                    });
                }
            }
        }
    }
    for p in env.payloads.iter_mut() {
        if p.transport == Transport::Link {
            p.data = None;
        } else {
            trace!(
                Level::Info,
                &cid,
                "Using direct transport for '{}' ({} bytes)",
                p.dataname,
                p.size
            );
        }
    }
    let result = match failure {
        Some(e) => Err(tag(e)),
        None => {
            // Unchanged since it was written when nothing went by link (nothing was uploaded).
            let json = match written {
                Some(json) => json,
                None => env.to_json().map_err(tag)?,
            };
            if json.len() > ctx.max_payload {
                Err(tag(Error::new(
                    ErrorCode::PayloadTooLarge,
                    format!(
                        "envelope of {} bytes exceeds the server's max_payload of {} bytes",
                        json.len(),
                        ctx.max_payload
                    ),
                )))
            } else {
                Ok(json)
            }
        }
    };
    match result {
        Ok(json) => Ok((env, json)),
        Err(e) => {
            if let Some((store, _)) = ctx.store {
                for up in &done {
                    store.discard(up).await;
                }
            }
            Err(e)
        }
    }
}

/// Uploads every link payload at once; returns each payload index with its result.
async fn upload_links(
    ctx: &SendContext<'_>,
    env: &mut Envelope,
    payloads: &[OutgoingPayload],
    cid: &str,
    progress: Option<&crate::progress::Progress>,
) -> Vec<(usize, Result<Uploaded>)> {
    let Some((store, _)) = ctx.store else {
        return Vec::new();
    };
    let jobs = env
        .payloads
        .iter()
        .enumerate()
        .filter(|(_, p)| p.transport == Transport::Link)
        .map(|(i, p)| {
            let data = payloads[i].data.clone();
            let name = p.dataname.clone();
            async move {
                let request = UploadRequest {
                    dataname: &name,
                    data,
                    correlation_id: cid,
                    progress,
                };
                (i, store.upload(request).await)
            }
        });
    futures_util::future::join_all(jobs).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects() {
        assert!(validate_publish_subject("/chat/user/v1/message").is_ok());
        assert!(validate_publish_subject("a.b.c").is_ok());
        for bad in ["", "a b", "a.*", "a.>", "a..b", "a\n"] {
            let e = validate_publish_subject(bad).unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidArgument, "{bad:?}");
        }
    }
}
