"""What reaches the server, and in what order a subscription delivers (issue 12, items 1, 2,
7 and 9): sends that returned are never silently lost (``flush()`` covers them, a dropped
connection is reported as ``MessagesDroppedError``), ``confirm=True``, sends racing
``close()``, the per-message download deadline and ``ordered_subscriptions``."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections import Counter
from typing import Any, Dict, Iterator, List, Optional

import pytest

import natsbridge
from natsbridge import aio, errors

from .helpers import hand_envelope, hand_payload, interest_registered, publish_raw, wait_until

SENTINEL = "sentinel"
_CORRELATION_ID = re.compile(rb'"correlation_id": ?"([^"]*)"')
_MSG_ID = re.compile(rb'"msg_id": ?"([^"]*)"')


class RawCounter:
    """A nats-py subscriber on a thread and event loop of its own, counting envelopes by
    ``msg_id`` independently of the client under test.

    ``settle()`` publishes a sentinel on the subscriber's own connection and waits for it to
    come back: on one server, everything the server had processed before (in particular what
    a client's ``flush()`` or ``close()`` had it confirm) is delivered before it.
    """

    def __init__(self, nats_url: str, subject: str) -> None:
        self.nats_url = nats_url
        self.subject = subject
        self.ids: "Counter[str]" = Counter()
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._sentinels: Dict[str, threading.Event] = {}
        self._error: Optional[BaseException] = None
        self._loop = asyncio.new_event_loop()
        self._stop: Optional[asyncio.Event] = None
        self._nc: Any = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "RawCounter":
        self._thread.start()
        if not self._ready.wait(20) or self._error is not None:
            raise AssertionError(f"the raw subscriber did not start: {self._error!r}")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(20)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as e:  # reported by __enter__ or the assertions
            self._error = e
            self._ready.set()

    async def _main(self) -> None:
        import nats

        self._stop = asyncio.Event()
        nc = await nats.connect(self.nats_url)
        self._nc = nc

        async def on_msg(msg: Any) -> None:
            # The header's keys, without parsing large payloads.
            cid = _CORRELATION_ID.search(msg.data)
            if cid is not None and cid.group(1).startswith(SENTINEL.encode()):
                with self._lock:
                    ev = self._sentinels.get(cid.group(1).decode())
                if ev is not None:
                    ev.set()
                return
            found = _MSG_ID.search(msg.data)
            with self._lock:
                self.ids[found.group(1).decode() if found else "<no msg_id>"] += 1

        await nc.subscribe(self.subject, cb=on_msg, pending_msgs_limit=0, pending_bytes_limit=0)
        await nc.flush()
        self._ready.set()
        await self._stop.wait()
        await nc.close()

    def settle(self, timeout: float = 30.0) -> None:
        """Waits until everything the server processed before now was delivered here."""
        cid = f"{SENTINEL}-{time.monotonic_ns()}"
        ev = threading.Event()
        with self._lock:
            self._sentinels[cid] = ev
        raw = hand_envelope([], correlation_id=cid, msg_purpose="event")

        async def publish() -> None:
            await self._nc.publish(self.subject, raw)
            await self._nc.flush()

        asyncio.run_coroutine_threadsafe(publish(), self._loop).result(timeout)
        assert ev.wait(timeout), f"the sentinel did not come back within {timeout} s"

    def counts(self) -> "Counter[str]":
        with self._lock:
            return Counter(self.ids)


def lost_and_duplicated(got: "Counter[str]", sent: List[str]) -> "tuple[List[str], List[str]]":
    lost = [i for i in sent if got[i] == 0]
    duplicated = [i for i, n in got.items() if n > 1]
    return lost, duplicated


# -- item 1: every send an asyncio client reported as sent arrives ---------------------------


async def test_asyncio_sends_of_small_audio_all_arrive_after_flush(servers: Any, subject: str) -> None:
    """8 tasks x 300 sends of ~2 KB ``audio`` on one ``natsbridge.aio`` client (the inline
    ``nb_client_try_smartsend`` path), then a burst of 300 with ``asyncio.gather``: after
    ``await client.flush()`` a raw subscriber has every one exactly once."""
    tasks, per_task, burst = 8, 300, 300
    audio = bytes(range(256)) * 8  # 2048 bytes
    loop = asyncio.get_running_loop()
    with RawCounter(servers.nats_url, subject) as raw:
        async with await aio.connect(servers.nats_url, use_env=False) as ac:
            sent: List[str] = []

            async def sender(t: int) -> None:
                for i in range(per_task):
                    env, _ = await ac.smartsend(
                        subject, [("a", audio, "audio")], msg_id=f"t{t}-{i}"
                    )
                    sent.append(env["msg_id"])

            started = time.monotonic()
            await asyncio.gather(*(sender(t) for t in range(tasks)))
            results = await asyncio.gather(
                *(
                    ac.smartsend(subject, [("a", audio, "audio")], msg_id=f"burst-{i}")
                    for i in range(burst)
                )
            )
            sent += [env["msg_id"] for env, _ in results]
            await ac.flush()
            flushed = time.monotonic() - started
            assert ac.dropped == 0
            await loop.run_in_executor(None, raw.settle)
        got = raw.counts()
    lost, duplicated = lost_and_duplicated(got, sent)
    print(
        f"asyncio audio: sent {len(sent)} received {sum(got.values())} lost {len(lost)} "
        f"duplicated {len(duplicated)}; sent and flushed in {flushed:.2f} s"
    )
    assert len(sent) == tasks * per_task + burst == len(set(sent))
    assert not lost, f"{len(lost)} sends returned and never arrived: {lost[:10]}"
    assert not duplicated, duplicated[:10]
    assert sum(got.values()) == len(sent)


# -- item 9: sends racing close() ------------------------------------------------------------


def test_sends_racing_close_fail_with_closed_or_arrive(servers: Any, subject: str) -> None:
    """40 threads send in a loop while another thread closes the client (5 rounds): every
    failure is a ``ClosedError``, and every send that returned arrived. The payloads are
    large enough (100 kB, direct) that sends spend their time inside the library, where
    they race close()."""
    threads, rounds = 40, 5
    payload = bytes(100_000)
    sent: List[str] = []
    failures: List[BaseException] = []
    lock = threading.Lock()
    took: List[float] = []

    def one_round(r: int) -> None:
        client = natsbridge.connect(servers.nats_url, use_env=False)
        start = threading.Barrier(threads + 1)
        some_sent = threading.Event()
        before = len(sent)

        def sender(t: int) -> None:
            start.wait(10)
            for i in range(100_000):
                msg_id = f"{r}-{t}-{i}"
                try:
                    client.smartsend(subject, [("b", payload, "binary")], msg_id=msg_id)
                except BaseException as e:
                    with lock:
                        failures.append(e)
                    return
                with lock:
                    sent.append(msg_id)
                    if len(sent) - before >= 200:
                        some_sent.set()

        workers = [threading.Thread(target=sender, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        start.wait(10)
        assert some_sent.wait(60), "the senders did not get going"
        closed_at = time.monotonic()
        client.close()  # no MessagesDroppedError: the connection is healthy
        took.append(time.monotonic() - closed_at)
        for w in workers:
            w.join(60)
        assert not any(w.is_alive() for w in workers)

    with RawCounter(servers.nats_url, subject) as raw:
        for r in range(rounds):
            one_round(r)
        raw.settle()
        got = raw.counts()
    wrong = [e for e in failures if not isinstance(e, natsbridge.ClosedError)]
    from_library = sum(1 for e in failures if getattr(e, "status", None) is not None)
    lost, duplicated = lost_and_duplicated(got, sent)
    print(
        f"racing close, {rounds} rounds: {len(sent)} sent, {len(failures)} failed "
        f"({from_library} from the library, the rest from the binding's closed handle), "
        f"{len(wrong)} not CLOSED; close took at most {max(took):.3f} s; received "
        f"{sum(got.values())}, lost {len(lost)}"
    )
    assert not wrong, f"{len(wrong)} racing sends failed with something else: {wrong[:3]!r}"
    assert len(failures) == threads * rounds  # each thread stopped at its first failure
    assert not lost, f"{len(lost)} sends returned OK and never arrived: {lost[:10]}"
    assert not duplicated
    assert sum(got.values()) == len(sent)


# -- item 7: confirm=True, dropped, MESSAGES_DROPPED ----------------------------------------


def test_a_confirmed_send_arrives_and_a_healthy_connection_drops_nothing(
    servers: Any, subject: str
) -> None:
    with natsbridge.connect(servers.nats_url, use_env=False) as c:
        with c.subscribe(subject) as sub:
            interest_registered(c, sub, subject)
            started = time.monotonic()
            env, _ = c.smartsend(subject, [("n", "confirmed", "text")], confirm=True)
            took = time.monotonic() - started
            got = sub.next(timeout=10)
            assert got["msg_id"] == env["msg_id"]
            assert got["payloads"] == [("n", "confirmed", "text")]
            # confirm=False is the ordinary send.
            c.smartsend(subject, [("n", "plain", "text")], confirm=False)
            assert sub.next(timeout=10)["payloads"] == [("n", "plain", "text")]
        c.flush()
        assert c.dropped == 0
    print(f"confirmed send returned in {took * 1000:.1f} ms")


def test_request_and_reply_take_confirm(servers: Any, subject: str) -> None:
    with natsbridge.connect(servers.nats_url, use_env=False) as c:
        with c.subscribe(subject) as sub:
            answered = threading.Thread(
                target=lambda: c.reply(sub.next(timeout=10), [("a", "pong", "text")], confirm=True)
            )
            answered.start()
            reply = c.request(subject, [("q", "ping", "text")], timeout=10, confirm=True)
            answered.join(10)
        assert reply["payloads"] == [("a", "pong", "text")]
        assert c.dropped == 0


async def test_asyncio_confirmed_sends_keep_the_call_order(servers: Any, subject: str) -> None:
    """A confirmed send goes to the executor (it waits for the server); sends called after
    it, inline ones included, are published after it."""
    async with await aio.connect(servers.nats_url, use_env=False) as ac:
        async with await ac.subscribe(subject) as sub:
            sends = []
            for i in range(30):
                sends.append(
                    ac.smartsend(subject, [("n", str(i), "text")], confirm=(i % 7 == 0))
                )
            await asyncio.gather(*sends)
            got = [await sub.next(timeout=10) for _ in range(30)]
            assert [g["payloads"][0][1] for g in got] == [str(i) for i in range(30)]
        await ac.flush()
        assert ac.dropped == 0


class Gate:
    """A TCP relay between a client and nats-server that can swallow what the client sends
    (``hold``) and cut every connection (``cut``); it accepts and relays new connections
    all along, so the client reconnects through it."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.rsplit("//", 1)[-1].rsplit(":", 1)
        self.upstream = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"nats://127.0.0.1:{self.listener.getsockname()[1]}"
        self.holding = False
        self.swallowed = bytearray()
        self.connections = 0
        self._lock = threading.Lock()
        self._socks: List[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                down, _ = self.listener.accept()
            except OSError:
                return
            up = socket.create_connection(self.upstream)
            with self._lock:
                self._socks += [down, up]
                self.connections += 1
            threading.Thread(target=self._pump, args=(down, up, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(up, down, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, from_client: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if from_client and self.holding:
                    with self._lock:
                        self.swallowed += data
                    continue
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.close()
            except OSError:
                pass

    def hold(self) -> None:
        self.holding = True

    def cut(self) -> None:
        """Ends every relayed connection; new ones are relayed as before."""
        with self._lock:
            socks, self._socks = self._socks, []
            self.holding = False
        for s in socks:
            try:
                # shutdown (not just close) ends the relay's blocked reads and tells both
                # ends at once.
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def saw(self, text: str) -> bool:
        with self._lock:
            return text.encode() in self.swallowed

    def close(self) -> None:
        self.listener.close()
        self.cut()


def test_messages_lost_with_a_dropped_connection_are_reported(servers: Any, subject: str) -> None:
    """Sends the server never received (swallowed by a relay, then the connection cut) are
    counted in ``dropped`` and reported once by ``flush()`` as ``MessagesDroppedError``; a
    confirmed send among them raises it itself."""
    gate = Gate(servers.nats_url)
    try:
        with RawCounter(servers.nats_url, subject) as raw, natsbridge.connect(
            gate.url, use_env=False, operation_timeout=20
        ) as c:
            c.smartsend(subject, [("n", "before", "text")], msg_id="before")
            c.flush()
            gate.hold()
            lost = [f"lost-{i}" for i in range(5)]
            for msg_id in lost:
                c.smartsend(subject, [("n", msg_id, "text")], msg_id=msg_id)
            confirmed: List[BaseException] = []

            def confirmed_send() -> None:
                try:
                    c.smartsend(subject, [("n", "c", "text")], msg_id="lost-confirmed", confirm=True)
                except BaseException as e:
                    confirmed.append(e)

            waiter = threading.Thread(target=confirmed_send)
            waiter.start()
            wait_until(
                lambda: all(gate.saw(m) for m in lost + ["lost-confirmed"]),
                what="the relay to swallow the sends",
            )
            cut_at = time.monotonic()
            gate.cut()
            waiter.join(20)
            took = time.monotonic() - cut_at
            assert len(confirmed) == 1 and isinstance(
                confirmed[0], natsbridge.MessagesDroppedError
            ), confirmed
            assert confirmed[0].code == "MESSAGES_DROPPED" and confirmed[0].dropped == 1
            with pytest.raises(natsbridge.MessagesDroppedError) as err:
                c.flush()
            assert err.value.dropped == len(lost), str(err.value)
            assert c.dropped == len(lost)
            c.flush()  # each dropped message is reported once
            c.smartsend(subject, [("n", "after", "text")], msg_id="after", confirm=True)
            raw.settle()
            got = raw.counts()
        print(
            f"dropped connection: {len(lost)} sends + 1 confirmed swallowed; the confirmed one "
            f"failed {took * 1000:.0f} ms after the cut; flush said: {err.value}; "
            f"relay connections {gate.connections}"
        )
        assert got["before"] == 1 and got["after"] == 1
        assert all(got[m] == 0 for m in lost + ["lost-confirmed"])
    finally:
        gate.close()


def test_the_dropped_count_is_read_from_the_message() -> None:
    many = errors.error_for(
        "MESSAGES_DROPPED",
        "MESSAGES_DROPPED: 7 message(s) were handed to the connection but not confirmed",
    )
    assert isinstance(many, natsbridge.MessagesDroppedError) and many.dropped == 7
    one = errors.error_for(
        "MESSAGES_DROPPED",
        "MESSAGES_DROPPED: the connection to NATS was lost before the server confirmed the "
        "message (correlation_id c-1)",
    )
    assert one.dropped == 1 and one.correlation_id == "c-1"


# -- item 2: the download deadline and ordered_subscriptions ---------------------------------


class SilentServer:
    """An HTTP origin that accepts connections and never answers."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.held: List[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.listener.close()
        for s in self.held:
            s.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


DOWNLOAD_TIMEOUT = 1.0
MARGIN = 5.0  # generous: a shared, noisy machine


@pytest.mark.parametrize("ordered", [True, False], ids=["ordered", "unordered"])
def test_a_direct_envelope_behind_a_stalled_download(
    servers: Any, subject: str, silent_server: SilentServer, ordered: bool
) -> None:
    """Unordered, a direct envelope published after a link envelope whose server never
    answers arrives before the link one fails; ordered (the default), right after the link
    one's DOWNLOAD_FAILED, which comes within download_timeout (+ a margin). The consumer is
    already waiting in ``next()`` when they arrive, as a subscriber usually is."""
    settings: Dict[str, Any] = {} if ordered else {"ordered_subscriptions": False}
    url = f"{silent_server.url}/file/u/f/stalled.bin"
    link = hand_envelope(
        [hand_payload("stalled", "binary", b"", transport="link", url=url, size=16)],
        correlation_id="stalled",
    )
    direct = hand_envelope([hand_payload("direct", "text", b"right behind")])
    with natsbridge.connect(
        servers.nats_url,
        use_env=False,
        allowed_origins=[silent_server.url],
        download_timeout=DOWNLOAD_TIMEOUT,
        min_transfer_rate=1_000_000,
        **settings,
    ) as c, c.subscribe(subject) as sub:
        interest_registered(c, sub, subject)
        seen: List[Any] = []

        def consume() -> None:
            for _ in range(2):
                try:
                    env = sub.next(timeout=DOWNLOAD_TIMEOUT + MARGIN + 5)
                    seen.append(("direct", time.monotonic() - started, env))
                except natsbridge.DownloadFailedError as e:
                    seen.append(("failed", time.monotonic() - started, e))
                except natsbridge.TimeoutError as e:
                    seen.append(("nothing", time.monotonic() - started, e))

        consumer = threading.Thread(target=consume)
        started = time.monotonic()
        consumer.start()
        publish_raw(servers.nats_url, subject, link)
        # The stalled download has begun (the silent server has the connection) before the
        # direct envelope is published.
        wait_until(lambda: len(silent_server.held) > 0, what="the download to start")
        publish_raw(servers.nats_url, subject, direct)
        consumer.join(DOWNLOAD_TIMEOUT + MARGIN + 15)
    order = [kind for kind, _, _ in seen]
    times = {kind: t for kind, t, _ in seen}
    print(
        f"{'ordered' if ordered else 'unordered'}: "
        + ", ".join(f"{kind} at {t:.3f} s" for kind, t, _ in seen)
        + f" (download_timeout {DOWNLOAD_TIMEOUT} s)"
    )
    assert sorted(order) == ["direct", "failed"], seen
    failure = next(x for kind, _, x in seen if kind == "failed")
    assert failure.correlation_id == "stalled"
    assert times["failed"] < DOWNLOAD_TIMEOUT + MARGIN
    assert times["failed"] >= DOWNLOAD_TIMEOUT * 0.9  # the deadline, not an early refusal
    if ordered:
        assert order == ["failed", "direct"]
    else:
        assert order == ["direct", "failed"]
        assert times["direct"] < DOWNLOAD_TIMEOUT


def test_download_settings_refuse_bad_values(servers: Any) -> None:
    for settings, name in (
        ({"download_timeout": 0}, "download_timeout"),
        ({"download_timeout": 0.0001}, "download_timeout"),
        ({"download_timeout": -1}, "download_timeout"),
        ({"download_timeout": "soon"}, "download_timeout"),
        ({"min_transfer_rate": 0}, "min_transfer_rate"),
        ({"min_transfer_rate": -5}, "min_transfer_rate"),
        ({"min_transfer_rate": 1.5}, "min_transfer_rate"),
    ):
        with pytest.raises(natsbridge.InvalidArgumentError) as err:
            natsbridge.connect(servers.nats_url, use_env=False, **settings)
        assert name in str(err.value), (settings, str(err.value))
    with pytest.raises(TypeError):
        natsbridge.connect(servers.nats_url, use_env=False, download_min_rate=1)
    # Good values connect (and apply to smartreceive without a client too).
    with natsbridge.connect(
        servers.nats_url,
        use_env=False,
        download_timeout=2.5,
        min_transfer_rate=1,
        ordered_subscriptions=False,
    ):
        pass
    with pytest.raises(natsbridge.InvalidArgumentError, match="min_transfer_rate"):
        asyncio.run(natsbridge.smartreceive(b"{}", min_transfer_rate=0, use_env=False))
