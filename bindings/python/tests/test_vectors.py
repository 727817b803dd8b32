"""The golden vectors shared by every implementation (tests/vectors/*.json): smartreceive
decodes each one as its ``expect`` says, or fails with its ``expect_error`` code."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Dict, Union

import pyarrow as pa
import pytest

import natsbridge

VECTORS = Path(__file__).resolve().parents[3] / "tests" / "vectors"
FILES = sorted(VECTORS.glob("*.json"))


def test_the_golden_vectors_are_there() -> None:
    assert len(FILES) >= 15, f"expected the golden vectors in {VECTORS}"


def load(path: Path) -> Dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        data: Dict[str, Any] = json.load(f)
    return data


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
async def test_vector(path: Path) -> None:
    v = load(path)
    message: Union[str, bytes]
    if "raw_hex" in v:
        message = bytes.fromhex(v["raw_hex"])
    else:
        message = v["raw"] if "raw" in v else json.dumps(v["envelope"])
    if "expect_error" in v:
        with pytest.raises(natsbridge.NatsBridgeError) as err:
            await natsbridge.smartreceive(message, fileserver_url="", use_env=False)
        assert err.value.code == v["expect_error"], err.value
        return

    env = await natsbridge.smartreceive(message, fileserver_url="", use_env=False)
    want = dict(v["expect"])
    want_payloads = want.pop("payloads")
    for key, value in want.items():
        assert env[key] == value, key
    assert len(env["payloads"]) == len(want_payloads)
    for (dataname, value, payload_type), w in zip(env["payloads"], want_payloads):
        assert (dataname, payload_type) == (w["dataname"], w["payload_type"])
        if payload_type == "text":
            assert hashlib.sha256(value.encode("utf-8")).hexdigest() == w["sha256"]
            if "value" in w:
                assert value == w["value"]
        elif payload_type in ("dictionary", "jsontable"):
            assert value == w["value"]
        elif payload_type == "arrowtable":
            assert isinstance(value, pa.Table)
            assert value.to_pydict() == w["value"]
        else:
            assert isinstance(value, bytes)
            assert len(value) == w["size"]
            assert hashlib.sha256(value).hexdigest() == w["sha256"]
