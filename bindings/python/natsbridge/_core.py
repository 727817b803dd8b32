"""The machinery shared by the sync and asyncio APIs: checked calls, owned handles,
configuration, send options, envelopes, and closing everything at interpreter exit.

Nothing here is public; ``client.py`` and ``aio.py`` build the API on it.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import logging
import os
import threading
import weakref
from ctypes import byref, c_size_t, c_void_p
from dataclasses import dataclass, fields
from typing import (
    Any,
    Callable,
    ContextManager,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    TypedDict,
    Union,
)

from . import _ffi
from ._ffi import lib
from ._values import deserialize, deserialize_file, serialize
from .errors import (
    ClosedError,
    DeserializationError,
    InternalError,
    InvalidArgumentError,
    NatsBridgeError,
    error_for,
)

log = logging.getLogger("natsbridge")
log.addHandler(logging.NullHandler())  # quiet unless the application configures logging

#: A payload to send: ``(dataname, data, payload_type)``, optionally followed by a dict of
#: extra payload metadata.
PayloadIn = Union[Tuple[str, Any, str], Tuple[str, Any, str, Mapping[str, Any]]]

#: A received payload: ``(dataname, value, payload_type)``.
PayloadOut = Tuple[str, Any, str]

#: A received envelope: the walkthrough's keys (``correlation_id``, ``msg_id``, ``timestamp``,
#: ``send_to``, ``msg_purpose``, ``sender_name``, ``sender_id``, ``receiver_name``,
#: ``receiver_id``, ``reply_to``, ``reply_to_msg_id``, ``broker_url``, ``metadata``) and
#: ``payloads``, a list of ``(dataname, value, payload_type)`` tuples.
Envelope = Dict[str, Any]


class SendOptions(TypedDict, total=False):
    """Per-call options of a send (every envelope field of wire format §1, and transport).

    Unset fields take the defaults: new UUIDs, ``msg_purpose="chat"``, the client's sender.
    """

    correlation_id: str
    msg_id: str
    msg_purpose: str  # ACK, NACK, updateStatus, shutdown, chat, command, event
    sender_name: str
    sender_id: str
    receiver_name: str
    receiver_id: str
    reply_to: str
    reply_to_msg_id: str
    metadata: Mapping[str, Any]
    size_threshold: int  # bytes; payloads at least this large go by link
    fallback_to_direct: bool  # when an upload fails and the envelope fits inline
    progress: "Progress"  # upload progress of this send, to poll while it runs
    # Return only once the NATS server confirmed it received the envelope (one round trip):
    # MessagesDroppedError when the connection dropped first, TimeoutError when no
    # confirmation came within operation_timeout.
    confirm: bool


_SEND_TEXT_OPTIONS = (
    "correlation_id",
    "msg_id",
    "msg_purpose",
    "sender_name",
    "sender_id",
    "receiver_name",
    "receiver_id",
    "reply_to",
    "reply_to_msg_id",
)
SEND_OPTION_NAMES = frozenset(
    _SEND_TEXT_OPTIONS
    + ("metadata", "size_threshold", "fallback_to_direct", "progress", "confirm")
)


# ---------------------------------------------------------------------------------------
# Checked calls


def raise_status(
    status: int,
    message: Optional[str] = None,
    *,
    correlation_id: Optional[str] = None,
) -> None:
    """Raises the exception for a failing status, with this thread's last error message (and
    the correlation id it names, unless ``correlation_id`` is given)."""
    if message is None:
        message = _ffi.last_error_message() or _ffi.status_str(status)
        if correlation_id is None:
            correlation_id = _ffi.last_error_correlation_id()
    code = _ffi.status_code_name(status)
    raise error_for(code, message, status=status, correlation_id=correlation_id)


def handed_out(out: c_void_p) -> int:
    """The pointer a successful call stored in its out-parameter."""
    if not out.value:
        raise InternalError("the library reported success but handed out NULL")
    return out.value


def check(status: int, *, correlation_id: Optional[str] = None) -> None:
    """Raises unless ``status`` is ``NB_OK``."""
    if status != _ffi.NB_OK:
        raise_status(status, correlation_id=correlation_id)


def cstr(value: Any, what: Union[str, Callable[[], str]]) -> bytes:
    """A ``str`` argument as NUL-terminated UTF-8 (refusing embedded NULs). ``what`` names the
    argument in errors; a function making the name is called only for an error."""
    found = _cstr_cache.get(value) if type(value) is str else None
    if found is not None:
        return found
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{_name(what)} must be a str, not {type(value).__name__}")
    if "\0" in value:
        raise InvalidArgumentError(f"{_name(what)} must not contain NUL characters")
    encoded = value.encode("utf-8")
    if len(value) <= 256:
        # Subjects, datanames and types repeat from send to send.
        if len(_cstr_cache) >= 1024:
            _cstr_cache.clear()
        _cstr_cache[value] = encoded
    return encoded


_cstr_cache: Dict[str, bytes] = {}


def _name(what: Union[str, Callable[[], str]]) -> str:
    return what if isinstance(what, str) else what()


def millis(seconds: Optional[float], what: str, *, none: int = -1) -> int:
    """Seconds (float) as whole milliseconds; ``None`` gives ``none``."""
    if seconds is None:
        return none
    try:
        ms = int(round(float(seconds) * 1000))
    except (TypeError, ValueError, OverflowError):
        raise InvalidArgumentError(f"{what} must be a number of seconds, not {seconds!r}") from None
    if ms < 0:
        raise InvalidArgumentError(f"{what} must not be negative")
    return ms


# ---------------------------------------------------------------------------------------
# Owned handles


class Handle:
    """An owned library pointer, released exactly once.

    Calls borrow the pointer with ``acquire()`` / ``done()`` (or ``with handle.use() as p``);
    ``release()`` stops new uses, waits for running ones (a blocked pull is woken by the
    matching ``*_close`` first), then frees. A released handle raises :class:`ClosedError`,
    so closing twice is harmless.
    """

    __slots__ = ("_ptr", "_free", "_what", "_lock", "_cond", "_users", "__weakref__")

    def __init__(self, ptr: int, free: Callable[[int], None], what: str) -> None:
        self._ptr: Optional[int] = ptr
        self._free = free
        self._what = what
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._users = 0

    @property
    def released(self) -> bool:
        return self._ptr is None

    def acquire(self) -> int:
        """The pointer, counted as in use until the matching ``done()``."""
        with self._lock:
            ptr = self._ptr
            if ptr is None:
                raise ClosedError(f"the {self._what} is closed")
            self._users += 1
        return ptr

    def done(self) -> None:
        """Ends one use begun by ``acquire()``."""
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._ptr is None:
                self._cond.notify_all()

    def use(self) -> "_Use":
        """``with handle.use() as ptr:`` -- ``acquire()`` and ``done()`` around a block."""
        return _Use(self)

    def release(self, wait: Optional[float] = None) -> None:
        """Frees the pointer once no call uses it (``wait`` seconds at most: past that the
        pointer is leaked rather than freed under a running call)."""
        with self._cond:
            ptr = self._ptr
            if ptr is None:
                return
            self._ptr = None
            if not self._cond.wait_for(lambda: self._users == 0, wait):
                log.warning("natsbridge: a %s was still in use at close; not freed", self._what)
                return
        self._free(ptr)


class _Use:
    __slots__ = ("_handle",)

    def __init__(self, handle: Handle) -> None:
        self._handle = handle

    def __enter__(self) -> int:
        return self._handle.acquire()

    def __exit__(self, *exc: Any) -> None:
        self._handle.done()


# ---------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class Config:
    """Settings of a connection (and of :func:`natsbridge.smartreceive` without a client).

    Every field left ``None`` keeps the library's default, with the environment applied
    (``NATS_URL``, ``FILESERVER_URL``, ``FILESERVER_TOKEN``, ``SIZE_THRESHOLD``) unless
    ``use_env`` is false.
    Durations are in seconds.
    """

    nats_url: Union[str, Sequence[str], None] = None
    fileserver_url: Optional[str] = None  # "" disables link transport
    fileserver_token: Optional[str] = None  # upload token (X-PlikToken); "" unsets
    size_threshold: Optional[int] = None
    sender_name: Optional[str] = None
    client_name: Optional[str] = None
    connect_timeout: Optional[float] = None
    operation_timeout: Optional[float] = None
    http_idle_timeout: Optional[float] = None
    subscription_queue: Optional[int] = None
    token: Optional[str] = None
    user: Optional[str] = None
    password: Optional[str] = None
    creds_file: Optional[str] = None
    tls_required: Optional[bool] = None
    tls_root_certificates: Sequence[str] = ()
    tls_client_certificate: Optional[Tuple[str, str]] = None
    link_oneshot: Optional[bool] = None
    link_ttl: Optional[float] = None
    fallback_to_direct: Optional[bool] = None
    allowed_origins: Sequence[str] = ()  # "*" allows any http(s) origin
    max_download_bytes: Optional[int] = None
    download_retry: Optional[Tuple[int, float, float]] = None  # attempts, first delay, cap
    parallel_downloads: Optional[int] = None
    # The downloads of one received message (all its link payloads, retries included) must
    # end within download_timeout + their declared sizes / min_transfer_rate, or it fails
    # with DownloadFailedError. min_transfer_rate also stretches an upload's deadline
    # (operation_timeout + size / min_transfer_rate).
    download_timeout: Optional[float] = None  # seconds (30)
    min_transfer_rate: Optional[int] = None  # bytes per second (262144)
    # True (the default): a subscription delivers envelopes in arrival order, each waiting
    # for the downloads of those before it (at most their deadline). False: each as soon as
    # it is decoded, so envelopes without link payloads never wait behind a download.
    ordered_subscriptions: Optional[bool] = None
    # Received link payloads stream into files here instead of memory: binary types arrive
    # as pathlib.Path (the file is yours), arrowtable as a memory-mapped Table.
    download_dir: Optional[str] = None
    use_env: bool = True

    @classmethod
    def of(cls, config: Optional["Config"] = None, **settings: Any) -> "Config":
        """``config`` with ``settings`` replacing its fields (TypeError for unknown names)."""
        base = config if config is not None else cls()
        if not settings:
            return base
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise TypeError(f"unknown natsbridge setting(s): {', '.join(unknown)}")
        values = {f.name: getattr(base, f.name) for f in fields(cls)}
        values.update(settings)
        return cls(**values)

    @contextlib.contextmanager
    def _handle(self) -> Iterator[int]:
        """A library ``nb_config`` built from these settings, freed afterwards."""
        out = c_void_p()
        check(lib.nb_config_from_env(byref(out)) if self.use_env else lib.nb_config_new(byref(out)))
        cfg = handed_out(out)
        try:
            self._apply(cfg)
            yield cfg
        finally:
            lib.nb_config_free(cfg)

    def _apply(self, cfg: int) -> None:
        def s(value: Any, what: str) -> bytes:
            return cstr(value, what)

        calls: List[Tuple[Any, Tuple[Any, ...]]] = []
        if self.nats_url is not None:
            url = self.nats_url if isinstance(self.nats_url, str) else ",".join(self.nats_url)
            calls.append((lib.nb_config_set_nats_url, (s(url, "nats_url"),)))
        if self.fileserver_url is not None:
            calls.append(
                (lib.nb_config_set_fileserver_url, (s(self.fileserver_url, "fileserver_url"),))
            )
        if self.fileserver_token is not None:
            calls.append(
                (
                    lib.nb_config_set_fileserver_token,
                    (s(self.fileserver_token, "fileserver_token"),),
                )
            )
        if self.size_threshold is not None:
            calls.append(
                (lib.nb_config_set_size_threshold, (_count(self.size_threshold, "size_threshold"),))
            )
        if self.sender_name is not None:
            calls.append((lib.nb_config_set_sender_name, (s(self.sender_name, "sender_name"),)))
        if self.client_name is not None:
            calls.append((lib.nb_config_set_client_name, (s(self.client_name, "client_name"),)))
        for name, fn in (
            ("connect_timeout", lib.nb_config_set_connect_timeout_ms),
            ("operation_timeout", lib.nb_config_set_operation_timeout_ms),
            ("http_idle_timeout", lib.nb_config_set_http_idle_timeout_ms),
            ("download_timeout", lib.nb_config_set_download_timeout_ms),
        ):
            value = getattr(self, name)
            if value is not None:
                calls.append((fn, (millis(value, name),)))
        if self.subscription_queue is not None:
            calls.append(
                (
                    lib.nb_config_set_subscription_queue,
                    (_count(self.subscription_queue, "subscription_queue"),),
                )
            )
        if self.token is not None:
            calls.append((lib.nb_config_set_token, (s(self.token, "token"),)))
        if self.user is not None or self.password is not None:
            calls.append(
                (
                    lib.nb_config_set_user_password,
                    (s(self.user or "", "user"), s(self.password or "", "password")),
                )
            )
        if self.creds_file is not None:
            calls.append((lib.nb_config_set_creds_file, (s(str(self.creds_file), "creds_file"),)))
        if self.tls_required is not None:
            calls.append((lib.nb_config_set_tls_required, (bool(self.tls_required),)))
        for pem in self.tls_root_certificates:
            calls.append(
                (lib.nb_config_add_tls_root_certificate, (s(str(pem), "tls_root_certificates"),))
            )
        if self.tls_client_certificate is not None:
            cert, key = self.tls_client_certificate
            calls.append(
                (
                    lib.nb_config_set_tls_client_certificate,
                    (s(str(cert), "tls certificate"), s(str(key), "tls key")),
                )
            )
        if self.link_oneshot is not None:
            calls.append((lib.nb_config_set_link_oneshot, (bool(self.link_oneshot),)))
        if self.link_ttl is not None:
            calls.append((lib.nb_config_set_link_ttl_s, (_count(int(self.link_ttl), "link_ttl"),)))
        if self.fallback_to_direct is not None:
            calls.append((lib.nb_config_set_fallback_to_direct, (bool(self.fallback_to_direct),)))
        for origin in self.allowed_origins:
            calls.append((lib.nb_config_add_allowed_origin, (s(origin, "allowed_origins"),)))
        if self.max_download_bytes is not None:
            calls.append(
                (
                    lib.nb_config_set_max_download_bytes,
                    (_count(self.max_download_bytes, "max_download_bytes"),),
                )
            )
        if self.download_retry is not None:
            attempts, first, cap = self.download_retry
            calls.append(
                (
                    lib.nb_config_set_download_retry,
                    (
                        _count(attempts, "download_retry attempts"),
                        millis(first, "download_retry first delay"),
                        millis(cap, "download_retry max delay"),
                    ),
                )
            )
        if self.parallel_downloads is not None:
            calls.append(
                (
                    lib.nb_config_set_parallel_downloads,
                    (_count(self.parallel_downloads, "parallel_downloads"),),
                )
            )
        if self.min_transfer_rate is not None:
            calls.append(
                (
                    lib.nb_config_set_min_transfer_rate,
                    (_count(self.min_transfer_rate, "min_transfer_rate"),),
                )
            )
        if self.ordered_subscriptions is not None:
            calls.append(
                (lib.nb_config_set_ordered_subscriptions, (bool(self.ordered_subscriptions),))
            )
        if self.download_dir is not None:
            calls.append(
                (lib.nb_config_set_download_dir, (s(str(self.download_dir), "download_dir"),))
            )
        for fn, args in calls:
            check(fn(cfg, *args))


def _count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgumentError(f"{what} must be a non-negative int, not {value!r}")
    return value


# ---------------------------------------------------------------------------------------
# Sending


def new_uuid() -> str:
    """A new UUID v4 as text (as ``str(uuid.uuid4())``, from the same OS randomness, at a
    third of the cost: it is made for every send)."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_UUID_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


