"""The Python peer of the conformance matrix (tests/conformance/matrix.py), on the
``natsbridge`` package of bindings/python.

    peer_python.py send SUBJECT SPEC.json    publishes one envelope described by SPEC.json
    peer_python.py recv SUBJECT TIMEOUT_S    prints "ready" once subscribed, then the report
                                             of the one envelope it receives

NATS_URL and FILESERVER_URL come from the environment.

Sending passes host values, as a Python program would: text as ``str``, dictionary and
jsontable as the parsed JSON value (the binding serializes them), arrowtable as Arrow IPC
stream bytes and the binary types as ``bytes`` (the binding forwards both as they are).

Receiving uses the walkthrough's pattern from the binding's README: a nats-py subscription of
our own, each message decoded with ``natsbridge.smartreceive``. The binding's envelope gives
the header and each payload's (dataname, value, payload_type), but not its transport or size:
those two are read from the message itself. The report (JSON) has per payload: dataname,
payload_type, transport, size, and "sha256" of the bytes the binding returned for text (its
UTF-8) and the binary types, "value" for text, dictionary and jsontable, and "columns"
(``Table.to_pydict()``) for arrowtable.
"""

import asyncio
import hashlib
import json
import os
import sys
from pathlib import Path

HEADER_KEYS = (
    "correlation_id", "msg_id", "timestamp", "send_to", "msg_purpose", "sender_name",
    "sender_id", "receiver_name", "receiver_id", "reply_to", "reply_to_msg_id", "broker_url",
    "metadata",
)


def send(subject: str, spec_path: str) -> None:
    import natsbridge

    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    payloads = []
    for p in spec["payloads"]:
        data = Path(p["file"]).read_bytes()
        ptype = p["payload_type"]
        if ptype == "text":
            value = data.decode("utf-8")
        elif ptype in ("dictionary", "jsontable"):
            value = json.loads(data)
        else:
            value = data
        payloads.append((p["dataname"], value, ptype))
    with natsbridge.connect(
        os.environ["NATS_URL"], fileserver_url=os.environ["FILESERVER_URL"], use_env=False
    ) as client:
        client.smartsend(subject, payloads, size_threshold=spec["threshold"], **spec["options"])


async def recv(subject: str, timeout: float) -> None:
    import nats

    import natsbridge

    nc = await nats.connect(os.environ["NATS_URL"])
    try:
        sub = await nc.subscribe(subject)
        await nc.flush()  # the server has the subscription
        print("ready", flush=True)
        msg = await sub.next_msg(timeout=timeout)
        wire = json.loads(msg.data)
        env = await natsbridge.smartreceive(
            msg, fileserver_url=os.environ["FILESERVER_URL"], use_env=False
        )
    finally:
        await nc.close()
    header = {k: env[k] for k in HEADER_KEYS if k in env}
    report = []
    if len(wire["payloads"]) != len(env["payloads"]):
        sys.exit(f"the binding returned {len(env['payloads'])} payloads of {len(wire['payloads'])}")
    for (dataname, value, ptype), w in zip(env["payloads"], wire["payloads"]):
        item = {"dataname": dataname, "payload_type": ptype,
                "transport": w.get("transport"), "size": w.get("size")}
        if ptype == "text":
            item["sha256"] = hashlib.sha256(value.encode("utf-8")).hexdigest()
            item["value"] = value
        elif ptype in ("dictionary", "jsontable"):
            item["value"] = value
        elif ptype == "arrowtable":
            item["columns"] = value.to_pydict()
        else:
            item["sha256"] = hashlib.sha256(value).hexdigest()
            item["length"] = len(value)
        report.append(item)
    print(json.dumps({"header": header, "payloads": report}, ensure_ascii=False), flush=True)


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "send":
        send(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "recv":
        asyncio.run(recv(sys.argv[2], float(sys.argv[3])))
    else:
        sys.exit("usage: peer_python.py send SUBJECT SPEC.json | recv SUBJECT TIMEOUT_S")


if __name__ == "__main__":
    main()
