"""The synchronous API against a real nats-server and the embedded file server: every type
through both transports, the accepted input forms, envelope options, subscriptions (pull,
iteration, queue groups, callbacks), request/reply."""

from __future__ import annotations

import threading
import uuid
from typing import Any, List

import pandas as pd
import pyarrow as pa
import pytest

import natsbridge

from .helpers import arrow_ipc, interest_registered, same_value, sample_values

TYPES = list(natsbridge.PAYLOAD_TYPES)
WALKTHROUGH_KEYS = [
    "correlation_id",
    "msg_id",
    "timestamp",
    "send_to",
    "msg_purpose",
    "sender_name",
    "sender_id",
    "receiver_name",
    "receiver_id",
    "reply_to",
    "reply_to_msg_id",
    "broker_url",
    "metadata",
    "payloads",
]


@pytest.mark.parametrize("transport", ["direct", "link"])
@pytest.mark.parametrize("payload_type", TYPES)
def test_every_type_round_trips_through_each_transport(
    client: natsbridge.Client, subject: str, payload_type: str, transport: str
) -> None:
    value = sample_values()[payload_type]
    # A threshold of 1 byte sends every non-empty payload by link.
    threshold = 1 if transport == "link" else 500_000
    with client.subscribe(subject) as sub:
        env, msg_json = client.smartsend(
            subject, [("item", value, payload_type)], size_threshold=threshold
        )
        got = sub.next(timeout=10)

    sent = env["payloads"][0]
    assert sent["transport"] == transport
    assert sent["payload_type"] == payload_type
    assert (sent["encoding"] == "none") == (transport == "link")
    assert '"transport":"%s"' % transport in msg_json.replace(" ", "")

    assert list(got) == WALKTHROUGH_KEYS
    assert got["correlation_id"] == env["correlation_id"]
    assert got["msg_id"] == env["msg_id"]
    assert got["send_to"] == subject
    [(dataname, received, ptype)] = got["payloads"]
    assert (dataname, ptype) == ("item", payload_type)
    assert same_value(payload_type, value, received), received


def test_mixed_payloads_keep_their_order_and_pick_transports_by_size(
    client: natsbridge.Client, subject: str
) -> None:
    big = bytes(range(256)) * 2400  # 614,400 bytes: over the default threshold
    data = [("msg", "Hello World", "text"), ("img", big, "image"), ("cfg", {"a": 1}, "dictionary")]
    with client.subscribe(subject) as sub:
        env, _ = client.smartsend(subject, data)
        got = sub.next(timeout=10)
    assert [p["transport"] for p in env["payloads"]] == ["direct", "link", "direct"]
    assert got["payloads"] == [
        ("msg", "Hello World", "text"),
        ("img", big, "image"),
        ("cfg", {"a": 1}, "dictionary"),
    ]


