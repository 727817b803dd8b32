"""A fault-injecting HTTP server / proxy for the fault matrix (stdlib asyncio only).

It sits in front of a real file server (``upstream``, e.g. ``natsbridge fileserver``) or
answers by itself (bodies registered with :meth:`FaultProxy.serve`), and misbehaves in the
mode it is set to:

==============  ===========================================================================
``pass``        forwards each request to the upstream (or answers a served body)
``refuse``      resets each connection as soon as it is accepted (RST, nothing read)
``blackhole``   accepts, reads whatever comes, never answers
``trickle``     answers the status line and headers at once, then the body ``rate`` bytes
                per second
``cut``         answers the headers (with the full Content-Length) and half the body, then
                closes
``5xx``         answers ``status`` (503) to the first ``k`` requests, then passes through
                (``k=None``: always)
``redirect``    answers 302 to ``location`` (default: the same path under ``/_elsewhere``,
                which this proxy serves in every mode and counts as ``followed``)
==============  ===========================================================================

Every response closes its connection, so each request is counted once in :attr:`stats`.
Changing the mode (:meth:`set`) resets the counters and aborts the connections still being
served (a trickle of the previous case does not linger).

In process::

    proxy = await FaultProxy(upstream="http://127.0.0.1:8080").start()
    proxy.set("trickle")
    ... proxy.url ...
    await proxy.stop()

Standalone (one instance per mode)::

    python tests/faults/faultproxy.py --upstream http://127.0.0.1:8080 --mode 5xx --k 2
    # prints "listening on http://127.0.0.1:PORT"
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import socket
import struct
import urllib.parse
from typing import Dict, List, Optional, Set, Tuple

MODES = ("pass", "refuse", "blackhole", "trickle", "cut", "5xx", "redirect")
ELSEWHERE = "/_elsewhere"
_MAX_HEAD = 64 * 1024

Headers = List[Tuple[str, str]]


class Response:
    def __init__(self, status: int, reason: str, headers: Headers, body: bytes) -> None:
        self.status, self.reason, self.headers, self.body = status, reason, headers, body

    def head(self) -> bytes:
        """Status line and headers, with this body's Content-Length and Connection: close."""
        skip = {"content-length", "transfer-encoding", "connection", "keep-alive"}
        lines = [f"HTTP/1.1 {self.status} {self.reason}"]
        lines += [f"{k}: {v}" for k, v in self.headers if k.lower() not in skip]
        lines += [f"Content-Length: {len(self.body)}", "Connection: close", "", ""]
        return "\r\n".join(lines).encode("latin-1")


def _plain(status: int, reason: str, text: str, extra: Headers = ()) -> Response:
    return Response(status, reason, [("Content-Type", "text/plain"), *extra], text.encode())


async def _read_head(reader: asyncio.StreamReader) -> Tuple[str, Headers]:
    raw = await reader.readuntil(b"\r\n\r\n")
    if len(raw) > _MAX_HEAD:
        raise ValueError("request head too large")
    lines = raw.decode("latin-1").split("\r\n")
    headers = [tuple(p.strip() for p in line.split(":", 1)) for line in lines[1:] if ":" in line]
    return lines[0], headers  # type: ignore[return-value]


def _header(headers: Headers, name: str) -> Optional[str]:
    return next((v for k, v in headers if k.lower() == name), None)


async def _read_body(reader: asyncio.StreamReader, headers: Headers) -> bytes:
    """A message body: by Content-Length, chunked, or (for a response) up to EOF."""
    if (_header(headers, "transfer-encoding") or "").lower() == "chunked":
        out = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # no trailers expected
                return bytes(out)
            out += await reader.readexactly(size)
            await reader.readexactly(2)
    length = _header(headers, "content-length")
    if length is not None:
        return await reader.readexactly(int(length))
    return b""


