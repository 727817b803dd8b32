"""The asyncio API: the walkthrough's ``smartsend`` / ``smartreceive``, and
:func:`connect` returning an :class:`AsyncClient`.

Nothing here blocks the event loop: sends, requests, connects and downloads run in the
loop's default executor (ctypes releases the GIL, so they run in parallel with the loop), and
subscriptions wait on the library's readiness file descriptor with ``loop.add_reader``,
then take envelopes without blocking.

Example (the walkthrough)::

    env, msg_json = await natsbridge.smartsend(
        "/chat/user/v1/message",
        [("msg", "Hello World", "text"), ("img", binary_data, "image")],
        nats_url="nats://localhost:4222",
    )

    # with a nats-py subscription of your own:
    msg = await nats_sub.next_msg()
    env = await natsbridge.smartreceive(msg)

    # or with a client:
    async with await natsbridge.aio.connect("nats://localhost:4222") as client:
        async with await client.subscribe("/chat/user/v1/message") as sub:
            async for env in sub:
                ...
"""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, Optional, Tuple, TypeVar, Union

from . import _core
from . import client as _client
from ._core import SEND_OPTION_NAMES, Config, Envelope, PayloadIn
from ._ffi import lib
from .errors import ClosedError, TimeoutError

if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import Unpack

    from ._core import SendOptions

__all__ = ["connect", "AsyncClient", "AsyncSubscription", "smartsend", "smartreceive"]

T = TypeVar("T")


async def _run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Runs a blocking call in the loop's default executor."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, functools.partial(fn, *args, **kwargs))


async def connect(
    nats_url: Optional[str] = None, *, config: Optional[Config] = None, **settings: Any
) -> "AsyncClient":
    """Connects to NATS without blocking the loop; settings as :func:`natsbridge.connect`."""
    sync = await _run(_client.connect, nats_url, config=config, **settings)
    return AsyncClient(sync)


class AsyncClient:
    """The asyncio face of a :class:`~natsbridge.Client` (available as :attr:`sync`).

    Use as ``async with await natsbridge.aio.connect(...) as client``. Values that need
    converting (dicts, tables, ...) are converted in a worker thread: do not change them
    until the send returns.
    """

    def __init__(self, sync: _client.Client) -> None:
        self.sync = sync
        # Done when the latest send that went to the executor has finished: later sends wait
        # for it, so that envelopes are published in the order smartsend was called.
        self._last_blocking: "Optional[asyncio.Future[None]]" = None

    def __repr__(self) -> str:
        return f"<natsbridge.aio.AsyncClient {self.sync!r}>"

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    @property
    def closed(self) -> bool:
        return self.sync.closed

    async def close(self) -> None:
        """Flushes and closes the connection (see :meth:`natsbridge.Client.close`)."""
        await _run(self.sync.close)

    async def flush(self) -> None:
        """Waits until the server has confirmed everything published so far (see
        :meth:`natsbridge.Client.flush`: raises :class:`~natsbridge.MessagesDroppedError`
        for messages lost with a dropped connection)."""
        await _run(self.sync.flush)

    @property
    def max_payload(self) -> int:
        return self.sync.max_payload

    @property
    def dropped(self) -> int:
        """See :attr:`natsbridge.Client.dropped`."""
        return self.sync.dropped

    async def smartsend(
        self, subject: str, payloads: Iterable[PayloadIn], **options: "Unpack[SendOptions]"
    ) -> Tuple[Envelope, str]:
        """See :meth:`natsbridge.Client.smartsend`; returns ``(env, msg_json)``.

        Envelopes are published in the order of the calls, even when they are not awaited
        one by one. A send of bytes and text that can be published at once (every payload
        direct, room in the connection's queue) completes on the loop's thread without a
        thread hop; any other (uploads, conversions, ``confirm=True``, which waits for the
        server) runs in the executor, and the sends called after it wait for it.
        """
        before = self._last_blocking
        if (
            (before is None or before.done())
            and not options.get("confirm")
            and _core.inline(payloads, _core.INLINE_ON_LOOP)
        ):
            sent = self.sync._send(lib.nb_client_try_smartsend, subject, payloads, options)
            if sent is not None:
                return sent
        mine: "asyncio.Future[None]" = asyncio.get_running_loop().create_future()
        self._last_blocking = mine
        try:
            if before is not None and not before.done():
                await asyncio.shield(before)
            return await _run(self.sync.smartsend, subject, payloads, **options)
        finally:
            mine.set_result(None)
            if self._last_blocking is mine:
                self._last_blocking = None

    async def smartreceive(self, msg: Any) -> Envelope:
        """See :meth:`natsbridge.Client.smartreceive`."""
        return await _run(self.sync.smartreceive, msg)

    async def request(
        self,
        subject: str,
        payloads: Iterable[PayloadIn],
        timeout: Optional[float] = 10.0,
        **options: "Unpack[SendOptions]",
    ) -> Envelope:
        """See :meth:`natsbridge.Client.request`."""
        return await _run(self.sync.request, subject, payloads, timeout, **options)

    async def reply(
        self, request: Envelope, payloads: Iterable[PayloadIn], **options: "Unpack[SendOptions]"
    ) -> Tuple[Envelope, str]:
        """See :meth:`natsbridge.Client.reply`."""
        subject, merged = _core.reply_options(request, options)
        return await self.smartsend(subject, payloads, **merged)

    async def subscribe(self, subject: str, queue: Optional[str] = None) -> "AsyncSubscription":
        """Subscribes to ``subject``; iterate over the result with ``async for``."""
        sub = await _run(self.sync.subscribe, subject, queue)
        return AsyncSubscription(sub)


