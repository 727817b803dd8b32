"""Interoperability with a plain nats-py client, in both directions, using nothing but the
wire format: the test decodes our envelopes by hand, and publishes envelopes it built by hand
(with link payloads it uploaded itself through the Plik API) for the binding to decode."""

from __future__ import annotations

import base64
import json
import re
import uuid
from typing import Any

import pyarrow as pa

import natsbridge

from .helpers import (
    arrow_ipc,
    hand_envelope,
    hand_payload,
    http_get,
    interest_registered,
    plik_upload,
    same_value,
    sample_values,
    serialized,
    sha256_hex,
)

TYPES = list(natsbridge.PAYLOAD_TYPES)
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
HEADER = {
    "correlation_id": str,
    "msg_id": str,
    "timestamp": str,
    "send_to": str,
    "msg_purpose": str,
    "sender_name": str,
    "sender_id": str,
    "receiver_name": str,
    "receiver_id": str,
    "reply_to": str,
    "reply_to_msg_id": str,
    "broker_url": str,
    "metadata": dict,
    "payloads": list,
}


def decode_by_hand(payload_type: str, data: bytes) -> Any:
    if payload_type == "text":
        return data.decode("utf-8")
    if payload_type in ("dictionary", "jsontable"):
        return json.loads(data)
    if payload_type == "arrowtable":
        return pa.ipc.open_stream(pa.py_buffer(data)).read_all()
    return data


async def test_a_nats_py_client_decodes_our_envelope_from_the_wire_format(
    client: natsbridge.Client, servers: Any, subject: str
) -> None:
    import nats

    values = sample_values()
    data = [(t, values[t], t) for t in TYPES]
    nc = await nats.connect(servers.nats_url)
    try:
        sub = await nc.subscribe(subject)
        await nc.flush()
        # Half the types by link: a threshold between the sizes of the samples.
        env, msg_json = client.smartsend(subject, data, size_threshold=600, msg_purpose="event")
        msg = await sub.next_msg(timeout=10)
    finally:
        await nc.close()

    wire = json.loads(msg.data)
    assert msg.data.decode("utf-8") == msg_json
    for key, kind in HEADER.items():  # every key, always written, with its type
        assert isinstance(wire[key], kind), key
    uuid.UUID(wire["correlation_id"])
    uuid.UUID(wire["msg_id"])
    assert TIMESTAMP.match(wire["timestamp"]), wire["timestamp"]
    assert wire["send_to"] == subject
    assert wire["msg_purpose"] == "event"
    assert wire["sender_name"] == "pytest"
    assert wire["broker_url"] == servers.nats_url

    transports = set()
    for (name, value, ptype), p in zip(data, wire["payloads"]):
        assert set(p) >= {
            "id",
            "dataname",
            "payload_type",
            "transport",
            "encoding",
            "size",
            "data",
            "metadata",
        }
        uuid.UUID(p["id"])
        assert (p["dataname"], p["payload_type"]) == (name, ptype)
        assert p["metadata"]["payload_bytes"] == p["size"]
        transports.add(p["transport"])
        if p["transport"] == "direct":
            assert p["encoding"] == "base64"
            raw = base64.b64decode(p["data"], validate=True)
            assert base64.b64encode(raw).decode() == p["data"]  # standard alphabet, padded
        else:
            assert p["transport"] == "link" and p["encoding"] == "none"
            assert p["data"].startswith(servers.fileserver_url + "/file/")
            raw = http_get(p["data"])
            assert p["metadata"]["sha256"] == sha256_hex(raw)
        assert p["size"] == len(raw)
        assert p["size"] >= 600 or p["transport"] == "direct"
        assert same_value(ptype, value, decode_by_hand(ptype, raw)), name
    assert transports == {"direct", "link"}


