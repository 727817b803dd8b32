"""Every error code the binding can raise, each provoked for real, with its class, its wire
code and (where a message is concerned) its correlation id."""

from __future__ import annotations

import os
import re
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

import natsbridge
from natsbridge import _ffi, errors

from .helpers import (
    dead_port,
    hand_envelope,
    hand_payload,
    interest_registered,
    plik_upload,
    publish_raw,
    sha256_hex,
    wait_until,
)

REPO = Path(__file__).resolve().parents[3]


def receiver(servers: Any, **settings: Any) -> natsbridge.Client:
    return natsbridge.connect(
        servers.nats_url,
        fileserver_url=servers.fileserver_url,
        use_env=False,
        download_retry=(2, 0.01, 0.02),
        **settings,
    )


def expect(err: pytest.ExceptionInfo, cls: type, code: str) -> natsbridge.NatsBridgeError:
    e = err.value
    assert isinstance(e, cls) and isinstance(e, natsbridge.NatsBridgeError), repr(e)
    assert e.code == code, repr(e)
    assert str(e)
    return e


# -- connecting ------------------------------------------------------------------------------


def test_nats_connection_failed() -> None:
    with pytest.raises(natsbridge.NatsConnectionFailedError) as err:
        natsbridge.connect(f"nats://127.0.0.1:{dead_port()}", use_env=False, connect_timeout=1.0)
    expect(err, ConnectionError, "NATS_CONNECTION_FAILED")


# -- sending ---------------------------------------------------------------------------------


def test_invalid_argument(client: natsbridge.Client, subject: str) -> None:
    with pytest.raises(natsbridge.InvalidArgumentError) as err:
        client.smartsend(subject, [("a", "b", "text")], msg_purpose="gossip", correlation_id="c-1")
    e = expect(err, ValueError, "INVALID_ARGUMENT")
    assert e.correlation_id == "c-1" and "gossip" in str(e)
    with pytest.raises(natsbridge.InvalidArgumentError):
        client.smartsend("", [("a", "b", "text")])  # the library refuses an empty subject
    with pytest.raises(natsbridge.InvalidArgumentError):
        client.smartsend(subject, "not a list of tuples")  # type: ignore[arg-type]
    with pytest.raises(natsbridge.InvalidArgumentError):
        natsbridge.connect("nats://127.0.0.1:1", use_env=False, connect_timeout=-1)


def test_invalid_payload_type_at_send(client: natsbridge.Client, subject: str) -> None:
    with pytest.raises(natsbridge.InvalidPayloadTypeError) as err:
        client.smartsend(subject, [("a", b"x", "hologram")])
    expect(err, natsbridge.InvalidPayloadTypeError, "INVALID_PAYLOAD_TYPE")


def test_invalid_payload(client: natsbridge.Client, subject: str) -> None:
    # Found by the binding: a value that cannot be the declared type.
    for bad in [
        ("t", b"bytes", "text"),
        ("d", {"x": float("nan")}, "dictionary"),
        ("j", [1, 2], "jsontable"),
        ("b", "str", "binary"),
        ("a", object(), "arrowtable"),
    ]:
        with pytest.raises(natsbridge.InvalidPayloadError) as err:
            client.smartsend(subject, [bad])
        expect(err, ValueError, "INVALID_PAYLOAD")
    # Found by the library: bytes that are not an Arrow IPC stream.
    with pytest.raises(natsbridge.InvalidPayloadError) as err:
        client.smartsend(subject, [("a", b"not arrow", "arrowtable")], correlation_id="c-2")
    e = expect(err, ValueError, "INVALID_PAYLOAD")
    assert e.status is not None and e.correlation_id == "c-2"


def test_payload_too_large_without_a_file_server(servers: Any, subject: str) -> None:
    with natsbridge.connect(servers.nats_url, fileserver_url="", use_env=False) as c:
        big = bytes(c.max_payload + 1)
        with pytest.raises(natsbridge.PayloadTooLargeError) as err:
            c.smartsend(subject, [("big", big, "binary")], correlation_id="c-3")
    assert expect(err, natsbridge.PayloadTooLargeError, "PAYLOAD_TOO_LARGE").correlation_id == "c-3"


