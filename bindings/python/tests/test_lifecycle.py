"""Loading the library, closing at interpreter exit, staying quiet, logging on request, and
the ctypes declarations against the header."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import natsbridge
from natsbridge import _ffi

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]


def run_python(code: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
    """Runs ``code`` in a fresh interpreter with this package importable."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(HERE.parent) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.pop("NATSBRIDGE_LOG", None)
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


def test_open_handles_are_closed_at_exit_and_nothing_is_printed(servers: Any, subject: str) -> None:
    """A program that leaves a client, a pull subscription with queued envelopes, a callback
    subscription whose callback raises, and an asyncio subscription open exits promptly, with
    status 0 and no output from the library."""
    code = f"""
        import atexit
        handles = []
        def after_natsbridge_shut_down():  # registered first, so it runs last
            print("closed at exit:", [h.closed for h in handles])
        atexit.register(after_natsbridge_shut_down)
        import asyncio, threading, natsbridge
        from natsbridge import aio
        c = natsbridge.connect(
            {servers.nats_url!r}, fileserver_url={servers.fileserver_url!r}, use_env=False
        )
        pull = c.subscribe({subject!r})
        seen = threading.Event()
        def boom(env):
            seen.set()
            raise ValueError("raised in a callback at exit time")
        cb = c.subscribe({subject!r}, callback=boom)
        c.smartsend({subject!r}, [("m", "x", "text"), ("big", bytes(600000), "binary")])
        assert seen.wait(10)
        assert len(cb.errors) == 1
        async def main():
            ac = await aio.connect({servers.nats_url!r}, use_env=False)
            await ac.subscribe({subject!r})
            return ac
        ac = asyncio.run(main())
        handles.extend([c, pull, cb, ac])
        def drain():
            try:
                while True:
                    pull.next(timeout=None)
            except natsbridge.ClosedError:
                pass  # woken up by the close at exit
        waiter = threading.Thread(target=drain, daemon=True)
        waiter.start()  # a thread still blocked in a pull at exit
        print("done")
    """
    r = run_python(code, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "done\nclosed at exit: [True, True, True, True]\n"
    assert r.stderr == ""


def test_logging_is_off_unless_enabled_then_goes_to_python_logging(
    client: natsbridge.Client, subject: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="natsbridge")
    client.smartsend(subject, [("m", "quiet", "text")])
    assert not [r for r in caplog.records if r.name == "natsbridge.core"]
    natsbridge.enable_logging(logging.INFO)
    try:
        env, _ = client.smartsend(subject, [("m", "loud", "text")])
    finally:
        natsbridge.disable_logging()
    lines = [r.getMessage() for r in caplog.records if r.name == "natsbridge.core"]
    assert any(f"[Correlation: {env['correlation_id']}]" in line for line in lines), lines
    count = len(lines)
    client.smartsend(subject, [("m", "quiet again", "text")])
    assert len([r for r in caplog.records if r.name == "natsbridge.core"]) == count


def test_import_fails_clearly_without_a_usable_library(tmp_path: Path) -> None:
    missing = run_python("import natsbridge", NATSBRIDGE_LIB=str(tmp_path / "nope.so"))
    assert missing.returncode != 0
    assert "ImportError" in missing.stderr
    assert "cargo build --release" in missing.stderr and "NATSBRIDGE_LIB" in missing.stderr

    libc = next(
        p
        for p in (
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
            "/lib64/libc.so.6",
            "/usr/lib64/libc.so.6",
        )
        if os.path.exists(p)
    )
    other = run_python("import natsbridge", NATSBRIDGE_LIB=libc)
    assert other.returncode != 0
    assert "is not a natsbridge library" in other.stderr


def test_abi_version_is_checked() -> None:
    assert _ffi.lib.nb_abi_version() == _ffi.ABI_VERSION
    _ffi.check_abi(_ffi.ABI_VERSION, "lib.so")
    with pytest.raises(ImportError) as err:
        _ffi.check_abi(_ffi.ABI_VERSION + 1, "lib.so")
    assert f"ABI version {_ffi.ABI_VERSION + 1}" in str(err.value)
    assert f"written for ABI version {_ffi.ABI_VERSION}" in str(err.value)


def test_the_library_found_is_the_one_named_by_natsbridge_lib() -> None:
    if os.environ.get("NATSBRIDGE_LIB"):
        assert Path(natsbridge.library_path) == Path(os.environ["NATSBRIDGE_LIB"])
    assert natsbridge.library_version == _ffi.text(_ffi.lib.nb_version())
    assert re.match(r"^\d+\.\d+\.\d+", natsbridge.library_version)


def test_declarations_match_the_header() -> None:
    """Every function of include/natsbridge.h is declared once in SIGNATURES, and nothing
    else; and the library exports each of them."""
    header = (REPO / "include" / "natsbridge.h").read_text()
    header = re.sub(r"/\*.*?\*/", "", header, flags=re.S)
    in_header = set(re.findall(r"\b(nb_\w+)\s*\(", header)) - {
        "nb_log_callback",
        "nb_envelope_callback",
        "nb_free_callback",
        "nb_wake_callback",
    }
    assert set(_ffi.SIGNATURES) == in_header
    source = (HERE.parent / "natsbridge" / "_ffi.py").read_text()
    entries = re.findall(r'^\s+"(nb_\w+)": \(', source, flags=re.M)
    assert len(entries) == len(set(entries)) == len(in_header)
    for name in in_header:
        assert getattr(_ffi.lib, name).argtypes is not None


def test_wrappers_close_twice_harmlessly(servers: Any, subject: str) -> None:
    with natsbridge.connect(servers.nats_url, use_env=False) as c:
        with c.subscribe(subject) as sub:
            pass
        sub.close()
        assert sub.closed and not c.closed
    c.close()
    assert c.closed
    with pytest.raises(natsbridge.ClosedError):
        _ = c.max_payload


def test_a_pull_blocked_in_another_thread_wakes_up_on_close(
    client: natsbridge.Client, subject: str
) -> None:
    import threading

    sub = client.subscribe(subject)
    outcome: list = []
    started = threading.Event()

    def wait() -> None:
        started.set()
        try:
            sub.next(timeout=None)
        except natsbridge.ClosedError as e:
            outcome.append(e)

    t = threading.Thread(target=wait)
    t.start()
    started.wait(5)
    sub.close()
    t.join(10)
    assert not t.is_alive()
    assert len(outcome) == 1 and outcome[0].code == "CLOSED"
