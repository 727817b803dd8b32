#!/usr/bin/env python3
"""`make bench`, Python part (issue #8, item 3).

Measures, in one run on one machine, end-to-end throughput (send → receive → decode) of
envelopes carrying one binary payload of 128 B, 4 KiB, 64 KiB and 499,999 B (just under the
500,000 B threshold: all direct):

* the Python binding (``natsbridge``, sync API: one thread sends with ``Client.smartsend``,
  the main thread takes envelopes with ``Subscription.next``; the fastest of our APIs);
* the best pure-Python implementation of the same wire format that we know: nats-py +
  orjson + base64 on asyncio (the envelope dict with every key, ``orjson.dumps``, publish; a
  subscription callback doing ``orjson.loads`` and ``base64.b64decode``), with a window of
  at most ~32 MB in flight (without one the server cuts off its receiver as a slow consumer);
* at 64 KiB and above, the Rust bridge itself (the Rust bench's ``--native SIZE N`` mode),
  for "binding ÷ Rust-native".

Prints one JSON line per measurement, in the format of ``tools/bench_report.py``.

Usage: bench.py [--quick] [--native-bin PATH] [--only SIZE]
Needs: NATSBRIDGE_LIB (or a built target/), a nats-server (NATS_SERVER_BIN or .venv), and
nats-py + orjson in this interpreter (installed into it when missing).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "bindings" / "python"))


def ensure_modules() -> None:
    """nats-py and orjson, installed into this interpreter's environment when missing."""
    missing = []
    for module, package in (("nats", "nats-py>=2.6,<3"), ("orjson", "orjson>=3.9")):
        try:
            __import__(module)
        except ImportError:
            missing.append(package)
    if missing:
        print(f"bench.py: installing {', '.join(missing)}", file=sys.stderr)
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
            + missing,
            check=True,
        )


ensure_modules()

import nats  # noqa: E402
import orjson  # noqa: E402

import natsbridge  # noqa: E402

SIZES = [128, 4096, 65536, 499_999]
THRESHOLD = 500_000


def emit(line: Dict[str, Any]) -> None:
    print(json.dumps(line, ensure_ascii=False), flush=True)


def label(size: int) -> str:
    if size >= 100_000:
        return f"{size:,} B"
    if size >= 1024 and size % 1024 == 0:
        return f"{size // 1024} KiB"
    return f"{size} B"


