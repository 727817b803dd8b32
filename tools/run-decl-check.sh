#!/usr/bin/env bash
# The bindings' foreign declarations against include/natsbridge.h (tools/check_declarations.py),
# then the checker's own tests, which include a wrong signature it must refuse. Part of
# `make test`; needs only python3. Extra arguments go to the checker (e.g. --require-all).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
"$PYTHON" tools/check_declarations.py "$@"
"$PYTHON" tools/julia_lint.py bindings/julia
"$PYTHON" -m unittest -q tools/test_check_declarations.py tools/test_julia_lint.py
