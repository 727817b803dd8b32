"""Every ctypes declaration of libnatsbridge, and how the library is found and checked.

This module is the only place that names C functions or types. ``SIGNATURES`` mirrors
``include/natsbridge.h`` one function per line (a checker compares the two); it is applied
to the loaded library by ``_declare``. Opaque handles are ``c_void_p``; ``c_char_p`` is only
used for ``const char*`` inputs; text handed out by the library is read from a ``c_void_p``
with ``text()``.

The library is looked up in this order:

1. the file named by the ``NATSBRIDGE_LIB`` environment variable;
2. ``libnatsbridge.so`` bundled inside this package by ``pip install``;
3. in a source checkout, the repository's ``target/release`` then ``target/debug``.

ctypes ``CDLL`` releases the GIL around every call, so blocking calls (connect, send,
pull with a timeout) let other Python threads run.
"""

from __future__ import annotations

import ctypes
import os
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_bool,
    c_char_p,
    c_int,
    c_int32,
    c_int64,
    c_size_t,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path
from typing import Any, List, Optional

__all__ = ["lib", "ABI_VERSION", "LIBRARY_PATH", "SIGNATURES"]

#: The ``NB_ABI_VERSION`` this binding was written for.
ABI_VERSION = 1

LIBRARY_NAME = "libnatsbridge.so"

# Status codes (include/natsbridge.h). The wire names come from nb_status_code_name().
NB_OK = 0
NB_ERR_INVALID_ARGUMENT = -1
NB_ERR_TIMEOUT = -2
NB_ERR_CLOSED = -3
NB_ERR_PULL_TIMEOUT = -104
NB_ERR_WOULD_BLOCK = -107

# Log levels.
NB_LOG_OFF = 0
NB_LOG_WARN = 1
NB_LOG_INFO = 2
NB_LOG_DEBUG = 3

# Callback types (the header's typedefs of the same names).
nb_log_callback = CFUNCTYPE(None, c_void_p, c_int32, c_char_p)
nb_envelope_callback = CFUNCTYPE(None, c_void_p, c_void_p, c_int32)
nb_free_callback = CFUNCTYPE(None, c_void_p)
nb_wake_callback = CFUNCTYPE(c_int, c_void_p)


class nb_payload_in(Structure):
    """One payload to send: ``(dataname, payload_type, data, len, metadata_json)``.

    Passed to the library as a ``c_void_p`` pointing at an array of these.
    """

    _fields_ = [
        ("dataname", c_char_p),
        ("payload_type", c_char_p),
        ("data", c_void_p),
        ("len", c_size_t),
        ("metadata_json", c_char_p),
    ]