def _wake(fut: "asyncio.Future[None]") -> None:
    if not fut.done():
        fut.set_result(None)


class AsyncSubscription:
    """An asyncio subscription: ``async for env in sub`` or ``await sub.next(timeout)``.

    Waits on the subscription's readiness fd with ``loop.add_reader`` (only while a
    ``next`` is waiting), then takes envelopes without blocking. Errors of single messages
    are raised from ``next``/``__anext__`` as with :class:`natsbridge.Subscription`.
    """

    def __init__(self, sync: _client.Subscription) -> None:
        self.sync = sync
        self.subject = sync.subject
        self.queue = sync.queue
        self._fd = sync.fileno()
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"<natsbridge.aio.AsyncSubscription {self.subject!r}>"

    def _take(self) -> Optional[int]:
        with self.sync._pull_lock:
            return self.sync._pull(0)

    async def next(self, timeout: Optional[float] = None) -> Envelope:
        """The next envelope, waiting up to ``timeout`` seconds (``None``: without limit).

        Raises :class:`~natsbridge.TimeoutError`, :class:`~natsbridge.ClosedError` once
        closed and drained, or the error of one message that could not be decoded.
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + max(0.0, float(timeout))
        async with self._lock:
            while True:
                env = self._take()
                if env is not None:
                    return _core.take_envelope(env)
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(
                        f"no envelope on {self.subject!r} within {timeout} s", code="TIMEOUT"
                    )
                fut: "asyncio.Future[None]" = loop.create_future()
                loop.add_reader(self._fd, _wake, fut)
                try:
                    await asyncio.wait_for(fut, remaining)
                except asyncio.TimeoutError:
                    pass  # pull once more, then report the timeout
                finally:
                    loop.remove_reader(self._fd)

    def __aiter__(self) -> "AsyncSubscription":
        return self

    async def __anext__(self) -> Envelope:
        try:
            return await self.next()
        except ClosedError:
            raise StopAsyncIteration from None

    @property
    def dropped(self) -> int:
        return self.sync.dropped

    @property
    def closed(self) -> bool:
        return self.sync.closed

    async def close(self) -> None:
        """Unsubscribes and frees the subscription; a waiting ``next`` ends with ClosedError."""
        if self.sync.closed:
            return
        # Unsubscribing makes the fd readable for good, which ends a waiting next(); only
        # then is the fd freed, once nobody watches it.
        await _run(self.sync._stop)
        async with self._lock:
            await _run(self.sync.close)

    async def __aenter__(self) -> "AsyncSubscription":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


# ---------------------------------------------------------------------------------------
# The walkthrough's module-level functions


def _split(kwargs: Dict[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Send options and connection settings, from one set of keyword arguments."""
    options = {k: v for k, v in kwargs.items() if k in SEND_OPTION_NAMES}
    settings = {k: v for k, v in kwargs.items() if k not in SEND_OPTION_NAMES}
    return options, settings


