"""Host value conversions: Python values to and from the serialized bytes of wire format §3.

The library works on serialized bytes; this module is where Python values become bytes at
the sender and bytes become Python values at the receiver:

============================  ==========================================  ====================
payload_type                  accepted when sending                       received as
============================  ==========================================  ====================
``text``                      ``str``                                     ``str``
``dictionary``                any JSON value (``dict``, ``list``, ...)    the parsed value
``arrowtable``                ``pyarrow.Table`` / ``RecordBatch`` /       ``pyarrow.Table``
                              ``RecordBatchReader``, pandas or polars
                              DataFrames, any object with
                              ``__arrow_c_stream__``, or raw Arrow IPC
                              bytes
``jsontable``                 a list of dicts, a pandas / polars          ``list`` of ``dict``
                              DataFrame or a ``pyarrow.Table``
``image`` ``audio``           ``bytes``, ``bytearray``, ``memoryview``    ``bytes``
``video`` ``binary``
============================  ==========================================  ====================

pyarrow and pandas are optional: they are imported only when a payload needs them, and a
missing one raises :class:`~natsbridge.errors.MissingExtraError` naming the extra to install.
"""

from __future__ import annotations

import base64
import datetime as _dt
import decimal
import importlib
import json
from typing import Any, Tuple

from .errors import InvalidPayloadError, InvalidPayloadTypeError, MissingExtraError

__all__ = ["PAYLOAD_TYPES", "serialize", "deserialize", "deserialize_file"]

#: The eight payload types of wire format §3.
PAYLOAD_TYPES = (
    "text",
    "dictionary",
    "arrowtable",
    "jsontable",
    "image",
    "audio",
    "video",
    "binary",
)
_BYTES_TYPES = frozenset(("image", "audio", "video", "binary"))
_ARROW_FILE_MAGIC = b"ARROW1"

#: What ``serialize`` returns: an object ctypes can point at (bytes, or a ctypes array over a
#: writable buffer of the caller's, which it keeps alive) and its length.
Serialized = Tuple[Any, int]