# fmt: off
SIGNATURES = {
    "nb_version": (c_void_p, []),
    "nb_abi_version": (c_uint32, []),
    "nb_log_set_level": (c_int32, [c_int32]),
    "nb_log_set_callback": (c_int32, [nb_log_callback, c_void_p]),
    "nb_string_free": (None, [c_void_p]),
    "nb_last_error_message": (c_int32, [c_void_p, c_size_t, POINTER(c_size_t)]),
    "nb_last_error_correlation_id": (c_int32, [c_void_p, c_size_t, POINTER(c_size_t)]),
    "nb_client_connect": (c_int32, [c_void_p, POINTER(c_void_p)]),
    "nb_client_flush": (c_int32, [c_void_p]),
    "nb_client_close": (c_int32, [c_void_p]),
    "nb_client_free": (None, [c_void_p]),
    "nb_client_smartsend": (c_int32, [c_void_p, c_char_p, c_void_p, c_size_t, c_void_p, POINTER(c_void_p), POINTER(c_void_p)]),
    "nb_client_try_smartsend": (c_int32, [c_void_p, c_char_p, c_void_p, c_size_t, c_void_p, POINTER(c_void_p), POINTER(c_void_p)]),
    "nb_client_smartreceive": (c_int32, [c_void_p, c_void_p, c_size_t, POINTER(c_void_p)]),
    "nb_smartreceive": (c_int32, [c_void_p, c_void_p, c_size_t, POINTER(c_void_p)]),
    "nb_client_request": (c_int32, [c_void_p, c_char_p, c_void_p, c_size_t, c_void_p, c_int64, POINTER(c_void_p)]),
    "nb_client_reply": (c_int32, [c_void_p, c_void_p, c_void_p, c_size_t, c_void_p, POINTER(c_void_p), POINTER(c_void_p)]),
    "nb_client_max_payload": (c_int32, [c_void_p, POINTER(c_size_t)]),
    "nb_client_dropped": (c_int32, [c_void_p, POINTER(c_uint64)]),
    "nb_client_last_error": (c_int32, [c_void_p, c_void_p, c_size_t, POINTER(c_size_t)]),
    "nb_config_new": (c_int32, [POINTER(c_void_p)]),
    "nb_config_from_env": (c_int32, [POINTER(c_void_p)]),
    "nb_config_free": (None, [c_void_p]),
    "nb_config_set_nats_url": (c_int32, [c_void_p, c_char_p]),
    "nb_config_set_fileserver_url": (c_int32, [c_void_p, c_char_p]),
    "nb_config_set_fileserver_token": (c_int32, [c_void_p, c_char_p]),
    "nb_config_set_size_threshold": (c_int32, [c_void_p, c_size_t]),
    "nb_config_set_sender_name": (c_int32, [c_void_p, c_char_p]),
    "nb_config_set_client_name": (c_int32, [c_void_p, c_char_p]),
    "nb_config_set_connect_timeout_ms": (c_int32, [c_void_p, c_uint64]),
    "nb_config_set_operation_timeout_ms": (c_int32, [c_void_p, c_uint64]),
    "nb_config_set_http_idle_timeout_ms": (c_int32, [c_void_p, c_uint64]),
    "nb_config_set_subscription_queue": (c_int32, [c_void_p, c_size_t]),
    "nb_config_set_token": (c_int32, [c_void_p, c_char_p]),
    "nb_config_set_user_password": (c_int32, [c_void_p, c_char_p, c_char_p]),
    "nb_config_set_creds_file": (c_int32, [c_void_p, c_char_p]),
    "nb_config_clear_credentials": (c_int32, [c_void_p]),
    "nb_config_set_tls_required": (c_int32, [c_void_p, c_bool]),
    "nb_config_add_tls_root_certificate": (c_int32, [c_void_p, c_char_p]),
    "nb_config_set_tls_client_certificate": (c_int32, [c_void_p, c_char_p, c_char_p]),
    "nb_config_set_link_oneshot": (c_int32, [c_void_p, c_bool]),
    "nb_config_set_link_ttl_s": (c_int32, [c_void_p, c_uint64]),
    "nb_config_set_fallback_to_direct": (c_int32, [c_void_p, c_bool]),
    "nb_config_add_allowed_origin": (c_int32, [c_void_p, c_char_p]),
    "nb_config_set_max_download_bytes": (c_int32, [c_void_p, c_uint64]),
    "nb_config_set_download_retry": (c_int32, [c_void_p, c_uint32, c_uint64, c_uint64]),
    "nb_config_set_parallel_downloads": (c_int32, [c_void_p, c_size_t]),
    "nb_config_set_download_timeout_ms": (c_int32, [c_void_p, c_uint64]),
    "nb_config_set_min_transfer_rate": (c_int32, [c_void_p, c_uint64]),
    "nb_config_set_ordered_subscriptions": (c_int32, [c_void_p, c_bool]),
    "nb_config_set_download_dir": (c_int32, [c_void_p, c_char_p]),
    "nb_config_last_error": (c_int32, [c_void_p, c_void_p, c_size_t, POINTER(c_size_t)]),
    "nb_envelope_free": (None, [c_void_p]),
    "nb_envelope_clone": (c_int32, [c_void_p, POINTER(c_void_p)]),
    "nb_envelope_correlation_id": (c_void_p, [c_void_p]),
    "nb_envelope_msg_id": (c_void_p, [c_void_p]),
    "nb_envelope_timestamp": (c_void_p, [c_void_p]),
    "nb_envelope_send_to": (c_void_p, [c_void_p]),
    "nb_envelope_msg_purpose": (c_void_p, [c_void_p]),
    "nb_envelope_sender_name": (c_void_p, [c_void_p]),
    "nb_envelope_sender_id": (c_void_p, [c_void_p]),
    "nb_envelope_receiver_name": (c_void_p, [c_void_p]),
    "nb_envelope_receiver_id": (c_void_p, [c_void_p]),
    "nb_envelope_reply_to": (c_void_p, [c_void_p]),
    "nb_envelope_reply_to_msg_id": (c_void_p, [c_void_p]),
    "nb_envelope_broker_url": (c_void_p, [c_void_p]),
    "nb_envelope_metadata_json": (c_void_p, [c_void_p]),
    "nb_envelope_header_json": (c_void_p, [c_void_p]),
    "nb_envelope_outline_json": (c_void_p, [c_void_p]),
    "nb_envelope_payload_base64": (c_int32, [c_void_p, c_size_t, POINTER(c_void_p), POINTER(c_size_t)]),
    "nb_envelope_payload_count": (c_size_t, [c_void_p]),
    "nb_envelope_payload_id": (c_void_p, [c_void_p, c_size_t]),
    "nb_envelope_payload_dataname": (c_void_p, [c_void_p, c_size_t]),
    "nb_envelope_payload_type": (c_void_p, [c_void_p, c_size_t]),
    "nb_envelope_payload_transport": (c_void_p, [c_void_p, c_size_t]),
    "nb_envelope_payload_is_link": (c_bool, [c_void_p, c_size_t]),
    "nb_envelope_payload_size": (c_uint64, [c_void_p, c_size_t]),
    "nb_envelope_payload_url": (c_void_p, [c_void_p, c_size_t]),
    "nb_envelope_payload_file": (c_void_p, [c_void_p, c_size_t]),
    "nb_envelope_payload_metadata_json": (c_void_p, [c_void_p, c_size_t]),
    "nb_envelope_payload_bytes": (c_int32, [c_void_p, c_size_t, POINTER(c_void_p), POINTER(c_size_t)]),
    "nb_send_options_new": (c_int32, [POINTER(c_void_p)]),
    "nb_send_options_free": (None, [c_void_p]),
    "nb_send_options_set_correlation_id": (c_int32, [c_void_p, c_char_p]),
    "nb_send_options_set_msg_id": (c_int32, [c_void_p, c_char_p]),
    "nb_send_options_set_msg_purpose": (c_int32, [c_void_p, c_char_p]),
    "nb_send_options_set_sender_name": (c_int32, [c_void_p, c_char_p]),
    "nb_send_options_set_sender_id": (c_int32, [c_void_p, c_char_p]),
    "nb_send_options_set_receiver_name": (c_int32, [c_void_p, c_char_p]),
    "nb_send_options_set_receiver_id": (c_int32, [c_void_p, c_char_p]),
    "nb_send_options_set_reply_to": (c_int32, [c_void_p, c_char_p]),
    "nb_send_options_set_reply_to_msg_id": (c_int32, [c_void_p, c_char_p]),
    "nb_send_options_set_metadata_json": (c_int32, [c_void_p, c_char_p]),
    "nb_send_options_set_size_threshold": (c_int32, [c_void_p, c_size_t]),
    "nb_send_options_set_fallback_to_direct": (c_int32, [c_void_p, c_bool]),
    "nb_send_options_set_confirm": (c_int32, [c_void_p, c_bool]),
    "nb_progress_new": (c_int32, [POINTER(c_void_p)]),
    "nb_progress_free": (None, [c_void_p]),
    "nb_progress_done": (c_uint64, [c_void_p]),
    "nb_progress_total": (c_uint64, [c_void_p]),
    "nb_send_options_set_progress": (c_int32, [c_void_p, c_void_p]),
    "nb_runtime_init": (c_int32, [c_uint32]),
    "nb_runtime_shutdown": (c_int32, [c_uint64]),
    "nb_status_str": (c_void_p, [c_int32]),
    "nb_status_code_name": (c_void_p, [c_int32]),
    "nb_client_subscribe": (c_int32, [c_void_p, c_char_p, c_char_p, POINTER(c_void_p)]),
    "nb_client_subscribe_callback": (c_int32, [c_void_p, c_char_p, c_char_p, nb_envelope_callback, c_void_p, nb_free_callback, POINTER(c_void_p)]),
    "nb_subscription_next": (c_int32, [c_void_p, c_int64, POINTER(c_void_p)]),
    "nb_subscription_next_batch": (c_int32, [c_void_p, POINTER(c_void_p), c_size_t, c_int64, POINTER(c_size_t)]),
    "nb_subscription_fd": (c_int32, [c_void_p, POINTER(c_int)]),
    "nb_subscription_set_wake": (c_int32, [c_void_p, nb_wake_callback, c_void_p]),
    "nb_subscription_dropped": (c_int32, [c_void_p, POINTER(c_uint64)]),
    "nb_subscription_close": (c_int32, [c_void_p]),
    "nb_subscription_free": (None, [c_void_p]),
    "nb_subscription_last_error": (c_int32, [c_void_p, c_void_p, c_size_t, POINTER(c_size_t)]),
}
# fmt: on


