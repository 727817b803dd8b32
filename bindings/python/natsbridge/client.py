"""The synchronous API: :func:`connect`, :class:`Client`, :class:`Subscription` and
:class:`CallbackSubscription`.

Every call blocks the calling thread only (ctypes releases the GIL), with a deadline from the
configuration. One client may be used by any number of threads at once.

Example::

    import natsbridge

    with natsbridge.connect("nats://localhost:4222") as client:
        with client.subscribe("chat.demo") as sub:
            env, msg_json = client.smartsend(
                "chat.demo", [("msg", "Hello World", "text"), ("img", png_bytes, "image")]
            )
            received = sub.next(timeout=5)
            for dataname, value, payload_type in received["payloads"]:
                print(dataname, payload_type, value)
"""

from __future__ import annotations

import collections
import ctypes
import logging
import threading
import time
from ctypes import byref, c_int, c_uint64, c_void_p
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Deque,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Tuple,
    overload,
)

from . import _core, _ffi
from ._core import (
    Config,
    Envelope,
    Handle,
    PayloadArray,
    PayloadIn,
    check,
    cstr,
    millis,
    raise_status,
)
from ._ffi import lib
from .errors import CallbackError, ClosedError, NatsBridgeError, TimeoutError

if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import Unpack

    from ._core import SendOptions

__all__ = ["connect", "Client", "Subscription", "CallbackSubscription"]

log = logging.getLogger("natsbridge")

# A blocking pull waits in slices of this many ms, so that Ctrl-C reaches the main thread.
_SLICE_MS = 200
_BATCH = 64


def connect(
    nats_url: Optional[str] = None,
    *,
    config: Optional[Config] = None,
    **settings: Any,
) -> "Client":
    """Connects to NATS and returns a :class:`Client` (also a context manager).

    ``nats_url`` (one URL, or several separated by commas) and ``settings`` are fields of
    :class:`~natsbridge.Config`, e.g. ``fileserver_url="http://files:8080"``,
    ``size_threshold=1_000_000``, ``connect_timeout=2.0``. Unset fields come from the
    environment (``NATS_URL``, ``FILESERVER_URL``, ``SIZE_THRESHOLD``) or the defaults.

    Raises :class:`~natsbridge.NatsConnectionFailedError` when NATS cannot be reached.
    """
    if nats_url is not None:
        settings["nats_url"] = nats_url
    cfg = Config.of(config, **settings)
    out = c_void_p()
    with cfg._handle() as h:
        check(lib.nb_client_connect(h, byref(out)))
    return Client(_core.handed_out(out), cfg)


def smartreceive_with(config: Config, msg: Any) -> Envelope:
    """smartreceive without a client or NATS connection, with the link settings of
    ``config`` (allowed origins, retries, size caps). Blocking; see
    :func:`natsbridge.smartreceive`."""
    raw = _core.message_bytes(msg)
    out = c_void_p()
    with config._handle() as h:
        status = lib.nb_smartreceive(h, raw, len(raw), byref(out))
        if status != _ffi.NB_OK:
            raise_status(status, correlation_id=_core.correlation_id_of(raw))
    return _core.take_envelope(_core.handed_out(out))


