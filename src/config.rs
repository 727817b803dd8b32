//! Configuration: the NATS connection, the file server, transport selection and link options.
//!
//! [`Config::from_env`] starts from the built-in defaults and applies `NATS_URL`,
//! `FILESERVER_URL`, `FILESERVER_TOKEN` and `SIZE_THRESHOLD`; anything set explicitly
//! afterwards wins.

use crate::error::{Error, Result};
use std::path::PathBuf;
use std::time::Duration;

/// Default NATS URL.
pub const DEFAULT_NATS_URL: &str = "nats://localhost:4222";
/// Default file server URL.
pub const DEFAULT_FILESERVER_URL: &str = "http://localhost:8080";
/// Default size threshold: payloads of this many serialized bytes or more go by link.
pub const DEFAULT_SIZE_THRESHOLD: usize = 500_000;
/// Slowest transfer rate tolerated, in bytes per second: a transfer of `n` bytes may take
/// its base deadline plus `n / DEFAULT_MIN_TRANSFER_RATE` seconds (256 KiB/s).
pub const DEFAULT_MIN_TRANSFER_RATE: u64 = 256 * 1024;

/// How the client authenticates to NATS.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Credentials {
    /// No credentials (or those embedded in the URL, `nats://user:pass@host`).
    #[default]
    None,
    /// A token.
    Token(String),
    /// A user name and password.
    UserPassword {
        /// The user.
        user: String,
        /// The password.
        password: String,
    },
    /// A `.creds` file (JWT and NKey seed).
    CredsFile(PathBuf),
}

/// TLS for the NATS connection. TLS is used when the URL asks for it (`tls://`) or the server
/// requires it; `required` insists on it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsOptions {
    /// Refuse to connect without TLS.
    pub required: bool,
    /// Extra root certificates (PEM files).
    pub root_certificates: Vec<PathBuf>,
    /// A client certificate and its key (PEM files), for mutual TLS.
    pub client_certificate: Option<(PathBuf, PathBuf)>,
}

/// Download retries: exponential backoff (wire format §5).
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, including the first (default 5).
    pub max_attempts: u32,
    /// Delay before the second attempt (default 100 ms); it doubles each time.
    pub base_delay: Duration,
    /// Cap on one delay (default 5 s).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(5000),
        }
    }
}

impl RetryPolicy {
    /// The delay after failed attempt number `attempt` (1-based).
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }
}

/// Which origins link payloads may be downloaded from.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum AllowedOrigins {
    /// Only the origin of the configured file server (the default).
    #[default]
    FileServerOnly,
    /// The configured file server's origin plus these (`https://files.example.com:8443`).
    These(Vec<String>),
    /// Any http or https origin.
    Any,
}

/// Options of link transport (claim check).
#[derive(Debug, Clone, PartialEq)]
pub struct LinkOptions {
    /// Upload one-shot files, deleted by the server on first download (default false).
    pub oneshot: bool,
    /// How long the file server keeps an upload (default 24 h).
    pub ttl: Duration,
    /// When an upload fails but the envelope still fits inline, send the payload direct
    /// (default true); otherwise fail with `UPLOAD_FAILED`.
    pub fallback_to_direct: bool,
    /// Origins allowed for downloads.
    pub allowed_origins: AllowedOrigins,
    /// Largest link payload a receiver accepts (default 2 GiB).
    pub max_download_bytes: u64,
    /// Download retries.
    pub retry: RetryPolicy,
    /// Link payloads fetched at once by one receiver (default 4).
    pub parallel_downloads: usize,
    /// The base of the deadline for the downloads of one received message (default 30 s):
    /// they must all complete, retries included, within `download_timeout` plus their
    /// declared sizes at `min_transfer_rate`, or the message fails with `DOWNLOAD_FAILED`.
    pub download_timeout: Duration,
    /// Slowest transfer tolerated, in bytes per second (default 256 KiB/s): the part of an
    /// upload's and of a download's deadline that grows with its size.
    pub min_transfer_rate: u64,
    /// When set, received link payloads are streamed into new files in this directory instead
    /// of memory (`Payload::file`), so memory stays flat whatever their size. The caller owns
    /// the files. Default: memory.
    pub download_dir: Option<PathBuf>,
}