def _candidates() -> List[Path]:
    """Where to look for the library, in order (see the module docstring)."""
    env = os.environ.get("NATSBRIDGE_LIB")
    if env:
        return [Path(env)]
    here = Path(__file__).resolve().parent
    found = [here / LIBRARY_NAME]
    repo = here.parent.parent.parent
    if (repo / "Cargo.toml").is_file():
        target = Path(os.environ.get("CARGO_TARGET_DIR") or repo / "target")
        found += [target / "release" / LIBRARY_NAME, target / "debug" / LIBRARY_NAME]
    return found


_HOW_TO_BUILD = (
    "build it with `cargo build --release` in the natsbridge repository (or install this "
    "package with `pip install ./bindings/python`, which bundles it), or set NATSBRIDGE_LIB "
    "to the path of libnatsbridge.so"
)


def check_abi(found: int, path: str) -> None:
    """Raises ImportError unless the library's ABI version is the one this binding knows."""
    if found != ABI_VERSION:
        raise ImportError(
            f"natsbridge: {path} has ABI version {found}, but this Python binding was written "
            f"for ABI version {ABI_VERSION}; use a library and a binding from the same release "
            f"({_HOW_TO_BUILD})"
        )


#: Calls that return at once and never wait on the network, a lock held across I/O or a
#: host callback: they keep the GIL. Every other call releases it while it runs (and may
#: block). Releasing the GIL costs little, but a thread that releases it must take it back,
#: and with two busy Python threads every such round trip can cost a thread switch.
_QUICK_PREFIXES = (
    "nb_envelope_",
    "nb_send_options_",
    "nb_status_",
    "nb_last_error_",
    "nb_progress_",
)
_QUICK = frozenset(
    {
        "nb_version",
        "nb_abi_version",
        "nb_string_free",
        "nb_client_try_smartsend",
        "nb_client_max_payload",
        "nb_client_dropped",
        "nb_client_last_error",
        "nb_subscription_fd",
        "nb_subscription_dropped",
        "nb_subscription_last_error",
        "nb_config_last_error",
    }
)