class FaultProxy:
    """One listening socket; see the module docstring for the modes."""

    def __init__(self, upstream: Optional[str] = None, host: str = "127.0.0.1", port: int = 0):
        self.upstream = urllib.parse.urlsplit(upstream) if upstream else None
        self.host, self.port = host, port
        self.mode = "pass"
        self.k: Optional[int] = None
        self.status = 503
        self.rate = 1.0
        self.location: Optional[str] = None
        self.blobs: Dict[str, bytes] = {}
        self.stats: "collections.Counter[str]" = collections.Counter()
        self._server: Optional[asyncio.base_events.Server] = None
        self._active: Set["asyncio.Task[None]"] = set()

    # -- control ---------------------------------------------------------------------------

    async def start(self) -> "FaultProxy":
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self._abort_active()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def set(
        self,
        mode: str,
        *,
        k: Optional[int] = None,
        status: int = 503,
        rate: float = 1.0,
        location: Optional[str] = None,
    ) -> None:
        """Switches to ``mode``, resets :attr:`stats` and aborts connections in progress."""
        if mode not in MODES:
            raise ValueError(f"unknown fault mode {mode!r}; one of {', '.join(MODES)}")
        self.mode, self.k, self.status, self.rate, self.location = mode, k, status, rate, location
        self.stats = collections.Counter()
        self._abort_active()

    def serve(self, path: str, body: bytes) -> str:
        """Answers GET ``path`` with ``body`` itself (in pass mode); returns its URL."""
        self.blobs[path] = body
        return self.url + path

    def _abort_active(self) -> None:
        for task in list(self._active):
            task.cancel()

    # -- serving ---------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._active.add(task)
        self.stats["connections"] += 1
        try:
            await self._serve_one(reader, writer)
            writer.close()  # after what was written (with RST when refusing)
            await writer.wait_closed()
        except (asyncio.CancelledError, ConnectionError, asyncio.IncompleteReadError):
            writer.transport.abort()
        except Exception as e:  # a malformed request: answer it, never crash the proxy
            self.stats["proxy_errors"] += 1
            bad = _plain(400, "Bad Request", f"faultproxy: {e}\n")
            writer.write(bad.head() + bad.body)
            writer.close()
        finally:
            self._active.discard(task)

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        mode = self.mode
        if mode == "refuse":
            self.stats["refused"] += 1
            sock = writer.get_extra_info("socket")
            if sock is not None:  # close with RST, as a port nobody serves would
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        if mode == "blackhole":
            self.stats["blackholed"] += 1
            while await reader.read(65536):
                pass
            await asyncio.Event().wait()  # the client closed its side; keep ours open
        request_line, headers = await _read_head(reader)
        body = await _read_body(reader, headers)
        method, target = request_line.split(" ")[:2]
        self.stats["requests"] += 1
        if target.startswith(ELSEWHERE + "/"):
            self.stats["followed"] += 1
            resp = await self._origin(method, target[len(ELSEWHERE) :], headers, body)
            await self._send(writer, resp)
            return
        if mode == "5xx" and (self.k is None or self.stats["5xx"] < self.k):
            self.stats["5xx"] += 1
            await self._send(writer, _plain(self.status, "Fault", "faultproxy: injected\n"))
            return
        if mode == "redirect":
            self.stats["redirected"] += 1
            where = self.location or self.url + ELSEWHERE + target
            await self._send(writer, _plain(302, "Found", "", [("Location", where)]))
            return
        resp = await self._origin(method, target, headers, body)
        if mode == "trickle":
            self.stats["trickled"] += 1
            writer.write(resp.head())
            await writer.drain()
            for i in range(len(resp.body)):
                writer.write(resp.body[i : i + 1])
                await writer.drain()
                self.stats["trickled_bytes"] += 1
                await asyncio.sleep(1.0 / self.rate)
            return
        if mode == "cut":
            self.stats["cut"] += 1
            writer.write(resp.head() + resp.body[: len(resp.body) // 2])
            await writer.drain()
            return
        self.stats["passed"] += 1
        await self._send(writer, resp)

    async def _send(self, writer: asyncio.StreamWriter, resp: Response) -> None:
        writer.write(resp.head() + resp.body)
        await writer.drain()

    async def _origin(self, method: str, target: str, headers: Headers, body: bytes) -> Response:
        """What the real server says: a served body, or the upstream's answer."""
        path = urllib.parse.urlsplit(target).path
        if method == "GET" and path in self.blobs:
            return Response(200, "OK", [("Content-Type", "application/octet-stream")], self.blobs[path])
        if self.upstream is None:
            return _plain(404, "Not Found", f"faultproxy: nothing at {path}\n")
        up = self.upstream
        r, w = await asyncio.open_connection(up.hostname, up.port or 80)
        try:
            hop = {"host", "connection", "keep-alive", "content-length", "transfer-encoding"}
            lines = [f"{method} {target} HTTP/1.0", f"Host: {up.netloc}", "Connection: close"]
            lines += [f"{k}: {v}" for k, v in headers if k.lower() not in hop]
            lines += [f"Content-Length: {len(body)}", "", ""]
            w.write("\r\n".join(lines).encode("latin-1") + body)
            await w.drain()
            status_line, resp_headers = await _read_head(r)
            if _header(resp_headers, "content-length") or _header(resp_headers, "transfer-encoding"):
                resp_body = await _read_body(r, resp_headers)
            else:
                resp_body = await r.read()
            parts = status_line.split(" ", 2)
            return Response(int(parts[1]), parts[2] if len(parts) > 2 else "", resp_headers, resp_body)
        finally:
            w.close()


async def _main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--upstream", help="base URL of the real server (default: answer itself)")
    ap.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT (port 0: a free one)")
    ap.add_argument("--mode", default="pass", choices=MODES)
    ap.add_argument("--k", type=int, default=None, help="5xx: how many requests fail first")
    ap.add_argument("--status", type=int, default=503, help="5xx: the status answered")
    ap.add_argument("--rate", type=float, default=1.0, help="trickle: bytes per second")
    ap.add_argument("--location", help="redirect: where to (default: /_elsewhere/...)")
    a = ap.parse_args()
    host, port = a.listen.rsplit(":", 1)
    proxy = await FaultProxy(a.upstream, host, int(port)).start()
    proxy.set(a.mode, k=a.k, status=a.status, rate=a.rate, location=a.location)
    print(f"listening on {proxy.url}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(_main())
    except KeyboardInterrupt:
        pass
