//! The `natsbridge` command line: send, listen, request, and the embedded file server.
//! Arguments are parsed by hand to keep dependencies small.

mod args;
mod fileserver;
mod messaging;

use std::future::Future;
use std::io;
use std::process::ExitCode;

const USAGE: &str = "\
natsbridge: typed payloads over NATS with the claim-check pattern

Usage:
  natsbridge send SUBJECT PAYLOAD... [options]     publish one envelope
  natsbridge listen SUBJECT [options]              print envelopes as they arrive
  natsbridge request SUBJECT PAYLOAD... [options]  send and print the reply
  natsbridge fileserver --listen ADDR --data-dir DIR
                                                   run the Plik-compatible file server
  natsbridge COMMAND --help                        options of a command
  natsbridge --version

A PAYLOAD is NAME:TYPE=VALUE (a literal) or NAME:TYPE=@FILE (bytes of a file, @- for
standard input). TYPE is one of text, dictionary, arrowtable, jsontable, image, audio,
video, binary. Example:
  natsbridge send chat.demo 'msg:text=Hello World' img:image=@photo.png

Environment: NATS_URL (default nats://localhost:4222), FILESERVER_URL (default
http://localhost:8080), FILESERVER_TOKEN (upload token; none), SIZE_THRESHOLD (default
500000), NATSBRIDGE_LOG (off).
";

fn main() -> ExitCode {
    let argv: Vec<String> = match std::env::args_os()
        .skip(1)
        .map(|a| a.into_string())
        .collect::<Result<_, _>>()
    {
        Ok(v) => v,
        Err(bad) => {
            eprintln!("natsbridge: argument {bad:?} is not valid UTF-8");
            return ExitCode::from(2);
        }
    };
    let rest = argv.get(1..).unwrap_or_default();
    match argv.first().map(String::as_str) {
        Some("send") => messaging::send(rest),
        Some("listen") => messaging::listen(rest),
        Some("request") => messaging::request(rest),
        Some("fileserver") => fileserver::run(rest),
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some("-V" | "--version" | "version") => {
            println!("natsbridge {}", natsbridge::VERSION);
            ExitCode::SUCCESS
        }
        None => {
            eprint!("{USAGE}");
            ExitCode::from(2)
        }
        Some(other) => {
            eprintln!("natsbridge: unknown command {other:?}");
            eprintln!("Commands: send, listen, request, fileserver. Try 'natsbridge --help'.");
            ExitCode::from(2)
        }
    }
}

/// Reports a usage error for `command` and returns the usage exit code (2).
pub(crate) fn usage_error(command: &str, message: &str) -> ExitCode {
    eprintln!("natsbridge {command}: {message}");
    eprintln!("Try 'natsbridge {command} --help'.");
    ExitCode::from(2)
}

/// Runs `fut` on a fresh multi-thread runtime.
pub(crate) fn run_async(fut: impl Future<Output = ExitCode>) -> ExitCode {
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
    let code = runtime.block_on(fut);
    // Do not wait for stragglers (a slow client's blocking file I/O) once we are done.
    runtime.shutdown_background();
    code
}

/// Resolves on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
pub(crate) async fn termination_signal() -> io::Result<()> {
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
