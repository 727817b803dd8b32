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

/// Plik's default maximum file size: 10 GB (decimal).
pub const DEFAULT_MAX_FILE_SIZE: u64 = 10_000_000_000;
/// Plik's default (and maximum) upload lifetime: 30 days.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// How often expired uploads are removed from disk by default.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// Settings of an embedded file server.
#[derive(Clone, Debug)]
pub struct FileServerConfig {
    /// Address to listen on; port 0 picks a free port (see [`FileServer::local_addr`]).
    pub listen: SocketAddr,
    /// Where uploads are stored; created if missing. Uploads found there are served.
    pub data_dir: PathBuf,
    /// Largest accepted file, in bytes. Default 10 GB.
    pub max_file_size: u64,
    /// Lifetime of an upload created with no (or zero) `ttl`. Default 30 days.
    pub default_ttl: Duration,
    /// Longest lifetime a client may ask for. Default 30 days; `ZERO` means no limit,
    /// and only then may a client ask for a negative `ttl` (never expires).
    pub max_ttl: Duration,
    /// How often expired uploads are deleted from disk (they answer 404 from the moment
    /// they expire). Default 60 s; `ZERO` disables the sweeper.
    pub sweep_interval: Duration,
}

impl FileServerConfig {
    /// Plik's defaults, listening on `listen` and storing under `data_dir`.
    pub fn new(listen: SocketAddr, data_dir: impl Into<PathBuf>) -> Self {
        FileServerConfig {
            listen,
            data_dir: data_dir.into(),
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            default_ttl: DEFAULT_TTL,
            max_ttl: DEFAULT_TTL,
            sweep_interval: DEFAULT_SWEEP_INTERVAL,
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
    /// Fails if the directory cannot be used, the address cannot be bound, or the TTL
    /// settings contradict each other (a default above the maximum, or a zero default
    /// — "never expires" — while a maximum is set).
    pub async fn start(config: FileServerConfig) -> io::Result<FileServer> {
        let default_ttl = secs(config.default_ttl);
        let max_ttl = secs(config.max_ttl);
        if max_ttl > 0 && (default_ttl == 0 || default_ttl > max_ttl) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("default TTL ({default_ttl} s) must be between 1 s and the maximum TTL ({max_ttl} s)"),
            ));
        }
        let store = Store::open(config.data_dir.clone()).await?;
        let listener = TcpListener::bind(config.listen).await?;
        let local_addr = listener.local_addr()?;
        let app = Arc::new(App {
            store,
            max_file_size: config.max_file_size,
            default_ttl,
            max_ttl,
            base_url: base_url(local_addr),
        });

        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let router = routes::router(app.clone());
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
                    app.store.sweep_expired(SystemTime::now()).await;
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