# ---------------------------------------------------------------------------------------
# nats-server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NatsServer:
    def __init__(self) -> None:
        binary = os.environ.get("NATS_SERVER_BIN") or str(REPO / ".venv" / "bin" / "nats-server")
        if not os.access(binary, os.X_OK):
            sys.exit(f"bench.py: no nats-server at {binary} (set NATS_SERVER_BIN)")
        self.port = free_port()
        self.dir = tempfile.TemporaryDirectory()
        conf = Path(self.dir.name) / "nats.conf"
        conf.write_text(f"listen: 127.0.0.1:{self.port}\n")
        self.proc = subprocess.Popen(
            [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        sys.exit("bench.py: nats-server did not start")

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.dir.cleanup()


# ---------------------------------------------------------------------------------------
# The binding


def run_binding(url: str, subject: str, data: bytes, n: int) -> Tuple[float, List[str]]:
    """Seconds for n envelopes sent by one thread and received + decoded by this one."""
    problems: List[str] = []
    with natsbridge.connect(
        url, fileserver_url="", subscription_queue=max(1024, n + 16), use_env=False
    ) as client:
        with client.subscribe(subject) as sub:
            payloads = [("p", data, "binary")]
            failed: List[BaseException] = []

            def send() -> None:
                try:
                    for _ in range(n):
                        client.smartsend(subject, payloads)
                except BaseException as e:  # reported below
                    failed.append(e)

            sender = threading.Thread(target=send)
            start = time.perf_counter()
            sender.start()
            got = 0
            try:
                while got < n:
                    env = sub.next(timeout=30)
                    value = env["payloads"][0][1]
                    if len(value) != len(data):
                        problems.append(f"binding: payload of {len(value)} B, expected {len(data)}")
                        break
                    got += 1
            except natsbridge.NatsBridgeError as e:
                problems.append(f"binding: {e.code}: {e} after {got}/{n}")
            elapsed = time.perf_counter() - start
            sender.join()
            if failed:
                problems.append(f"binding send failed: {failed[0]!r}")
            if sub.dropped:
                problems.append(f"binding: {sub.dropped} dropped (slow consumer)")
    return elapsed, problems


# ---------------------------------------------------------------------------------------
# Pure Python: nats-py + orjson + base64, the same wire format


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")[
        :-6
    ] + "Z"


async def run_pure(url: str, subject: str, data: bytes, n: int) -> Tuple[float, List[str]]:
    problems: List[str] = []
    errors: List[str] = []

    async def error_cb(e: Exception) -> None:
        errors.append(repr(e))

    nc = await nats.connect(url, error_cb=error_cb, pending_size=8 * 1024 * 1024)
    sender_id = str(uuid.uuid4())
    done = asyncio.get_running_loop().create_future()
    got = 0
    # Flow control: at most `window` envelopes (~32 MB) between publish and decode. Without
    # it the Python receiver falls behind, the server's buffer for it overflows, and the
    # server cuts the connection (messages lost: an invalid run).
    window = max(16, (32 << 20) // max(1, len(data)))
    room = asyncio.Event()
    room.set()
    b64decode = base64.b64decode
    loads = orjson.loads

    async def on_msg(msg: Any) -> None:
        nonlocal got
        env = loads(msg.data)
        for p in env["payloads"]:
            if p["transport"] != "direct":
                raise ValueError("link payloads are not part of this benchmark")
            value = b64decode(p["data"])
            if len(value) != p["size"]:
                problems.append("pure: size mismatch")
        got += 1
        if not room.is_set() and sent - got < window // 2:
            room.set()
        if got == n and not done.done():
            done.set_result(None)

    sub = await nc.subscribe(
        subject, cb=on_msg, pending_msgs_limit=n + 16, pending_bytes_limit=4 << 30
    )
    await nc.flush()
    size = len(data)
    dumps = orjson.dumps
    b64encode = base64.b64encode
    sent = 0
    start = time.perf_counter()
    for _ in range(n):
        if sent - got >= window:
            room.clear()
            # Flow control only: a busy machine can take a while to drain ~32 MB.
            await nc.flush(timeout=60)
            await room.wait()
        env = {
            "correlation_id": str(uuid.uuid4()),
            "msg_id": str(uuid.uuid4()),
            "timestamp": now_iso(),
            "send_to": subject,
            "msg_purpose": "chat",
            "sender_name": "",
            "sender_id": sender_id,
            "receiver_name": "",
            "receiver_id": "",
            "reply_to": "",
            "reply_to_msg_id": "",
            "broker_url": url,
            "metadata": {},
            "payloads": [
                {
                    "id": str(uuid.uuid4()),
                    "dataname": "p",
                    "payload_type": "binary",
                    "transport": "direct",
                    "encoding": "base64",
                    "size": size,
                    "data": b64encode(data).decode("ascii"),
                    "metadata": {"payload_bytes": size},
                }
            ],
        }
        await nc.publish(subject, dumps(env))
        sent += 1
    try:
        await asyncio.wait_for(done, 60)
    except asyncio.TimeoutError:
        problems.append(f"pure: lost messages: {got}/{n}")
    elapsed = time.perf_counter() - start
    await sub.unsubscribe()
    await nc.close()
    if errors:
        problems.append("pure: " + "; ".join(sorted(set(errors))[:3]))
    return elapsed, problems


# ---------------------------------------------------------------------------------------
# The Rust bridge (the Rust bench's --native mode)


def run_native(native_bin: Optional[str], size: int, n: int) -> Optional[Dict[str, Any]]:
    if not native_bin:
        return None
    out = subprocess.run(
        [native_bin, "--native", str(size), str(n)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    for line in out.stdout.splitlines():
        if line.startswith("{"):
            return json.loads(line)
    print(f"bench.py: native run failed: {out.stderr[-2000:]}", file=sys.stderr)
    return None


# ---------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--native-bin", help="the Rust bench binary (benches/bridge.rs)")
    ap.add_argument("--only", type=int, help="one payload size")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    counts = {128: 20_000, 4096: 10_000, 65536: 2_000, 499_999: 200}
    if args.quick:
        counts = {k: max(20, v // 10) for k, v in counts.items()}
    sizes = [args.only] if args.only else SIZES
    server = NatsServer()
    try:
        for size in sizes:
            assert size < THRESHOLD
            n = counts.get(size, 1000)
            data = bytes((i * 131 + 7) % 251 for i in range(size))
            tb, tp, problems = [], [], []
            for r in range(args.rounds):
                t, p = run_binding(server.url, f"bench.py.b.{size}.{r}", data, n)
                tb.append(t)
                problems += p
                try:
                    t, p = asyncio.run(run_pure(server.url, f"bench.py.p.{size}.{r}", data, n))
                except Exception as e:  # the baseline failed this round: say so, go on
                    problems.append(f"pure Python round {r + 1} failed: {e!r}")
                    continue
                tp.append(t)
                problems += p
            if not tp:
                tp.append(float("nan"))
            b, p = statistics.median(tb), statistics.median(tp)
            small = size <= 4096
            unit = "msg/s" if small else "MB/s"

            def rate(t: float) -> float:
                return n / t if small else n * size / t / 1e6

            emit(
                {
                    "id": f"python_{size}",
                    "what": f"Python binding (sync API), {label(size)} binary, end to end",
                    "unit": unit,
                    "bridge": rate(b),
                    "baseline": rate(p),
                    "baseline_name": "pure Python: nats-py + orjson + base64 (asyncio)",
                    "ratio": p / b,
                    "target": ">= 3",
                    "valid": not problems,
                    "notes": "; ".join(problems[:3]),
                }
            )
            if size >= 65536:
                nat = run_native(args.native_bin, size, n)
                if nat is None:
                    continue
                native_valid = bool(nat.get("valid"))
                emit(
                    {
                        "id": f"python_native_{size}",
                        "what": f"Python binding ÷ Rust bridge, {label(size)} binary, end to end",
                        "unit": unit,
                        "bridge": rate(b),
                        "baseline": rate(nat["seconds"]),
                        "baseline_name": "Rust bridge (natsbridge::Client)",
                        "ratio": nat["seconds"] / b,
                        "target": ">= 0.8",
                        "valid": not problems and native_valid,
                        "notes": "; ".join(problems[:3] + ([nat["notes"]] if nat["notes"] else [])),
                    }
                )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
