#!/usr/bin/env python3
"""Writes the golden vectors in tests/vectors/ (run once; the output is committed and frozen).

Each vector is one JSON file:
  {"name", "description",
   "envelope": {...}  or  "raw": "<exact message text>"
                      or  "raw_hex": "<exact message bytes, hex>" (for bytes that are not UTF-8),
   "expect": {header fields..., "payloads": [{"dataname", "payload_type", "transport", "size",
              "sha256", "value"?}]}        -- for messages every implementation must decode
   or "expect_error": "CODE"}               -- for messages every implementation must refuse
"value" is the host-level value where it is language-neutral: a string for text, the JSON value
for dictionary and jsontable, and {"column": [values...]} for arrowtable.
Every Rust, C, Python, Node and Julia test suite reads these files.
"""
import base64
import hashlib
import json
import pathlib
import sys

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "vectors"

# An Arrow IPC stream: columns id (int64) = 0,1,2 and name (utf8) = row-0,row-1,row-2.
ARROW_B64 = (OUT / "source" / "arrow_3rows.b64").read_text().strip()
ARROW_VALUE = {"id": [0, 1, 2], "name": ["row-0", "row-1", "row-2"]}

HEADER_KEYS = [
    "correlation_id", "msg_id", "timestamp", "send_to", "msg_purpose", "sender_name",
    "sender_id", "receiver_name", "receiver_id", "reply_to", "reply_to_msg_id", "broker_url",
]


def payload(dataname, payload_type, data: bytes, pid):
    return {
        "id": pid, "dataname": dataname, "payload_type": payload_type, "transport": "direct",
        "encoding": "base64", "size": len(data), "data": base64.b64encode(data).decode(),
        "metadata": {"payload_bytes": len(data)},
    }