impl Default for LinkOptions {
    fn default() -> Self {
        LinkOptions {
            oneshot: false,
            ttl: Duration::from_secs(24 * 3600),
            fallback_to_direct: true,
            allowed_origins: AllowedOrigins::default(),
            max_download_bytes: 2 << 30,
            retry: RetryPolicy::default(),
            parallel_downloads: 4,
            download_timeout: Duration::from_secs(30),
            min_transfer_rate: DEFAULT_MIN_TRANSFER_RATE,
            download_dir: None,
        }
    }
}

/// Everything a client needs. Build with [`Config::from_env`] or [`Config::default`] and adjust
/// the public fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// NATS server URL(s), comma-separated (`nats://`, `tls://`).
    pub nats_url: String,
    /// Base URL of the Plik-compatible file server; `None` disables link transport. User
    /// info in it (`http://user:password@host:8080`) is sent as `Authorization: Basic` with
    /// upload requests and never placed in link URLs or log lines.
    pub fileserver_url: Option<String>,
    /// Upload token for a file server that requires one (sent as `X-PlikToken` when creating
    /// an upload). Default: none.
    pub fileserver_token: Option<String>,
    /// Payloads of at least this many serialized bytes go by link.
    pub size_threshold: usize,
    /// Link transport options.
    pub link: LinkOptions,
    /// NATS credentials.
    pub credentials: Credentials,
    /// NATS TLS.
    pub tls: TlsOptions,
    /// Name shown by the NATS server for this connection.
    pub client_name: Option<String>,
    /// Default `sender_name` of envelopes this client sends.
    pub sender_name: String,
    /// Deadline to connect to NATS (and to open an HTTP connection).
    pub connect_timeout: Duration,
    /// Deadline for one NATS operation: publish, flush, subscribe. Also the base of an
    /// upload's deadline, which adds the payload's size at `link.min_transfer_rate`, and the
    /// longest a download attempt waits for the file server's answer (its first byte).
    pub operation_timeout: Duration,
    /// Longest an HTTP transfer may go without receiving data.
    pub http_idle_timeout: Duration,
    /// Envelopes one subscription queues for its consumer before it reports a slow consumer.
    pub subscription_queue: usize,
    /// Whether subscriptions deliver envelopes in order of arrival (default true): an
    /// envelope then waits for the link downloads of those before it (at most their
    /// deadline, see `LinkOptions::download_timeout`). Unordered, an envelope is delivered as
    /// soon as it is decoded, so envelopes without link payloads are never held behind
    /// downloads.
    pub ordered_subscriptions: bool,
}

impl Default for Config {
    /// The built-in defaults, ignoring the environment.
    fn default() -> Self {
        Config {
            nats_url: DEFAULT_NATS_URL.into(),
            fileserver_url: Some(DEFAULT_FILESERVER_URL.into()),
            fileserver_token: None,
            size_threshold: DEFAULT_SIZE_THRESHOLD,
            link: LinkOptions::default(),
            credentials: Credentials::None,
            tls: TlsOptions::default(),
            client_name: None,
            sender_name: String::new(),
            connect_timeout: Duration::from_secs(5),
            operation_timeout: Duration::from_secs(10),
            http_idle_timeout: Duration::from_secs(30),
            subscription_queue: 1024,
            ordered_subscriptions: true,
        }
    }
}

impl Config {
    /// The defaults with `NATS_URL`, `FILESERVER_URL` (empty = no file server),
    /// `FILESERVER_TOKEN` (empty = none) and `SIZE_THRESHOLD` applied. A malformed
    /// `SIZE_THRESHOLD` is an `INVALID_ARGUMENT` error.
    pub fn from_env() -> Result<Config> {
        Config::default().apply_env(|k| std::env::var(k).ok())
    }

