//! `natsbridge fileserver`: the embedded Plik-compatible file server, until SIGINT or SIGTERM.

use crate::args::{self, value};
use natsbridge::fileserver::{FileServer, FileServerConfig};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

pub const USAGE: &str = "\
Usage: natsbridge fileserver --listen ADDR --data-dir DIR [options]

Runs the embedded Plik-compatible file server until SIGINT or SIGTERM. Prints
'listening on http://ADDR' once it accepts connections.

Options:
  --listen ADDR          Address to listen on, e.g. 127.0.0.1:8080 (port 0 picks a free port)
  --data-dir DIR         Where uploads are stored; created if missing, kept across restarts
  --max-file-size BYTES  Largest accepted file (default 10000000000)
  --default-ttl SECS     Lifetime of an upload that asks for none (default 2592000, 30 days)
  --max-ttl SECS         Longest lifetime a client may ask for (default 2592000; 0 = no limit)
";

const SPEC: &[args::Opt] = &[
    value("--listen"),
    value("--data-dir"),
    value("--max-file-size"),
    value("--default-ttl"),
    value("--max-ttl"),
];

/// `Ok(None)` when help was asked for.
fn parse(argv: &[String]) -> Result<Option<FileServerConfig>, String> {
    let p = args::parse("fileserver", argv, SPEC)?;
    if p.help {
        return Ok(None);
    }
    if let Some(extra) = p.positionals.first() {
        return Err(format!("unexpected argument {extra:?} for fileserver"));
    }
    let listen: SocketAddr = p
        .get("--listen")
        .ok_or("missing required option '--listen ADDR' (e.g. --listen 127.0.0.1:8080)")?
        .parse()
        .map_err(|_| {
            format!(
                "invalid value {:?} for '--listen': expected IP:PORT, e.g. 127.0.0.1:8080 or [::1]:8080",
                p.get("--listen").unwrap_or_default()
            )
        })?;
    let data_dir = p
        .get("--data-dir")
        .filter(|d| !d.is_empty())
        .ok_or("missing required option '--data-dir DIR'")?;
    let mut config = FileServerConfig::new(listen, data_dir);
    if let Some(bytes) = p.number("--max-file-size")? {
        config.max_file_size = bytes;
    }
    if let Some(secs) = p.number("--default-ttl")? {
        config.default_ttl = Duration::from_secs(secs);
    }
    if let Some(secs) = p.number("--max-ttl")? {
        config.max_ttl = Duration::from_secs(secs);
    }
    Ok(Some(config))
}

/// The `fileserver` command.
pub fn run(argv: &[String]) -> ExitCode {
    let config = match parse(argv) {
        Ok(Some(config)) => config,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => return crate::usage_error("fileserver", &message),
    };
    crate::run_async(serve_until_signal(config))
}

async fn serve_until_signal(config: FileServerConfig) -> ExitCode {
    let server = match FileServer::start(config).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("natsbridge: cannot start the file server: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("listening on http://{}", server.local_addr());
    if let Err(e) = crate::termination_signal().await {
        eprintln!("natsbridge: cannot wait for signals: {e}");
        return ExitCode::FAILURE;
    }
    // Graceful: finish transfers in flight. A second signal cuts that short.
    tokio::select! {
        () = server.shutdown() => ExitCode::SUCCESS,
        _ = crate::termination_signal() => {
            eprintln!("natsbridge: second signal, exiting without waiting for transfers");
            ExitCode::FAILURE
        }
    }
}