_UUID_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


@contextlib.contextmanager
def send_options(options: Mapping[str, Any]) -> Iterator[Tuple[Optional[int], str]]:
    """An ``nb_send_options`` for ``options`` (freed afterwards) and the correlation id the
    send will carry: the caller's, or a new UUID v4 chosen here so that errors name it.
    Without options a send passes none (see ``send_options_or_none``)."""
    unknown = sorted(set(options) - SEND_OPTION_NAMES)
    if unknown:
        raise TypeError(f"unknown send option(s): {', '.join(unknown)}")
    correlation_id = options.get("correlation_id") or new_uuid()
    out = c_void_p()
    check(lib.nb_send_options_new(byref(out)))
    opts = out.value
    try:
        for name in _SEND_TEXT_OPTIONS:
            value = correlation_id if name == "correlation_id" else options.get(name)
            if value is not None:
                fn = getattr(lib, "nb_send_options_set_" + name)
                check(fn(opts, cstr(value, name)), correlation_id=correlation_id)
        if options.get("metadata") is not None:
            meta = options["metadata"]
            if not isinstance(meta, Mapping):
                raise InvalidArgumentError("metadata must be a dict")
            text = json.dumps(dict(meta), ensure_ascii=False, default=str)
            check(
                lib.nb_send_options_set_metadata_json(opts, text.encode("utf-8")),
                correlation_id=correlation_id,
            )
        if options.get("size_threshold") is not None:
            threshold = _count(options["size_threshold"], "size_threshold")
            if threshold == 0:
                raise InvalidArgumentError("size_threshold must be at least 1 byte")
            check(lib.nb_send_options_set_size_threshold(opts, threshold))
        if options.get("fallback_to_direct") is not None:
            check(
                lib.nb_send_options_set_fallback_to_direct(
                    opts, bool(options["fallback_to_direct"])
                )
            )
        if options.get("confirm") is not None:
            check(lib.nb_send_options_set_confirm(opts, bool(options["confirm"])))
        progress = options.get("progress")
        if progress is not None:
            if not isinstance(progress, Progress):
                raise InvalidArgumentError("progress must be a natsbridge.Progress")
            with progress._handle.use() as ptr:
                # The options keep their own reference: the counter may be freed any time.
                check(lib.nb_send_options_set_progress(opts, ptr))
        yield opts, correlation_id
    finally:
        lib.nb_send_options_free(opts)


