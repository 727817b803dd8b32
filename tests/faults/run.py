"""The fault matrix (``make test-faults``): real nats-server, the embedded file server, the
Python, Node and Rust senders, and a fault-injecting HTTP proxy (faultproxy.py). Prints one
line per case with its counts and times, and exits non-zero when any case misses its
expectation.

  run.py [restart] [concurrency] [download] [upload]     (default: all four)

restart      nats-server is killed (SIGKILL) and started again on the same port while
             senders of each binding publish continuously. Every message must be received or
             reported (a failed call, or counted in the client's ``dropped``); no call may
             block past its deadline; every sender must be publishing again after the restart.
concurrency  many concurrent sends on one client (16 threads, 8 asyncio tasks, concurrent
             Node sends), counted by a raw nats-py subscriber: 0 lost, 0 duplicated.
download     a link payload served through the proxy in each fault mode: the receiver reports
             the error (or the payload) within the download deadline; a direct envelope behind
             a stalled download arrives within that deadline (ordered) or at once (unordered).
upload       a send over the threshold to a file server that refuses, never answers or
             answers 5xx: UPLOAD_FAILED within operation_timeout without fallback, direct
             delivery with it.

Durations are printed, not asserted tightly; the bounds below are generous on purpose.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from faultproxy import FaultProxy
from harness import (
    REPO,
    Failure,
    FileServer,
    NoEvent,
    NatsServer,
    Proc,
    RawCounter,
    Row,
    Table,
    TcpGate,
    free_port,
    node_peer,
    publish_raw,
    python_peer,
    rust_sender,
)

sys.path.insert(0, str(REPO / "bindings" / "python"))
from tests.helpers import hand_envelope, hand_payload, plik_upload  # noqa: E402

# -- restart ---------------------------------------------------------------------------------
OPERATION_TIMEOUT = 2.0  # each sender's operation_timeout (s)
CALL_BOUND = OPERATION_TIMEOUT + 1.5  # no send may take longer
BEFORE_KILL = 2.0  # senders publish this long before the kill,
DOWN = 2.0  # the server stays down this long,
AFTER_RESTART = 3.0  # and they publish this long after the restart
ARRIVAL_WAIT = 5.0  # how long the raw subscriber may take for what was sent
AT_RISK = 1.0  # a send this long before the kill may be unconfirmed when the connection drops

# -- download --------------------------------------------------------------------------------
DOWNLOAD_TIMEOUT = 3.0  # the receiver's download_timeout (s)
MIN_TRANSFER_RATE = 1_000_000  # its min_transfer_rate (B/s): the small blob adds 0.02 s
RETRY = (3, 0.1, 0.4)  # its download_retry: attempts, first delay, cap
BLOB_BYTES = 20_000
MARGIN = 2.0  # for the message to travel and the receiver to report it
PROMPT = 2.0  # "at once", for a direct envelope not held behind a download

# -- upload ----------------------------------------------------------------------------------
UPLOAD_BOUND = OPERATION_TIMEOUT + 2.0


def download_bound() -> float:
    """The longest a receiver may take to report one link payload's fate: the message's
    download deadline, which covers every attempt and the delays between them
    (download_timeout + declared size / min_transfer_rate), plus a margin."""
    return DOWNLOAD_TIMEOUT + BLOB_BYTES / MIN_TRANSFER_RATE + MARGIN


def new_subject(kind: str) -> str:
    return f"faults.{kind}.{uuid.uuid4().hex[:8]}"


def codes_text(codes: "collections.Counter[str]") -> str:
    return ", ".join(f"{c}×{n}" for c, n in codes.most_common())


# ---------------------------------------------------------------------------------------
# restart


@dataclass
class Sender:
    name: str
    confirm: bool
    make: Callable[[str, str, str, str], Proc]  # (name, nats_url, subject, log) -> Proc
    proc: Optional[Proc] = None
    log: str = ""
    report: Optional[Dict[str, Any]] = None
    problem: str = ""


def py_sender(confirm: bool) -> Callable[[str, str, str, str], Proc]:
    def make(name: str, url: str, subject: str, log: str) -> Proc:
        extra = ["--confirm"] if confirm else []
        return python_peer(
            name, "send", "--nats", url, "--subject", subject, "--name", name, "--log", log,
            "--interval", "0.01", "--operation-timeout", str(OPERATION_TIMEOUT), *extra,
            stdin=True,
        )

    return make


def js_sender(confirm: bool) -> Callable[[str, str, str, str], Proc]:
    def make(name: str, url: str, subject: str, log: str) -> Proc:
        extra = ["--confirm"] if confirm else []
        return node_peer(
            name, "send", "--nats", url, "--subject", subject, "--name", name, "--log", log,
            "--interval-ms", "10", "--operation-timeout-ms", str(int(OPERATION_TIMEOUT * 1000)),
            *extra, stdin=True,
        )

    return make


def rs_sender(name: str, url: str, subject: str, log: str) -> Proc:
    return rust_sender(
        name, "--nats", url, "--subject", subject, "--name", name, "--log", log,
        "--interval-ms", "10", "--operation-timeout-ms", str(int(OPERATION_TIMEOUT * 1000)),
        stdin=True,
    )


@dataclass
class Tally:
    """One sender's accounting across the restart (the one place it is computed)."""

    attempted: int
    failed: int
    codes: "collections.Counter[str]"
    received: int
    lost: int  # sends that returned OK and never arrived
    dropped: int  # the client's dropped counter
    unaccounted: int  # lost and not reported
    duplicates: int
    longest: float
    resumed: int  # OK sends started after the restart that arrived
    problems: List[str]


