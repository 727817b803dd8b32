"""The asyncio API: the walkthrough's module-level smartsend / smartreceive (with a nats-py
subscription of the program's own), AsyncClient, ``async for``, and a loop that is never
blocked while we wait or send."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, List

import pytest

import natsbridge
from natsbridge import aio

from .helpers import same_value, sample_values

TYPES = list(natsbridge.PAYLOAD_TYPES)


async def test_walkthrough_api_with_a_nats_py_subscription(servers: Any, subject: str) -> None:
    """env, msg_json = await smartsend(...); env = await smartreceive(msg) on a nats-py Msg."""
    import nats

    nc = await nats.connect(servers.nats_url)
    try:
        sub = await nc.subscribe(subject)
        await nc.flush()
        values = sample_values()
        big = bytes(range(256)) * 3000  # 768,000 bytes: link transport
        data = [(t, values[t], t) for t in TYPES] + [("big", big, "binary")]
        env, msg_json = await natsbridge.smartsend(
            subject,
            data,
            broker_url=servers.nats_url,
            fileserver_url=servers.fileserver_url,
            use_env=False,
            msg_purpose="event",
        )
        assert env["payloads"][-1]["transport"] == "link"
        assert isinstance(msg_json, str)

        msg = await sub.next_msg(timeout=10)
        assert msg.data == msg_json.encode("utf-8")
        for form in (msg, msg.data, msg.data.decode("utf-8")):
            got = await natsbridge.smartreceive(
                form, fileserver_url=servers.fileserver_url, use_env=False
            )
            assert got["msg_purpose"] == "event"
            assert got["correlation_id"] == env["correlation_id"]
            for (name, value, ptype), (rname, received, rtype) in zip(data, got["payloads"]):
                assert (name, ptype) == (rname, rtype)
                assert same_value(ptype, value, received), name
    finally:
        await nc.close()


async def test_module_functions_reuse_a_given_client(servers: Any, subject: str) -> None:
    async with await aio.connect(
        servers.nats_url, fileserver_url=servers.fileserver_url, use_env=False
    ) as ac:
        sync = natsbridge.connect(servers.nats_url, use_env=False)
        try:
            sub = await ac.subscribe(subject)
            env1, _ = await natsbridge.smartsend(subject, [("a", "1", "text")], client=ac)
            got = [await sub.next(timeout=10)]  # the server has the interest: see
            # helpers.interest_registered for why before another connection publishes
            env2, json2 = await natsbridge.smartsend(subject, [("b", "2", "text")], client=sync)
            got.append(await sub.next(timeout=10))
            assert got[0]["msg_id"] == env1["msg_id"]
            assert [g["payloads"][0] for g in got] == [("a", "1", "text"), ("b", "2", "text")]
            assert (await natsbridge.smartreceive(json2, client=ac))["msg_id"] == env2["msg_id"]
            assert (await natsbridge.smartreceive(json2, client=sync))["msg_id"] == env2["msg_id"]
            with pytest.raises(TypeError):
                await natsbridge.smartsend(subject, [], client=ac, nats_url="nats://x")
            await sub.close()
        finally:
            sync.close()


async def test_async_for_receives_every_type_in_order(servers: Any, subject: str) -> None:
    values = sample_values()
    async with await aio.connect(
        servers.nats_url, fileserver_url=servers.fileserver_url, use_env=False
    ) as ac:
        async with await ac.subscribe(subject) as sub:
            for i, t in enumerate(TYPES):
                # alternate the transports
                await ac.smartsend(
                    subject, [(t, values[t], t)], size_threshold=1 if i % 2 else 500_000
                )
            got: List[Any] = []
            async for env in sub:
                got.append(env["payloads"][0])
                if len(got) == len(TYPES):
                    break
    for t, (name, received, ptype) in zip(TYPES, got):
        assert (name, ptype) == (t, t)
        assert same_value(t, values[t], received), t


async def test_waiting_and_sending_never_block_the_loop(servers: Any, subject: str) -> None:
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.005)

    async with await aio.connect(
        servers.nats_url, fileserver_url=servers.fileserver_url, use_env=False
    ) as ac:
        async with await ac.subscribe(subject) as sub:
            task = asyncio.create_task(ticker())
            # A wait that finds nothing: the ticker runs meanwhile.
            before = ticks
            with pytest.raises(natsbridge.TimeoutError) as e:
                await sub.next(timeout=0.3)
            assert e.value.code == "TIMEOUT"
            assert ticks - before >= 10, ticks - before

            # A wait that is ended by a message sent from another task while we wait.
            async def later() -> None:
                await asyncio.sleep(0.1)
                await ac.smartsend(subject, [("x", "late", "text")])

            before = ticks
            sender = asyncio.create_task(later())
            env = await sub.next(timeout=10)
            await sender
            assert env["payloads"] == [("x", "late", "text")]
            assert ticks - before >= 5

            # A send with an upload of several MB runs off the loop.
            before = ticks
            await ac.smartsend(subject, [("big", bytes(8_000_000), "binary")])
            got = await sub.next(timeout=20)
            assert got["payloads"][0][1] == bytes(8_000_000)
            assert ticks > before
            stop.set()
            await task


async def test_closing_ends_a_waiting_iteration(servers: Any, subject: str) -> None:
    async with await aio.connect(servers.nats_url, use_env=False) as ac:
        sub = await ac.subscribe(subject)
        got: List[Any] = []
        first = asyncio.Event()

        async def consume() -> None:
            async for env in sub:
                got.append(env)
                first.set()

        task = asyncio.create_task(consume())
        await ac.smartsend(subject, [("a", "1", "text")])
        await first.wait()  # the consumer goes back to waiting on the fd
        await sub.close()
        await asyncio.wait_for(task, 10)  # ends with StopAsyncIteration, not an error
        assert len(got) == 1 and sub.closed
        with pytest.raises(natsbridge.ClosedError):
            await sub.next(timeout=0)


async def test_many_concurrent_async_sends(servers: Any, subject: str) -> None:
    async with await aio.connect(servers.nats_url, use_env=False) as ac:
        async with await ac.subscribe(subject) as sub:
            await asyncio.gather(
                *(ac.smartsend(subject, [("i", i, "dictionary")]) for i in range(100))
            )
            seen = sorted([(await sub.next(timeout=10))["payloads"][0][1] for _ in range(100)])
            assert seen == list(range(100))


async def test_async_request_reply(servers: Any, subject: str) -> None:
    async with await aio.connect(servers.nats_url, use_env=False) as ac:
        async with await ac.subscribe(subject) as sub:

            async def serve() -> None:
                req = await sub.next(timeout=10)
                await ac.reply(req, [("echo", req["payloads"][0][1], "dictionary")])

            server = asyncio.create_task(serve())
            cid = str(uuid.uuid4())
            reply = await ac.request(
                subject, [("q", {"n": 42}, "dictionary")], timeout=10, correlation_id=cid
            )
            await server
            assert reply["payloads"] == [("echo", {"n": 42}, "dictionary")]
            assert reply["correlation_id"] == cid
            with pytest.raises(natsbridge.NoRespondersError):
                await ac.request(subject + ".nobody", [("q", "x", "text")], timeout=5)


async def test_small_sends_complete_on_the_loop_and_others_in_the_executor(
    servers: Any, subject: str
) -> None:
    """bytes / text sends that need not wait are published from the loop's thread; a send
    that converts a value goes to the executor."""
    import concurrent.futures

    submitted = 0

    class Counting(concurrent.futures.ThreadPoolExecutor):
        def submit(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            nonlocal submitted
            submitted += 1
            return super().submit(*args, **kwargs)

    loop = asyncio.get_running_loop()
    executor = Counting(max_workers=2)
    loop.set_default_executor(executor)
    async with await aio.connect(servers.nats_url, use_env=False) as ac:
        async with await ac.subscribe(subject) as sub:
            before = submitted
            for i in range(50):
                env, msg_json = await ac.smartsend(
                    subject, [("n", str(i), "text"), ("b", bytes([i]) * 100, "binary")]
                )
                assert env["payloads"][0]["dataname"] == "n" and '"send_to"' in msg_json
            assert submitted == before, "small sends went through the executor"
            await ac.smartsend(subject, [("d", {"i": 50}, "dictionary")])
            assert submitted == before + 1
            for i in range(50):
                got = await sub.next(timeout=10)
                assert got["payloads"] == [("n", str(i), "text"), ("b", bytes([i]) * 100, "binary")]
            assert (await sub.next(timeout=10))["payloads"] == [("d", {"i": 50}, "dictionary")]


async def test_sends_not_awaited_one_by_one_are_published_in_call_order(
    servers: Any, subject: str
) -> None:
    """An upload does not let the small sends called after it overtake it."""
    async with await aio.connect(
        servers.nats_url, fileserver_url=servers.fileserver_url, use_env=False
    ) as ac:
        async with await ac.subscribe(subject) as sub:
            big = bytes(range(256)) * 3000  # 768,000 bytes: link transport, an upload
            sends = [ac.smartsend(subject, [("n", "0", "text"), ("big", big, "binary")])]
            sends += [ac.smartsend(subject, [("n", str(i), "text")]) for i in range(1, 20)]
            sent = await asyncio.gather(*sends)
            assert sent[0][0]["payloads"][1]["transport"] == "link"
            got = [await sub.next(timeout=20) for _ in range(20)]
            assert [g["payloads"][0][1] for g in got] == [str(i) for i in range(20)]
            assert got[0]["payloads"][1][1] == big
            # Once the upload is done, small sends take the loop's path again.
            env, _ = await ac.smartsend(subject, [("n", "20", "text")])
            assert (await sub.next(timeout=10))["payloads"] == [("n", "20", "text")]