    fn apply_env(mut self, get: impl Fn(&str) -> Option<String>) -> Result<Config> {
        if let Some(url) = get("NATS_URL").filter(|s| !s.trim().is_empty()) {
            self.nats_url = url.trim().to_owned();
        }
        if let Some(url) = get("FILESERVER_URL") {
            let url = url.trim();
            self.fileserver_url = (!url.is_empty()).then(|| url.to_owned());
        }
        if let Some(token) = get("FILESERVER_TOKEN") {
            let token = token.trim();
            self.fileserver_token = (!token.is_empty()).then(|| token.to_owned());
        }
        if let Some(t) = get("SIZE_THRESHOLD") {
            self.size_threshold = parse_threshold(&t)?;
        }
        Ok(self)
    }

    /// Sets the NATS URL.
    pub fn with_nats_url(mut self, url: impl Into<String>) -> Config {
        self.nats_url = url.into();
        self
    }

    /// Sets the file server URL (`None` disables link transport).
    pub fn with_fileserver_url(mut self, url: Option<String>) -> Config {
        self.fileserver_url = url;
        self
    }

    /// Sets the size threshold.
    pub fn with_size_threshold(mut self, threshold: usize) -> Config {
        self.size_threshold = threshold;
        self
    }

    /// Checks the values that can be checked without connecting.
    pub fn validate(&self) -> Result<()> {
        if self.nats_url.trim().is_empty() {
            return Err(Error::invalid_argument("nats_url is empty"));
        }
        if self.size_threshold == 0 {
            return Err(Error::invalid_argument("size_threshold must be at least 1"));
        }
        if let Some(url) = &self.fileserver_url {
            crate::store::parse_base_url(url)?;
        }
        if let Some(token) = &self.fileserver_token {
            crate::store::check_token(token)?;
        }
        if self.link.retry.max_attempts == 0 {
            return Err(Error::invalid_argument(
                "link.retry.max_attempts must be at least 1",
            ));
        }
        if self.link.parallel_downloads == 0 {
            return Err(Error::invalid_argument(
                "link.parallel_downloads must be at least 1",
            ));
        }
        if self.subscription_queue == 0 {
            return Err(Error::invalid_argument(
                "subscription_queue must be at least 1",
            ));
        }
        if self.link.download_timeout.is_zero() {
            return Err(Error::invalid_argument(
                "link.download_timeout must be at least 1 ms",
            ));
        }
        if self.link.min_transfer_rate == 0 {
            return Err(Error::invalid_argument(
                "link.min_transfer_rate must be at least 1 byte per second",
            ));
        }
        if self.link.ttl.as_secs() == 0 {
            return Err(Error::invalid_argument(
                "link.ttl must be at least one second",
            ));
        }
        Ok(())
    }
}

fn parse_threshold(s: &str) -> Result<usize> {
    match s.trim().replace('_', "").parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(Error::invalid_argument(format!(
            "SIZE_THRESHOLD={s:?} is not a positive number of bytes"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_defaults() {
        let c = Config::default()
            .apply_env(|k| match k {
                "NATS_URL" => Some("nats://h:1".into()),
                "FILESERVER_URL" => Some("".into()),
                "FILESERVER_TOKEN" => Some(" t0k ".into()),
                "SIZE_THRESHOLD" => Some("1_000".into()),
                _ => None,
            })
            .unwrap();
        assert_eq!(c.nats_url, "nats://h:1");
        assert_eq!(c.fileserver_url, None);
        assert_eq!(c.size_threshold, 1000);
        assert_eq!(c.fileserver_token.as_deref(), Some("t0k"));
        let c = Config::default()
            .apply_env(|k| (k == "FILESERVER_TOKEN").then(|| "".into()))
            .unwrap();
        assert_eq!(c.fileserver_token, None);
        let e = Config::default()
            .apply_env(|k| (k == "SIZE_THRESHOLD").then(|| "big".into()))
            .unwrap_err();
        assert!(e.message().contains("SIZE_THRESHOLD"));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let r = RetryPolicy::default();
        let d: Vec<u128> = (1..=8).map(|a| r.delay_after(a).as_millis()).collect();
        assert_eq!(d, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(r.delay_after(200).as_millis(), 5000);
    }
}