def sends_of(s: Sender) -> List["tuple[str, float, float, str]"]:
    """A sender's log: (id, start, end, OK or the error code) per send."""
    out = []
    for line in Path(s.log).read_text().splitlines():
        mid, t0, t1, status = line.split("\t")
        out.append((mid, float(t0), float(t1), status))
    return out


def account(s: Sender, counter: RawCounter, killed: float, reopened: float) -> Tally:
    sends = sends_of(s)
    report = s.report or {}
    ok_ids = [mid for mid, _, _, st in sends if st == "OK"]
    codes = collections.Counter(st for _, _, _, st in sends if st != "OK")
    lost = [mid for mid in ok_ids if mid not in counter.seen]
    dropped = int(report.get("dropped") or 0)
    # A confirmed send must have arrived, whatever the counter says.
    reported = 0 if s.confirm else dropped
    unaccounted = max(0, len(lost) - reported)
    longest = max((t1 - t0 for _, t0, t1, _ in sends), default=0.0)
    resumed = sum(1 for mid, t0, _, st in sends if st == "OK" and t0 > reopened and mid in counter.seen)
    problems = []
    if unaccounted:
        when = {mid: t0 for mid, t0, _, _ in sends}
        first = ", ".join(f"{m} at kill{when[m] - killed:+.3f}s" for m in lost[:3])
        problems.append(f"{unaccounted} sends returned OK, never arrived and were not reported ({first})")
    # `dropped` is an upper bound (a send the server got just before the kill, whose
    # confirmation was lost with the connection, counts too), but only sends around the kill
    # can have been at risk: those that returned OK from a second before it to the reopening.
    at_risk = sum(1 for _, t0, _, st in sends if st == "OK" and killed - AT_RISK <= t0 <= reopened)
    if dropped > at_risk:
        problems.append(f"dropped {dropped} > {at_risk} OK sends around the kill")
    dupes = counter.duplicates(m for m, _, _, _ in sends)
    if dupes:
        problems.append(f"{dupes} duplicates")
    if longest > CALL_BOUND:
        problems.append(f"a call took {longest:.2f} s > {CALL_BOUND:.1f} s")
    if not resumed:
        problems.append("no send after the restart arrived (did it reconnect?)")
    flush = report.get("flush")
    if dropped > 0 and flush != "MESSAGES_DROPPED":
        problems.append(f"flush() said {flush} after {dropped} drops (want MESSAGES_DROPPED)")
    elif flush not in ("OK", "MESSAGES_DROPPED"):
        problems.append(f"final flush(): {flush}")
    return Tally(
        attempted=len(sends),
        failed=sum(codes.values()),
        codes=codes,
        received=sum(1 for mid, _, _, _ in sends if mid in counter.seen),
        lost=len(lost),
        dropped=dropped,
        unaccounted=unaccounted,
        duplicates=dupes,
        longest=longest,
        resumed=resumed,
        problems=problems,
    )