def test_upload_failed(servers: Any, subject: str) -> None:
    with natsbridge.connect(
        servers.nats_url,
        fileserver_url=f"http://127.0.0.1:{dead_port()}",
        use_env=False,
        connect_timeout=1.0,
    ) as c:
        with pytest.raises(natsbridge.UploadFailedError) as err:
            c.smartsend(
                subject,
                [("a", b"x" * 100, "binary")],
                size_threshold=10,
                fallback_to_direct=False,
                correlation_id="c-4",
            )
        assert expect(err, natsbridge.UploadFailedError, "UPLOAD_FAILED").correlation_id == "c-4"
        # With fallback (the default) the same send goes direct.
        env, _ = c.smartsend(subject, [("a", b"x" * 100, "binary")], size_threshold=10)
        assert env["payloads"][0]["transport"] == "direct"


def test_upload_failed_without_the_file_servers_token(servers: Any, subject: str, tmp_path: Path) -> None:
    from .conftest import Process

    cli = os.environ.get("NATSBRIDGE_CLI", str(REPO / "target" / "debug" / "natsbridge"))
    files = Process(
        [cli, "fileserver", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path), "--token", "py-tok"],
        "stdout",
    )
    try:
        url = files.wait_for_line(r"listening on (http://\S+)").group(1)
        data = [("a", b"x" * 100, "binary")]
        with natsbridge.connect(servers.nats_url, fileserver_url=url, use_env=False) as c:
            with pytest.raises(natsbridge.UploadFailedError) as err:
                c.smartsend(subject, data, size_threshold=10, fallback_to_direct=False)
            assert "anonymous uploads are disabled" in str(err.value)
        with natsbridge.connect(
            servers.nats_url, fileserver_url=url, fileserver_token="py-tok", use_env=False
        ) as c:
            env, _ = c.smartsend(subject, data, size_threshold=10, fallback_to_direct=False)
            assert env["payloads"][0]["transport"] == "link"
        with pytest.raises(natsbridge.InvalidArgumentError) as bad:
            natsbridge.connect(servers.nats_url, fileserver_token="a\nb", use_env=False)
        assert "fileserver_token" in str(bad.value)
    finally:
        files.stop()


# -- receiving -------------------------------------------------------------------------------


def test_invalid_envelope(client: natsbridge.Client) -> None:
    for raw in (b"not json", b"[1, 2]", b'{"correlation_id": "c-5", "payloads": 3}'):
        with pytest.raises(natsbridge.InvalidEnvelopeError) as err:
            client.smartreceive(raw)
        expect(err, natsbridge.InvalidEnvelopeError, "INVALID_ENVELOPE")
    assert err.value.correlation_id == "c-5"
    with pytest.raises(natsbridge.InvalidArgumentError):
        client.smartreceive(12345)


def test_invalid_payload_type_at_receive(client: natsbridge.Client) -> None:
    raw = hand_envelope([hand_payload("h", "hologram", b"x")], correlation_id="c-6")
    with pytest.raises(natsbridge.InvalidPayloadTypeError) as err:
        client.smartreceive(raw)
    assert (
        expect(err, natsbridge.InvalidPayloadTypeError, "INVALID_PAYLOAD_TYPE").correlation_id
        == "c-6"
    )


def test_invalid_transport(client: natsbridge.Client) -> None:
    p = hand_payload("p", "text", b"x")
    p["transport"] = "carrier-pigeon"
    with pytest.raises(natsbridge.InvalidTransportError) as err:
        client.smartreceive(hand_envelope([p], correlation_id="c-7"))
    assert (
        expect(err, natsbridge.InvalidTransportError, "INVALID_TRANSPORT").correlation_id == "c-7"
    )


def test_deserialization_error(client: natsbridge.Client) -> None:
    bad_utf8 = hand_payload("t", "text", b"\xff\xfe\xfd")
    bad_base64 = hand_payload("b", "binary", b"x")
    bad_base64["data"] = "!!!not base64!!!"
    for p in (bad_utf8, bad_base64):
        with pytest.raises(natsbridge.DeserializationError) as err:
            client.smartreceive(hand_envelope([p], correlation_id="c-8"))
        assert (
            expect(err, natsbridge.DeserializationError, "DESERIALIZATION_ERROR").correlation_id
            == "c-8"
        )


