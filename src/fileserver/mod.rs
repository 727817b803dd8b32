//! Embedded Plik-compatible file server.
//!
//! Large payloads travel as a URL to a file on a Plik server (the claim-check pattern);
//! this module is such a server, small enough to embed in a test or run beside a NATS
//! server with `natsbridge fileserver`. It implements the part of the Plik HTTP API that
//! clients use (see `design/plik.md` §13): creating uploads (`POST /upload`, or `POST /`
//! for curl), adding files, downloading them (one-shot downloads are an atomic claim),
//! deleting, TTL expiry, and `/config`, `/version`, `/health`. Stream mode, user
//! accounts, archives and the web UI are not implemented.
//!
//! Limits: a per-file size limit ([`FileServerConfig::max_file_size`], 400
//! `file too big (limit is set to N bytes)`) and a quota on all stored files
//! ([`FileServerConfig::max_total_size`], 507 `storage quota exceeded (limit is set to N
//! bytes)`). Bytes are reserved while a file streams in and released if it fails, so
//! concurrent uploads never overshoot the quota together; a refused file leaves nothing
//! on disk.
//!
//! Authentication (optional, as Plik's forced mode): with
//! [`FileServerConfig::upload_tokens`] or [`FileServerConfig::basic_auth`] set, creating an
//! upload (`POST /upload`, quick upload `POST /`) needs `X-PlikToken: <token>` or
//! `Authorization: Basic`. Anonymous creates get 400 `unable to create upload : anonymous
//! uploads are disabled`, a wrong token 403 `invalid token`, wrong basic credentials 401.
//! Adding files needs the upload's `X-UploadToken` as always; downloads stay open to
//! whoever holds the URL (link URLs are capabilities, as in Plik).
//!
//! No record outlives its files: an upload whose files have all gone (refused part-way,
//! cut off, claimed by a one-shot download, deleted) is removed at once, and an upload
//! that holds no data [`FileServerConfig::empty_upload_grace`] after its creation (never
//! given a file) is removed by the sweeper; anything else goes at its TTL.
//!
//! Browsers: with [`FileServerConfig::cors_origins`] set (CLI `--cors-origin`), pages of
//! those origins may upload and download (see the `cors` module). Default: none, so no
//! response carries CORS headers.
//!
//! Data is streamed to and from disk under [`FileServerConfig::data_dir`] and survives a
//! restart; see the `store` module for the layout. The library never prints.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use natsbridge::fileserver::{FileServer, FileServerConfig};
//! let config = FileServerConfig::new("127.0.0.1:0".parse().unwrap(), "/tmp/plik-data");
//! let server = FileServer::start(config).await?;
//! println!("uploads go to {}", server.base_url());
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod cors;
mod error;
mod files;
mod model;
mod request;
mod routes;
mod sniff;
mod store;

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use self::routes::App;
use self::store::Store;

/// Default largest accepted file: 1 GiB (Plik's own default is 10 GB).
pub const DEFAULT_MAX_FILE_SIZE: u64 = 1 << 30;
/// Default quota on all stored files together: 10 GiB.
pub const DEFAULT_MAX_TOTAL_SIZE: u64 = 10 << 30;
/// How long an upload may hold no data before the sweeper removes it, by default.
pub const DEFAULT_EMPTY_UPLOAD_GRACE: Duration = Duration::from_secs(5 * 60);
/// Plik's default (and maximum) upload lifetime: 30 days.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// How often expired uploads are removed from disk by default.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// Settings of an embedded file server. Its `Debug` output hides the secrets.
#[derive(Clone)]
pub struct FileServerConfig {
    /// Address to listen on; port 0 picks a free port (see [`FileServer::local_addr`]).
    pub listen: SocketAddr,
    /// Where uploads are stored; created if missing. Uploads found there are served.
    pub data_dir: PathBuf,
    /// Largest accepted file, in bytes. Default 1 GiB.
    pub max_file_size: u64,
    /// Quota on the bytes of all stored files together (files being received count with
    /// what they have received so far). Default 10 GiB; 0 means no limit.
    pub max_total_size: u64,
    /// Lifetime of an upload created with no (or zero) `ttl`. Default 30 days.
    pub default_ttl: Duration,
    /// Longest lifetime a client may ask for. Default 30 days; `ZERO` means no limit,
    /// and only then may a client ask for a negative `ttl` (never expires).
    pub max_ttl: Duration,
    /// How often expired uploads are deleted from disk (they answer 404 from the moment
    /// they expire). Default 60 s; `ZERO` disables the sweeper.
    pub sweep_interval: Duration,
    /// An upload that still holds no data (no file uploaded or being received) this long
    /// after its creation is removed by the sweeper. Default 5 minutes; `ZERO` keeps such
    /// uploads until their TTL.
    pub empty_upload_grace: Duration,
    /// When not empty, creating an upload needs one of these in `X-PlikToken` (or the
    /// [`basic_auth`](Self::basic_auth) credentials). Default: none.
    pub upload_tokens: Vec<String>,
    /// `(user, password)`: when set, creating an upload needs them as `Authorization:
    /// Basic` (or one of the [`upload_tokens`](Self::upload_tokens)). Default: none.
    pub basic_auth: Option<(String, String)>,
    /// Origins of web pages allowed to use this server from a browser (CORS):
    /// `scheme://host[:port]` each, or `*` for any. Default: none, and then no response
    /// carries CORS headers.
    pub cors_origins: Vec<String>,
}

