//! `natsbridge fileserver`: the embedded Plik-compatible file server, until SIGINT or SIGTERM.

use crate::args::{self, many, value};
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
  --max-file-size BYTES  Largest accepted file (default 1073741824, 1 GiB)
  --max-total-size BYTES Quota on all stored files together (default 10737418240, 10 GiB;
                         0 = no limit)
  --default-ttl SECS     Lifetime of an upload that asks for none (default 2592000, 30 days)
  --max-ttl SECS         Longest lifetime a client may ask for (default 2592000; 0 = no limit)
  --token TOKEN          Creating an upload needs 'X-PlikToken: TOKEN' (repeatable; default
                         $FILESERVER_TOKEN when set)
  --basic-auth USER:PASSWORD
                         Creating an upload needs these as HTTP basic auth (default
                         $FILESERVER_BASIC_AUTH when set)
  --cors-origin ORIGIN   Let web pages of ORIGIN (scheme://host[:port], or '*' for any)
                         upload and download from a browser (repeatable; default none:
                         no CORS headers)

With a token or basic auth set, anonymous uploads are refused; a client may use either.
Downloads need no credentials: a link URL is the capability. Prefer the environment
variables to the flags for secrets (command lines are visible to other local users).
";

const SPEC: &[args::Opt] = &[
    value("--listen"),
    value("--data-dir"),
    value("--max-file-size"),
    value("--max-total-size"),
    value("--default-ttl"),
    value("--max-ttl"),
    many("--token"),
    value("--basic-auth"),
    many("--cors-origin"),
];

/// `Ok(None)` when help was asked for. `env` reads the environment.
fn parse(
    argv: &[String],
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<FileServerConfig>, String> {
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
    if let Some(bytes) = p.number("--max-total-size")? {
        config.max_total_size = bytes;
    }
    let set = |name: &str| env(name).filter(|v| !v.is_empty());
    config.upload_tokens = match p.all("--token") {
        [] => set("FILESERVER_TOKEN").into_iter().collect(),
        tokens => tokens.to_vec(),
    };
    if let Some(pair) = p
        .get("--basic-auth")
        .map(str::to_owned)
        .or_else(|| set("FILESERVER_BASIC_AUTH"))
    {
        let (user, password) = pair
            .split_once(':')
            .filter(|(user, _)| !user.is_empty())
            .ok_or("invalid basic auth: expected USER:PASSWORD with a non-empty USER")?;
        config.basic_auth = Some((user.to_owned(), password.to_owned()));
    }
    config.cors_origins = p.all("--cors-origin").to_vec();
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
    let config = match parse(argv, |name| std::env::var(name).ok()) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(args: &[&str], env: &[(&str, &str)]) -> Result<FileServerConfig, String> {
        let argv: Vec<String> = ["--listen", "127.0.0.1:0", "--data-dir", "d"]
            .iter()
            .chain(args)
            .map(|a| a.to_string())
            .collect();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse(&argv, |name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
        .map(|c| c.unwrap())
    }

    #[test]
    fn limits_and_credentials() {
        let c = parsed(&[], &[]).unwrap();
        assert_eq!(c.max_file_size, 1 << 30);
        assert_eq!(c.max_total_size, 10 << 30);
        assert!(c.upload_tokens.is_empty() && c.basic_auth.is_none());
        assert!(c.cors_origins.is_empty(), "no CORS unless asked");
        let c = parsed(&["--cors-origin", "http://a:1", "--cors-origin=*"], &[]).unwrap();
        assert_eq!(c.cors_origins, ["http://a:1", "*"]);

        let c = parsed(
            &[
                "--token",
                "a",
                "--token=b",
                "--basic-auth",
                "u:p:q",
                "--max-file-size",
                "1_000",
                "--max-total-size",
                "0",
            ],
            &[("FILESERVER_TOKEN", "env")],
        )
        .unwrap();
        assert_eq!(
            c.upload_tokens,
            ["a", "b"],
            "flags win over the environment"
        );
        assert_eq!(c.basic_auth, Some(("u".into(), "p:q".into())));
        assert_eq!((c.max_file_size, c.max_total_size), (1000, 0));

        let c = parsed(
            &[],
            &[
                ("FILESERVER_TOKEN", "env"),
                ("FILESERVER_BASIC_AUTH", "v:w"),
            ],
        )
        .unwrap();
        assert_eq!(c.upload_tokens, ["env"]);
        assert_eq!(c.basic_auth, Some(("v".into(), "w".into())));
        assert!(parsed(&[], &[("FILESERVER_TOKEN", "")])
            .unwrap()
            .upload_tokens
            .is_empty());

        for bad in ["nocolon", ":p"] {
            let e = parsed(&["--basic-auth", bad], &[]).unwrap_err();
            assert!(e.contains("USER:PASSWORD"), "{e}");
        }
        assert!(parsed(&["--max-total-size", "-1"], &[]).is_err());
    }
}