def test_download_failed_through_a_subscription_carries_the_correlation_id(
    servers: Any, subject: str
) -> None:
    url = servers.fileserver_url + "/file/nope/nope/missing.bin"
    raw = hand_envelope(
        [hand_payload("m", "binary", b"", transport="link", url=url, size=10)], correlation_id="c-9"
    )
    with receiver(servers) as c:
        with pytest.raises(natsbridge.DownloadFailedError) as err:
            c.smartreceive(raw)
        assert (
            expect(err, natsbridge.DownloadFailedError, "DOWNLOAD_FAILED").correlation_id == "c-9"
        )
        with c.subscribe(subject) as sub:
            interest_registered(c, sub, subject)
            publish_raw(servers.nats_url, subject, raw)
            c.smartsend(subject, [("after", "ok", "text")])
            with pytest.raises(natsbridge.DownloadFailedError) as err:
                sub.next(timeout=10)
            assert err.value.correlation_id == "c-9"
            # The subscription goes on with the next message.
            assert sub.next(timeout=10)["payloads"] == [("after", "ok", "text")]


def test_link_url_rejected(client: natsbridge.Client) -> None:
    foreign = f"http://127.0.0.1:{dead_port()}/file/a/b/c.bin"
    raw = hand_envelope(
        [hand_payload("x", "binary", b"", transport="link", url=foreign, size=3)],
        correlation_id="c-10",
    )
    with pytest.raises(natsbridge.LinkUrlRejectedError) as err:
        client.smartreceive(raw)
    assert (
        expect(err, natsbridge.LinkUrlRejectedError, "LINK_URL_REJECTED").correlation_id == "c-10"
    )


def test_integrity_error(client: natsbridge.Client, servers: Any) -> None:
    data = b"the real bytes" * 10
    url = plik_upload(servers.fileserver_url, "data.bin", data)
    wrong = sha256_hex(b"other bytes")
    raw = hand_envelope(
        [hand_payload("x", "binary", data, transport="link", url=url, sha256=wrong)],
        correlation_id="c-11",
    )
    with pytest.raises(natsbridge.IntegrityError) as err:
        client.smartreceive(raw)
    assert expect(err, natsbridge.IntegrityError, "INTEGRITY_ERROR").correlation_id == "c-11"
    # The right digest is accepted.
    ok = hand_envelope(
        [hand_payload("x", "binary", data, transport="link", url=url, sha256=sha256_hex(data))]
    )
    assert client.smartreceive(ok)["payloads"] == [("x", data, "binary")]


def test_payload_too_large_at_download(servers: Any) -> None:
    data = bytes(5000)
    url = plik_upload(servers.fileserver_url, "big.bin", data)
    raw = hand_envelope(
        [hand_payload("x", "binary", data, transport="link", url=url)], correlation_id="c-12"
    )
    with receiver(servers, max_download_bytes=1000) as c:
        with pytest.raises(natsbridge.PayloadTooLargeError) as err:
            c.smartreceive(raw)
    assert (
        expect(err, natsbridge.PayloadTooLargeError, "PAYLOAD_TOO_LARGE").correlation_id == "c-12"
    )


def test_a_failed_send_without_options_names_the_correlation_id_the_library_chose(
    servers: Any, subject: str
) -> None:
    """Without options the library picks the correlation id; its error still carries it."""
    with natsbridge.connect(servers.nats_url, fileserver_url="", use_env=False) as c:
        big = bytes(c.max_payload + 1)  # no file server to move it to
        with pytest.raises(natsbridge.PayloadTooLargeError) as err:
            c.smartsend(subject, [("x", big, "binary")])
        cid = expect(err, natsbridge.PayloadTooLargeError, "PAYLOAD_TOO_LARGE").correlation_id
        assert cid is not None and str(uuid.UUID(cid)) == cid
        assert _ffi.last_error_correlation_id() == cid


# -- requests, subscriptions, closing ----------------------------------------------------------


def test_no_responders(client: natsbridge.Client, subject: str) -> None:
    with pytest.raises(natsbridge.NoRespondersError) as err:
        client.request(subject, [("q", "anyone?", "text")], timeout=5, correlation_id="c-13")
    assert expect(err, natsbridge.NoRespondersError, "NO_RESPONDERS").correlation_id == "c-13"
    # Without options: the correlation id the library chose.
    with pytest.raises(natsbridge.NoRespondersError) as err:
        client.request(subject, [("q", "anyone?", "text")], timeout=5)
    cid = err.value.correlation_id
    assert cid is not None and str(uuid.UUID(cid)) == cid