impl std::fmt::Debug for FileServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileServerConfig")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("max_file_size", &self.max_file_size)
            .field("max_total_size", &self.max_total_size)
            .field("default_ttl", &self.default_ttl)
            .field("max_ttl", &self.max_ttl)
            .field("sweep_interval", &self.sweep_interval)
            .field("empty_upload_grace", &self.empty_upload_grace)
            .field(
                "upload_tokens",
                &format_args!("[{} hidden]", self.upload_tokens.len()),
            )
            .field(
                "basic_auth",
                &self.basic_auth.as_ref().map(|(user, _)| (user, "<hidden>")),
            )
            .field("cors_origins", &self.cors_origins)
            .finish()
    }
}

impl FileServerConfig {
    /// Plik's defaults, listening on `listen` and storing under `data_dir`.
    pub fn new(listen: SocketAddr, data_dir: impl Into<PathBuf>) -> Self {
        FileServerConfig {
            listen,
            data_dir: data_dir.into(),
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            max_total_size: DEFAULT_MAX_TOTAL_SIZE,
            default_ttl: DEFAULT_TTL,
            max_ttl: DEFAULT_TTL,
            sweep_interval: DEFAULT_SWEEP_INTERVAL,
            empty_upload_grace: DEFAULT_EMPTY_UPLOAD_GRACE,
            upload_tokens: Vec::new(),
            basic_auth: None,
            cors_origins: Vec::new(),
        }
    }
}

/// A running file server. Stop it with [`FileServer::shutdown`]; dropping it also stops
/// it (without waiting).
pub struct FileServer {
    local_addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    sweeper: Option<JoinHandle<()>>,
}

impl FileServer {
    /// Load what `data_dir` holds, bind, and start serving on the current tokio runtime.
    ///
    /// Fails if the directory cannot be used, the address cannot be bound, the TTL
    /// settings contradict each other (a default above the maximum, or a zero default
    /// — "never expires" — while a maximum is set), or a token or the basic-auth user is
    /// empty or not usable in an HTTP header, or a CORS origin is not `*` or an origin.
    pub async fn start(config: FileServerConfig) -> io::Result<FileServer> {
        let invalid = |message: String| io::Error::new(io::ErrorKind::InvalidInput, message);
        let default_ttl = secs(config.default_ttl);
        let max_ttl = secs(config.max_ttl);
        if max_ttl > 0 && (default_ttl == 0 || default_ttl > max_ttl) {
            return Err(invalid(format!(
                "default TTL ({default_ttl} s) must be between 1 s and the maximum TTL ({max_ttl} s)"
            )));
        }
        let auth = routes::CreateAuth::new(&config.upload_tokens, config.basic_auth.as_ref())
            .map_err(invalid)?;
        let cors = cors::Cors::new(&config.cors_origins).map_err(invalid)?;
        let store = Store::open(
            config.data_dir.clone(),
            config.max_total_size,
            config.empty_upload_grace,
        )
        .await?;
        let listener = TcpListener::bind(config.listen).await?;
        let local_addr = listener.local_addr()?;
        let app = Arc::new(App {
            store,
            max_file_size: config.max_file_size,
            default_ttl,
            max_ttl,
            base_url: base_url(local_addr),
            auth,
        });

        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let router = routes::router(app.clone()).layer(axum::middleware::from_fn_with_state(
            Arc::new(cors),
            cors::handle,
        ));
        let server = tokio::spawn(async move {
            // The signal also fires when the sender is dropped with the FileServer.
            let signal = async {
                let _ = shutdown_rx.await;
            };
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(signal)
                .await;
        });

        let sweeper = (!config.sweep_interval.is_zero()).then(|| {
            let period = config.sweep_interval;
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(period);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    ticks.tick().await;
                    app.store.sweep(SystemTime::now()).await;
                }
            })
        });

        Ok(FileServer {
            local_addr,
            shutdown: Some(shutdown_tx),
            server: Some(server),
            sweeper,
        })
    }

    /// The address actually bound (with the real port when the config asked for 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://HOST:PORT` for clients on this machine: a wildcard listen address
    /// (`0.0.0.0`, `::`) is replaced by loopback.
    pub fn base_url(&self) -> String {
        base_url(self.local_addr)
    }

    /// Stop accepting connections, let requests in flight finish, stop the sweeper.
    pub async fn shutdown(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        if let Some(sweeper) = self.sweeper.take() {
            sweeper.abort();
            let _ = sweeper.await;
        }
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        // Dropping the sender also tells open connections to finish and close.
        self.shutdown.take();
        if let Some(server) = self.server.take() {
            server.abort();
        }
        if let Some(sweeper) = self.sweeper.take() {
            sweeper.abort();
        }
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

fn base_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_uses_loopback_for_wildcards() {
        assert_eq!(
            base_url("0.0.0.0:8080".parse().unwrap()),
            "http://127.0.0.1:8080"
        );
        assert_eq!(base_url("[::]:8080".parse().unwrap()), "http://[::1]:8080");
        assert_eq!(
            base_url("10.1.2.3:80".parse().unwrap()),
            "http://10.1.2.3:80"
        );
    }
}
