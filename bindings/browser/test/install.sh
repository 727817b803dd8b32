#!/usr/bin/env bash
# What the browser tests need: Chromium from the system (apt-get, when this user is root or
# has passwordless sudo; otherwise a failure saying what to install) and the npm packages of
# bindings/browser exactly as locked (npm ci, again only when the lock file changed).
# Used by `make test-browser` and tests/conformance/run.sh.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

chromium="${CHROMIUM_BIN:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
  if [ -n "${CHROMIUM_BIN:-}" ]; then
    echo "install.sh: CHROMIUM_BIN=$CHROMIUM_BIN is not an executable" >&2; exit 1
  fi
  if [ "$(id -u)" = 0 ]; then sudo=(); elif sudo -n true 2>/dev/null; then sudo=(sudo -n); else
    echo "install.sh: Chromium is needed for the browser tests and is not at $chromium:" >&2
    echo "  install it with 'sudo apt-get install chromium' (Debian/Ubuntu), or point CHROMIUM_BIN at a Chromium or Chrome binary" >&2
    exit 1
  fi
  echo "install.sh: installing Chromium (apt-get install chromium)" >&2
  "${sudo[@]}" apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq chromium >/dev/null
  [ -x "$chromium" ] || { echo "install.sh: apt-get did not install $chromium" >&2; exit 1; }
fi

command -v npm >/dev/null || { echo "install.sh: npm (Node >= 20) is needed" >&2; exit 1; }
cd "$here"
if [ ! -f node_modules/.package-lock.json ] || ! cmp -s package-lock.json node_modules/.nb-installed-lock; then
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
  cp package-lock.json node_modules/.nb-installed-lock
fi