#: What a send without options passes: no options handle (the library chooses the
#: correlation id and reports it with an error).
_NO_OPTIONS = contextlib.nullcontext((None, None))


def send_options_or_none(
    options: Mapping[str, Any],
) -> ContextManager[Tuple[Optional[int], Optional[str]]]:
    """``send_options(options)``, or no options handle at all when there are none."""
    return send_options(options) if options else _NO_OPTIONS


class Progress:
    """Upload progress of a send: pass it as ``smartsend(..., progress=p)`` and read
    :attr:`done` / :attr:`total` from any thread (or the event loop) while the send runs.

    Counts the bytes of link payloads only; ``total`` is 0 until uploads start, or when
    everything goes direct. One counter may be reused for several sends.
    """

    def __init__(self) -> None:
        out = c_void_p()
        check(lib.nb_progress_new(byref(out)))
        self._handle = Handle(handed_out(out), lib.nb_progress_free, "progress counter")

    @property
    def done(self) -> int:
        """Bytes of link payloads uploaded so far."""
        with self._handle.use() as p:
            return int(lib.nb_progress_done(p))

    @property
    def total(self) -> int:
        """Bytes of link payloads to upload in all (0 before the upload starts)."""
        with self._handle.use() as p:
            return int(lib.nb_progress_total(p))

    def __repr__(self) -> str:
        if self._handle.released:
            return "<natsbridge.Progress freed>"
        return f"<natsbridge.Progress {self.done}/{self.total} bytes>"

    def __del__(self) -> None:
        try:
            self._handle.release(wait=0)
        except Exception:  # pragma: no cover - interpreter teardown
            pass