class Client:
    """A connection to NATS with everything needed to send and receive envelopes.

    Made by :func:`connect`. Thread-safe. Close it with :meth:`close` or a ``with`` block;
    clients still open at interpreter exit are closed then.
    """

    _EXIT_ORDER = 1  # after subscriptions

    def __init__(self, ptr: int, config: Config) -> None:
        self._handle = Handle(ptr, lib.nb_client_free, "client")
        self.config = config
        self._dropped = 0  # the last count read (kept once the client is closed)
        _core.register(self)

    # -- context manager and lifecycle ---------------------------------------------------

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<natsbridge.Client {self.config.nats_url or 'from env'} {state}>"

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._handle.released

    def close(self) -> None:
        """Flushes what was published, closes the connection and frees the client.

        Subscriptions made from it end after delivering what they hold; sends racing it fail
        with :class:`~natsbridge.ClosedError`. Raises
        :class:`~natsbridge.MessagesDroppedError` as :meth:`flush` does (the client is closed
        all the same). Closing again does nothing.
        """
        if self._handle.released:
            return
        try:
            with self._handle.use() as p:
                status = lib.nb_client_close(p)
                self._read_dropped(p)  # the final count
        except ClosedError:
            return
        self._handle.release(wait=60.0)
        if status != _ffi.NB_OK and status != _ffi.NB_ERR_CLOSED:
            raise_status(status)

    def _close_at_exit(self) -> None:
        try:
            self.close()
        except NatsBridgeError as e:
            log.warning("natsbridge: closing a client at exit: %s", e)

    def __del__(self) -> None:
        try:
            self._handle.release(wait=0)
        except Exception:  # pragma: no cover - interpreter teardown
            pass

    def flush(self) -> None:
        """Waits until the server has confirmed everything published so far (within
        ``operation_timeout``, else :class:`~natsbridge.TimeoutError`).

        Raises :class:`~natsbridge.MessagesDroppedError` when messages sent since the last
        report were not confirmed when the connection to NATS dropped: they may be lost. Each
        such message is reported once (see :attr:`dropped`).
        """
        with self._handle.use() as p:
            check(lib.nb_client_flush(p))

    @property
    def dropped(self) -> int:
        """Messages this client handed to the connection that the server had not confirmed
        when the connection dropped, since connect: they may not have arrived (an upper
        bound). :meth:`flush` and :meth:`close` report them as
        :class:`~natsbridge.MessagesDroppedError`; a send with ``confirm=True`` raises its
        own instead. Still readable once the client is closed (the final count)."""
        try:
            with self._handle.use() as p:
                return self._read_dropped(p)
        except ClosedError:
            return self._dropped

    def _read_dropped(self, p: int) -> int:
        # Cannot fail on a live handle; never raises, so that close() reports its own error.
        out = c_uint64()
        if lib.nb_client_dropped(p, byref(out)) == _ffi.NB_OK:
            self._dropped = out.value
        return self._dropped

    @property
    def max_payload(self) -> int:
        """The largest message the server accepts, in bytes (announced at connect)."""
        out = ctypes.c_size_t()
        with self._handle.use() as p:
            check(lib.nb_client_max_payload(p, byref(out)))
        return out.value

    # -- sending ---------------------------------------------------------------------------

    def smartsend(
        self, subject: str, payloads: Iterable[PayloadIn], **options: "Unpack[SendOptions]"
    ) -> Tuple[Envelope, str]:
        """Publishes one envelope of ``payloads`` on ``subject``: the walkthrough's smartsend.

        ``payloads`` is a list of ``(dataname, data, payload_type)`` tuples (see
        :mod:`natsbridge._values` for the values each type accepts). Small payloads travel
        base64 in the message; those of at least ``size_threshold`` bytes are uploaded to the
        file server and only their URL travels. ``options`` are envelope fields
        (``correlation_id``, ``msg_purpose``, ``reply_to``, ``metadata``, ...) and
        ``size_threshold`` / ``fallback_to_direct`` / ``progress`` / ``confirm`` for this
        send.

        Returns ``(env, msg_json)``: the envelope as published (a dict in wire form) and the
        published JSON text, once it is handed to the connection; with ``confirm=True``, only
        once the server confirmed it received it (else
        :class:`~natsbridge.MessagesDroppedError` or :class:`~natsbridge.TimeoutError`: it
        may be lost). Nothing is published when it raises otherwise.
        """
        sent = self._send(lib.nb_client_smartsend, subject, payloads, options)
        assert sent is not None
        return sent

    def _send(
        self, fn: Any, subject: str, payloads: Iterable[PayloadIn], options: Mapping[str, Any]
    ) -> Optional[Tuple[Envelope, str]]:
        """One send through ``fn`` (``nb_client_smartsend`` or ``nb_client_try_smartsend``):
        ``(env, msg_json)``, or None when ``fn`` would have had to wait (nothing published)."""
        subj = cstr(subject, "subject")
        array = PayloadArray(payloads)
        # A large send's env is rebuilt from the sent envelope (parsing its base64 out of
        # msg_json would cost ~2.5 ms per MB); a small one's is parsed from msg_json.
        out_env = c_void_p() if array.nbytes > _core.REBUILD_ABOVE else None
        env_arg = None if out_env is None else byref(out_env)
        out_json = c_void_p()
        handle = self._handle
        with _core.send_options_or_none(options) as (opts, cid):
            p = handle.acquire()
            try:
                status = fn(
                    p, subj, array.array, array.count, opts, env_arg, byref(out_json)
                )
            finally:
                handle.done()
        if status != _ffi.NB_OK:
            if status == _ffi.NB_ERR_WOULD_BLOCK:
                return None
            raise_status(status, correlation_id=cid)
        return _core.take_sent(out_env, out_json)

    def request(
        self,
        subject: str,
        payloads: Iterable[PayloadIn],
        timeout: Optional[float] = 10.0,
        **options: "Unpack[SendOptions]",
    ) -> Envelope:
        """Sends an envelope with a fresh ``reply_to`` inbox and returns the first reply,
        decoded like :meth:`smartreceive`.

        Raises :class:`~natsbridge.TimeoutError` when no reply comes within ``timeout``
        seconds (``None``: wait without limit) and :class:`~natsbridge.NoRespondersError`
        when nobody listens on ``subject``.
        """
        subj = cstr(subject, "subject")
        array = PayloadArray(payloads)
        wait = millis(timeout, "timeout")
        out = c_void_p()
        with _core.send_options_or_none(options) as (opts, cid), self._handle.use() as p:
            status = lib.nb_client_request(
                p, subj, array.array, array.count, opts, wait, byref(out)
            )
            if status != _ffi.NB_OK:
                raise_status(status, correlation_id=cid)
        return _core.take_envelope(_core.handed_out(out))

    def reply(
        self, request: Envelope, payloads: Iterable[PayloadIn], **options: "Unpack[SendOptions]"
    ) -> Tuple[Envelope, str]:
        """Answers a received envelope: publishes to its ``reply_to`` with its ``msg_id`` as
        ``reply_to_msg_id``, its ``correlation_id``, and its sender as receiver (unless
        ``options`` sets them). Returns ``(env, msg_json)`` like :meth:`smartsend`."""
        subject, merged = _core.reply_options(request, options)
        return self.smartsend(subject, payloads, **merged)

    # -- receiving -------------------------------------------------------------------------

    def smartreceive(self, msg: Any) -> Envelope:
        """Decodes one NATS message (bytes, str, or a nats-py ``Msg``) with this client's
        settings: downloads its link payloads and converts every payload to a Python value.

        Returns the envelope dict with ``payloads`` as ``(dataname, value, payload_type)``.
        """
        raw = _core.message_bytes(msg)
        out = c_void_p()
        with self._handle.use() as p:
            status = lib.nb_client_smartreceive(p, raw, len(raw), byref(out))
            if status != _ffi.NB_OK:
                raise_status(status, correlation_id=_core.correlation_id_of(raw))
        return _core.take_envelope(_core.handed_out(out))

    @overload
    def subscribe(
        self, subject: str, queue: Optional[str] = None, *, callback: None = None
    ) -> "Subscription": ...

    @overload
    def subscribe(
        self,
        subject: str,
        queue: Optional[str] = None,
        *,
        callback: Callable[[Envelope], Any],
        error_callback: Optional[Callable[[NatsBridgeError], Any]] = None,
    ) -> "CallbackSubscription": ...

    def subscribe(
        self,
        subject: str,
        queue: Optional[str] = None,
        *,
        callback: Optional[Callable[[Envelope], Any]] = None,
        error_callback: Optional[Callable[[NatsBridgeError], Any]] = None,
    ) -> "Subscription | CallbackSubscription":
        """Subscribes to ``subject`` (wildcards allowed), in queue group ``queue`` if given.

        Without ``callback``: returns a :class:`Subscription` to iterate over or pull from
        with :meth:`Subscription.next`. With ``callback``: returns a
        :class:`CallbackSubscription` that calls ``callback(env)`` for each envelope, in
        order, on a thread of its own; ``error_callback(err)`` (if given) receives the error
        of each message that could not be decoded.

        When this returns the server knows the interest: messages published afterwards are
        received.
        """
        subj = cstr(subject, "subject")
        q = cstr(queue, "queue") if queue else None
        out = c_void_p()
        with self._handle.use() as p:
            check(lib.nb_client_subscribe(p, subj, q, byref(out)))
        sub = Subscription(_core.handed_out(out), self, subject, queue)
        if callback is None:
            if error_callback is not None:
                raise TypeError("error_callback needs a callback")
            return sub
        return CallbackSubscription(sub, callback, error_callback)


