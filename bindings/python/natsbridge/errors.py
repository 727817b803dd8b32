"""Exceptions of natsbridge: one class per wire error code (wire format §6).

Every exception raised by the library is a :class:`NatsBridgeError` with

* ``code``: the stable wire code, e.g. ``"DOWNLOAD_FAILED"`` (the same string in every
  language binding and in error reports sent over NATS);
* ``correlation_id``: the correlation id of the message concerned, when known;
* ``status``: the C library's ``nb_status`` number (``None`` for errors raised by the
  binding itself before calling the library).

Catch a specific class (``except natsbridge.DownloadFailedError``) or test ``err.code``.
Where a builtin exception fits, the class also derives from it: ``InvalidArgumentError`` is a
``ValueError``, ``TimeoutError`` a builtin ``TimeoutError``, ``NatsConnectionFailedError`` a
``ConnectionError``.
"""

from __future__ import annotations

import builtins
import re
from typing import Dict, List, Optional, Type

__all__ = [
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


class NatsBridgeError(Exception):
    """An error of natsbridge, carrying its wire ``code`` and ``correlation_id``."""

    #: The wire code of this class; instances may carry a more specific one.
    CODE = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        code: Optional[str] = None,
        correlation_id: Optional[str] = None,
        status: Optional[int] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code: str = code or self.CODE
        self.correlation_id: Optional[str] = correlation_id or None
        self.status: Optional[int] = status

    def __repr__(self) -> str:
        extra = f", correlation_id={self.correlation_id!r}" if self.correlation_id else ""
        return f"{type(self).__name__}({self.message!r}, code={self.code!r}{extra})"


class InvalidPayloadTypeError(NatsBridgeError):
    """``INVALID_PAYLOAD_TYPE``: unknown ``payload_type``."""

    CODE = "INVALID_PAYLOAD_TYPE"


class UploadFailedError(NatsBridgeError):
    """``UPLOAD_FAILED``: a link payload could not be uploaded (nothing was published)."""

    CODE = "UPLOAD_FAILED"


class DownloadFailedError(NatsBridgeError):
    """``DOWNLOAD_FAILED``: a link payload could not be downloaded after retries."""

    CODE = "DOWNLOAD_FAILED"


class InvalidTransportError(NatsBridgeError):
    """``INVALID_TRANSPORT``: unknown ``transport``."""

    CODE = "INVALID_TRANSPORT"


class NatsConnectionFailedError(NatsBridgeError, ConnectionError):
    """``NATS_CONNECTION_FAILED``: the NATS server could not be reached."""

    CODE = "NATS_CONNECTION_FAILED"


class DeserializationError(NatsBridgeError):
    """``DESERIALIZATION_ERROR``: received bytes do not decode as their declared type."""

    CODE = "DESERIALIZATION_ERROR"


class InvalidEnvelopeError(NatsBridgeError):
    """``INVALID_ENVELOPE``: the message is not JSON, or not an envelope."""

    CODE = "INVALID_ENVELOPE"


class InvalidPayloadError(NatsBridgeError, ValueError):
    """``INVALID_PAYLOAD``: a value given to send does not fit its declared type."""

    CODE = "INVALID_PAYLOAD"


class InvalidArgumentError(NatsBridgeError, ValueError):
    """``INVALID_ARGUMENT``: a bad argument or setting (empty subject, unknown msg_purpose)."""

    CODE = "INVALID_ARGUMENT"


class PayloadTooLargeError(NatsBridgeError):
    """``PAYLOAD_TOO_LARGE``: the envelope cannot fit the server's max_payload, or a
    download exceeds its cap."""

    CODE = "PAYLOAD_TOO_LARGE"


class LinkUrlRejectedError(NatsBridgeError):
    """``LINK_URL_REJECTED``: a link URL outside the allowed origins."""

    CODE = "LINK_URL_REJECTED"


class IntegrityError(NatsBridgeError):
    """``INTEGRITY_ERROR``: downloaded bytes do not match the declared sha256 or size."""

    CODE = "INTEGRITY_ERROR"


class TimeoutError(NatsBridgeError, builtins.TimeoutError):  # noqa: A001 - like asyncio's
    """``TIMEOUT``: a deadline passed (a request without reply, a pull that found nothing)."""

    CODE = "TIMEOUT"


class ClosedError(NatsBridgeError):
    """``CLOSED``: the client or subscription is closed."""

    CODE = "CLOSED"


class SlowConsumerError(NatsBridgeError):
    """``SLOW_CONSUMER``: messages were dropped because the subscriber did not keep up."""

    CODE = "SLOW_CONSUMER"


class NoRespondersError(NatsBridgeError):
    """``NO_RESPONDERS``: a request found nobody subscribed to its subject."""

    CODE = "NO_RESPONDERS"


class MessagesDroppedError(NatsBridgeError):
    """``MESSAGES_DROPPED``: messages handed to the connection were not confirmed by the
    server when the connection to NATS dropped; they may not have arrived.

    Raised by ``flush()`` and ``close()`` (once for the messages dropped since the last
    report; the client is closed all the same) and by a send with ``confirm=True``.
    ``dropped`` is how many messages this report covers (``Client.dropped`` counts them all
    since connect).
    """

    CODE = "MESSAGES_DROPPED"

    @property
    def dropped(self) -> int:
        """The number of messages this error reports (1 for a confirmed send's)."""
        m = _DROPPED.search(self.message)
        return int(m.group(1)) if m else 1


class InternalError(NatsBridgeError):
    """``INTERNAL`` (or a boundary error such as ``PANIC``): a bug; please report it."""

    CODE = "INTERNAL"


class CallbackError(Exception):
    """Raised by ``CallbackSubscription.close()`` when the user's callback raised.

    ``errors`` holds every exception the callback raised (each was also logged); the first
    is the ``__cause__``.
    """

    def __init__(self, message: str, errors: List[BaseException]) -> None:
        super().__init__(message)
        self.errors = list(errors)


class MissingExtraError(ImportError):
    """An optional dependency (pyarrow, pandas) is needed for a payload and is missing.

    ``extra`` names the package extra that installs it: ``pip install 'natsbridge[arrow]'``.
    """

    def __init__(self, message: str, extra: str) -> None:
        super().__init__(message)
        self.extra = extra


_BY_CODE: Dict[str, Type[NatsBridgeError]] = {
    cls.CODE: cls
    for cls in (
        InvalidPayloadTypeError,
        UploadFailedError,
        DownloadFailedError,
        InvalidTransportError,
        NatsConnectionFailedError,
        DeserializationError,
        InvalidEnvelopeError,
        InvalidPayloadError,
        InvalidArgumentError,
        PayloadTooLargeError,
        LinkUrlRejectedError,
        IntegrityError,
        TimeoutError,
        ClosedError,
        SlowConsumerError,
        NoRespondersError,
        MessagesDroppedError,
        InternalError,
    )
}
# The boundary's own statuses: a pull timeout is a timeout; bad UTF-8 in an argument is a bad
# argument; the rest are bugs of a binding or of the library (WOULD_BLOCK is handled by the
# binding itself and never reaches its callers).
_BY_CODE["PULL_TIMEOUT"] = TimeoutError
_BY_CODE["UTF8"] = InvalidArgumentError
for _name in (
    "NULL_ARG",
    "BUFFER_TOO_SMALL",
    "PANIC",
    "OUT_OF_RANGE",
    "WRONG_THREAD",
    "WOULD_BLOCK",
):
    _BY_CODE[_name] = InternalError

# The core appends " (correlation_id X)" to the message of an error that concerns a message.
_CORRELATION = re.compile(r"\(correlation_id ([^()\s]+)\)\s*$")
# A MESSAGES_DROPPED report of several messages says how many: "N message(s) ...".
_DROPPED = re.compile(r"(?:^|: )(\d+) message\(s\)")


def correlation_id_in(message: str) -> Optional[str]:
    """The correlation id the library wrote at the end of an error message, if any."""
    m = _CORRELATION.search(message)
    return m.group(1) if m else None


def error_for(
    code: str,
    message: str,
    *,
    status: Optional[int] = None,
    correlation_id: Optional[str] = None,
) -> NatsBridgeError:
    """The exception for a wire ``code`` (``NatsBridgeError`` itself for unknown codes)."""
    cls = _BY_CODE.get(code, NatsBridgeError)
    cid = correlation_id_in(message) or correlation_id
    return cls(message, code=code, correlation_id=cid, status=status)