def _address(buf: Any) -> int:
    if isinstance(buf, bytes):
        return ctypes.cast(ctypes.c_char_p(buf), c_void_p).value or 0
    return ctypes.addressof(buf)


_BYTES_TYPES = frozenset(("binary", "image", "audio", "video"))


class PayloadArray:
    """The ``nb_payload_in`` array of a send, with the Python buffers it points into."""

    __slots__ = ("array", "count", "nbytes", "_keep")

    def __init__(self, payloads: Iterable[PayloadIn]) -> None:
        if isinstance(payloads, (str, bytes)) or not isinstance(payloads, Iterable):
            raise InvalidArgumentError(
                "payloads must be a list of (dataname, data, payload_type) tuples"
            )
        items = payloads if type(payloads) is list else list(payloads)
        self.count = len(items)
        keep: List[Any] = []
        slots = []
        nbytes = 0
        for i, item in enumerate(items):
            if not isinstance(item, (tuple, list)) or len(item) not in (3, 4):
                raise InvalidArgumentError(
                    f"payload {i} must be a (dataname, data, payload_type) tuple, "
                    f"optionally followed by a metadata dict; got {item!r:.80}"
                )
            dataname, value, payload_type = item[0], item[1], item[2]
            # The error's wording is made only for an error: most sends have none.
            name = cstr(dataname, lambda: f"payload {i} dataname")
            ptype = cstr(payload_type, lambda: f"payload {dataname!r} payload_type")
            if type(value) is bytes and payload_type in _BYTES_TYPES:
                buf, n = value, len(value)  # the common case, without a copy
            else:
                buf, n = serialize(dataname, value, payload_type)
            keep.append(buf)
            nbytes += n
            meta = None
            if len(item) == 4 and item[3] is not None:
                metadata = item[3]
                if not isinstance(metadata, Mapping):
                    raise InvalidArgumentError(f"metadata of payload {dataname!r} must be a dict")
                meta = json.dumps(dict(metadata), ensure_ascii=False).encode("utf-8")
            slots.append((name, ptype, _address(buf) if n else None, n, meta))
        self.array = (_ffi.nb_payload_in * max(self.count, 1))(*slots)
        self.nbytes = nbytes
        self._keep = keep