async def scenario_restart(table: Table, tmp: Path) -> None:
    senders = [
        Sender("python", False, py_sender(False)),
        Sender("python-confirm", True, py_sender(True)),
        Sender("node", False, js_sender(False)),
        Sender("node-confirm", True, js_sender(True)),
        Sender("rust", False, rs_sender),
    ]
    nats = await NatsServer().start()
    gate = TcpGate(nats.port)
    await gate.open()
    subject = new_subject("restart")
    counter = await RawCounter(nats.url, subject).start()
    try:
        for s in senders:
            s.log = str(tmp / f"{s.name}.log")
            try:
                s.proc = await s.make(s.name, gate.url, subject, s.log).start()
            except Failure as e:
                s.problem = str(e)
        for s in senders:
            if s.proc is not None:
                try:
                    await s.proc.event("ready", 30)
                except Failure as e:
                    s.problem = str(e)
        running = [s for s in senders if not s.problem]
        await asyncio.sleep(BEFORE_KILL)  # the senders publish meanwhile
        killed = time.time()
        nats.kill()
        await gate.close()  # the port refuses connections while the server is down
        await nats.proc.wait(5)  # type: ignore[union-attr]
        await asyncio.sleep(DOWN)
        await nats.start()
        await counter.resubscribed(10)
        await gate.open()
        reopened = time.time()
        print(
            f"restart: killed nats-server at +{BEFORE_KILL:.0f} s, listening again after "
            f"{reopened - killed:.1f} s; the subscriber was back first",
            flush=True,
        )
        await asyncio.sleep(AFTER_RESTART)  # the senders publish meanwhile
        for s in running:
            s.proc.close_stdin()  # type: ignore[union-attr]
        for s in running:
            try:
                s.report = await s.proc.event("done", 3 * OPERATION_TIMEOUT + 10)  # type: ignore[union-attr]
            except Failure as e:
                s.problem = str(e)
        # Wait for everything a sender reported OK (bounded; returns as soon as it is in).
        want = {mid for s in running if s.report for mid, _, _, st in sends_of(s) if st == "OK"}
        await counter.wait_until(lambda: want.issubset(counter.seen.keys()), ARRIVAL_WAIT)
        for s in senders:
            if s.problem or s.report is None:
                table.add(Row("restart", s.name, False, "-", "-", s.problem or "no report"))
                continue
            t = account(s, counter, killed, reopened)
            table.add(
                Row(
                    "restart",
                    s.name,
                    not t.problems,
                    f"sent {t.attempted} recv {t.received} reported {t.failed + t.dropped} "
                    f"(failed {t.failed}, dropped {t.dropped}) lost {t.lost} unaccounted {t.unaccounted}",
                    f"longest call {t.longest:.2f}s",
                    "; ".join(t.problems + ([codes_text(t.codes)] if t.codes else [])),
                )
            )
    finally:
        for s in senders:
            if s.proc is not None:
                await s.proc.stop()
        await counter.close()
        await gate.close()
        await nats.stop()


# ---------------------------------------------------------------------------------------
# concurrency


async def scenario_concurrency(table: Table, nats: NatsServer) -> None:
    cases = [
        ("python 16 threads x 1000", lambda url, subj: python_peer(
            "py-threads", "threads", "--nats", url, "--subject", subj,
            "--threads", "16", "--count", "1000")),
        ("python aio 8 tasks x 300 2KB", lambda url, subj: python_peer(
            "py-aio", "aio", "--nats", url, "--subject", subj,
            "--tasks", "8", "--count", "300", "--bytes", "2048")),
        ("node 8 concurrent x 300 2KB", lambda url, subj: node_peer(
            "node-concurrent", "concurrent", "--nats", url, "--subject", subj,
            "--workers", "8", "--count", "300", "--bytes", "2048")),
    ]
    for name, make in cases:
        subject = new_subject("conc")
        counter = await RawCounter(nats.url, subject).start()
        proc: Optional[Proc] = None
        try:
            proc = await make(nats.url, subject).start()
            await proc.event("ready", 30)
            done = await proc.event("done", 120)
            failed = {mid for mid, _ in done["failed"]}
            attempted = done["attempted"]
            expected = attempted - len(failed)
            await counter.wait_until(lambda: len(counter.seen) >= expected, ARRIVAL_WAIT)
            received = len(counter.seen)
            sent_ok = set(counter.seen) - failed
            lost = expected - len(sent_ok)
            dupes = counter.duplicates()
            problems = []
            if failed:
                problems.append(codes_text(collections.Counter(c for _, c in done["failed"])))
            if lost:
                problems.append(f"{lost} sends returned OK and never arrived")
            if dupes:
                problems.append(f"{dupes} duplicates")
            if done["flush"] != "OK":
                problems.append(f"flush(): {done['flush']}")
            if done.get("dropped"):
                problems.append(f"dropped {done['dropped']}")
            rate = attempted / done["seconds"] if done["seconds"] else 0

            table.add(
                Row(
                    "concurrent",
                    name,
                    not problems,
                    f"sent {attempted} failed {len(failed)} recv {received} lost {lost} dup {dupes}",
                    f"{done['seconds']:.1f}s ({rate:.0f}/s)",
                    "; ".join(problems + ([f"longest call {done['longest']:.2f} s"] if "longest" in done else [])),
                )
            )
        except Failure as e:
            table.add(Row("concurrent", name, False, "-", "-", str(e)))
        finally:
            if proc is not None:
                await proc.stop()
            await counter.close()