def _need(module: str, extra: str, why: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingExtraError(
            f"natsbridge: {why} needs {module}, which is not installed; install it with "
            f"`pip install 'natsbridge[{extra}]'` (or `pip install {module}`)",
            extra,
        ) from e


def _pyarrow(why: str) -> Any:
    pa = _need("pyarrow", "arrow", why)
    _need("pyarrow.ipc", "arrow", why)
    return pa


def _kind(value: Any) -> str:
    """``"pandas"``, ``"polars"``, ``"pyarrow"`` or ``""``: the library a value comes from,
    found without importing anything."""
    module = type(value).__module__.split(".", 1)[0]
    return module if module in ("pandas", "polars", "pyarrow") else ""


def _json_default(value: Any) -> Any:
    """JSON for values the standard encoder refuses: dates, decimals, numpy scalars."""
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return item()
    tolist = getattr(value, "tolist", None)  # numpy arrays
    if callable(tolist):
        return tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _dumps(value: Any, what: str) -> bytes:
    try:
        text = json.dumps(
            value,
            ensure_ascii=False,
            separators=(",", ":"),
            allow_nan=False,
            default=_json_default,
        )
    except (TypeError, ValueError) as e:
        raise InvalidPayloadError(f"{what} cannot be written as JSON: {e}") from e
    return text.encode("utf-8")


def _as_buffer(value: Any, what: str) -> Serialized:
    """Bytes-like values without a copy where possible."""
    import ctypes

    if isinstance(value, bytes):
        return value, len(value)
    if isinstance(value, (bytearray, memoryview)):
        view = memoryview(value)
        if not view.contiguous:
            data = view.tobytes()
            return data, len(data)
        n = view.nbytes
        if n == 0:
            return b"", 0
        if view.readonly:
            data = view.tobytes()
            return data, n
        # Points at the caller's memory; the library copies it during the call.
        return (ctypes.c_char * n).from_buffer(view.cast("B")), n
    raise InvalidPayloadError(
        f"{what} must be bytes, bytearray or memoryview, not {type(value).__name__}"
    )


def _arrow_table(value: Any, what: str) -> Any:
    """A pyarrow Table from the table-like values accepted for arrowtable."""
    kind = _kind(value)
    pa = _pyarrow(what)
    if kind == "pyarrow":
        if isinstance(value, pa.Table):
            return value
        if isinstance(value, pa.RecordBatch):
            return pa.Table.from_batches([value])
        if isinstance(value, pa.RecordBatchReader):
            return value.read_all()
    if kind == "pandas" and type(value).__name__ == "DataFrame":
        return pa.Table.from_pandas(value)
    if kind == "polars" and hasattr(value, "to_arrow"):
        return value.to_arrow()
    if hasattr(value, "__arrow_c_stream__"):
        return pa.table(value)
    raise InvalidPayloadError(
        f"{what} must be a pyarrow Table, RecordBatch or RecordBatchReader, a pandas or "
        f"polars DataFrame, an object with __arrow_c_stream__, or Arrow IPC bytes; got "
        f"{type(value).__name__}"
    )


def _arrow_ipc(value: Any, what: str) -> Serialized:
    if isinstance(value, (bytes, bytearray, memoryview)):
        if bytes(memoryview(value)[:6]) != _ARROW_FILE_MAGIC:
            return _as_buffer(value, what)  # an IPC stream already; the library checks it
        # The IPC file format: the wire carries the stream format (wire format §3).
        pa = _pyarrow(what)
        try:
            table = pa.ipc.open_file(pa.py_buffer(value)).read_all()
        except pa.ArrowException as e:
            raise InvalidPayloadError(f"{what}: unreadable Arrow IPC file: {e}") from e
    else:
        table = _arrow_table(value, what)
        pa = _pyarrow(what)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    buf = sink.getvalue()
    return buf.to_pybytes(), buf.size


def _rows(value: Any, what: str) -> bytes:
    kind = _kind(value)
    if kind == "pandas" and type(value).__name__ == "DataFrame":
        text: str = value.to_json(orient="records", date_format="iso", force_ascii=False)
        return text.encode("utf-8")
    if kind == "polars" and hasattr(value, "to_dicts"):
        return _dumps(value.to_dicts(), what)
    if kind == "pyarrow" and hasattr(value, "to_pylist"):
        return _dumps(value.to_pylist(), what)
    if isinstance(value, (list, tuple)):
        for i, row in enumerate(value):
            if not isinstance(row, dict):
                raise InvalidPayloadError(
                    f"{what}: row {i} must be a dict, not {type(row).__name__}"
                )
        return _dumps(list(value), what)
    raise InvalidPayloadError(
        f"{what} must be a list of dicts or a pandas / polars DataFrame, not {type(value).__name__}"
    )


def serialize(dataname: str, value: Any, payload_type: str) -> Serialized:
    """The serialized bytes of one payload, as ``(buffer, length)``."""
    what = f"payload {dataname!r} ({payload_type})"
    if payload_type == "text":
        if not isinstance(value, str):
            raise InvalidPayloadError(f"{what} must be a str, not {type(value).__name__}")
        data = value.encode("utf-8", "surrogatepass")
        return data, len(data)
    if payload_type == "dictionary":
        data = _dumps(value, what)
        return data, len(data)
    if payload_type == "arrowtable":
        return _arrow_ipc(value, what)
    if payload_type == "jsontable":
        data = _rows(value, what)
        return data, len(data)
    if payload_type in _BYTES_TYPES:
        return _as_buffer(value, what)
    raise InvalidPayloadTypeError(
        f"unknown payload_type {payload_type!r} for payload {dataname!r}: expected one of "
        + ", ".join(PAYLOAD_TYPES)
    )


def _read_arrow(data: bytes, what: str) -> Any:
    pa = _pyarrow(what)
    buf = pa.py_buffer(data)
    try:
        return pa.ipc.open_stream(buf).read_all()
    except pa.ArrowInvalid:
        # Readers also accept the IPC file format (wire format §3).
        return pa.ipc.open_file(buf).read_all()


def deserialize(dataname: str, data: bytes, payload_type: str) -> Any:
    """The Python value of one received payload (the library has checked its bytes)."""
    if payload_type == "text":
        return data.decode("utf-8")
    if payload_type in ("dictionary", "jsontable"):
        return json.loads(data)
    if payload_type == "arrowtable":
        return _read_arrow(data, f"received payload {dataname!r} (arrowtable)")
    # image, audio, video, binary -- and any type a newer peer may add: its bytes.
    return data


def deserialize_file(dataname: str, path: str, payload_type: str) -> Any:
    """The Python value of a link payload the library downloaded into a file.

    Binary types give the file's ``pathlib.Path`` (the file is the caller's). Other types are
    read and the file removed: ``arrowtable`` is memory-mapped (memory stays flat; the
    mapping outlives the unlinked file), text and JSON are parsed.
    """
    import os
    from pathlib import Path

    if payload_type in _BYTES_TYPES or payload_type not in PAYLOAD_TYPES:
        return Path(path)
    try:
        if payload_type == "arrowtable":
            pa = _pyarrow(f"received payload {dataname!r} (arrowtable)")
            source = pa.memory_map(path, "r")
            try:
                return pa.ipc.open_stream(source).read_all()
            except pa.ArrowInvalid:
                return pa.ipc.open_file(source).read_all()
        with open(path, "rb") as f:
            return deserialize(dataname, f.read(), payload_type)
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