@pytest.mark.parametrize("loader", ["orjson", "json"])
def test_the_returned_env_is_the_published_json_parsed(
    client: natsbridge.Client, subject: str, loader: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``env`` is exactly ``json.loads(msg_json)``, key order included, for direct and link
    payloads, metadata and non-ASCII text, small and large -- on the blocking path and on the
    loop's path, and whether the library's JSON is parsed with orjson or json."""
    import asyncio
    import json

    import orjson

    monkeypatch.setattr(
        natsbridge._core, "loads_ours", orjson.loads if loader == "orjson" else json.loads
    )

    big = bytes(range(256)) * 2400  # by link
    data = [
        ("msg", "h\u00e9llo \u2713 \"quoted\"", "text"),
        ("img", big, "image"),
        ("cfg", {"a": [1, 2.5, None]}, "dictionary", {"note": "caf\u00e9", "n": 3}),
        ("empty", b"", "binary"),
        ("raw", bytes(range(256)) * 100, "binary"),  # 25,600 B direct: env rebuilt, not parsed
    ]
    meta = {"k": {"nested": True}, "big": 2**64 - 1, "neg": -(2**63), "f": 1e-300}
    with client.subscribe(subject) as sub:
        env, msg_json = client.smartsend(
            subject, data, metadata=meta, msg_purpose="event", reply_to="r.x"
        )
        got = sub.next(timeout=10)
    parsed = json.loads(msg_json)
    assert env == parsed
    assert json.dumps(env) == json.dumps(parsed)  # the same key order too
    assert [p["transport"] for p in env["payloads"]] == ["direct", "link"] + ["direct"] * 3
    # The receiver's header, read from the library's outline, is the sender's.
    assert json.dumps({k: got[k] for k in WALKTHROUGH_KEYS[:-1]}) == json.dumps(
        {k: env[k] for k in WALKTHROUGH_KEYS[:-1]}
    )
    assert got["metadata"] == meta
    assert [(n, t) for n, _, t in got["payloads"]] == [(d[0], d[2]) for d in data]

    async def on_the_loop() -> Any:
        ac = natsbridge.aio.AsyncClient(client)
        small = await ac.smartsend(subject, [data[0], data[3]], correlation_id="c-loop")
        large = await ac.smartsend(subject, [data[0], data[4]])
        return small, large

    (env, msg_json), (env2, msg_json2) = asyncio.run(on_the_loop())
    assert env["correlation_id"] == "c-loop"
    assert json.dumps(env) == json.dumps(json.loads(msg_json))
    assert len(msg_json2) > natsbridge._core.REBUILD_ABOVE
    assert json.dumps(env2) == json.dumps(json.loads(msg_json2))


def test_a_large_env_is_the_same_whether_its_data_is_sliced_or_asked_for(
    client: natsbridge.Client, subject: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large send's ``env`` takes each payload's base64 from ``msg_json``; when that is not
    where it is expected, from the library (``nb_envelope_payload_base64``)."""
    import json

    data = [
        ("a", bytes(range(256)) * 80, "binary", {"data": "x" * 27308, "id": "not it"}),
        ('"data":"', bytes(20_001), "image"),  # a name that looks like the key
        ("c", "\u00e9" * 7000, "text"),
    ]
    env, msg_json = client.smartsend(subject, data, metadata={"data": "y"})
    assert json.dumps(env) == json.dumps(json.loads(msg_json))
    monkeypatch.setattr(natsbridge._core, "_data_in", lambda *args: None)
    env, msg_json = client.smartsend(subject, data, metadata={"data": "y"})
    assert json.dumps(env) == json.dumps(json.loads(msg_json))


class ArrowStream:
    """Any object with the Arrow PyCapsule stream interface (as polars DataFrames have)."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        return self.table.__arrow_c_stream__(requested_schema)


def test_accepted_input_forms(client: natsbridge.Client, subject: str) -> None:
    table = pa.table({"x": [1, 2, 3], "y": ["a", "b", "c"]})
    frame = pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]})
    data = [
        ("batch", table.to_batches()[0], "arrowtable"),
        (
            "reader",
            pa.RecordBatchReader.from_batches(table.schema, table.to_batches()),
            "arrowtable",
        ),
        ("capsule", ArrowStream(table), "arrowtable"),
        ("pandas", frame, "arrowtable"),
        ("ipc_stream", arrow_ipc(table), "arrowtable"),
        ("ipc_file", arrow_ipc(table, file_format=True), "arrowtable"),
        ("rows_from_pandas", frame, "jsontable"),
        ("bytearray", bytearray(b"\x01\x02\x03"), "binary"),
        ("memoryview", memoryview(b"\x04\x05\x06"), "audio"),
        ("writable_view", memoryview(bytearray(b"\x07\x08")), "video"),
        ("sliced_view", memoryview(b"0123456789")[::2], "image"),
        ("empty", b"", "binary"),
        ("json_list", [1, "two", None], "dictionary"),
    ]
    with client.subscribe(subject) as sub:
        client.smartsend(subject, data)
        got = {name: value for name, value, _ in sub.next(timeout=10)["payloads"]}

    for name in ("batch", "reader", "capsule", "ipc_stream", "ipc_file"):
        assert got[name].equals(table), name
    assert got["pandas"].to_pydict() == table.to_pydict()
    assert got["pandas"].to_pandas().equals(frame)
    assert got["rows_from_pandas"] == [{"x": 1, "y": "a"}, {"x": 2, "y": "b"}, {"x": 3, "y": "c"}]
    assert got["bytearray"] == b"\x01\x02\x03"
    assert got["memoryview"] == b"\x04\x05\x06"
    assert got["writable_view"] == b"\x07\x08"
    assert got["sliced_view"] == b"02468"
    assert got["empty"] == b""
    assert got["json_list"] == [1, "two", None]


def test_envelope_options_reach_the_receiver(client: natsbridge.Client, subject: str) -> None:
    cid = str(uuid.uuid4())
    with client.subscribe(subject) as sub:
        env, _ = client.smartsend(
            subject,
            [("msg", "hi", "text", {"lang": "en"})],
            correlation_id=cid,
            msg_purpose="command",
            receiver_name="worker",
            receiver_id="w-1",
            reply_to="somewhere.else",
            metadata={"trace": [1, 2]},
            sender_name="explicit-sender",
        )
        got = sub.next(timeout=10)
    assert env["correlation_id"] == got["correlation_id"] == cid
    assert got["msg_purpose"] == "command"
    assert (got["receiver_name"], got["receiver_id"]) == ("worker", "w-1")
    assert got["reply_to"] == "somewhere.else"
    assert got["metadata"] == {"trace": [1, 2]}
    assert got["sender_name"] == "explicit-sender"
    assert env["payloads"][0]["metadata"]["lang"] == "en"
    assert env["payloads"][0]["metadata"]["payload_bytes"] == 2


def test_defaults_come_from_the_client(
    client: natsbridge.Client, nats_url: str, subject: str
) -> None:
    with client.subscribe(subject) as sub:
        client.smartsend(subject, [("msg", "hi", "text")])
        got = sub.next(timeout=10)
    assert got["sender_name"] == "pytest"
    assert got["msg_purpose"] == "chat"
    assert got["broker_url"] == nats_url
    assert uuid.UUID(got["correlation_id"]).version == 4


def test_smartreceive_decodes_msg_json_without_a_subscription(
    client: natsbridge.Client, subject: str
) -> None:
    values = sample_values()
    data = [(t, values[t], t) for t in TYPES]
    _, msg_json = client.smartsend(subject, data, size_threshold=1000)  # some go by link
    for form in (msg_json, msg_json.encode("utf-8"), bytearray(msg_json.encode("utf-8"))):
        got = client.smartreceive(form)
        for (name, value, ptype), (rname, received, rtype) in zip(data, got["payloads"]):
            assert (name, ptype) == (rname, rtype)
            assert same_value(ptype, value, received), name


def test_iteration_ends_when_the_client_closes_after_delivering_what_it_holds(
    servers: Any, subject: str
) -> None:
    receiver = natsbridge.connect(
        servers.nats_url, fileserver_url=servers.fileserver_url, use_env=False
    )
    sender = natsbridge.connect(servers.nats_url, use_env=False)
    sub = receiver.subscribe(subject)
    barrier = receiver.subscribe(subject + ".barrier")
    try:
        interest_registered(receiver, sub, subject)
        interest_registered(receiver, barrier, subject + ".barrier")
        for i in range(5):
            sender.smartsend(subject, [("i", str(i), "text")])
        # One connection each way keeps order: once the barrier message is in, the five
        # are in the receiving client (queued, or still being decoded: close waits for them).
        sender.smartsend(subject + ".barrier", [("b", "", "text")])
        barrier.next(timeout=10)
        receiver.close()
        got = [env["payloads"][0][1] for env in sub]  # ends instead of blocking
        assert got == ["0", "1", "2", "3", "4"]
        with pytest.raises(natsbridge.ClosedError):
            sub.next(timeout=1)
    finally:
        sub.close()
        barrier.close()
        sender.close()
        receiver.close()


def test_queue_group_delivers_each_message_to_one_member(
    client: natsbridge.Client, subject: str
) -> None:
    a = client.subscribe(subject, queue="workers")
    b = client.subscribe(subject, queue="workers")
    try:
        for i in range(40):
            client.smartsend(subject, [("i", i, "dictionary")])
        client.flush()
        seen: List[int] = []
        for sub in (a, b):
            while True:
                try:
                    seen.append(sub.next(timeout=0.5)["payloads"][0][1])
                except natsbridge.TimeoutError:
                    break
        assert sorted(seen) == list(range(40))
    finally:
        a.close()
        b.close()


def test_request_reply(client: natsbridge.Client, subject: str) -> None:
    ready = threading.Event()
    problems: List[BaseException] = []

    def responder() -> None:
        try:
            with client.subscribe(subject) as sub:
                ready.set()
                req = sub.next(timeout=10)
                (_, question, _) = req["payloads"][0]
                client.reply(req, [("answer", question.upper(), "text")])
        except BaseException as e:  # surfaced in the main thread
            problems.append(e)
            ready.set()

    t = threading.Thread(target=responder)
    t.start()
    assert ready.wait(10)
    cid = str(uuid.uuid4())
    reply = client.request(subject, [("q", "ping", "text")], timeout=10, correlation_id=cid)
    t.join(10)
    assert not problems, problems
    assert reply["payloads"] == [("answer", "PING", "text")]
    assert reply["correlation_id"] == cid
    assert reply["receiver_name"] == "pytest"
    assert reply["reply_to_msg_id"]


def test_reply_needs_a_reply_to(client: natsbridge.Client) -> None:
    with pytest.raises(natsbridge.InvalidArgumentError) as e:
        client.reply({"reply_to": "", "correlation_id": "c-1"}, [("a", "b", "text")])
    assert e.value.code == "INVALID_ARGUMENT"
    assert e.value.correlation_id == "c-1"


def test_callback_subscription_delivers_in_order_on_its_own_thread(
    client: natsbridge.Client, subject: str
) -> None:
    got: List[int] = []
    threads = set()
    done = threading.Event()

    def on_env(env: natsbridge.Envelope) -> None:
        got.append(env["payloads"][0][1])
        threads.add(threading.current_thread().name)
        if len(got) == 30:
            done.set()

    with client.subscribe(subject, callback=on_env) as sub:
        assert isinstance(sub, natsbridge.CallbackSubscription)
        for i in range(30):
            client.smartsend(subject, [("i", i, "dictionary")])
        assert done.wait(10)
    assert got == list(range(30))
    assert threads and threading.current_thread().name not in threads


def test_callback_may_close_its_own_subscription(client: natsbridge.Client, subject: str) -> None:
    calls: List[Any] = []
    closed = threading.Event()
    holder: List[Any] = []

    def on_env(env: natsbridge.Envelope) -> None:
        calls.append(env)
        holder[0].close()
        closed.set()

    sub = client.subscribe(subject, callback=on_env)
    holder.append(sub)
    client.smartsend(subject, [("a", "1", "text")])
    assert closed.wait(10)
    sub.close()  # again, from outside: harmless
    assert sub.closed
    assert len(calls) == 1


def test_fileno_becomes_readable_when_an_envelope_waits(
    client: natsbridge.Client, subject: str
) -> None:
    import selectors

    with client.subscribe(subject) as sub, selectors.DefaultSelector() as sel:
        sel.register(sub.fileno(), selectors.EVENT_READ)
        with pytest.raises(natsbridge.TimeoutError):
            sub.next(timeout=0)  # empty: the fd is drained
        assert sel.select(timeout=0) == []
        client.smartsend(subject, [("a", "1", "text")])
        assert sel.select(timeout=10)
        assert sub.next(timeout=0)["payloads"] == [("a", "1", "text")]


def test_download_dir_streams_link_payloads_into_files(
    servers: Any, subject: str, tmp_path: Any
) -> None:
    from pathlib import Path

    big = bytes(range(256)) * 4000
    table = sample_values()["arrowtable"]
    with (
        natsbridge.connect(
            servers.nats_url,
            fileserver_url=servers.fileserver_url,
            use_env=False,
            download_dir=str(tmp_path),
        ) as c,
        c.subscribe(subject) as sub,
    ):
        c.smartsend(
            subject,
            [
                ("small", b"inline", "binary"),
                ("big", big, "video"),
                ("t", table, "arrowtable"),
                ("d", {"k": "v"}, "dictionary"),
            ],
            size_threshold=10,
        )
        got = {name: value for name, value, _ in sub.next(timeout=10)["payloads"]}
    assert got["small"] == b"inline"  # direct: in memory as usual
    assert isinstance(got["big"], Path) and got["big"].parent == tmp_path
    assert got["big"].read_bytes() == big  # the file is the caller's
    assert got["t"].equals(table)
    assert got["d"] == {"k": "v"}
    assert list(tmp_path.iterdir()) == [got["big"]]  # files of converted values are removed


def test_progress_counts_the_uploaded_bytes(client: natsbridge.Client, subject: str) -> None:
    progress = natsbridge.Progress()
    assert (progress.done, progress.total) == (0, 0)
    size = 3_000_000
    seen: List[int] = []
    finished = threading.Event()

    def send() -> None:
        try:
            client.smartsend(
                subject, [("big", bytes(size), "binary"), ("small", "x", "text")], progress=progress
            )
        finally:
            finished.set()

    t = threading.Thread(target=send)
    t.start()
    while not finished.wait(0.001):  # polled while the send runs, as a UI would
        seen.append(progress.done)
    t.join()
    assert progress.total == size and progress.done == size
    assert seen == sorted(seen)  # never goes back
    assert "3000000/3000000" in repr(progress)