# ---------------------------------------------------------------------------------------
# download


def recv_peer(name: str, url: str, subject: str, origin: str, unordered: bool = False) -> Proc:
    attempts, first, cap = RETRY
    args = [
        "recv", "--nats", url, "--subject", subject, "--allow-origin", origin,
        "--download-timeout", str(DOWNLOAD_TIMEOUT),
        "--min-transfer-rate", str(MIN_TRANSFER_RATE),
        "--retry", f"{attempts},{first},{cap}",
    ]
    return python_peer(name, *args, *(["--unordered"] if unordered else []), stdin=True)


async def next_about(proc: Proc, cid: str, timeout: float) -> Optional[Dict[str, Any]]:
    """The receiver's next envelope or error about correlation id ``cid`` (None: none in time)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            ev = await proc.event_of({"envelope", "error"}, deadline - time.monotonic())
        except NoEvent:
            return None
        if ev.get("correlation_id") == cid:
            return ev


async def until(done: Callable[[], bool], timeout: float) -> bool:
    """Polls a condition of this process that has no event to wait on (bounded)."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def stats_text(stats: "collections.Counter[str]") -> str:
    keys = ("connections", "requests", "refused", "blackholed", "trickled", "cut", "5xx",
            "redirected", "followed", "passed")
    seen = " ".join(f"{k} {stats[k]}" for k in keys if stats[k])
    return f"proxy: {seen}" if seen else "-"


