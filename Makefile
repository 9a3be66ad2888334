# chatdesk — the README's commands. `make run` and `make test` are all a
# newcomer needs; everything they depend on is set up here.

SHELL := /bin/bash
CARGO ?= cargo
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
export TEST_DATABASE_URL

.PHONY: run build test test-unit test-http-postgres test-contract bench lint fmt clippy clean-data help

help:
	@echo "make run    build, migrate the embedded SQLite database and serve on 127.0.0.1:8080"
	@echo "make test   every test (PostgreSQL ones against TEST_DATABASE_URL; CI=true makes a missing PostgreSQL fail)"
	@echo "make bench  release-build and run the benchmark program (about a minute; figures in docs/benchmarks.md)"
	@echo "make lint   cargo fmt --check and cargo clippy -D warnings"

build:
	$(CARGO) build --bin chatdesk

run: build
	./target/debug/chatdesk serve

# nextest runs each test in its own process; doc tests need cargo test.
NEXTEST := $(shell $(CARGO) nextest --version >/dev/null 2>&1 && echo yes)

test: test-unit test-http-postgres test-contract

test-unit:
ifeq ($(NEXTEST),yes)
	$(CARGO) nextest run --workspace --all-features --no-fail-fast
else
	$(CARGO) test --workspace --all-features --no-fail-fast --lib --bins --tests
endif
	$(CARGO) test --workspace --all-features --doc

# The HTTP tests run on SQLite above; run them once more on PostgreSQL.
test-http-postgres:
ifeq ($(NEXTEST),yes)
	CHATDESK_TEST_BACKEND=postgres $(CARGO) nextest run --all-features --test api --no-fail-fast
else
	CHATDESK_TEST_BACKEND=postgres $(CARGO) test --all-features --test api --no-fail-fast
endif

# A program, not timed tests: it prints its figures and their ratios to
# baselines measured in the same run (see docs/benchmarks.md).
bench:
	$(CARGO) bench --bench bench

# schemathesis against the OpenAPI document (installed into target/ by the script).
test-contract:
	tests/contract/run.sh

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings

clean-data:
	rm -rf ./data
