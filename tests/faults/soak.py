"""The soak (``make soak``): SOAK_SECONDS (default 300) of mixed traffic — small envelopes,
~1 MB link payloads through the embedded file server, request-reply — between a sender and a
receiver (peer.py soak-send / soak-recv) with the file server and nats-server, each a process
of its own. Every SOAK_SAMPLE_SECONDS (default 10) it samples the resident memory (VmRSS of
/proc/PID/status) and open file descriptors (/proc/PID/fd) of the sender, the receiver and the
file server, and the size of the file server's data directory; then prints the samples, each
one's growth from the first sample to the last, and the message counts.

Exits non-zero when a request got no (or a wrong) reply, when either side saw an error, or
when an envelope the sender published did not arrive.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List

from harness import Failure, FileServer, NatsServer, Proc, python_peer

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "300"))
SAMPLE_SECONDS = float(os.environ.get("SOAK_SAMPLE_SECONDS", "10"))
ARRIVAL_WAIT = 30.0  # for the receiver to catch up once the sender stops


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


class Follower:
    """Keeps the latest event of each kind a peer prints, and wakes waiters on each one."""

    def __init__(self, proc: Proc) -> None:
        self.proc = proc
        self.last: Dict[str, Dict[str, Any]] = {}
        self.changed = asyncio.Event()
        self.ended = False
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while (text := await self.proc.lines.get()) is not None:
            try:
                ev = json.loads(text)
            except ValueError:
                continue
            self.last[ev.get("event", "?")] = ev
            self.changed.set()
        self.ended = True
        self.changed.set()

    async def until(self, done: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if "fatal" in self.last:
                raise Failure(f"{self.proc.name}: {self.last['fatal'].get('message')}")
            if self.ended:
                raise Failure(f"{self.proc.name} ended before {what}; {self.proc.why()}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure(f"{self.proc.name}: no {what} within {timeout:.0f} s")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except asyncio.TimeoutError:
                pass


async def main() -> bool:
    with tempfile.TemporaryDirectory(prefix="nb-soak-") as tmp:
        data_dir = Path(tmp) / "files"
        nats = await NatsServer().start()
        files = await FileServer(data_dir).start()
        subject = f"soak.{uuid.uuid4().hex[:8]}"
        common = ["--nats", nats.url, "--subject", subject, "--fileserver", files.url]
        recv = await python_peer("receiver", "soak-recv", *common, stdin=True).start()
        send = python_peer(
            "sender", "soak-send", *common, "--interval", "0.03", "--link-every", "25",
            "--request-every", "3", stdin=True,
        )
        rf = Follower(recv)
        sf = None
        try:
            await rf.until(lambda: "ready" in rf.last, 30, "ready")
            await send.start()
            sf = Follower(send)
            await sf.until(lambda: "ready" in sf.last, 30, "ready")
            assert files.proc is not None
            procs = {"sender": send.pid, "receiver": recv.pid, "fileserver": files.proc.pid}
            print(
                f"soak: {SOAK_SECONDS:.0f} s of small / ~1 MB link / request-reply traffic, "
                f"sampled every {SAMPLE_SECONDS:.0f} s",
                flush=True,
            )
            head = f"{'t(s)':>6}" + "".join(f"{n + ' MB':>15}{'fds':>5}" for n in procs)
            head += f"{'disk MB':>9}{'sent':>8}{'links':>7}{'replies':>9}{'recv':>8}{'errors':>8}"
            print(head, flush=True)
            samples: List[Dict[str, Any]] = []
            start = time.monotonic()
            while True:
                t = time.monotonic() - start
                s = {"t": t, "disk": dir_bytes(data_dir)}
                for n, pid in procs.items():
                    s[n] = (rss_kb(pid), fds(pid))
                sc = sf.last.get("counts", {})
                rc = rf.last.get("counts", {})
                s["counts"] = (sc, rc)
                samples.append(s)
                line = f"{t:6.0f}" + "".join(f"{s[n][0] / 1024:15.1f}{s[n][1]:5d}" for n in procs)
                line += (
                    f"{s['disk'] / 2**20:9.1f}{sc.get('small', 0) + sc.get('link', 0):8d}{sc.get('link', 0):7d}"
                    f"{sc.get('replies', 0):9d}{rc.get('small', 0) + rc.get('link', 0):8d}"
                    f"{sc.get('errors', 0) + rc.get('errors', 0):8d}"
                )
                print(line, flush=True)
                if t >= SOAK_SECONDS:
                    break
                # The sampling period itself; a peer ending early ends the soak.
                try:
                    await asyncio.wait_for(
                        asyncio.shield(asyncio.gather(sf.task, rf.task)),
                        min(SAMPLE_SECONDS, SOAK_SECONDS - t + 0.01),
                    )
                    raise Failure("a peer ended during the soak; " + send.why() + "; " + recv.why())
                except asyncio.TimeoutError:
                    pass

            send.close_stdin()
            await sf.until(lambda: "done" in sf.last, 60, "final counts")
            sent = sf.last["done"]
            want = (sent["small"], sent["link"], sent["requests"])
            try:
                await rf.until(
                    lambda: tuple(rf.last.get("counts", {}).get(k, 0) for k in ("small", "link", "requests")) >= want,
                    ARRIVAL_WAIT,
                    "catch-up",
                )
            except Failure as e:
                print(f"soak: {e}", flush=True)
            recv.close_stdin()
            await rf.until(lambda: "done" in rf.last, 60, "final counts")
            got = rf.last["done"]
        finally:
            for p in (send, recv):
                await p.stop()
            await files.stop()
            await nats.stop()

    first, last = samples[0], samples[-1]
    # The second sample is the first with traffic warmed up: growth after it is what a leak
    # would show.
    warm = samples[1] if len(samples) > 2 else first
    print(f"growth, first sample to last (and from t={warm['t']:.0f} s, warmed up):", flush=True)
    for n in procs:
        (r0, f0), (rw, fw), (r1, f1) = first[n], warm[n], last[n]
        print(
            f"  {n:<11} RSS {r0 / 1024:7.1f} -> {r1 / 1024:7.1f} MB ({(r1 - r0) / 1024:+.1f} MB; "
            f"{(r1 - rw) / 1024:+.1f} MB)   fds {f0} -> {f1} ({f1 - f0:+d}; {f1 - fw:+d})",
            flush=True,
        )
    print(f"  data dir    {first['disk'] / 2**20:.1f} -> {last['disk'] / 2**20:.1f} MB", flush=True)
    problems = []
    lost_replies = sent["requests"] - sent["replies"]
    if lost_replies:
        problems.append(f"{lost_replies} of {sent['requests']} requests got no right reply")
    if sent["errors"] or got["errors"]:
        problems.append(
            f"errors: sender {sent['errors']} {sent['error_samples']}, "
            f"receiver {got['errors']} {got['error_samples']}"
        )
    for kind in ("small", "link"):
        if got[kind] != sent[kind]:
            problems.append(f"{kind}: sent {sent[kind]}, received {got[kind]}")
    if sent["flush"] != "OK":
        problems.append(f"the sender's final flush: {sent['flush']}")
    print(
        f"soak: sent {sent['small']} small + {sent['link']} link envelopes, received "
        f"{got['small']} + {got['link']}; {sent['requests']} requests, {sent['replies']} replies; "
        f"errors {sent['errors'] + got['errors']}",
        flush=True,
    )
    for p in problems:
        print(f"soak: FAIL {p}", flush=True)
    print(f"soak: {'passed' if not problems else 'failed'}", flush=True)
    return not problems


if __name__ == "__main__":
    try:
        ok = asyncio.run(main())
    except Failure as e:
        print(f"soak: FAIL {e}", flush=True)
        ok = False
    sys.exit(0 if ok else 1)
