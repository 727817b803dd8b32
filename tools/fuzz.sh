#!/usr/bin/env bash
# `make fuzz` and `make fuzz-smoke`: the cargo-fuzz targets of fuzz/ (envelope, smartreceive),
# each for a set time.
#
#   tools/fuzz.sh SECONDS [TARGET...]        (default: every target)
#
# Needs the nightly toolchain (cargo fuzz builds with -Z flags): rustup toolchain install nightly.
# Installs cargo-fuzz into .tools/ when it is missing (once; a few minutes).
# Seeds are the golden vectors' messages (tests/vectors), as the test suites send them and in
# the library's own compact layout (its parser's fast path), written to fuzz/corpus/seeds; the
# corpus each target grows is fuzz/corpus/TARGET, crashes go to fuzz/artifacts/TARGET, builds
# to fuzz/target (all ignored by git; the corpus is kept between runs).
# Prints each target's executions; exits non-zero on a crash, naming the input that caused it.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
say() { echo "fuzz.sh: $*" >&2; }
fail() { say "$*"; exit 1; }

seconds=${1:-}
[[ $seconds =~ ^[0-9]+$ && $seconds -gt 0 ]] || fail "usage: tools/fuzz.sh SECONDS [TARGET...]"
shift
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(envelope smartreceive)

command -v rustup >/dev/null ||
    fail "rustup not found: cargo fuzz needs the nightly toolchain; install rustup (https://rustup.rs), then: rustup toolchain install nightly"
rustup run nightly rustc --version >/dev/null 2>&1 ||
    fail "the nightly Rust toolchain is missing (cargo fuzz builds with -Z flags): rustup toolchain install nightly"

CARGO_FUZZ_VERSION=0.13.2
tools="$root/.tools"
if [[ ! -x $tools/bin/cargo-fuzz ]]; then
    say "installing cargo-fuzz $CARGO_FUZZ_VERSION into .tools (once; a few minutes)"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --root "$tools" --quiet
fi
export PATH="$tools/bin:$PATH"

# The same flags for build and run (else run rebuilds). 16 codegen units: a cold build about
# twice as fast on two cores for somewhat slower runs (fuzz/Cargo.toml leaves the dependencies
# the targets do not exercise unoptimized, for the same reason).
flags=(--codegen-units 16)
started=$SECONDS
say "building the fuzz targets (fuzz/target)"
cargo +nightly fuzz build "${flags[@]}" >/dev/null 2>"$root/fuzz/build.log" || {
    cat "$root/fuzz/build.log" >&2
    fail "the fuzz targets do not build"
}
rm -f "$root/fuzz/build.log"
say "built in $((SECONDS - started)) s"

mkdir -p fuzz/corpus/seeds
python3 - fuzz/corpus/seeds <<'PY'
import base64, json, pathlib, sys
out = pathlib.Path(sys.argv[1])
HEADER = ["correlation_id", "msg_id", "timestamp", "send_to", "msg_purpose", "sender_name",
          "sender_id", "receiver_name", "receiver_id", "reply_to", "reply_to_msg_id", "broker_url"]
for path in sorted(pathlib.Path("tests/vectors").glob("*.json")):
    v = json.loads(path.read_text(encoding="utf-8"))
    if "raw_hex" in v:
        message = bytes.fromhex(v["raw_hex"])
    else:
        message = (v["raw"] if "raw" in v else json.dumps(v["envelope"])).encode()
    (out / f"{path.stem}.msg").write_bytes(message)
    if "expect" in v:
        env = v["envelope"]
        ours = {k: env.get(k) or "" for k in HEADER}
        ours["metadata"] = env.get("metadata") or {}
        ours["payloads"] = [{
            "id": p.get("id") or "", "dataname": p["dataname"], "payload_type": p["payload_type"],
            "transport": p["transport"],
            "encoding": p.get("encoding") or ("base64" if p["transport"] == "direct" else "none"),
            "size": p["size"] if p.get("size") is not None else len(base64.b64decode(p["data"])),
            "data": p["data"], "metadata": p.get("metadata") or {},
        } for p in env["payloads"]]
        compact = json.dumps(ours, separators=(",", ":"), ensure_ascii=False).encode()
        (out / f"{path.stem}.compact.msg").write_bytes(compact)
PY

crashed=()
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t"
    log=$(mktemp)
    set +e
    cargo +nightly fuzz run "${flags[@]}" "$t" "fuzz/corpus/$t" fuzz/corpus/seeds -- \
        -max_total_time="$seconds" -timeout=10 -dict=fuzz/envelope.dict -print_final_stats=1 \
        >"$log" 2>&1
    rc=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    corpus=$(find "fuzz/corpus/$t" -type f | wc -l)
    if [[ $rc -eq 0 ]]; then
        echo "fuzz $t: ${execs:-?} executions in ${seconds} s, 0 crashes (corpus: $corpus inputs)"
    else
        tail -n 60 "$log" >&2
        artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
        echo "fuzz $t: FAILED (exit $rc) after ${execs:-?} executions; input: ${artifact:-none written}"
        [[ -n $artifact ]] && echo "  reproduce: PATH=.tools/bin:\$PATH cargo +nightly fuzz run $t $artifact"
        crashed+=("$t")
    fi
    rm -f "$log"
done
say "done in $((SECONDS - started)) s"
[[ ${#crashed[@]} -eq 0 ]] || fail "crash in: ${crashed[*]}"
