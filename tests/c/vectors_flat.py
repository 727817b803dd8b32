#!/usr/bin/env python3
"""Flattens the golden vectors (tests/vectors/*.json) for the C test tests/c/vectors.c, which
has no JSON parser.

    python3 tests/c/vectors_flat.py OUT_DIR

Writes OUT_DIR/<name>.msg, the exact message of each vector (its "raw" text, its
"raw_hex" bytes, or its "envelope" written with json.dumps as the other suites do), and OUT_DIR/index.txt, one record
per vector, one item per line, items separated by single spaces; every string is hex of its
UTF-8 bytes, "-" standing for the empty string:

    vector NAME MSGFILE
    error CODE                                   (the vector expects this error code)
    field KEY HEX                                (each expected header string field)
    metadata HEX                                 (the message metadata, compact JSON)
    payloads COUNT
    payload DATANAME_HEX TYPE TRANSPORT SIZE SHA256 VALUE_HEX   (VALUE_HEX: text value or -)
    end

The metadata JSON is written compactly with non-ASCII characters as they are, the way the
library's nb_envelope_metadata_json writes it. Standard library only.
"""
import json
import pathlib
import sys

VECTORS = pathlib.Path(__file__).resolve().parents[1] / "vectors"


def hx(text: str) -> str:
    return text.encode("utf-8").hex() or "-"


def main() -> int:
    if len(sys.argv) != 2:
        sys.exit("usage: vectors_flat.py OUT_DIR")
    out = pathlib.Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    files = sorted(VECTORS.glob("*.json"))
    if not files:
        sys.exit(f"no golden vectors in {VECTORS}")
    lines = []
    for path in files:
        v = json.loads(path.read_text(encoding="utf-8"))
        name = v["name"]
        if "raw_hex" in v:
            message = bytes.fromhex(v["raw_hex"])
        else:
            message = (v["raw"] if "raw" in v else json.dumps(v["envelope"])).encode("utf-8")
        (out / f"{name}.msg").write_bytes(message)
        lines.append(f"vector {name} {name}.msg")
        if "expect_error" in v:
            lines.append(f"error {v['expect_error']}")
        else:
            expect = v["expect"]
            for key, value in expect.items():
                if key == "metadata":
                    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
                    lines.append(f"metadata {hx(text)}")
                elif key != "payloads":
                    lines.append(f"field {key} {hx(value)}")
            lines.append(f"payloads {len(expect['payloads'])}")
            for p in expect["payloads"]:
                value = hx(p["value"]) if p["payload_type"] == "text" and "value" in p else "-"
                lines.append(
                    f"payload {hx(p['dataname'])} {p['payload_type']} {p['transport']} "
                    f"{p['size']} {p['sha256']} {value}"
                )
        lines.append("end")
    (out / "index.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
