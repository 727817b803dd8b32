//! `send`, `listen` and `request`: the bridge for people at a terminal.

use crate::args::{self, flag, many, value, Parsed};
use natsbridge::log::printable;
use natsbridge::store::safe_file_name;
use natsbridge::{
    AllowedOrigins, Client, Config, Credentials, Envelope, Error, ErrorCode, OutgoingPayload,
    PayloadType, SendOptions, Transport,
};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

const CONNECTION_HELP: &str = "\
Connection options:
  --nats URL              NATS server (default $NATS_URL or nats://localhost:4222)
  --fileserver URL        Plik-compatible file server (default $FILESERVER_URL or
                          http://localhost:8080); 'none' disables link transport.
                          http://USER:PASSWORD@HOST:PORT sends basic auth on uploads
  --fileserver-token TOKEN  Upload token the file server requires (default
                          $FILESERVER_TOKEN)
  --token TOKEN           NATS token
  --user USER --password PASSWORD   NATS user and password
  --creds FILE            NATS credentials file
  --tls-ca FILE           Extra root certificate (PEM) for tls:// servers
  --allow-origin ORIGIN   Also download link payloads from ORIGIN (repeatable)
  --allow-any-origin      Download link payloads from any http(s) origin
  --log LEVEL             Trace to stderr: warn, info or debug
";

const SEND_HELP: &str = "\
Envelope options:
  --correlation-id ID     Correlation id (default: a new UUID)
  --msg-id ID             Message id (default: a new UUID)
  --purpose PURPOSE       ACK, NACK, updateStatus, shutdown, chat (default), command, event
  --sender-name NAME      --sender-id ID      --receiver-name NAME      --receiver-id ID
  --reply-to SUBJECT      --reply-to-msg-id ID
  --metadata JSON         Message metadata, a JSON object
Transport options:
  --threshold BYTES       Payloads this large or larger go by link (default $SIZE_THRESHOLD or 500000)
  --oneshot               Upload one-shot files (deleted after the first download)
  --ttl SECS              How long the file server keeps uploads (default 86400)
  --no-fallback           Fail instead of sending direct when an upload fails
";

const CONNECTION_OPTS: &[args::Opt] = &[
    value("--nats"),
    value("--fileserver"),
    value("--fileserver-token"),
    value("--token"),
    value("--user"),
    value("--password"),
    value("--creds"),
    value("--tls-ca"),
    many("--allow-origin"),
    flag("--allow-any-origin"),
    value("--log"),
];

const SEND_OPTS: &[args::Opt] = &[
    value("--correlation-id"),
    value("--msg-id"),
    value("--purpose"),
    value("--sender-name"),
    value("--sender-id"),
    value("--receiver-name"),
    value("--receiver-id"),
    value("--reply-to"),
    value("--reply-to-msg-id"),
    value("--metadata"),
    value("--threshold"),
    flag("--oneshot"),
    value("--ttl"),
    flag("--no-fallback"),
    flag("--print-json"),
];

const LISTEN_OPTS: &[args::Opt] = &[
    value("--queue"),
    value("--save-dir"),
    value("--count"),
    value("--timeout"),
    flag("--json"),
];

fn spec(groups: &[&[args::Opt]]) -> Vec<args::Opt> {
    groups
        .iter()
        .flat_map(|g| g.iter())
        .map(|o| args::Opt {
            name: o.name,
            takes_value: o.takes_value,
            repeatable: o.repeatable,
        })
        .collect()
}

/// The client configuration from the environment and the connection options.
fn config(p: &Parsed) -> Result<Config, String> {
    let mut c = Config::from_env().map_err(|e| e.message().to_owned())?;
    c.client_name = Some("natsbridge-cli".into());
    if let Some(url) = p.get("--nats") {
        c.nats_url = url.to_owned();
    }
    if let Some(url) = p.get("--fileserver") {
        c.fileserver_url = (!url.is_empty() && url != "none").then(|| url.to_owned());
    }
    if let Some(token) = p.get("--fileserver-token") {
        c.fileserver_token = (!token.is_empty()).then(|| token.to_owned());
    }
    match (p.get("--token"), p.get("--user"), p.get("--creds")) {
        (Some(t), None, None) => c.credentials = Credentials::Token(t.into()),
        (None, Some(u), None) => {
            let password = p
                .get("--password")
                .ok_or("'--user' needs '--password' as well")?;
            c.credentials = Credentials::UserPassword {
                user: u.into(),
                password: password.into(),
            };
        }
        (None, None, Some(f)) => c.credentials = Credentials::CredsFile(f.into()),
        (None, None, None) => {}
        _ => return Err("give only one of '--token', '--user' or '--creds'".into()),
    }
    if let Some(ca) = p.get("--tls-ca") {
        c.tls.root_certificates.push(ca.into());
    }
    if p.has("--allow-any-origin") {
        c.link.allowed_origins = AllowedOrigins::Any;
    } else if !p.all("--allow-origin").is_empty() {
        c.link.allowed_origins = AllowedOrigins::These(p.all("--allow-origin").to_vec());
    }
    if let Some(t) = p.number::<usize>("--threshold")? {
        c.size_threshold = t;
    }
    if p.has("--oneshot") {
        c.link.oneshot = true;
    }
    if let Some(ttl) = p.number::<u64>("--ttl")? {
        c.link.ttl = Duration::from_secs(ttl);
    }
    if p.has("--no-fallback") {
        c.link.fallback_to_direct = false;
    }
    if let Some(level) = p.get("--log") {
        natsbridge::log::set_level(match level {
            "warn" => natsbridge::log::Level::Warn,
            "info" => natsbridge::log::Level::Info,
            "debug" => natsbridge::log::Level::Debug,
            "off" => natsbridge::log::Level::Off,
            other => {
                return Err(format!(
                    "invalid --log level {other:?}: use warn, info or debug"
                ))
            }
        });
    }
    c.validate().map_err(|e| e.message().to_owned())?;
    Ok(c)
}

fn send_options(p: &Parsed) -> Result<SendOptions, String> {
    let s = |name: &str| p.get(name).map(str::to_owned);
    let metadata = p
        .get("--metadata")
        .map(|m| match serde_json::from_str::<serde_json::Value>(m) {
            Ok(serde_json::Value::Object(map)) => Ok(map),
            _ => Err(format!("'--metadata' must be a JSON object, got {m:?}")),
        })
        .transpose()?;
    Ok(SendOptions {
        correlation_id: s("--correlation-id"),
        msg_id: s("--msg-id"),
        msg_purpose: s("--purpose"),
        sender_name: s("--sender-name"),
        sender_id: s("--sender-id"),
        receiver_name: s("--receiver-name"),
        receiver_id: s("--receiver-id"),
        reply_to: s("--reply-to"),
        reply_to_msg_id: s("--reply-to-msg-id"),
        metadata,
        ..Default::default()
    })
}

/// `NAME:TYPE=VALUE` or `NAME:TYPE=@FILE` (`@-`: standard input).
fn parse_payload(spec: &str) -> Result<OutgoingPayload, String> {
    let explain = "expected NAME:TYPE=VALUE or NAME:TYPE=@FILE, e.g. 'msg:text=hello' or img:image=@photo.png";
    let (head, val) = spec
        .split_once('=')
        .ok_or_else(|| format!("payload {spec:?}: {explain}"))?;
    let (name, ty) = head
        .split_once(':')
        .ok_or_else(|| format!("payload {spec:?} has no type: {explain}"))?;
    let payload_type: PayloadType = ty
        .parse()
        .map_err(|e: Error| format!("payload {spec:?}: {}", e.message()))?;
    let data = match val.strip_prefix('@') {
        Some("-") => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(|e| format!("reading standard input for {name:?}: {e}"))?;
            buf
        }
        Some(path) => std::fs::read(path)
            .map_err(|e| format!("reading {path:?} for payload {name:?}: {e}"))?,
        None => val.as_bytes().to_vec(),
    };
    Ok(OutgoingPayload::new(name, payload_type, data))
}

/// Prints an error: its message and correlation id may carry text from the network.
fn print_error(e: &Error) {
    eprintln!("natsbridge: {}", printable(&e.to_string()));
}

fn fail(e: &Error) -> ExitCode {
    print_error(e);
    let hint = match e.code() {
        ErrorCode::NatsConnectionFailed => {
            Some("is nats-server running? Point to it with --nats URL or NATS_URL.")
        }
        ErrorCode::UploadFailed => Some(
            "is the file server running, and does it want --fileserver-token? Start one with \
             'natsbridge fileserver', point to it with --fileserver URL, or raise --threshold to \
             send direct.",
        ),
        ErrorCode::DownloadFailed => Some("is the sender's file server reachable from here?"),
        ErrorCode::LinkUrlRejected => Some("trust that origin with --allow-origin ORIGIN."),
        ErrorCode::PayloadTooLarge => {
            Some("configure a file server (--fileserver URL) for large payloads.")
        }
        ErrorCode::NoResponders => Some("nobody listens on that subject; start a responder first."),
        _ => None,
    };
    if let Some(h) = hint {
        eprintln!("hint: {h}");
    }
    ExitCode::FAILURE
}

fn parse_send_like(
    command: &str,
    argv: &[String],
    usage: &str,
) -> Result<Option<(Parsed, Vec<OutgoingPayload>)>, ExitCode> {
    let p = args::parse(
        command,
        argv,
        &spec(&[CONNECTION_OPTS, SEND_OPTS, &[value("--timeout")]]),
    )
    .map_err(|m| crate::usage_error(command, &m))?;
    if p.help {
        print!("{usage}\n{SEND_HELP}\n{CONNECTION_HELP}");
        return Ok(None);
    }
    let Some((_, specs)) = p.positionals.split_first() else {
        return Err(crate::usage_error(command, "missing SUBJECT"));
    };
    if specs.is_empty() {
        return Err(crate::usage_error(
            command,
            "give at least one PAYLOAD (NAME:TYPE=VALUE or NAME:TYPE=@FILE)",
        ));
    }
    let payloads = specs
        .iter()
        .map(|s| parse_payload(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|m| crate::usage_error(command, &m))?;
    Ok(Some((p, payloads)))
}

/// `natsbridge send`.
pub fn send(argv: &[String]) -> ExitCode {
    let usage = "Usage: natsbridge send SUBJECT PAYLOAD... [options]\n\nPublishes one envelope. PAYLOAD is NAME:TYPE=VALUE or NAME:TYPE=@FILE (@- = stdin).\n";
    let (p, payloads) = match parse_send_like("send", argv, usage) {
        Ok(Some(x)) => x,
        Ok(None) => return ExitCode::SUCCESS,
        Err(code) => return code,
    };
    let (cfg, opts) = match config(&p).and_then(|c| Ok((c, send_options(&p)?))) {
        Ok(x) => x,
        Err(m) => return crate::usage_error("send", &m),
    };
    let subject = p.positionals[0].clone();
    let print_json = p.has("--print-json");
    crate::run_async(async move {
        let client = match Client::connect(cfg).await {
            Ok(c) => c,
            Err(e) => return fail(&e),
        };
        let sent = client.smartsend(&subject, payloads, opts).await;
        let closed = client.close().await;
        match sent.and_then(|s| closed.map(|_| s)) {
            Ok(sent) => {
                if print_json {
                    println!("{}", sent.json_str());
                } else {
                    let env = &sent.envelope;
                    println!(
                        "sent {} to {} ({} bytes, correlation {})",
                        env.msg_id,
                        subject,
                        sent.json.len(),
                        env.correlation_id
                    );
                    for pl in &env.payloads {
                        println!(
                            "  {:<16} {:<11} {:<6} {}",
                            pl.dataname,
                            pl.payload_type,
                            pl.transport,
                            human(pl.size)
                        );
                    }
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        }
    })
}

/// `natsbridge request`.
pub fn request(argv: &[String]) -> ExitCode {
    let usage = "Usage: natsbridge request SUBJECT PAYLOAD... [--timeout SECS] [options]\n\nSends one envelope with a reply inbox and prints the first reply (default timeout 10 s).\n";
    let (p, payloads) = match parse_send_like("request", argv, usage) {
        Ok(Some(x)) => x,
        Ok(None) => return ExitCode::SUCCESS,
        Err(code) => return code,
    };
    let parsed = config(&p).and_then(|c| {
        let t = p.number::<f64>("--timeout")?.unwrap_or(10.0);
        Ok((c, send_options(&p)?, Duration::from_secs_f64(t)))
    });
    let (cfg, opts, timeout) = match parsed {
        Ok(x) => x,
        Err(m) => return crate::usage_error("request", &m),
    };
    let subject = p.positionals[0].clone();
    crate::run_async(async move {
        let client = match Client::connect(cfg).await {
            Ok(c) => c,
            Err(e) => return fail(&e),
        };
        let reply = client.request(&subject, payloads, opts, timeout).await;
        let _ = client.close().await;
        match reply {
            Ok(env) => {
                print_envelope(&env, None);
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        }
    })
}

/// `natsbridge listen`.
pub fn listen(argv: &[String]) -> ExitCode {
    let p = match args::parse("listen", argv, &spec(&[CONNECTION_OPTS, LISTEN_OPTS])) {
        Ok(p) => p,
        Err(m) => return crate::usage_error("listen", &m),
    };
    if p.help {
        print!(
            "Usage: natsbridge listen SUBJECT [options]\n\nPrints each envelope received on SUBJECT (wildcards allowed) until Ctrl-C.\n\n\
             Options:\n  --queue GROUP           Join a queue group\n  --save-dir DIR          Save payloads as DIR/<msg_id>/<dataname>\n  \
             --count N               Exit after N envelopes\n  --timeout SECS          Exit with failure if nothing arrives for SECS\n  \
             --json                  One JSON line per envelope instead of the readable form\n\n{CONNECTION_HELP}"
        );
        return ExitCode::SUCCESS;
    }
    let subject = match p.positionals.as_slice() {
        [s] => s.clone(),
        [] => return crate::usage_error("listen", "missing SUBJECT"),
        [_, extra, ..] => {
            return crate::usage_error("listen", &format!("unexpected argument {extra:?}"))
        }
    };
    let parsed = config(&p).and_then(|c| {
        Ok((
            c,
            p.number::<u64>("--count")?,
            p.number::<f64>("--timeout")?,
        ))
    });
    let (cfg, count, timeout) = match parsed {
        Ok(x) => x,
        Err(m) => return crate::usage_error("listen", &m),
    };
    let queue = p.get("--queue").map(str::to_owned);
    let save_dir = p.get("--save-dir").map(PathBuf::from);
    let json = p.has("--json");
    crate::run_async(async move {
        let client = match Client::connect(cfg).await {
            Ok(c) => c,
            Err(e) => return fail(&e),
        };
        let sub = match client.subscribe(&subject, queue.as_deref()).await {
            Ok(s) => s,
            Err(e) => return fail(&e),
        };
        // On stderr, so that stdout stays machine-readable with --json.
        eprintln!("listening on {subject} (Ctrl-C to stop)");
        let mut seen = 0u64;
        let code = loop {
            if count.is_some_and(|c| seen >= c) {
                break ExitCode::SUCCESS;
            }
            let wait = async {
                match timeout {
                    Some(t) => tokio::time::timeout(Duration::from_secs_f64(t), sub.next())
                        .await
                        .ok(),
                    None => Some(sub.next().await),
                }
            };
            let item = tokio::select! {
                item = wait => item,
                _ = crate::termination_signal() => break ExitCode::SUCCESS,
            };
            match item {
                None => {
                    eprintln!("natsbridge: nothing received within the timeout");
                    break ExitCode::FAILURE;
                }
                Some(None) => break ExitCode::SUCCESS,
                Some(Some(Ok(env))) => {
                    seen += 1;
                    let saved = match save_dir.as_deref().map(|d| save(d, &env)).transpose() {
                        Ok(s) => s,
                        Err(e) => {
                            eprintln!("natsbridge: cannot save payloads: {e}");
                            break ExitCode::FAILURE;
                        }
                    };
                    if json {
                        println!("{}", summary_json(&env, saved.as_deref()));
                    } else {
                        print_envelope(&env, saved.as_deref());
                    }
                }
                Some(Some(Err(e))) => {
                    // A message we could not decode: report it and keep listening.
                    print_error(&e);
                }
            }
            let _ = std::io::stdout().flush();
        };
        sub.close().await;
        let _ = client.close().await;
        code
    })
}

fn save(dir: &Path, env: &Envelope) -> std::io::Result<PathBuf> {
    let target = dir.join(safe_file_name(&env.msg_id));
    std::fs::create_dir_all(&target)?;
    for p in &env.payloads {
        std::fs::write(
            target.join(safe_file_name(&p.dataname)),
            p.bytes().unwrap_or_default(),
        )?;
    }
    Ok(target)
}

fn human(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

/// A one-line description of a payload's content, with what came from the network made
/// printable.
fn preview(p: &natsbridge::Payload) -> String {
    let bytes = p.bytes().unwrap_or_default();
    let clip = |s: &str| match s.char_indices().nth(60) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_owned(),
    };
    let described = match p.payload_type {
        PayloadType::Text => format!("\"{}\"", clip(&String::from_utf8_lossy(bytes))),
        PayloadType::Dictionary => clip(&String::from_utf8_lossy(bytes)),
        PayloadType::JsonTable => match serde_json::from_slice::<Vec<serde_json::Value>>(bytes) {
            Ok(rows) => {
                let cols: Vec<String> = rows
                    .first()
                    .and_then(|r| r.as_object())
                    .map(|o| o.keys().cloned().collect())
                    .unwrap_or_default();
                format!("{} rows [{}]", rows.len(), cols.join(", "))
            }
            Err(_) => "unreadable rows".into(),
        },
        PayloadType::ArrowTable => arrow_preview(bytes),
        _ => {
            // A link payload's declared sha256 was checked against its bytes when fetched; a
            // direct payload's metadata is only what the sender claims.
            let sha = p
                .sha256()
                .filter(|_| p.transport == Transport::Link)
                .map(str::to_owned)
                .unwrap_or_else(|| {
                    use sha2::Digest;
                    hex::encode(sha2::Sha256::digest(bytes))
                });
            format!("sha256 {}…", sha.chars().take(16).collect::<String>())
        }
    };
    printable(&described).into_owned()
}

fn arrow_preview(bytes: &[u8]) -> String {
    let Ok(reader) = arrow_ipc::reader::StreamReader::try_new(bytes, None) else {
        return "Arrow IPC (file format or unreadable)".into();
    };
    let schema = reader.schema();
    let cols: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| format!("{}: {}", f.name(), f.data_type()))
        .collect();
    let rows: usize = reader.filter_map(Result::ok).map(|b| b.num_rows()).sum();
    format!("{rows} rows [{}]", cols.join(", "))
}

fn print_envelope(env: &Envelope, saved: Option<&Path>) {
    let mut out = String::new();
    // Every value shown comes from the network.
    let field = |out: &mut String, name: &str, v: &str| {
        if !v.is_empty() {
            out.push_str(&format!("  {name:<16} {}\n", printable(v)));
        }
    };
    out.push_str(&format!(
        "── {} on {} [{}] at {}\n",
        printable(&env.msg_id),
        printable(&env.send_to),
        printable(&env.msg_purpose),
        printable(&env.timestamp)
    ));
    field(&mut out, "correlation_id", &env.correlation_id);
    let sender = match (env.sender_name.as_str(), env.sender_id.as_str()) {
        ("", id) => id.to_owned(),
        (name, "") => name.to_owned(),
        (name, id) => format!("{name} ({id})"),
    };
    field(&mut out, "sender", &sender);
    let receiver = format!("{} {}", env.receiver_name, env.receiver_id);
    field(&mut out, "receiver", receiver.trim());
    field(&mut out, "reply_to", &env.reply_to);
    field(&mut out, "reply_to_msg_id", &env.reply_to_msg_id);
    if !env.metadata.is_empty() {
        field(
            &mut out,
            "metadata",
            &serde_json::Value::Object(env.metadata.clone()).to_string(),
        );
    }
    for p in &env.payloads {
        out.push_str(&format!(
            "  • {:<14} {:<10} {:<6} {:>10}  {}\n",
            printable(&p.dataname),
            p.payload_type.as_str(),
            p.transport.as_str(),
            human(p.size),
            preview(p)
        ));
    }
    if let Some(dir) = saved {
        out.push_str(&format!(
            "  saved to {}\n",
            printable(&dir.display().to_string())
        ));
    }
    print!("{out}");
}

fn summary_json(env: &Envelope, saved: Option<&Path>) -> serde_json::Value {
    let mut v = env.header_json();
    let payloads: Vec<serde_json::Value> = env
        .payloads
        .iter()
        .map(|p| {
            use sha2::Digest;
            serde_json::json!({
                "dataname": p.dataname,
                "payload_type": p.payload_type.as_str(),
                "transport": p.transport.as_str(),
                "size": p.size,
                "sha256": hex::encode(sha2::Sha256::digest(p.bytes().unwrap_or_default())),
                "url": if p.transport == Transport::Link { p.url.clone() } else { None },
            })
        })
        .collect();
    v["payloads"] = payloads.into();
    if let Some(dir) = saved {
        v["saved_to"] = dir.display().to_string().into();
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_specs() {
        let p = parse_payload("msg:text=a=b").unwrap();
        assert_eq!(
            (p.dataname.as_str(), p.payload_type, &p.data[..]),
            ("msg", PayloadType::Text, &b"a=b"[..])
        );
        assert!(parse_payload("msg=hello").unwrap_err().contains("no type"));
        assert!(parse_payload("msg:pdf=x")
            .unwrap_err()
            .contains("unknown payload_type"));
        assert!(parse_payload("x:binary=@/nonexistent/file")
            .unwrap_err()
            .contains("/nonexistent/file"));
        assert_eq!(safe_file_name("../a b"), "_a_b");
        assert_eq!(safe_file_name(".."), "payload");
    }
}