async def scenario_download(table: Table, nats: NatsServer, files: FileServer) -> None:
    proxy = await FaultProxy(upstream=files.url).start()
    data = os.urandom(BLOB_BYTES)
    sha = hashlib.sha256(data).hexdigest()
    loop = asyncio.get_running_loop()
    real = await loop.run_in_executor(None, plik_upload, files.url, "blob.bin", data)
    path = real[len(files.url):]
    closed_port = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    bound = download_bound()
    print(
        f"download: {BLOB_BYTES} B link via {proxy.url}; download_timeout {DOWNLOAD_TIMEOUT:g} s, "
        f"min_transfer_rate {MIN_TRANSFER_RATE} B/s, download_retry {RETRY}; each case must "
        f"settle within {bound:.2f} s (the deadline + {MARGIN:g} s)",
        flush=True,
    )

    def link_envelope(subject: str, base: str) -> "tuple[bytes, str]":
        cid = str(uuid.uuid4())
        p = hand_payload("blob", "binary", data, transport="link", url=base + path, sha256=sha)
        return hand_envelope([p], correlation_id=cid, send_to=subject), cid

    faults = [
        # name, proxy mode (None: a closed port instead), what the receiver must report
        ("refuse (RST)", dict(mode="refuse"), {"DOWNLOAD_FAILED"}),
        ("closed port", None, {"DOWNLOAD_FAILED"}),
        ("blackhole", dict(mode="blackhole"), {"DOWNLOAD_FAILED", "TIMEOUT"}),
        ("trickle 1 B/s", dict(mode="trickle", rate=1.0), {"DOWNLOAD_FAILED", "TIMEOUT"}),
        ("cut half-way", dict(mode="cut"), {"DOWNLOAD_FAILED", "INTEGRITY_ERROR"}),
        ("5xx x2 then ok", dict(mode="5xx", k=2), "ok"),
        ("5xx always", dict(mode="5xx"), {"DOWNLOAD_FAILED"}),
        ("redirect 302 (refused)", dict(mode="redirect"), {"DOWNLOAD_FAILED"}),
    ]
    try:
        for name, mode, expect in faults:
            subject = new_subject("dl")
            base = closed_port if mode is None else proxy.url
            proxy.set(**(mode or {"mode": "pass"}))  # type: ignore[arg-type]
            proc = recv_peer("receiver", nats.url, subject, base)
            try:
                await proc.start()
                await proc.event("ready", 30)
                message, cid = link_envelope(subject, base)
                t0 = await publish_raw(nats.url, subject, message)
                ev = await next_about(proc, cid, bound)
                problems = []
                if ev is None:
                    problems.append(f"no outcome within {bound:.1f} s (still blocked)")
                    when = f">{bound:.1f}s (gave up)"
                else:
                    took = ev["t"] - t0
                    when = f"{'delivered' if expect == 'ok' else 'time-to-fail'} {took:.2f}s"
                    if expect == "ok":
                        if ev["event"] != "envelope":
                            problems.append(f"{ev['code']}: {ev['message']}")
                        elif ev["sizes"] != [BLOB_BYTES]:
                            problems.append(f"payload sizes {ev['sizes']}")
                    elif ev["event"] != "error":
                        problems.append("delivered, but a failure was expected")
                    elif ev["code"] not in expect:
                        problems.append(f"{ev['code']} (want {'/'.join(sorted(expect))}): {ev['message']}")
                    redirect = mode is not None and mode["mode"] == "redirect"
                    if redirect and proxy.stats["followed"]:
                        problems.append(f"the redirect was followed {proxy.stats['followed']}x")
                    if redirect and proxy.stats["requests"] > 1:
                        problems.append(f"a refused redirect was retried ({proxy.stats['requests']} requests)")
                note = "; ".join(x for x in (problems or [(ev or {}).get("code", "")]) if x)
                table.add(Row("download", name, not problems, stats_text(proxy.stats), when, note))
            except Failure as e:
                table.add(Row("download", name, False, stats_text(proxy.stats), "-", str(e)))
            finally:
                await proc.stop()

        # Head-of-line: a direct envelope behind a trickling (or silent) link envelope.
        for unordered, stall in ((False, "trickle"), (True, "trickle"), (True, "blackhole")):
            name = f"head-of-line {'unordered' if unordered else 'ordered'}, {stall}"
            limit = PROMPT if unordered else bound
            subject = new_subject("hol")
            proxy.set(stall, rate=1.0)
            stalled = "trickled" if stall == "trickle" else "blackholed"
            proc = recv_peer("receiver", nats.url, subject, proxy.url, unordered=unordered)
            try:
                await proc.start()
                await proc.event("ready", 30)
                slow, _ = link_envelope(subject, proxy.url)
                quick_cid = str(uuid.uuid4())
                quick = hand_envelope(
                    [hand_payload("note", "text", b"right behind")], correlation_id=quick_cid,
                    send_to=subject,
                )
                # The direct envelope is published once the stalled download is under way
                # (the receiver is then waiting for its next envelope, as a subscriber is).
                await publish_raw(nats.url, subject, slow)
                if not await until(lambda: proxy.stats[stalled] > 0, 10):
                    raise Failure("the receiver did not start the download within 10 s")
                t0 = await publish_raw(nats.url, subject, quick)
                ev = await next_about(proc, quick_cid, limit)
                if ev is None:
                    when, ok = f">{limit:.1f}s (gave up)", False
                    note = f"the direct envelope did not arrive within {limit:.1f} s"
                else:
                    took = ev["t"] - t0
                    ok = ev["event"] == "envelope" and took <= limit
                    when = f"direct after {took:.2f}s"
                    note = "" if ok else f"{ev.get('code', '')} after {took:.2f} s (limit {limit:.1f} s)"
                table.add(Row("download", name, ok, stats_text(proxy.stats), when, note))
            except Failure as e:
                table.add(Row("download", name, False, stats_text(proxy.stats), "-", str(e)))
            finally:
                await proc.stop()
    finally:
        await proxy.stop()


# ---------------------------------------------------------------------------------------
# upload