def holds_gil(name: str) -> bool:
    """Whether the binding calls ``name`` without releasing the GIL."""
    return name in _QUICK or name.startswith(_QUICK_PREFIXES)


def _declare(cdll: ctypes.CDLL, pydll: ctypes.PyDLL) -> None:
    for name, (restype, argtypes) in SIGNATURES.items():
        fn = getattr(pydll if holds_gil(name) else cdll, name)
        fn.restype = restype
        fn.argtypes = argtypes
        setattr(_Lib, name, fn)


class _Lib:
    """The library's functions, each bound as ``holds_gil`` says (the attributes are set
    by ``_declare``)."""


def _load() -> "tuple[Any, str]":
    tried = []
    for path in _candidates():
        if not path.is_file():
            tried.append(f"{path} (not found)")
            continue
        try:
            cdll = ctypes.CDLL(str(path))
        except OSError as e:
            tried.append(f"{path} ({e})")
            continue
        try:
            abi = cdll.nb_abi_version
        except AttributeError:
            raise ImportError(
                f"natsbridge: {path} is not a natsbridge library (no nb_abi_version); "
                + _HOW_TO_BUILD
            ) from None
        abi.restype = c_uint32
        abi.argtypes = []
        check_abi(abi(), str(path))
        try:
            _declare(cdll, ctypes.PyDLL(str(path)))
        except AttributeError as e:
            raise ImportError(
                f"natsbridge: {path} lacks a function this binding needs ({e}); " + _HOW_TO_BUILD
            ) from None
        return _Lib, str(path)
    raise ImportError(
        "natsbridge: cannot find libnatsbridge.so; tried " + "; ".join(tried) + ". " + _HOW_TO_BUILD
    )


lib, LIBRARY_PATH = _load()


def text(ptr: Optional[int]) -> Optional[str]:
    """Reads a borrowed or static NUL-terminated UTF-8 string (None for NULL)."""
    if not ptr:
        return None
    return ctypes.string_at(ptr).decode("utf-8", "replace")


def status_code_name(status: int) -> str:
    """The stable name of a status (``"DOWNLOAD_FAILED"``, ``"PULL_TIMEOUT"``, ...)."""
    return text(lib.nb_status_code_name(status)) or "UNKNOWN"


def status_str(status: int) -> str:
    """Static English text for a status."""
    return text(lib.nb_status_str(status)) or "unknown status"


def _read_error(fn: Any, *handle: int) -> str:
    needed = c_size_t(0)
    fn(*handle, None, 0, ctypes.byref(needed))
    buf = ctypes.create_string_buffer(max(needed.value, 1))
    fn(*handle, buf, len(buf), ctypes.byref(needed))
    return buf.value.decode("utf-8", "replace")


def last_error_message() -> str:
    """This thread's last error message (read right after the failing call)."""
    return _read_error(lib.nb_last_error_message)


def last_error_correlation_id() -> Optional[str]:
    """The correlation id of the message this thread's last error concerns, if it names one."""
    return _read_error(lib.nb_last_error_correlation_id) or None


def subscription_last_error(sub: int) -> str:
    """The message of the last failure on a subscription."""
    return _read_error(lib.nb_subscription_last_error, sub)