def test_timeout(client: natsbridge.Client, subject: str) -> None:
    with client.subscribe(subject) as silent:  # listens, never answers
        with pytest.raises(natsbridge.TimeoutError) as err:
            client.request(subject, [("q", "hello?", "text")], timeout=0.3, correlation_id="c-14")
        e = expect(err, TimeoutError, "TIMEOUT")  # also the builtin TimeoutError
        assert e.correlation_id == "c-14"
        silent.next(timeout=5)  # the request did arrive
        with pytest.raises(natsbridge.TimeoutError) as err:
            silent.next(timeout=0.05)
        expect(err, TimeoutError, "TIMEOUT")


def test_closed(servers: Any, subject: str) -> None:
    c = natsbridge.connect(servers.nats_url, use_env=False)
    sub = c.subscribe(subject)
    sub.close()
    with pytest.raises(natsbridge.ClosedError) as err:
        sub.next(timeout=0)
    expect(err, natsbridge.ClosedError, "CLOSED")
    c.close()
    c.close()  # harmless
    for call in (
        lambda: c.smartsend(subject, [("a", "b", "text")]),
        c.flush,
        lambda: c.subscribe(subject),
    ):
        with pytest.raises(natsbridge.ClosedError) as err:
            call()
        expect(err, natsbridge.ClosedError, "CLOSED")


def test_slow_consumer(servers: Any, client: natsbridge.Client, subject: str) -> None:
    with receiver(servers, subscription_queue=2) as slow, slow.subscribe(subject) as sub:
        interest_registered(slow, sub, subject)
        for i in range(20):
            client.smartsend(subject, [("i", i, "dictionary")])
        client.flush()
        wait_until(lambda: sub.dropped == 18, what="18 messages dropped by a queue of 2")
        items = []
        while True:
            try:
                items.append(sub.next(timeout=0.2)["payloads"][0][1])
            except natsbridge.SlowConsumerError as e:
                items.append(e)
            except natsbridge.TimeoutError:
                break
    assert items[:2] == [0, 1]
    gaps = [x for x in items if isinstance(x, natsbridge.SlowConsumerError)]
    assert gaps and all(g.code == "SLOW_CONSUMER" for g in gaps)
    assert "18" in str(gaps[0])


def test_missing_extra_is_named_only_when_such_a_payload_is_used(
    client: natsbridge.Client, subject: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    table_json = client.smartsend(
        subject, [("t", __import__("pyarrow").table({"a": [1]}), "arrowtable")]
    )[1]
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if pyarrow were not installed
    monkeypatch.setitem(sys.modules, "pyarrow.ipc", None)
    env, _ = client.smartsend(subject, [("msg", "text needs no extra", "text")])
    assert env["payloads"][0]["payload_type"] == "text"
    with pytest.raises(natsbridge.MissingExtraError) as err:
        client.smartsend(subject, [("t", [{"a": 1}], "arrowtable")])
    assert isinstance(err.value, ImportError) and err.value.extra == "arrow"
    assert "pip install 'natsbridge[arrow]'" in str(err.value)
    with pytest.raises(natsbridge.MissingExtraError):
        client.smartreceive(table_json)


def test_every_library_status_maps_to_its_exception_class() -> None:
    """Each NB_ERR_* of the header has a class: a new status cannot go unnoticed."""
    header = (REPO / "include" / "natsbridge.h").read_text()
    statuses = {name: int(v) for name, v in re.findall(r"#define (NB_ERR_\w+) (-\d+)", header)}
    assert len(statuses) >= 20
    boundary = {
        "PULL_TIMEOUT": natsbridge.TimeoutError,
        "UTF8": natsbridge.InvalidArgumentError,
        "NULL_ARG": natsbridge.InternalError,
        "BUFFER_TOO_SMALL": natsbridge.InternalError,
        "PANIC": natsbridge.InternalError,
        "OUT_OF_RANGE": natsbridge.InternalError,
        "WRONG_THREAD": natsbridge.InternalError,
        "WOULD_BLOCK": natsbridge.InternalError,
    }
    for name, number in statuses.items():
        code = _ffi.status_code_name(number)
        assert name == "NB_ERR_" + code, (name, code)
        e = errors.error_for(code, "message", status=number)
        assert e.code == code and e.status == number
        if code in boundary:
            assert type(e) is boundary[code], code
        else:
            assert type(e).CODE == code, f"no exception class for {code}"