class Subscription:
    """A pull subscription: iterate over it, or call :meth:`next`.

    Iteration yields envelope dicts and ends when the subscription (or its client) is closed
    and what it holds has been delivered. A message that cannot be decoded raises its error
    (``DownloadFailedError``, ``InvalidEnvelopeError``, ``SlowConsumerError`` standing for
    dropped messages, ...) from ``next``/``__next__``; the subscription goes on, so catch it
    and keep iterating if you wish. Use one consumer at a time to keep envelopes in order.
    """

    _EXIT_ORDER = 0

    def __init__(
        self, ptr: int, client: Optional[Client], subject: str, queue: Optional[str]
    ) -> None:
        self._handle = Handle(ptr, lib.nb_subscription_free, "subscription")
        self.client = client
        self.subject = subject
        self.queue = queue
        self._pull_lock = threading.Lock()
        self._buffer: Deque[int] = collections.deque()
        self._slots = (c_void_p * _BATCH)()
        self._ended = False
        _core.register(self)

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<natsbridge.Subscription {self.subject!r} {state}>"

    # -- pulling ---------------------------------------------------------------------------

    def _pull(self, timeout_ms: int) -> Optional[int]:
        """One batch pull; returns an envelope handle, or None when nothing came in time.
        Raises ClosedError once closed and drained, or the error of one message."""
        if self._buffer:
            return self._buffer.popleft()
        if self._ended:
            raise ClosedError("the subscription is closed", code="CLOSED")
        count = ctypes.c_size_t()
        handle = self._handle
        p = handle.acquire()
        try:
            status = lib.nb_subscription_next_batch(
                p, self._slots, _BATCH, timeout_ms, byref(count)
            )
            if status == _ffi.NB_OK:
                self._buffer.extend([e or 0 for e in self._slots[: count.value]])
                return self._buffer.popleft()
            if status == _ffi.NB_ERR_PULL_TIMEOUT:
                return None
            message = _ffi.last_error_message()
        finally:
            handle.done()
        if status == _ffi.NB_ERR_CLOSED:
            self._ended = True
        raise_status(status, message)
        return None  # unreachable

    def next(self, timeout: Optional[float] = None) -> Envelope:
        """The next envelope, waiting up to ``timeout`` seconds (``None``: without limit,
        ``0``: only what is already there).

        Raises :class:`~natsbridge.TimeoutError` when nothing came in time,
        :class:`~natsbridge.ClosedError` once closed and drained, or the error of one message
        that could not be decoded (pull again for the next one).
        """
        with self._pull_lock:
            if self._buffer:  # pulled already, with an earlier batch
                return _core.take_envelope(self._buffer.popleft())
            deadline = None if timeout is None else time.monotonic() + max(0.0, float(timeout))
            while True:
                if deadline is None:
                    wait = _SLICE_MS
                else:
                    wait = min(_SLICE_MS, max(0, int((deadline - time.monotonic()) * 1000)))
                env = self._pull(wait)
                if env is not None:
                    return _core.take_envelope(env)
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"no envelope on {self.subject!r} within {timeout} s", code="TIMEOUT"
                    )

    def __iter__(self) -> Iterator[Envelope]:
        return self

    def __next__(self) -> Envelope:
        try:
            return self.next()
        except ClosedError:
            raise StopIteration from None

    @property
    def dropped(self) -> int:
        """Messages dropped so far because this subscription's queue was full."""
        out = c_uint64()
        with self._handle.use() as p:
            check(lib.nb_subscription_dropped(p, byref(out)))
        return out.value

    def fileno(self) -> int:
        """A file descriptor that is readable when envelopes wait (or once closed), for
        ``select``/``selectors``; then pull with ``next(timeout=0)``. Never read it."""
        fd = c_int(-1)
        with self._handle.use() as p:
            check(lib.nb_subscription_fd(p, byref(fd)))
        return fd.value

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._handle.released

    def close(self) -> None:
        """Unsubscribes and frees the subscription; envelopes not yet taken are dropped.
        A thread blocked in :meth:`next` wakes up with ClosedError. Closing again does
        nothing."""
        if not self._stop():
            return
        with self._pull_lock:
            self._ended = True
            while self._buffer:
                lib.nb_envelope_free(self._buffer.popleft())
        self._handle.release(wait=60.0)

    def _stop(self) -> bool:
        """Unsubscribes (``nb_subscription_close``), waking a blocked puller; False when
        already freed."""
        try:
            with self._handle.use() as p:
                lib.nb_subscription_close(p)
        except ClosedError:
            return False
        return True

    def _close_at_exit(self) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if not self._handle.released:
                self.close()
        except Exception:  # pragma: no cover - interpreter teardown
            pass

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class CallbackSubscription:
    """A subscription that calls ``callback(env)`` for each envelope on a thread of its own.

    Calls are serialized and in order. An exception raised by the callback is logged (logger
    ``natsbridge``), kept in :attr:`errors`, and raised again by :meth:`close` as a
    :class:`~natsbridge.CallbackError`; delivery goes on. A message that cannot be decoded is
    passed to ``error_callback`` if given, else logged as a warning.
    """

    _EXIT_ORDER = 0

    def __init__(
        self,
        sub: Subscription,
        callback: Callable[[Envelope], Any],
        error_callback: Optional[Callable[[NatsBridgeError], Any]],
    ) -> None:
        self._sub = sub
        self._callback = callback
        self._error_callback = error_callback
        self._errors: List[BaseException] = []
        self._errors_lock = threading.Lock()
        self.subject = sub.subject
        self.queue = sub.queue
        self._thread = threading.Thread(
            target=self._run, name=f"natsbridge-delivery {sub.subject}", daemon=True
        )
        self._thread.start()
        _core.register(self)

    def __repr__(self) -> str:
        return f"<natsbridge.CallbackSubscription {self.subject!r}>"

    @property
    def errors(self) -> List[BaseException]:
        """The exceptions raised by the callback so far (a copy)."""
        with self._errors_lock:
            return list(self._errors)

    def _keep(self, e: BaseException) -> None:
        with self._errors_lock:
            self._errors.append(e)

    def _run(self) -> None:
        sub = self._sub
        while True:
            try:
                env = sub.next()
            except ClosedError:
                return
            except NatsBridgeError as e:
                self._message_error(e)
                continue
            except Exception as e:  # a conversion that failed (e.g. a missing extra)
                log.error("natsbridge: a message on %r could not be delivered: %s", self.subject, e)
                continue
            try:
                self._callback(env)
            except Exception as e:
                log.exception("natsbridge: the callback of subscription %r raised", self.subject)
                self._keep(e)

    def _message_error(self, e: NatsBridgeError) -> None:
        if self._error_callback is None:
            log.warning("natsbridge: a message on %r could not be delivered: %s", self.subject, e)
            return
        try:
            self._error_callback(e)
        except Exception as cb_error:
            log.exception("natsbridge: the error_callback of subscription %r raised", self.subject)
            self._keep(cb_error)

    @property
    def dropped(self) -> int:
        """Messages dropped so far because the callback did not keep up."""
        return self._sub.dropped

    @property
    def closed(self) -> bool:
        return self._sub.closed

    def close(self, *, raise_errors: bool = True) -> None:
        """Unsubscribes, waits for a running callback to return (unless called from the
        callback itself) and frees the subscription.

        Raises :class:`~natsbridge.CallbackError` if the callback raised at any time and
        ``raise_errors`` is true (the errors stay in :attr:`errors`).
        """
        self._sub.close()
        if threading.current_thread() is not self._thread:
            self._thread.join()
        errors = self.errors
        if raise_errors and errors:
            raise CallbackError(
                f"the callback of subscription {self.subject!r} raised {len(errors)} "
                f"exception(s); the first: {errors[0]!r}",
                errors,
            ) from errors[0]

    def _close_at_exit(self) -> None:
        self._sub.close()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=10.0)
            if self._thread.is_alive():
                log.warning(
                    "natsbridge: the callback of %r was still running at exit", self.subject
                )

    def __enter__(self) -> "CallbackSubscription":
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        # Do not hide an exception already on its way out; the errors were logged.
        self.close(raise_errors=exc_type is None)