#: How many bytes of ``bytes`` / ``str`` values an asyncio send may publish from the loop's
#: thread (``nb_client_try_smartsend``, which keeps the GIL while it base64-encodes them).
INLINE_ON_LOOP = 1 << 20


def inline(payloads: Any, limit: int) -> bool:
    """Whether a send may try ``nb_client_try_smartsend`` first: a list or tuple of payloads
    whose values need no conversion (``bytes``, ``str``) and are at most ``limit`` bytes in
    all."""
    if type(payloads) is not list and type(payloads) is not tuple:
        return False
    total = 0
    for item in payloads:
        if type(item) is not tuple or len(item) < 3:
            return False
        value = item[1]
        if type(value) is not bytes and type(value) is not str:
            return False
        total += len(value)
    return total <= limit


def take_string(ptr: c_void_p) -> str:
    """Reads and frees a string handed out by the library."""
    try:
        return ctypes.string_at(ptr.value).decode("utf-8") if ptr.value else ""
    finally:
        lib.nb_string_free(ptr)


def reply_options(
    request: Mapping[str, Any], options: Mapping[str, Any]
) -> Tuple[str, Dict[str, Any]]:
    """The subject and options of a reply to ``request`` (the rule of ``nb_client_reply``:
    to its ``reply_to``, with its ``msg_id`` as ``reply_to_msg_id``, its ``correlation_id``,
    and its sender as receiver, unless ``options`` sets them)."""
    if not isinstance(request, Mapping):
        raise InvalidArgumentError("reply() takes a received envelope (a dict)")
    subject = request.get("reply_to") or ""
    if not subject:
        raise InvalidArgumentError(
            "the request envelope has no reply_to subject to answer on",
            correlation_id=request.get("correlation_id"),
        )
    merged = dict(options)
    for key, source in (
        ("reply_to_msg_id", "msg_id"),
        ("correlation_id", "correlation_id"),
        ("receiver_name", "sender_name"),
        ("receiver_id", "sender_id"),
    ):
        if merged.get(key) is None and request.get(source):
            merged[key] = request[source]
    return subject, merged


