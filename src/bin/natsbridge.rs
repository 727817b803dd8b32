//! The `natsbridge` command line. For now one command: `fileserver`, the embedded
//! Plik-compatible file server. Arguments are parsed by hand to keep dependencies small.

use std::ffi::OsString;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use natsbridge::fileserver::{FileServer, FileServerConfig};

const USAGE: &str = "\
Usage:
  natsbridge fileserver --listen ADDR --data-dir DIR [--max-file-size BYTES]
                        [--default-ttl SECS] [--max-ttl SECS]
  natsbridge --help

Commands:
  fileserver    Run the embedded Plik-compatible file server until SIGINT or SIGTERM.

Options of fileserver:
  --listen ADDR          Address to listen on, e.g. 127.0.0.1:8080 (port 0 picks a free port)
  --data-dir DIR         Where uploads are stored; created if missing, kept across restarts
  --max-file-size BYTES  Largest accepted file (default 10000000000)
  --default-ttl SECS     Lifetime of an upload that asks for none (default 2592000, 30 days)
  --max-ttl SECS         Longest lifetime a client may ask for (default 2592000; 0 = no limit)
";

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    match args.first().and_then(|a| a.to_str()) {
        Some("fileserver") => fileserver(&args[1..]),
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        None if args.is_empty() => {
            eprint!("{USAGE}");
            ExitCode::from(2)
        }
        _ => usage_error(&format!("unknown command {:?}", args[0])),
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("natsbridge: {message}");
    eprintln!("Try 'natsbridge --help'.");
    ExitCode::from(2)
}

// ---------------------------------------------------------------------------------------
// natsbridge fileserver

/// The `fileserver` command: parse, start, print the address, serve until a signal.
fn fileserver(args: &[OsString]) -> ExitCode {
    let config = match parse_fileserver_args(args) {
        Ok(Some(config)) => config,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => return usage_error(&message),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("natsbridge: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(serve_until_signal(config));
    // Do not wait for stragglers (a slow client's blocking file I/O) once we are done.
    runtime.shutdown_background();
    code
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
    if let Err(e) = termination_signal().await {
        eprintln!("natsbridge: cannot wait for signals: {e}");
        return ExitCode::FAILURE;
    }
    // Graceful: finish transfers in flight. A second signal cuts that short.
    tokio::select! {
        () = server.shutdown() => ExitCode::SUCCESS,
        _ = termination_signal() => {
            eprintln!("natsbridge: second signal, exiting without waiting for transfers");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
async fn termination_signal() -> io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut terminate = signal(SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result,
            _ = terminate.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}

/// `Ok(None)` when help was asked for.
fn parse_fileserver_args(args: &[OsString]) -> Result<Option<FileServerConfig>, String> {
    let mut listen: Option<SocketAddr> = None;
    let mut data_dir: Option<PathBuf> = None;
    let mut max_file_size: Option<u64> = None;
    let mut default_ttl: Option<u64> = None;
    let mut max_ttl: Option<u64> = None;

    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let arg = arg
            .to_str()
            .ok_or_else(|| format!("unexpected argument {arg:?}"))?;
        if arg == "-h" || arg == "--help" {
            return Ok(None);
        }
        // `--flag value` or `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(OsString::from(value))),
            _ => (arg, None),
        };
        if !matches!(
            flag,
            "--listen" | "--data-dir" | "--max-file-size" | "--default-ttl" | "--max-ttl"
        ) {
            return Err(format!("unknown option '{flag}' for fileserver"));
        }
        let value = match inline {
            Some(value) => value,
            None => rest
                .next()
                .cloned()
                .ok_or_else(|| format!("option '{flag}' needs a value"))?,
        };
        match flag {
            "--listen" => set_once(&mut listen, flag, parse_listen(&value)?)?,
            "--data-dir" => {
                if value.is_empty() {
                    return Err("option '--data-dir' needs a non-empty value".into());
                }
                set_once(&mut data_dir, flag, PathBuf::from(value))?
            }
            "--max-file-size" => set_once(&mut max_file_size, flag, parse_number(flag, &value)?)?,
            "--default-ttl" => set_once(&mut default_ttl, flag, parse_number(flag, &value)?)?,
            _ => set_once(&mut max_ttl, flag, parse_number(flag, &value)?)?,
        }
    }

    let listen = listen.ok_or("missing required option '--listen ADDR'")?;
    let data_dir = data_dir.ok_or("missing required option '--data-dir DIR'")?;
    let mut config = FileServerConfig::new(listen, data_dir);
    if let Some(bytes) = max_file_size {
        config.max_file_size = bytes;
    }
    if let Some(secs) = default_ttl {
        config.default_ttl = Duration::from_secs(secs);
    }
    if let Some(secs) = max_ttl {
        config.max_ttl = Duration::from_secs(secs);
    }
    Ok(Some(config))
}

fn set_once<T>(slot: &mut Option<T>, flag: &str, value: T) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!("option '{flag}' given more than once"));
    }
    *slot = Some(value);
    Ok(())
}

fn parse_listen(value: &OsString) -> Result<SocketAddr, String> {
    value
        .to_str()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| {
            format!("invalid value {value:?} for '--listen': expected IP:PORT, e.g. 127.0.0.1:8080 or [::1]:8080")
        })
}

fn parse_number(flag: &str, value: &OsString) -> Result<u64, String> {
    value.to_str().and_then(|v| v.parse().ok()).ok_or_else(|| {
        format!("invalid value {value:?} for '{flag}': expected a non-negative integer")
    })
}
