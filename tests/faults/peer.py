"""The Python binding's side of the fault matrix and the soak, one role per run:

  peer.py send     --nats URL --subject S --name NAME --log FILE [--confirm]
                   sends one envelope every --interval s until stdin closes, then flushes
  peer.py threads  --nats URL --subject S --threads 16 --count 1000   (one sync client)
  peer.py aio      --nats URL --subject S --tasks 8 --count 300 --bytes 2048 (one aio client)
  peer.py recv     --nats URL --subject S --allow-origin URL [--unordered]
                   [--download-timeout S] [--min-transfer-rate B/s]
                   prints each envelope or error as it comes, until stdin closes
                   (--unordered: a client with ordered_subscriptions=False)
  peer.py upload   --nats URL --subject S --fileserver URL --bytes N [--no-fallback]
  peer.py soak-send / soak-recv   (tests/faults/soak.py)

Each prints one JSON object a line: {"event": "ready", ...} once it can work, then its
events, {"event": "done", ...} with its counts (and the client's ``dropped``) at the end, or
{"event": "fatal", ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
from typing import Any, Dict, List, Tuple

import natsbridge
from natsbridge import NatsBridgeError

def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def fatal(message: str) -> None:
    emit("fatal", message=message)
    sys.exit(2)


def stdin_closed() -> threading.Event:
    """Set when standard input reaches EOF: the runner's "stop" signal."""
    ev = threading.Event()

    def watch() -> None:
        sys.stdin.read()
        ev.set()

    threading.Thread(target=watch, daemon=True).start()
    return ev


def outcome(call: Any) -> str:
    """'OK', or the error code of ``call()``."""
    try:
        call()
        return "OK"
    except NatsBridgeError as e:
        return e.code


# ---------------------------------------------------------------------------------------


def role_send(a: argparse.Namespace) -> None:
    """A sender across a server restart: one envelope every interval until stdin closes."""
    client = natsbridge.connect(
        a.nats,
        use_env=False,
        fileserver_url="",
        sender_name=a.name,
        connect_timeout=1.0,
        operation_timeout=a.operation_timeout,
    )
    stop = stdin_closed()
    emit("ready")
    log: List[Tuple[str, float, float, str]] = []
    i = 0
    while not stop.is_set():
        mid = f"{a.name}-{i}"
        t0 = time.time()
        try:
            client.smartsend(a.subject, [("id", mid, "text")], msg_id=mid, confirm=a.confirm)
            status = "OK"
        except NatsBridgeError as e:
            status = e.code
        log.append((mid, t0, time.time(), status))
        i += 1
        stop.wait(a.interval)
    flush = outcome(client.flush)
    dropped = client.dropped
    closed = outcome(client.close)
    write_log(a.log, log)
    emit("done", flush=flush, close=closed, dropped=dropped)


def write_log(path: str, log: List[Tuple[str, float, float, str]]) -> None:
    """One line per send: id, start and end (Unix seconds), OK or the error code."""
    with open(path, "w") as f:
        for mid, t0, t1, status in log:
            f.write(f"{mid}\t{t0:.6f}\t{t1:.6f}\t{status}\n")


def role_threads(a: argparse.Namespace) -> None:
    """``threads`` threads each sending ``count`` envelopes through one sync client."""
    client = natsbridge.connect(a.nats, use_env=False, fileserver_url="", sender_name="threads")
    barrier = threading.Barrier(a.threads + 1)
    failed: List[Tuple[str, str]] = []
    longest = [0.0]

    def work(t: int) -> None:
        barrier.wait()
        for i in range(a.count):
            mid = f"t{t}-{i}"
            t0 = time.monotonic()
            try:
                client.smartsend(a.subject, [("n", mid, "text")], msg_id=mid)
            except NatsBridgeError as e:
                failed.append((mid, e.code))
            longest[0] = max(longest[0], time.monotonic() - t0)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(a.threads)]
    for th in threads:
        th.start()
    emit("ready")
    barrier.wait()
    t0 = time.monotonic()
    for th in threads:
        th.join()
    elapsed = time.monotonic() - t0
    flush = outcome(client.flush)
    emit(
        "done",
        attempted=a.threads * a.count,
        failed=failed,
        flush=flush,
        dropped=client.dropped,
        close=outcome(client.close),
        seconds=elapsed,
        longest=longest[0],
    )