# ---------------------------------------------------------------------------------------
# Receiving


try:  # an optional accelerator: `pip install natsbridge[fast]`
    from orjson import loads as _orjson_loads
except ImportError:  # pragma: no cover - depends on the environment
    _orjson_loads = None

#: Parses JSON the library wrote (envelope headers and outlines, ``msg_json``): with orjson
#: when it is installed (~3x faster; the library writes only what both parse alike: UTF-8,
#: 64-bit integers, finite floats), else ``json.loads``. Payload values always go through
#: ``json``, whose results (big integers, ...) do not depend on what is installed.
loads_ours: Callable[[Union[str, bytes]], Any] = _orjson_loads or json.loads


def message_bytes(msg: Any) -> bytes:
    """The raw bytes of a NATS message given as bytes, str, a buffer, or an object with
    ``.data`` (a nats-py ``Msg``)."""
    data = getattr(msg, "data", msg)
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise InvalidArgumentError(
        f"smartreceive takes bytes, str or a NATS message with .data, not {type(msg).__name__}"
    )


def correlation_id_of(raw: bytes) -> Optional[str]:
    """Best effort: the correlation id of a raw envelope (to tag an error with)."""
    try:
        value = json.loads(raw).get("correlation_id")
    except Exception:
        return None
    return value if isinstance(value, str) and value else None


