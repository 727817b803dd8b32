"""Many Python threads on one client, and what happens to exceptions in user callbacks."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import Any, List

import pytest

import natsbridge

from .helpers import PROBE, hand_envelope, hand_payload, publish_raw

THREADS = 8
PER_THREAD = 40


def test_eight_threads_send_concurrently_through_one_client_and_nothing_is_lost(
    client: natsbridge.Client, subject: str
) -> None:
    start = threading.Barrier(THREADS)
    problems: List[BaseException] = []
    sent_ids: List[str] = []
    lock = threading.Lock()

    def sender(t: int) -> None:
        try:
            start.wait(10)
            for i in range(PER_THREAD):
                payloads = [("who", {"t": t, "i": i}, "dictionary")]
                if i % 10 == 0:  # some uploads run concurrently too
                    payloads.append(("blob", bytes([t]) * 2000, "binary"))
                env, _ = client.smartsend(subject, payloads, size_threshold=1000)
                with lock:
                    sent_ids.append(env["msg_id"])
        except BaseException as e:
            problems.append(e)

    with client.subscribe(subject) as sub:
        threads = [threading.Thread(target=sender, args=(t,)) for t in range(THREADS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(60)
        assert not problems, problems
        got = [sub.next(timeout=20) for _ in range(THREADS * PER_THREAD)]
        with pytest.raises(natsbridge.TimeoutError):
            sub.next(timeout=0.2)  # and nothing more
        assert sub.dropped == 0

    seen = Counter((env["payloads"][0][1]["t"], env["payloads"][0][1]["i"]) for env in got)
    assert seen == Counter((t, i) for t in range(THREADS) for i in range(PER_THREAD))
    assert sorted(env["msg_id"] for env in got) == sorted(sent_ids)
    for env in got:
        who = env["payloads"][0][1]
        if who["i"] % 10 == 0:
            assert env["payloads"][1] == ("blob", bytes([who["t"]]) * 2000, "binary")
    # Per thread, messages keep the order in which that thread sent them.
    for t in range(THREADS):
        order = [env["payloads"][0][1]["i"] for env in got if env["payloads"][0][1]["t"] == t]
        assert order == list(range(PER_THREAD))


def test_threads_pull_from_one_subscription_without_losing_or_duplicating(
    client: natsbridge.Client, subject: str
) -> None:
    total = 200
    got: List[int] = []
    lock = threading.Lock()
    with client.subscribe(subject) as sub:

        def puller() -> None:
            while True:
                try:
                    env = sub.next(timeout=1.0)
                except natsbridge.TimeoutError:
                    return
                with lock:
                    got.append(env["payloads"][0][1])

        threads = [threading.Thread(target=puller) for _ in range(4)]
        for th in threads:
            th.start()
        for i in range(total):
            client.smartsend(subject, [("i", i, "dictionary")])
        for th in threads:
            th.join(30)
    assert sorted(got) == list(range(total))


def test_an_exception_in_a_callback_is_logged_kept_and_raised_on_close(
    client: natsbridge.Client, subject: str, caplog: pytest.LogCaptureFixture
) -> None:
    delivered: List[str] = []
    third = threading.Event()

    def on_env(env: natsbridge.Envelope) -> None:
        value = env["payloads"][0][1]
        delivered.append(value)
        if value == "boom":
            raise RuntimeError("callback failed on purpose")
        if len(delivered) == 3:
            third.set()

    caplog.set_level(logging.ERROR, logger="natsbridge")
    sub = client.subscribe(subject, callback=on_env)
    for value in ("ok-1", "boom", "ok-2"):
        client.smartsend(subject, [("v", value, "text")])
    assert third.wait(10)
    # Delivery went on after the exception; it was logged with its traceback and kept.
    assert delivered == ["ok-1", "boom", "ok-2"]
    [err] = sub.errors
    assert isinstance(err, RuntimeError)
    records = [r for r in caplog.records if r.name == "natsbridge" and r.exc_info]
    assert records and records[0].exc_info[1] is err
    with pytest.raises(natsbridge.CallbackError) as e:
        sub.close()
    assert e.value.errors == [err]
    assert e.value.__cause__ is err
    sub.close(raise_errors=False)  # closing again is harmless


def test_undecodable_messages_go_to_the_error_callback(
    client: natsbridge.Client, servers: Any, subject: str
) -> None:
    errors: List[natsbridge.NatsBridgeError] = []
    envs: List[Any] = []
    both = threading.Event()

    def on_error(e: natsbridge.NatsBridgeError) -> None:
        errors.append(e)

    probed = threading.Event()

    def on_env(env: natsbridge.Envelope) -> None:
        if env["payloads"][0][0] == PROBE:
            probed.set()  # the server has the interest (see helpers.interest_registered)
            return
        envs.append(env)
        both.set()

    bad = hand_envelope(
        [
            hand_payload(
                "gone",
                "binary",
                b"",
                transport="link",
                url=servers.fileserver_url + "/file/nope/nope/x",
                size=3,
            )
        ],
        correlation_id="corr-bad",
    )
    with client.subscribe(subject, callback=on_env, error_callback=on_error) as sub:
        client.smartsend(subject, [(PROBE, "", "text")])
        assert probed.wait(10)
        publish_raw(servers.nats_url, subject, bad)
        client.smartsend(subject, [("fine", "yes", "text")])
        assert both.wait(10)  # delivered in order: the bad one came first
        assert sub.errors == []
    [err] = errors
    assert err.code == "DOWNLOAD_FAILED"
    assert err.correlation_id == "corr-bad"
    assert envs[0]["payloads"] == [("fine", "yes", "text")]