def role_aio(a: argparse.Namespace) -> None:
    """``tasks`` asyncio tasks each sending ``count`` small audio payloads through one
    ``natsbridge.aio`` client (the inline try-publish path)."""
    clip = bytes(range(256)) * (a.bytes // 256) + bytes(a.bytes % 256)

    async def main() -> None:
        client = await natsbridge.aio.connect(
            a.nats, use_env=False, fileserver_url="", sender_name="aio"
        )
        failed: List[Tuple[str, str]] = []

        async def task(t: int) -> None:
            for i in range(a.count):
                mid = f"a{t}-{i}"
                try:
                    await client.smartsend(a.subject, [("clip", clip, "audio")], msg_id=mid)
                except NatsBridgeError as e:
                    failed.append((mid, e.code))

        emit("ready")
        t0 = time.monotonic()
        await asyncio.gather(*(task(t) for t in range(a.tasks)))
        elapsed = time.monotonic() - t0
        try:
            await client.flush()
            flush = "OK"
        except NatsBridgeError as e:
            flush = e.code
        dropped = client.dropped
        try:
            await client.close()
            closed = "OK"
        except NatsBridgeError as e:
            closed = e.code
        emit(
            "done",
            attempted=a.tasks * a.count,
            failed=failed,
            flush=flush,
            dropped=dropped,
            close=closed,
            seconds=elapsed,
        )

    asyncio.run(main())


def role_recv(a: argparse.Namespace) -> None:
    """A subscriber that downloads link payloads, reporting each envelope or error."""
    retry = tuple(float(x) for x in a.retry.split(","))
    client = natsbridge.connect(
        a.nats,
        use_env=False,
        fileserver_url="",
        allowed_origins=[a.allow_origin],
        download_retry=(int(retry[0]), retry[1], retry[2]),
        download_timeout=a.download_timeout,
        min_transfer_rate=a.min_transfer_rate,
        ordered_subscriptions=not a.unordered,
    )
    sub = client.subscribe(a.subject)
    client.flush()  # the server has the interest before the runner publishes
    stop = stdin_closed()
    emit("ready")
    while not stop.is_set():
        try:
            env = sub.next(timeout=0.2)
        except natsbridge.TimeoutError:
            continue
        except NatsBridgeError as e:
            emit("error", t=time.time(), code=e.code, correlation_id=e.correlation_id, message=str(e)[:300])
            continue
        emit(
            "envelope",
            t=time.time(),
            msg_id=env["msg_id"],
            correlation_id=env["correlation_id"],
            sizes=[len(v) if isinstance(v, (bytes, str)) else -1 for _, v, _ in env["payloads"]],
        )


def role_upload(a: argparse.Namespace) -> None:
    """One send of a payload over the threshold, to the file server at --fileserver."""
    client = natsbridge.connect(
        a.nats,
        use_env=False,
        fileserver_url=a.fileserver,
        size_threshold=1000,
        connect_timeout=a.connect_timeout,
        operation_timeout=a.operation_timeout,
        fallback_to_direct=a.fallback,
        sender_name="upload",
    )
    data = os.urandom(a.bytes)
    emit("ready")
    t0 = time.monotonic()
    try:
        env, _ = client.smartsend(a.subject, [("blob", data, "binary")], msg_id=a.msg_id)
        status, transports, message = "OK", [p["transport"] for p in env["payloads"]], ""
    except NatsBridgeError as e:
        status, transports, message = e.code, [], str(e)[:300]
    elapsed = time.monotonic() - t0
    flush = outcome(client.flush)
    emit("done", status=status, seconds=elapsed, transports=transports, message=message, flush=flush)
    client.close()


# ---------------------------------------------------------------------------------------
# The soak's two sides (tests/faults/soak.py)


def role_soak_recv(a: argparse.Namespace) -> None:
    """Receives the soak's traffic and answers its requests; prints counts every second."""
    client = natsbridge.connect(
        a.nats, use_env=False, fileserver_url=a.fileserver, sender_name="soak-recv"
    )
    counts = {"small": 0, "link": 0, "requests": 0, "errors": 0}
    errors: List[str] = []
    lock = threading.Lock()

    def on_env(env: Dict[str, Any]) -> None:
        kind = env["payloads"][0][0] if env["payloads"] else "?"
        with lock:
            counts["link" if kind == "big" else "small"] += 1

    def on_error(e: NatsBridgeError) -> None:
        with lock:
            counts["errors"] += 1
            errors.append(f"{e.code}: {e}"[:200])

    def on_request(env: Dict[str, Any]) -> None:
        client.reply(env, [("pong", env["payloads"][0][1], "text")])
        with lock:
            counts["requests"] += 1

    subs = [
        client.subscribe(f"{a.subject}.data", callback=on_env, error_callback=on_error),
        client.subscribe(f"{a.subject}.rpc", callback=on_request, error_callback=on_error),
    ]
    client.flush()
    stop = stdin_closed()
    emit("ready")
    while not stop.wait(1.0):
        with lock:
            emit("counts", **counts)
    for s in subs:
        s.close(raise_errors=False)
        counts["errors"] += len(s.errors)
        errors += [repr(e)[:200] for e in s.errors]
    emit("done", **counts, error_samples=errors[:5], close=outcome(client.close))


def role_soak_send(a: argparse.Namespace) -> None:
    """Mixed traffic until stdin closes: small envelopes, ~1 MB link payloads, requests."""
    client = natsbridge.connect(
        a.nats,
        use_env=False,
        fileserver_url=a.fileserver,
        sender_name="soak-send",
        link_ttl=60.0,
    )
    big = os.urandom(1_000_000)
    counts = {"small": 0, "link": 0, "requests": 0, "replies": 0, "errors": 0}
    errors: List[str] = []
    stop = stdin_closed()
    emit("ready")
    i = 0
    next_report = time.monotonic() + 1.0
    while not stop.is_set():
        try:
            client.smartsend(f"{a.subject}.data", [("small", f"m{i}", "text")])
            counts["small"] += 1
            if i % a.link_every == 0:
                client.smartsend(f"{a.subject}.data", [("big", big, "binary")])
                counts["link"] += 1
            if i % a.request_every == 0:
                counts["requests"] += 1
                reply = client.request(f"{a.subject}.rpc", [("ping", f"p{i}", "text")], timeout=10)
                if reply["payloads"][0][1] == f"p{i}":
                    counts["replies"] += 1
                else:
                    raise AssertionError(f"reply {reply['payloads']!r} to p{i}")
        except (NatsBridgeError, AssertionError) as e:
            counts["errors"] += 1
            errors.append(f"{getattr(e, 'code', 'WRONG_REPLY')}: {e}"[:200])
        i += 1
        if time.monotonic() >= next_report:
            emit("counts", **counts)
            next_report += 1.0
        stop.wait(a.interval)
    flush = outcome(client.flush)
    emit("done", **counts, error_samples=errors[:5], flush=flush, close=outcome(client.close))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("role")
    ap.add_argument("--nats", required=True)
    ap.add_argument("--subject", required=True)
    ap.add_argument("--name", default="py")
    ap.add_argument("--log")
    ap.add_argument("--confirm", action="store_true")
    ap.add_argument("--interval", type=float, default=0.01)
    ap.add_argument("--operation-timeout", type=float, default=2.0)
    ap.add_argument("--connect-timeout", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--tasks", type=int, default=8)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--bytes", type=int, default=2048)
    ap.add_argument("--allow-origin")
    ap.add_argument("--unordered", action="store_true")
    ap.add_argument("--download-timeout", type=float)
    ap.add_argument("--min-transfer-rate", type=int)
    ap.add_argument("--retry", default="3,0.1,0.4", help="attempts,first_delay,max_delay")
    ap.add_argument("--fileserver", default="")
    ap.add_argument("--no-fallback", dest="fallback", action="store_false")
    ap.add_argument("--msg-id")
    ap.add_argument("--link-every", type=int, default=10)
    ap.add_argument("--request-every", type=int, default=3)
    a = ap.parse_args()
    roles = {
        "send": role_send,
        "threads": role_threads,
        "aio": role_aio,
        "recv": role_recv,
        "upload": role_upload,
        "soak-send": role_soak_send,
        "soak-recv": role_soak_recv,
    }
    if a.role not in roles:
        fatal(f"unknown role {a.role!r}; one of {', '.join(roles)}")
    try:
        roles[a.role](a)
    except NatsBridgeError as e:
        fatal(f"{e.code}: {e}")


if __name__ == "__main__":
    main()