async def scenario_upload(table: Table, nats: NatsServer, files: FileServer) -> None:
    proxy = await FaultProxy(upstream=files.url).start()
    closed_port = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    faults = [
        ("refuse (RST)", dict(mode="refuse"), proxy.url),
        ("closed port", None, closed_port),
        ("blackhole", dict(mode="blackhole"), proxy.url),
        ("5xx", dict(mode="5xx"), proxy.url),
    ]
    print(
        f"upload: 50000 B over size_threshold 1000; operation_timeout {OPERATION_TIMEOUT:g} s; "
        f"each send must settle within {UPLOAD_BOUND:.1f} s",
        flush=True,
    )
    try:
        for fallback in (False, True):
            for name, mode, url in faults:
                case = f"{name}, fallback {'on' if fallback else 'off'}"
                if mode is not None:
                    proxy.set(**mode)  # type: ignore[arg-type]
                subject = new_subject("up")
                mid = str(uuid.uuid4())
                counter = await RawCounter(nats.url, subject).start()
                proc = python_peer(
                    "uploader", "upload", "--nats", nats.url, "--subject", subject,
                    "--fileserver", url, "--bytes", "50000", "--msg-id", mid,
                    "--operation-timeout", str(OPERATION_TIMEOUT), "--connect-timeout", "1",
                    *([] if fallback else ["--no-fallback"]),
                )
                try:
                    await proc.start()
                    await proc.event("ready", 30)
                    t0 = time.monotonic()
                    try:
                        done: Optional[Dict[str, Any]] = await proc.event("done", UPLOAD_BOUND + 1)
                    except NoEvent:
                        done = None
                    problems = []
                    if done is None:
                        took = time.monotonic() - t0
                        when = f">{took:.1f}s (gave up)"
                        problems.append(f"the send did not return within {UPLOAD_BOUND + 1:.1f} s")
                    else:
                        when = f"{'time-to-fail' if not fallback else 'direct after'} {done['seconds']:.2f}s"
                        if done["seconds"] > UPLOAD_BOUND:
                            problems.append(f"took {done['seconds']:.2f} s > {UPLOAD_BOUND:.1f} s")
                        if not fallback:
                            if done["status"] != "UPLOAD_FAILED":
                                problems.append(f"{done['status']} (want UPLOAD_FAILED)")
                            await counter.nc.flush()  # whatever was published has come by now
                            if mid in counter.seen:
                                problems.append("an envelope was published for a failed send")
                        else:
                            if done["status"] != "OK" or done["transports"] != ["direct"]:
                                problems.append(f"{done['status']} {done['transports']} {done['message']}")
                            else:
                                await counter.wait_until(lambda: mid in counter.seen, ARRIVAL_WAIT)
                                seen = counter.seen.get(mid)
                                if seen is None or seen.transports != ["direct"]:
                                    problems.append(f"not received direct ({seen})")
                    note = "; ".join(problems) or (done or {}).get("status", "")
                    table.add(Row("upload", case, not problems, stats_text(proxy.stats) if mode else "-", when, note))
                except Failure as e:
                    table.add(Row("upload", case, False, "-", "-", str(e)))
                finally:
                    await proc.stop()
                    await counter.close()
    finally:
        await proxy.stop()


# ---------------------------------------------------------------------------------------


SCENARIOS = ("restart", "concurrency", "download", "upload")


async def main(chosen: List[str]) -> bool:
    table = Table()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="nb-faults-") as tmp:
        tmpdir = Path(tmp)

        async def guarded(name: str, run: Callable[[], Any]) -> None:
            if name not in chosen:
                return
            t0 = time.monotonic()
            try:
                await run()
            except Failure as e:
                table.add(Row(name, "(set-up)", False, "-", "-", str(e)))
            print(f"{name}: {time.monotonic() - t0:.1f} s", flush=True)

        await guarded("restart", lambda: scenario_restart(table, tmpdir))
        nats = await NatsServer().start()
        files = await FileServer(tmpdir / "files").start()
        try:
            await guarded("concurrency", lambda: scenario_concurrency(table, nats))
            await guarded("download", lambda: scenario_download(table, nats, files))
            await guarded("upload", lambda: scenario_upload(table, nats, files))
        finally:
            await files.stop()
            await nats.stop()
    ok = table.summary()
    print(f"fault matrix: {time.monotonic() - started:.0f} s", flush=True)
    return ok


if __name__ == "__main__":
    chosen = sys.argv[1:] or list(SCENARIOS)
    unknown = [c for c in chosen if c not in SCENARIOS]
    if unknown:
        sys.exit(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    sys.exit(0 if asyncio.run(main(chosen)) else 1)