async def test_the_binding_decodes_an_envelope_built_by_hand_and_published_by_nats_py(
    client: natsbridge.Client, servers: Any, subject: str
) -> None:
    import nats

    values = sample_values()
    payloads = [hand_payload(t, t, serialized(t, values[t])) for t in TYPES]
    # A link payload uploaded by hand, and an Arrow table in the IPC *file* format.
    blob = bytes(range(256)) * 100
    url = plik_upload(servers.fileserver_url, "blob.bin", blob)
    payloads.append(
        hand_payload("blob", "video", blob, transport="link", url=url, sha256=sha256_hex(blob))
    )
    table = values["arrowtable"]
    payloads.append(hand_payload("file_format", "arrowtable", arrow_ipc(table, file_format=True)))
    cid = str(uuid.uuid4())
    message = hand_envelope(
        payloads, correlation_id=cid, send_to=subject, msg_purpose="updateStatus"
    )

    with client.subscribe(subject) as sub:
        interest_registered(client, sub, subject)
        nc = await nats.connect(servers.nats_url)
        try:
            await nc.publish(subject, message)
            await nc.flush()
        finally:
            await nc.close()
        got = sub.next(timeout=10)

    assert got["correlation_id"] == cid
    assert got["msg_purpose"] == "updateStatus"
    expected = [(t, values[t], t) for t in TYPES] + [
        ("blob", blob, "video"),
        ("file_format", table, "arrowtable"),
    ]
    assert [(n, t) for n, _, t in got["payloads"]] == [(n, t) for n, _, t in expected]
    for (name, value, ptype), (_, received, _) in zip(expected, got["payloads"]):
        assert same_value(ptype, value, received), name


async def test_a_minimal_foreign_envelope_is_accepted(
    client: natsbridge.Client, servers: Any, subject: str
) -> None:
    """Optional keys missing or null, unknown keys present (wire format §1)."""
    import nats

    message = json.dumps(
        {
            "correlation_id": "legacy-1",
            "msg_id": None,
            "future_field": {"x": 1},
            "payloads": [
                {
                    "dataname": "msg",
                    "payload_type": "text",
                    "transport": "direct",
                    "data": base64.b64encode(b"hi").decode(),
                    "extra": 1,
                }
            ],
        }
    ).encode()
    with client.subscribe(subject) as sub:
        interest_registered(client, sub, subject)
        nc = await nats.connect(servers.nats_url)
        try:
            await nc.publish(subject, message)
            await nc.flush()
        finally:
            await nc.close()
        got = sub.next(timeout=10)
    assert got["correlation_id"] == "legacy-1"
    assert got["payloads"] == [("msg", "hi", "text")]
    assert got["msg_id"] == "" and got["metadata"] == {}


async def test_our_reply_reaches_a_nats_py_requester(
    client: natsbridge.Client, servers: Any, subject: str
) -> None:
    """A nats-py peer sends a request envelope naming its reply_to; we answer with reply()."""
    import nats

    nc = await nats.connect(servers.nats_url)
    try:
        inbox = f"{subject}.inbox"
        replies = await nc.subscribe(inbox)
        with client.subscribe(subject) as sub:
            interest_registered(client, sub, subject)
            request = hand_envelope(
                [hand_payload("q", "text", b"ping")],
                reply_to=inbox,
                sender_name="py-peer",
                sender_id="peer-1",
                correlation_id="corr-7",
                msg_id="req-1",
            )
            await nc.publish(subject, request)
            await nc.flush()
            req = sub.next(timeout=10)
            client.reply(req, [("a", "pong", "text")])
        msg = await replies.next_msg(timeout=10)
    finally:
        await nc.close()
    wire = json.loads(msg.data)
    assert wire["reply_to_msg_id"] == "req-1"
    assert wire["correlation_id"] == "corr-7"
    assert (wire["receiver_name"], wire["receiver_id"]) == ("py-peer", "peer-1")
    assert base64.b64decode(wire["payloads"][0]["data"]) == b"pong"
