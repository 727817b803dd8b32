//! The `natsbridge` command line against a real nats-server and its own file server.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_natsbridge");

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `natsbridge fileserver` on a free port and returns it with its URL.
fn fileserver(dir: &std::path::Path) -> (Killed, String) {
    fileserver_with(dir, &[], &[])
}

/// `natsbridge fileserver` with extra arguments and environment variables.
fn fileserver_with(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (Killed, String) {
    let mut child = Command::new(BIN)
        .args(["fileserver", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .args(args)
        .env_remove("FILESERVER_TOKEN")
        .env_remove("FILESERVER_BASIC_AUTH")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (Killed(child), url)
}

#[test]
fn send_and_listen_through_the_cli() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (_fs, fs_url) = fileserver(&dir.path().join("files"));
    let save = dir.path().join("saved");
    let mut listener = Command::new(BIN)
        .args([
            "listen",
            "cli.demo",
            "--count",
            "1",
            "--json",
            "--timeout",
            "20",
        ])
        .args(["--nats", &nats.url(), "--fileserver", &fs_url, "--save-dir"])
        .arg(&save)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(listener.stderr.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert!(ready.starts_with("listening on cli.demo"), "{ready:?}");

    let blob = bytes_of(40_000, 5);
    let blob_path = dir.path().join("blob.bin");
    std::fs::write(&blob_path, &blob).unwrap();
    let out = Command::new(BIN)
        .args(["send", "cli.demo", "msg:text=Hello World"])
        .arg(format!("blob:binary=@{}", blob_path.display()))
        .args([
            "cfg:dictionary={\"a\":1}",
            "--threshold",
            "10000",
            "--purpose",
            "event",
        ])
        .args([
            "--correlation-id",
            "cli-1",
            "--nats",
            &nats.url(),
            "--fileserver",
            &fs_url,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8(out.stdout).unwrap();
    assert!(said.contains("blob") && said.contains("link"), "{said}");

    let out = listener.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["correlation_id"], "cli-1");
    assert_eq!(v["msg_purpose"], "event");
    assert_eq!(v["payloads"][1]["transport"], "link");
    assert_eq!(v["payloads"][1]["size"], 40_000);
    let saved = std::path::PathBuf::from(v["saved_to"].as_str().unwrap());
    assert_eq!(std::fs::read(saved.join("blob")).unwrap(), blob);
    assert_eq!(std::fs::read(saved.join("msg")).unwrap(), b"Hello World");
    assert_eq!(std::fs::read(saved.join("cfg")).unwrap(), br#"{"a":1}"#);
}

#[test]
fn errors_say_what_to_do() {
    let out = Command::new(BIN)
        .args([
            "send",
            "x",
            "m:text=hi",
            "--nats",
            &format!("nats://127.0.0.1:{}", free_port()),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("NATS_CONNECTION_FAILED") && err.contains("hint:"),
        "{err}"
    );

    let out = Command::new(BIN)
        .args(["send", "x", "m=hi"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("NAME:TYPE=VALUE"));

    for cmd in ["send", "listen", "request", "fileserver"] {
        let out = Command::new(BIN).args([cmd, "--help"]).output().unwrap();
        assert!(out.status.success(), "{cmd} --help");
        assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("natsbridge {cmd}")));
    }
}

/// Upload directories in a file server's data directory.
fn uploads_in(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

#[test]
fn fileserver_tokens_and_limits_with_send() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("files");
    let (_fs, fs_url) = fileserver_with(
        &data,
        &[
            "--token",
            "tok-a",
            "--token",
            "tok-b",
            "--max-file-size",
            "30000",
        ],
        &[],
    );
    let blob = |len: usize, seed: u8| {
        let path = dir.path().join(format!("blob-{len}.bin"));
        std::fs::write(&path, bytes_of(len, seed)).unwrap();
        format!("blob:binary=@{}", path.display())
    };
    let send = |payload: &str, args: &[&str], env: &[(&str, &str)]| {
        Command::new(BIN)
            .args([
                "send",
                "cli.auth",
                payload,
                "--threshold",
                "10000",
                "--no-fallback",
            ])
            .args(["--nats", &nats.url(), "--fileserver", &fs_url])
            .args(args)
            .env_remove("FILESERVER_TOKEN")
            .envs(env.iter().copied())
            .output()
            .unwrap()
    };
    let small = blob(20_000, 1);

    let out = send(&small, &[], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("UPLOAD_FAILED") && err.contains("anonymous uploads are disabled"),
        "{err}"
    );
    assert!(
        err.contains("--fileserver-token"),
        "the hint names the flag: {err}"
    );
    assert_eq!(uploads_in(&data), 0);

    for (args, env) in [
        (&["--fileserver-token", "tok-b"][..], &[][..]),
        (&[][..], &[("FILESERVER_TOKEN", "tok-a")][..]),
    ] {
        let out = send(&small, args, env);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("link"));
    }
    assert_eq!(uploads_in(&data), 2);

    let out = send(&blob(40_000, 2), &["--fileserver-token", "tok-a"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("file too big (limit is set to 30000 bytes)"),
        "{err}"
    );
    assert_eq!(uploads_in(&data), 2, "the refused upload is gone");

    // The server takes its token from FILESERVER_TOKEN too; a bad --basic-auth is refused.
    let other = dir.path().join("other");
    let (_fs2, fs2_url) = fileserver_with(&other, &[], &[("FILESERVER_TOKEN", "env-tok")]);
    let out = Command::new(BIN)
        .args([
            "send",
            "cli.auth",
            &small,
            "--threshold",
            "10000",
            "--no-fallback",
        ])
        .args(["--nats", &nats.url(), "--fileserver", &fs2_url])
        .args(["--fileserver-token", "env-tok"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(BIN)
        .args(["fileserver", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&other)
        .args(["--basic-auth", "no-colon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("USER:PASSWORD"));
}

/// Publishes `payload` on `subject` as it is, through the NATS protocol itself, and returns
/// once the server has processed it (its PONG to our PING).
fn publish_raw(nats: &NatsServer, subject: &str, payload: &[u8]) {
    use std::io::Write;
    let stream = std::net::TcpStream::connect(("127.0.0.1", nats.port)).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("INFO"), "{line:?}");
    let mut w = &stream;
    write!(
        w,
        "CONNECT {{\"verbose\":false,\"pedantic\":false}}\r\nPUB {subject} {}\r\n",
        payload.len()
    )
    .unwrap();
    w.write_all(payload).unwrap();
    w.write_all(b"\r\nPING\r\n").unwrap();
    line.clear();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "PONG\r\n", "nats-server refused the publish");
}

/// Starts `natsbridge listen SUBJECT --count 1` (plus `extra`) and returns once it listens.
fn listener(nats: &NatsServer, subject: &str, extra: &[&str]) -> Child {
    let mut child = Command::new(BIN)
        .args(["listen", subject, "--count", "1", "--timeout", "20"])
        .args(["--nats", &nats.url(), "--fileserver", "none"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read up to the line saying it listens (byte by byte: the rest is read once it exits).
    let mut stderr = child.stderr.take().unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !(line.starts_with(b"listening on ") && line.ends_with(b"\n")) {
        if line.ends_with(b"\n") {
            line.clear();
        }
        let n = std::io::Read::read(&mut stderr, &mut byte).unwrap();
        assert_eq!(n, 1, "listen exited before listening: {line:?}");
        line.push(byte[0]);
    }
    child.stderr = Some(stderr);
    child
}

/// Control characters and bidi overrides that arrive in an envelope reach the terminal
/// escaped in the readable output, and exactly as sent with `--json`.
#[test]
fn listen_escapes_control_characters_from_the_network() {
    let nats = NatsServer::start();
    let hostile = "a\u{1b}[31mred\u{7}";
    let bidi = "x\u{202e}txt.exe\u{9b}";
    let envelope = serde_json::json!({
        "correlation_id": format!("c-{hostile}"),
        "msg_id": format!("m-{hostile}"),
        "sender_name": format!("s-{hostile}{bidi}"),
        "msg_purpose": "chat\u{7f}",
        "metadata": {"k\u{1b}]0;title\u{7}": bidi},
        "payloads": [
            {"dataname": format!("d-{hostile}"), "payload_type": "text", "transport": "direct",
             "data": base64_std(format!("text {hostile}\nsecond line {bidi}").as_bytes())},
            {"dataname": "rows", "payload_type": "jsontable", "transport": "direct",
             "data": base64_std(serde_json::json!([{format!("col{hostile}"): 1}]).to_string().as_bytes())},
            {"dataname": "bin", "payload_type": "binary", "transport": "direct", "data": "AAE=",
             "metadata": {"sha256": format!("{hostile}x€€€€€€€€")}}
        ]
    });
    // Refused (unknown payload type) with an error naming its correlation id.
    let refused = serde_json::json!({
        "correlation_id": format!("bad-{hostile}"),
        "payloads": [{"dataname": "x", "payload_type": "pdf\u{1b}[2J", "transport": "direct",
                      "data": ""}]
    });
    // With the library's log on stderr, whose lines carry ids and subjects too.
    let human = listener(&nats, "cli.hostile", &["--log", "info"]);
    let json = listener(&nats, "cli.hostile", &["--json"]);
    publish_raw(&nats, "cli.hostile", refused.to_string().as_bytes());
    publish_raw(&nats, "cli.hostile", envelope.to_string().as_bytes());

    let out = human.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let text = String::from_utf8(bytes.clone()).unwrap();
        println!("{stream}:\n{text}");
        for c in text.chars() {
            assert!(
                c == '\n' || !(c.is_control() || ('\u{202a}'..='\u{202e}').contains(&c)),
                "{stream} holds {c:?}: {text:?}"
            );
        }
    }
    let stdout = String::from_utf8(out.stdout).unwrap();
    let escaped = r"a\x1b[31mred\x07";
    for want in [
        format!("m-{escaped}"),
        format!("c-{escaped}"),
        format!("s-{escaped}x\\u{{202e}}txt.exe\\u{{9b}}"),
        format!("d-{escaped}"),
        format!("text {escaped}\\nsecond line"),
        format!("col{escaped}"),
        r"chat\x7f".to_owned(),
        // Metadata is shown as JSON, whose own escapes come first.
        r#"{"k\u001b]0;title\u0007":"x\u{202e}txt.exe\u{9b}"}"#.to_owned(),
        // A direct payload's claimed sha256 is not shown: the digest of its bytes is.
        "sha256 b413f47d13ee2fe6…".to_owned(),
    ] {
        assert!(stdout.contains(&want), "{want:?} not in {stdout}");
    }
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(r"INVALID_PAYLOAD_TYPE")
            && stderr.contains(&format!("(correlation_id bad-{escaped})"))
            && stderr.contains(&format!(
                "[Correlation: c-{escaped}] Received envelope m-{escaped}"
            )),
        "{stderr}"
    );

    // JSON lines are exact: serde_json escapes what JSON must, and the values read back equal.
    let out = json.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.stdout.contains(&0x1b) && !out.stdout.contains(&0x07));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "correlation_id",
        "msg_id",
        "sender_name",
        "msg_purpose",
        "metadata",
    ] {
        assert_eq!(v[key], envelope[key], "{key}");
    }
    assert_eq!(
        v["payloads"][0]["dataname"],
        envelope["payloads"][0]["dataname"]
    );
}

fn base64_std(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