def _send_once(
    subject: str, data: Any, options: Dict[str, Any], config: Config
) -> Tuple[Envelope, str]:
    with _client.connect(config=config) as c:
        return c.smartsend(subject, data, **options)


async def smartsend(
    subject: str,
    data: Iterable[PayloadIn],
    *,
    client: Union[AsyncClient, _client.Client, None] = None,
    broker_url: Optional[str] = None,
    config: Optional[Config] = None,
    **kwargs: Any,
) -> Tuple[Envelope, str]:
    """The walkthrough's ``env, msg_json = await smartsend(subject, data, **options)``.

    ``data`` is a list of ``(dataname, data, payload_type)`` tuples. ``kwargs`` are send
    options (``correlation_id``, ``msg_purpose``, ``reply_to``, ``size_threshold``, ...; see
    :class:`~natsbridge.SendOptions`) and, without ``client``, connection settings
    (``nats_url`` or the walkthrough's ``broker_url``, ``fileserver_url``, ...; see
    :class:`~natsbridge.Config`): a connection is then opened for this one message and
    closed after it. Pass ``client=`` (an :class:`AsyncClient` or a
    :class:`~natsbridge.Client`) to reuse a connection.
    """
    options, settings = _split(kwargs)
    if broker_url is not None:
        settings.setdefault("nats_url", broker_url)
    if client is not None:
        if settings or config is not None:
            raise TypeError(
                "connection settings (" + ", ".join(sorted(settings)) + ") cannot be "
                "combined with client="
            )
        if isinstance(client, AsyncClient):
            return await client.smartsend(subject, data, **options)
        return await _run(client.smartsend, subject, data, **options)
    cfg = Config.of(config, **settings)  # unknown names fail here, before any thread
    return await _run(_send_once, subject, data, options, cfg)


async def smartreceive(
    msg: Any,
    *,
    client: Union[AsyncClient, _client.Client, None] = None,
    config: Optional[Config] = None,
    **settings: Any,
) -> Envelope:
    """The walkthrough's ``env = await smartreceive(msg)``.

    ``msg`` is the raw message: ``bytes``, ``str``, or a NATS message with ``.data`` (a
    nats-py ``Msg``), so a program with its own nats-py subscription can decode with us.
    Link payloads are downloaded (only from the configured file server's origin unless
    ``allowed_origins`` says more) and every payload is converted to a Python value.

    Returns the envelope dict; ``env["payloads"]`` is a list of
    ``(dataname, value, payload_type)`` tuples. Without ``client``, ``settings`` are fields of
    :class:`~natsbridge.Config` (``fileserver_url``, ``allowed_origins``,
    ``download_retry``, ...); no NATS connection is made.
    """
    if client is not None:
        if settings or config is not None:
            raise TypeError("settings cannot be combined with client=")
        if isinstance(client, AsyncClient):
            return await client.smartreceive(msg)
        return await _run(client.smartreceive, msg)
    cfg = Config.of(config, **settings)
    return await _run(_client.smartreceive_with, cfg, msg)
