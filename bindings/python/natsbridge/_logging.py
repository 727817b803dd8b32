"""Routing the library's trace lines into Python ``logging`` (off by default).

The library is silent unless asked. :func:`enable_logging` installs a log callback that hands
each line (``[timestamp] [Correlation: id] text``) to the ``natsbridge.core`` logger, and sets
the library's level. The callback runs on library threads; it only calls ``Logger.log``.
"""

from __future__ import annotations

import logging
import threading
from typing import Optional, Union

from . import _ffi
from ._ffi import lib

__all__ = ["enable_logging", "disable_logging"]

core_log = logging.getLogger("natsbridge.core")

_LEVELS = {
    _ffi.NB_LOG_WARN: logging.WARNING,
    _ffi.NB_LOG_INFO: logging.INFO,
    _ffi.NB_LOG_DEBUG: logging.DEBUG,
}
_lock = threading.Lock()
_callback: Optional[object] = None  # keeps the ctypes trampoline alive while installed


def _forward(_ctx: Optional[int], level: int, line: Optional[bytes]) -> None:
    try:
        core_log.log(
            _LEVELS.get(level, logging.INFO), "%s", (line or b"").decode("utf-8", "replace")
        )
    except Exception:  # never let an exception reach the library's thread
        pass


def _nb_level(level: Union[int, str]) -> int:
    if isinstance(level, str):
        level = logging.getLevelName(level.upper())
        if not isinstance(level, int):
            raise ValueError(f"unknown log level {level!r}")
    if level <= logging.DEBUG:
        return _ffi.NB_LOG_DEBUG
    if level <= logging.INFO:
        return _ffi.NB_LOG_INFO
    if level <= logging.WARNING:
        return _ffi.NB_LOG_WARN
    return _ffi.NB_LOG_OFF


def enable_logging(level: Union[int, str] = logging.INFO) -> None:
    """Sends the library's trace lines, from ``level`` up, to the ``natsbridge.core`` logger.

    ``level`` is a ``logging`` level (``logging.DEBUG``, ``"info"``, ...). Configure handlers
    as usual (``logging.basicConfig(level=logging.INFO)``); nothing is printed otherwise.
    """
    global _callback
    from ._core import check

    with _lock:
        if _callback is None:
            cb = _ffi.nb_log_callback(_forward)
            check(lib.nb_log_set_callback(cb, None))
            _callback = cb
        check(lib.nb_log_set_level(_nb_level(level)))


def disable() -> None:
    """Stops the library's logging and removes the callback (used at exit)."""
    global _callback
    with _lock:
        lib.nb_log_set_level(_ffi.NB_LOG_OFF)
        if _callback is not None:
            # Once this returns the callback is no longer running and will not be called.
            lib.nb_log_set_callback(_ffi.nb_log_callback(), None)
            _callback = None


def disable_logging() -> None:
    """Turns the library's logging off again."""
    disable()