def expected_payload(p, value=None):
    data = base64.b64decode(p["data"])
    e = {"dataname": p["dataname"], "payload_type": p["payload_type"], "transport": "direct",
         "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    if value is not None:
        e["value"] = value
    return e


def header(**over):
    h = {
        "correlation_id": "3f0c9d3e-1c1b-4c59-9d53-2f3f5f1f0a01",
        "msg_id": "8d1c3b42-59a4-4d0e-8f49-6b5a8d1e7a02",
        "timestamp": "2026-03-13T07:02:50.443Z",
        "send_to": "vectors.demo",
        "msg_purpose": "chat",
        "sender_name": "vector-writer",
        "sender_id": "5b7e3d11-2c9a-4d8e-9f10-1a2b3c4d5e03",
        "receiver_name": "",
        "receiver_id": "",
        "reply_to": "",
        "reply_to_msg_id": "",
        "broker_url": "nats://localhost:4222",
        "metadata": {},
    }
    h.update(over)
    return h


def expect_header(env):
    e = {k: (env.get(k) or "") for k in HEADER_KEYS}
    e["metadata"] = env.get("metadata") or {}
    return e


def write(name, description, envelope=None, raw=None, values=None, error=None):
    v = {"name": name, "description": description}
    if isinstance(raw, bytes):
        v["raw_hex"] = raw.hex()
    elif raw is not None:
        v["raw"] = raw
    else:
        v["envelope"] = envelope
    if error:
        v["expect_error"] = error
    else:
        e = expect_header(envelope)
        e["payloads"] = [expected_payload(p, (values or {}).get(p["dataname"]))
                         for p in envelope["payloads"]]
        v["expect"] = e
    WRITTEN[f"{name}.json"] = json.dumps(v, indent=2, ensure_ascii=False) + "\n"


WRITTEN = {}


def main():
    walkthrough = json.loads((OUT / "source" / "walkthrough_example.json").read_text())
    write("walkthrough", "The example envelope of the walkthrough, verbatim.", walkthrough,
          values={"msg": "Hello World"})

    dictionary = {"key": "value", "n": [1, 2.5, None, True], "nested": {"é": "ü"}}
    rows = [{"id": 1, "name": "alpha", "score": 0.5}, {"id": 2, "name": "βeta", "score": None}]
    text = "Hello, wörld ✓ — 你好"
    ps = [
        payload("msg", "text", text.encode(), "00000000-0000-4000-8000-000000000001"),
        payload("config", "dictionary", json.dumps(dictionary, ensure_ascii=False).encode(),
                "00000000-0000-4000-8000-000000000002"),
        payload("table", "arrowtable", base64.b64decode(ARROW_B64), "00000000-0000-4000-8000-000000000003"),
        payload("rows", "jsontable", json.dumps(rows, ensure_ascii=False).encode(),
                "00000000-0000-4000-8000-000000000004"),
        payload("photo", "image", bytes(range(256)) * 2, "00000000-0000-4000-8000-000000000005"),
        payload("voice", "audio", b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(20), "00000000-0000-4000-8000-000000000006"),
        payload("clip", "video", b"\x00\x00\x00\x18ftypmp42" + bytes(12), "00000000-0000-4000-8000-000000000007"),
        payload("blob", "binary", b"\x00\xff\x10\x80binary\n", "00000000-0000-4000-8000-000000000008"),
        payload("empty", "binary", b"", "00000000-0000-4000-8000-000000000009"),
    ]
    env = header(msg_purpose="command", receiver_name="vector-reader", receiver_id="rid-1",
                 reply_to="vectors.reply", reply_to_msg_id="prev-msg",
                 metadata={"trace": ["a", 1], "unicode": "ñ"})
    env["payloads"] = ps
    write("all_types_direct", "All eight payload types (plus an empty binary) direct, every header field set.",
          env, values={"msg": text, "config": dictionary, "table": ARROW_VALUE, "rows": rows})

    minimal = {"payloads": [{"dataname": "msg", "payload_type": "text", "transport": "direct",
                             "data": base64.b64encode(b"hi").decode()}]}
    write("missing_optional_keys", "Only the required keys: every optional key is absent.",
          minimal, values={"msg": "hi"})

    nulls = {k: None for k in HEADER_KEYS}
    nulls["metadata"] = None
    nulls["payloads"] = [{"id": None, "dataname": "msg", "payload_type": "text", "transport": "direct",
                          "encoding": None, "size": None, "data": base64.b64encode(b"hi").decode(),
                          "metadata": None}]
    write("null_optional_keys", "Optional keys present with null values.", nulls, values={"msg": "hi"})

    unknown = header(future_field={"x": 1}, version=2)
    unknown["payloads"] = [dict(payload("msg", "text", b"ok", "p1"), compression="none")]
    write("unknown_keys_ignored", "Keys this version does not know are ignored.", unknown,
          values={"msg": "ok"})

    none = header()
    none["payloads"] = []
    write("no_payloads", "An envelope with an empty payload list.", none)

    def bad(name, description, raw=None, envelope=None, error=None):
        write(name, description, envelope=envelope, raw=raw, error=error)

    p = lambda **kw: {"payloads": [dict({"dataname": "m", "payload_type": "text", "transport": "direct",
                                          "data": "aGk="}, **kw)]}
    bad("error_not_json", "Not JSON.", raw="this is not json", error="INVALID_ENVELOPE")
    bad("error_not_an_object", "JSON, but not an object.", raw="[1, 2, 3]", error="INVALID_ENVELOPE")
    bad("error_no_payloads", "No payloads key.", envelope=header(), error="INVALID_ENVELOPE")
    bad("error_wrong_field_type", "correlation_id is a number.",
        envelope=dict(p(), correlation_id=42), error="INVALID_ENVELOPE")
    bad("error_payloads_not_array", "payloads is an object.", envelope={"payloads": {"a": 1}},
        error="INVALID_ENVELOPE")
    bad("error_missing_dataname", "A payload without dataname.",
        envelope={"payloads": [{"payload_type": "text", "transport": "direct", "data": "aGk="}]},
        error="INVALID_ENVELOPE")
    bad("error_bad_base64", "data is not base64.", envelope=p(data="!!not base64!!"),
        error="DESERIALIZATION_ERROR")
    bad("error_unknown_transport", "transport is neither direct nor link.", envelope=p(transport="carrier-pigeon"),
        error="INVALID_TRANSPORT")
    bad("error_unknown_payload_type", "payload_type is not one of the eight.", envelope=p(payload_type="spreadsheet"),
        error="INVALID_PAYLOAD_TYPE")
    bad("error_text_not_utf8", "A text payload whose bytes are not UTF-8.",
        envelope=p(data=base64.b64encode(b"\xff\xfe").decode()), error="DESERIALIZATION_ERROR")
    bad("error_dictionary_not_json", "A dictionary payload whose bytes are not JSON.",
        envelope=p(payload_type="dictionary", data=base64.b64encode(b"{oops").decode()),
        error="DESERIALIZATION_ERROR")
    bad("error_dictionary_not_utf8", "A dictionary payload whose JSON holds a byte that is not UTF-8.",
        envelope=p(payload_type="dictionary", data=base64.b64encode(b'{"a":"\xff"}').decode()),
        error="DESERIALIZATION_ERROR")
    bad("error_unknown_key_not_utf8", "A byte that is not UTF-8 in the value of a key this version "
        "does not know: a message is UTF-8 JSON throughout.",
        raw=b'{"payloads":[],"x":"\xff"}', error="INVALID_ENVELOPE")
    bad("error_header_not_utf8", "A byte that is not UTF-8 in a header field.",
        raw=b'{"msg_id":"m\xc3","payloads":[]}', error="INVALID_ENVELOPE")
    bad("error_size_mismatch", "A direct payload whose size disagrees with its bytes.",
        envelope=p(size=3), error="INTEGRITY_ERROR")


if __name__ == "__main__":
    main()
    if "--check" in sys.argv[1:]:
        stale = [n for n, text in WRITTEN.items()
                 if not (OUT / n).exists() or (OUT / n).read_text() != text]
        extra = sorted(p.name for p in OUT.glob("*.json") if p.name not in WRITTEN)
        if stale or extra:
            sys.exit(f"tests/vectors differ from tools/make_vectors.py: changed {stale}, unknown {extra}; "
                     "run python3 tools/make_vectors.py")
    else:
        for n, text in WRITTEN.items():
            (OUT / n).write_text(text)
