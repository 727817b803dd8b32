"""natsbridge: typed payloads over NATS with the claim-check pattern.

A message is a JSON envelope of named payloads of eight types (``text``, ``dictionary``,
``arrowtable``, ``jsontable``, ``image``, ``audio``, ``video``, ``binary``). Small payloads
travel base64 inside the message; large ones go to a Plik-compatible file server and only
their URL travels. This package is the Python binding of the natsbridge library
(``libnatsbridge.so``), loaded with ctypes.

The walkthrough's API (asyncio)::

    env, msg_json = await natsbridge.smartsend(subject, [(dataname, data, payload_type)])
    env = await natsbridge.smartreceive(msg)      # bytes, str or a nats-py Msg

A connection to reuse: :func:`connect` (blocking, thread-safe :class:`Client`) or
:func:`natsbridge.aio.connect` (:class:`~natsbridge.aio.AsyncClient`).

The library is silent; :func:`enable_logging` routes its trace lines to the
``natsbridge.core`` logger.
"""

from __future__ import annotations

# Importing _ffi loads and checks the library: ImportError if it is missing or unusable.
from . import _ffi, aio
from ._core import Config, Envelope, PayloadIn, PayloadOut, Progress, SendOptions, shutdown
from ._logging import disable_logging, enable_logging
from ._values import PAYLOAD_TYPES
from .aio import smartreceive, smartsend
from .client import CallbackSubscription, Client, Subscription, connect
from .errors import (
    CallbackError,
    ClosedError,
    DeserializationError,
    DownloadFailedError,
    IntegrityError,
    InternalError,
    InvalidArgumentError,
    InvalidEnvelopeError,
    InvalidPayloadError,
    InvalidPayloadTypeError,
    InvalidTransportError,
    LinkUrlRejectedError,
    MessagesDroppedError,
    MissingExtraError,
    NatsBridgeError,
    NatsConnectionFailedError,
    NoRespondersError,
    PayloadTooLargeError,
    SlowConsumerError,
    TimeoutError,
    UploadFailedError,
)

__version__ = "0.1.0"

#: The version of the loaded library (``nb_version()``).
library_version: str = _ffi.text(_ffi.lib.nb_version()) or ""

#: Where the library was loaded from.
library_path: str = _ffi.LIBRARY_PATH

__all__ = [
    "smartsend",
    "smartreceive",
    "connect",
    "Client",
    "Subscription",
    "CallbackSubscription",
    "Config",
    "SendOptions",
    "Progress",
    "Envelope",
    "PayloadIn",
    "PayloadOut",
    "PAYLOAD_TYPES",
    "aio",
    "enable_logging",
    "disable_logging",
    "shutdown",
    "library_version",
    "library_path",
    "NatsBridgeError",
    "InvalidPayloadTypeError",
    "UploadFailedError",
    "DownloadFailedError",
    "InvalidTransportError",
    "NatsConnectionFailedError",
    "DeserializationError",
    "InvalidEnvelopeError",
    "InvalidPayloadError",
    "InvalidArgumentError",
    "PayloadTooLargeError",
    "LinkUrlRejectedError",
    "IntegrityError",
    "TimeoutError",
    "ClosedError",
    "SlowConsumerError",
    "NoRespondersError",
    "MessagesDroppedError",
    "InternalError",
    "CallbackError",
    "MissingExtraError",
]
