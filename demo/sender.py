"""The demo's Python sender: one envelope with a text, a dictionary, an Arrow table, a JSON
table and a ~5 MB image (which goes by link), then waits for every receiver's ACK.

    python demo/sender.py SUBJECT RECEIVERS     (NATS_URL / FILESERVER_URL from the environment)
"""
import base64
import hashlib
import random
import struct
import sys
import threading
import uuid
import zlib

import pyarrow as pa

import natsbridge


def make_png(width: int, height: int) -> bytes:
    """A valid PNG of deterministic noise (noise does not compress: ~3 bytes a pixel)."""
    rng = random.Random(7)
    rows = b"".join(b"\x00" + rng.randbytes(width * 3) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows, 1)) + chunk(b"IEND", b""))


def wire_sha256(p: dict) -> str:
    """The sha256 of a payload's serialized bytes, from the envelope as published."""
    if p["transport"] == "link":
        return p["metadata"]["sha256"]
    return hashlib.sha256(base64.b64decode(p["data"])).hexdigest()


def bar(done: int, total: int, width: int = 30) -> str:
    filled = width * done // total if total else width
    return f"[{'#' * filled}{'.' * (width - filled)}] {done / 1e6:5.1f} / {total / 1e6:.1f} MB"


def main() -> int:
    subject, receivers = sys.argv[1], int(sys.argv[2])
    acks_subject = f"demo.acks.{uuid.uuid4().hex[:8]}"
    table = pa.table({
        "city": ["Lisbon", "Osaka", "Quito"],
        "temperature_c": [21.5, 17.0, 14.2],
        "humidity": [0.61, 0.72, 0.80],
    })
    image = make_png(1300, 1300)
    payloads = [
        ("greeting", "Hello from Python 👋", "text"),
        ("settings", {"units": "metric", "retries": 3, "tags": ["demo", "natsbridge"]}, "dictionary"),
        ("weather", table, "arrowtable"),
        ("readings", [{"sensor": "a1", "value": 0.5}, {"sensor": "b2", "value": 1.25}], "jsontable"),
        ("photo", image, "image"),
    ]
    with natsbridge.connect(sender_name="python-sender") as client:
        with client.subscribe(acks_subject) as acks:
            progress = natsbridge.Progress()
            outcome: dict = {}

            def send() -> None:
                try:
                    outcome["sent"] = client.smartsend(
                        subject, payloads, msg_purpose="chat", reply_to=acks_subject,
                        receiver_name="everyone", progress=progress)
                except Exception as e:  # reported below, on the main thread
                    outcome["error"] = e

            worker = threading.Thread(target=send)
            worker.start()
            shown = -1
            interactive = sys.stdout.isatty()
            while worker.is_alive():
                worker.join(0.05)
                total = progress.total
                if total:
                    step = 10 * progress.done // total
                    if interactive:
                        print(f"\r[python] uploading photo {bar(progress.done, total)}", end="", flush=True)
                    elif step != shown:
                        print(f"[python] uploading photo {bar(progress.done, total)}", flush=True)
                        shown = step
            if interactive:
                print(f"\r[python] uploading photo {bar(progress.total, progress.total)}")
            if "error" in outcome:
                e = outcome["error"]
                print(f"[python] send failed: {getattr(e, 'code', type(e).__name__)}: {e}")
                return 1
            env, msg_json = outcome["sent"]
            print(f"[python] sent envelope {env['msg_id']} to {subject} ({len(msg_json)} bytes of JSON)")
            for p in env["payloads"]:
                print(f"[python]   {p['dataname']:<8} {p['payload_type']:<11} {p['transport']:<6} "
                      f"{p['size']:>9} bytes  sha256 {wire_sha256(p)[:16]}")
            for _ in range(receivers):
                ack = acks.next(timeout=60)
                ok = "matches" if ack["reply_to_msg_id"] == env["msg_id"] else "DOES NOT MATCH"
                text = ack["payloads"][0][1]
                print(f"[python] {ack['msg_purpose']} from {ack['sender_name']}: \"{text}\" "
                      f"(reply_to_msg_id {ok} the message sent)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
