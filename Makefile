# chatdesk — the README's commands. `make run` and `make test` are all a
# newcomer needs; everything they depend on is set up here.

SHELL := /bin/bash
CARGO ?= cargo
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
export TEST_DATABASE_URL

.PHONY: run build test test-unit test-http-postgres test-contract test-openapi-client test-browser browser-deps bench bench-conversations bench-tickets chaos lint fmt clippy clean-data help

help:
	@echo "make run    build, migrate the embedded SQLite database, seed the demo into it when empty, serve the API on 127.0.0.1:8080 and the demo page on http://localhost:8081/"
	@echo "make test   every test (PostgreSQL ones against TEST_DATABASE_URL; CI=true makes a missing PostgreSQL fail)"
	@echo "make bench  release-build and run every benchmark program (about 20 minutes; writes docs/benchmarks.md's figures)"
	@echo "make bench-conversations  the Conversations list at a million sessions on PostgreSQL (TEST_DATABASE_URL; about 11 minutes)"
	@echo "make bench-tickets  ticket creation while SMTP is slow, and a backlog's delivery once it is back (SQLite and PostgreSQL; about 3 minutes)"
	@echo "make chaos  faults: SMTP down and SIGKILL during 1,000 tickets, PostgreSQL restarted under traffic, two replicas (own PostgreSQL cluster; about 4 minutes)"
	@echo "make test-browser  the chat widget in headless Chromium (Debian's chromium, installed when missing; screenshots in target/browser-screenshots/)"
	@echo "make lint   cargo fmt --check and cargo clippy -D warnings"

# libpq is built with TLS (pq-sys `bundled`), which needs OpenSSL's headers
# and pkg-config: installed from Debian when missing, else nothing is done.
# Installs those of the Debian packages $(1) that are missing (through sudo
# unless root); elsewhere says $(2).
define debian_install
@if command -v dpkg-query >/dev/null 2>&1; then \
  missing=$$(for p in $(1); do \
    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
  if [ -n "$$missing" ]; then \
    sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
    echo "installing $$missing from Debian"; \
    $$sudo apt-get update -qq && \
    $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
  fi; \
else \
  echo "$(2)"; \
fi
endef

SYSTEM_PACKAGES := libssl-dev pkg-config
.PHONY: system-deps
system-deps:
	$(call debian_install,$(SYSTEM_PACKAGES),not Debian: make sure OpenSSL's headers ($(SYSTEM_PACKAGES)) are installed)

build: system-deps
	$(CARGO) build --bin chatdesk

run: build
	./target/debug/chatdesk serve --demo

# nextest runs each test in its own process; doc tests need cargo test.
NEXTEST := $(shell $(CARGO) nextest --version >/dev/null 2>&1 && echo yes)

test: test-unit test-http-postgres test-contract test-openapi-client test-browser

test-unit: system-deps
ifeq ($(NEXTEST),yes)
	$(CARGO) nextest run --workspace --all-features --no-fail-fast
else
	$(CARGO) test --workspace --all-features --no-fail-fast --lib --bins --tests
endif
	$(CARGO) test --workspace --all-features --doc

# The HTTP tests run on SQLite above; run them once more on PostgreSQL.
test-http-postgres: system-deps
ifeq ($(NEXTEST),yes)
	CHATDESK_TEST_BACKEND=postgres $(CARGO) nextest run --all-features --test api --no-fail-fast
else
	CHATDESK_TEST_BACKEND=postgres $(CARGO) test --all-features --test api --no-fail-fast
endif

# Programs, not timed tests: each prints its figures and their ratios to
# baselines measured in the same run. `make bench` runs all three (the
# SDK/visitor/dashboard/store/matcher program, then the two below), prints
# each one's duration and writes the generated region at the top of
# docs/benchmarks.md (benches/run-all.sh; BENCH_PROGRAMS="bench" for one).
# The HTTP loads come from wrk (Debian's, installed here when missing).
BENCH_PACKAGES := wrk
.PHONY: bench-deps
bench-deps:
	$(call debian_install,$(BENCH_PACKAGES),no wrk and not Debian: the bench drives HTTP with its own client threads)

bench: system-deps bench-deps
	CARGO="$(CARGO)" benches/run-all.sh

# The Conversations list at a million sessions: loads its own schema on
# TEST_DATABASE_URL, measures HTTP against the store's SQL, drops the
# schema (see docs/benchmarks.md; BENCH_SESSIONS=20000 for a quick run).
bench-conversations: system-deps
	$(CARGO) bench --bench conversations

# Support tickets: creation latency while the SMTP server takes 2 s per
# message against while it is fast, and the time a backlog left by an
# SMTP outage takes to arrive once it is back (see docs/benchmarks.md;
# BENCH_TICKETS=20 BENCH_BACKLOG=30 for a quick run).
bench-tickets: system-deps
	$(CARGO) bench --bench tickets

# Faults, each scenario checked and ending PASS or FAIL (non-zero exit on
# any FAIL): tickets while SMTP is down and chatdesk is killed, PostgreSQL
# stopped and started under traffic, two replicas on one database. Runs
# its own throw-away PostgreSQL cluster (never the shared one); about 4
# minutes (see docs/benchmarks.md; CHAOS_TICKETS=100 CHAOS_SMTP_OUTAGE_SECONDS=10
# CHAOS_CREATE_SECONDS=15 for a quick run).
chaos: system-deps
	$(CARGO) bench --bench chaos

# schemathesis against the OpenAPI document on a seeded server, as a MEMBER
# and as the owner with the SDK's key and session (installed into target/
# by the script; CONTRACT_EXAMPLES=25 cases per operation, about 2 minutes).
test-contract:
	tests/contract/run.sh

# Redocly's linter over the OpenAPI document, then a client generated by
# openapi-typescript type-checked with tsc --strict (tools pinned in
# tests/openapi-client/package-lock.json, installed by npm ci into target/).
test-openapi-client:
	tests/openapi-client/run.sh

# The widget in headless Chromium against the debug binary, a real SMTP
# server and a fake model (playwright-core pinned in
# tests/browser/package-lock.json, installed by npm ci into target/;
# screenshots in target/browser-screenshots/). Debian's chromium is
# installed when missing; nothing downloads a browser.
BROWSER_PACKAGES := chromium fonts-dejavu-core
browser-deps:
ifeq ($(wildcard $(CHROMIUM)),)
	$(call debian_install,$(BROWSER_PACKAGES),not Debian: install Chromium and set CHROMIUM to its path)
endif

test-browser: system-deps browser-deps
	$(CARGO) build --bin chatdesk
	tests/browser/run.sh

fmt:
	$(CARGO) fmt --all

lint: system-deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings

clean-data:
	rm -rf ./data