def _outline(env: int) -> Dict[str, Any]:
    """Everything of a library envelope but the bytes, in one call: the header's keys in wire
    order, then ``payloads`` (``nb_envelope_outline_json``)."""
    return loads_ours(ctypes.string_at(lib.nb_envelope_outline_json(env)))


def envelope_dict(env: int) -> Envelope:
    """Converts a library envelope to the walkthrough's dict (does not free it)."""
    found = _outline(env)
    cid = found.get("correlation_id")
    payloads: List[PayloadOut] = []
    data = c_void_p()
    size = c_size_t()
    for i, p in enumerate(found.get("payloads") or ()):
        dataname = p["dataname"]
        ptype = p["payload_type"]
        path = p.get("file")
        try:
            if path is not None:  # downloaded into a file (Config.download_dir)
                value = deserialize_file(dataname, path, ptype)
                payloads.append((dataname, value, ptype))
                continue
            check(
                lib.nb_envelope_payload_bytes(env, i, byref(data), byref(size)), correlation_id=cid
            )
            raw = ctypes.string_at(data.value or 0, size.value) if size.value else b""
            value = raw if ptype in _BYTES_TYPES else deserialize(dataname, raw, ptype)
        except (ImportError, NatsBridgeError):
            raise
        except Exception as e:
            raise DeserializationError(
                f"payload {dataname!r} ({ptype}) could not be converted to a Python value: {e}",
                correlation_id=cid,
            ) from e
        payloads.append((dataname, value, ptype))
    found["payloads"] = payloads
    return found


