"""Helpers shared by the tests: envelopes and file server uploads built by hand from the
wire format (docs: shared/design/wire-format.md), and sample values of every payload type."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import urllib.request
import uuid
from typing import Any, Callable, Dict, List, Optional


def dead_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------
# Building envelopes and file server uploads by hand, from the wire format only


def hand_payload(
    dataname: str,
    payload_type: str,
    data: bytes,
    *,
    transport: str = "direct",
    url: Optional[str] = None,
    sha256: Optional[str] = None,
    size: Optional[int] = None,
) -> Dict[str, Any]:
    size = len(data) if size is None else size
    meta: Dict[str, Any] = {"payload_bytes": size}
    if transport == "direct":
        body, encoding = base64.b64encode(data).decode("ascii"), "base64"
    else:
        body, encoding = url, "none"
        if sha256 is not None:
            meta["sha256"] = sha256
    return {
        "id": str(uuid.uuid4()),
        "dataname": dataname,
        "payload_type": payload_type,
        "transport": transport,
        "encoding": encoding,
        "size": size,
        "data": body,
        "metadata": meta,
    }


def hand_envelope(payloads: List[Dict[str, Any]], **header: Any) -> bytes:
    env: Dict[str, Any] = {
        "correlation_id": str(uuid.uuid4()),
        "msg_id": str(uuid.uuid4()),
        "timestamp": "2026-03-13T07:02:50.443Z",
        "send_to": "hand.built",
        "msg_purpose": "chat",
        "sender_name": "hand",
        "sender_id": str(uuid.uuid4()),
        "receiver_name": "",
        "receiver_id": "",
        "reply_to": "",
        "reply_to_msg_id": "",
        "broker_url": "",
        "metadata": {},
    }
    env.update(header)
    env["payloads"] = payloads
    return json.dumps(env).encode("utf-8")


def plik_upload(base: str, filename: str, data: bytes) -> str:
    """Uploads by hand with the Plik API (wire format §5) and returns the download URL."""
    req = urllib.request.Request(
        f"{base}/upload",
        data=json.dumps({"OneShot": False, "TTL": 3600}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        upload = json.load(r)
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    req = urllib.request.Request(
        f"{base}/file/{upload['id']}",
        data=body,
        headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "X-UploadToken": upload["uploadToken"],
        },
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        file_id = json.load(r)["id"]
    return f"{base}/file/{upload['id']}/{file_id}/{filename}"


def http_get(url: str) -> bytes:
    req = urllib.request.Request(url, headers={"User-Agent": "plik_client/test"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------------------
# Sample values of every payload type, and how to compare what comes back


def sample_values() -> Dict[str, Any]:
    import pyarrow as pa

    return {
        "text": "Hello World — héllo, 世界 🌍",
        "dictionary": {"key": "value", "n": [1, 2.5, None, True], "nested": {"ü": "ß"}},
        "arrowtable": pa.table(
            {
                "id": pa.array([1, 2, 3], pa.int64()),
                "score": pa.array([0.5, None, 2.25], pa.float64()),
                "name": pa.array(["a", "b", None], pa.string()),
            }
        ),
        "jsontable": [{"id": 1, "name": "a"}, {"id": 2, "name": None}],
        "image": bytes(range(256)) * 4,
        "audio": b"RIFF\x00\x00\x00\x00WAVE" + bytes(100),
        "video": b"\x00\x00\x00\x18ftypmp42" + bytes(range(50)),
        "binary": b"\x00\xff" * 300,
    }


def same_value(payload_type: str, sent: Any, received: Any) -> bool:
    if payload_type == "arrowtable":
        import pyarrow as pa

        return isinstance(received, pa.Table) and received.equals(sent)
    if payload_type in ("image", "audio", "video", "binary"):
        return isinstance(received, bytes) and received == bytes(sent)
    return type(received) is type(sent) and received == sent


def arrow_ipc(table: Any, *, file_format: bool = False) -> bytes:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    opener = pa.ipc.new_file if file_format else pa.ipc.new_stream
    with opener(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue().to_pybytes()


def serialized(payload_type: str, value: Any) -> bytes:
    """The bytes of wire format §3, made by hand (for envelopes built by hand)."""
    if payload_type == "text":
        return value.encode("utf-8")
    if payload_type in ("dictionary", "jsontable"):
        return json.dumps(value).encode("utf-8")
    if payload_type == "arrowtable":
        return arrow_ipc(value)
    return bytes(value)


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """Polls a condition that has no event to wait on (bounded)."""
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.01)


def publish_raw(nats_url: str, subject: str, message: bytes) -> None:
    """Publishes raw bytes with a plain nats-py client (from sync code)."""
    import asyncio

    import nats

    async def run() -> None:
        nc = await nats.connect(nats_url)
        try:
            await nc.publish(subject, message)
            await nc.flush()
        finally:
            await nc.close()

    asyncio.run(run())


PROBE = "__probe__"


def interest_registered(client: Any, sub: Any, subject: str) -> None:
    """Makes sure the server has processed ``sub``'s SUB before another connection publishes.

    ``Client.subscribe`` only flushes the SUB to the socket (async-nats' flush does not wait
    for the server), so a message published by *another* connection right after it can miss
    the subscription. A probe published through the subscribing connection comes back only
    once the server has the interest: then wait for it.
    """
    client.smartsend(subject, [(PROBE, "", "text")])
    env = sub.next(timeout=10)
    assert env["payloads"][0][0] == PROBE, env
