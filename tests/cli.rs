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
    let mut child = Command::new(BIN)
        .args(["fileserver", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
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