def _data_in(msg_json: str, payload_id: str, size: int) -> Optional[str]:
    """The base64 text of the direct payload ``payload_id`` as it stands in ``msg_json``, or
    None if it is not found where the library writes it. The library writes each payload as
    ``{"id":"<its new UUID>",...,"data":"<base64>",...}``: the id cannot occur anywhere else
    unescaped, no ``"data":"`` can occur inside the strings between it and the data, and the
    base64 text has a known length and no quote."""
    at = msg_json.find('{"id":"' + payload_id + '"')
    if at < 0:
        return None
    start = msg_json.find('"data":"', at)
    if start < 0:
        return None
    start += 8
    end = start + (size + 2) // 3 * 4
    if msg_json[end : end + 1] != '"':
        return None
    return msg_json[start:end]


def sent_envelope_dict(env: int, msg_json: str) -> Envelope:
    """The wire form of an envelope a send returned (``json.loads(msg_json)``), without
    parsing the base64 of its payloads (that costs ~2.5 ms per MB in Python's json): the
    outline of the envelope, each direct payload's data sliced out of ``msg_json``."""
    found = _outline(env)
    text = c_void_p()
    size = c_size_t()
    payloads = []
    for i, p in enumerate(found.get("payloads") or ()):
        if p["transport"] == "direct":
            data: Any = _data_in(msg_json, p["id"], p["size"])
            if data is None:  # not laid out as expected: ask the library
                check(lib.nb_envelope_payload_base64(env, i, byref(text), byref(size)))
                data = ctypes.string_at(text.value or 0, size.value).decode("ascii")
        else:
            data = p["url"]
        payloads.append(
            {
                "id": p["id"],
                "dataname": p["dataname"],
                "payload_type": p["payload_type"],
                "transport": p["transport"],
                "encoding": p["encoding"],
                "size": p["size"],
                "data": data,
                "metadata": p["metadata"],
            }
        )
    found["payloads"] = payloads
    return found


#: Sends with more payload bytes than this return ``env`` rebuilt from the sent envelope;
#: below, parsing ``msg_json`` is the cheaper of the two.
REBUILD_ABOVE = 12 * 1024


def take_sent(env: Optional[c_void_p], msg_json: c_void_p) -> Tuple[Envelope, str]:
    """``(env, msg_json)`` of a send's out-parameters, freeing both: ``env`` rebuilt from the
    sent envelope when one was asked for, else parsed from the JSON."""
    try:
        text = take_string(msg_json)
        if env is None:
            return loads_ours(text), text
        return sent_envelope_dict(handed_out(env), text), text
    finally:
        if env is not None:
            lib.nb_envelope_free(env.value)


def take_envelope(env: int) -> Envelope:
    """Converts and frees a library envelope."""
    try:
        return envelope_dict(env)
    finally:
        lib.nb_envelope_free(env)


# ---------------------------------------------------------------------------------------
# Closing everything at interpreter exit


_live: "weakref.WeakSet[Any]" = weakref.WeakSet()
_live_lock = threading.Lock()
_shut_down = False


def register(obj: Any) -> None:
    """Tracks an object with ``_close_at_exit()`` and ``_EXIT_ORDER`` for ``shutdown``."""
    with _live_lock:
        _live.add(obj)


def shutdown(timeout: float = 5.0) -> None:
    """Closes every live subscription, then every client, then stops the library's runtime.

    Registered with ``atexit``; safe to call more than once. Handles used after it fail with
    :class:`~natsbridge.ClosedError`.
    """
    global _shut_down
    with _live_lock:
        objs = sorted(_live, key=lambda o: o._EXIT_ORDER)
        _live.clear()
    for obj in objs:
        try:
            obj._close_at_exit()
        except Exception:  # pragma: no cover - best effort at exit
            log.exception("natsbridge: error while closing %r at exit", obj)
    from . import _logging

    _logging.disable()
    if not _shut_down:
        _shut_down = True
        lib.nb_runtime_shutdown(millis(timeout, "timeout"))


atexit.register(shutdown)


def is_message_error(err: NatsBridgeError) -> bool:
    """True for the error of one undeliverable message (the subscription goes on)."""
    return not isinstance(err, ClosedError)
