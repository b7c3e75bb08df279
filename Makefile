# sluice — the commands a user runs. Each target installs what it needs.
#   make demo   a C engine and worker talking through libsluice; a sluice engine
#               driving workers written in Rust, C, Python and Node; the
#               captured engine → worker streams of both dialects decoded; then
#               `sluice serve` with services in Rust, C, Python and Node
#               attached to it, each resolved and called through the Locator
#   make test   every test: Rust (unit, vectors, properties, sockets), the C
#               programs against the installed library, natively and under valgrind
#   make bench  sluice from Rust/C, Python and Node against plain sockets, ZeroMQ
#               and pure-Python/pure-JS channels: table, bench/RESULTS.md, chart
#               (mk/bench.mk; make bench-core: the core's cargo benches)
#   make fuzz   the fuzz targets, FUZZ_SECONDS each (default 60)
#   make soak   churn through Rust, C, Python and Node, DURATION s each (mk/reliability.mk)

CARGO ?= cargo
export CARGO_INCREMENTAL ?= 0
export CARGO_TERM_COLOR ?= never
FUZZ_SECONDS ?= 60

.PHONY: all demo demo-engine demo-dump demo-services test rust-test lint msrv fuzz toolchain clean

all: test

include mk/c.mk
# Binding suites add themselves to TESTS (and DEMOS) when present.
TESTS := rust-test c-test
DEMOS := c-demo
# Workers the demo engine drives (LABEL=COMMAND); binding makefiles add theirs.
DEMO_TARGET_DIR := $(if $(CARGO_TARGET_DIR),$(CARGO_TARGET_DIR),$(CURDIR)/target)
DEMO_WORKERS := rust=$(DEMO_TARGET_DIR)/release/examples/worker c=$(C_WORK)/worker
DEMO_DEPS := c-worker c-service
# Service programs the services demo attaches to `sluice serve` (LABEL=COMMAND).
DEMO_SERVICES := rust=$(DEMO_TARGET_DIR)/release/examples/service c=$(C_WORK)/service
-include mk/python.mk mk/node.mk
-include mk/bench.mk
ifneq ($(wildcard mk/node.mk),)
TESTS += node-test
endif
-include mk/reliability.mk

toolchain:
	@command -v $(CARGO) >/dev/null 2>&1 || { \
	  echo "cargo not found: installing the stable Rust toolchain with rustup"; \
	  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal; }

# (In this order: make runs a target's prerequisites one after the other.)
demo: toolchain $(DEMOS) demo-engine demo-dump demo-services

# The captured engine → worker streams of both dialects, decoded.
demo-dump: toolchain
	$(CARGO) build --locked --release -q -p sluice-cli --bin sluice
	@echo
	$(DEMO_TARGET_DIR)/release/sluice dump --dialect v1 --role worker core/examples/captures/v1_engine_to_worker.bin
	@echo
	$(DEMO_TARGET_DIR)/release/sluice dump --dialect v0 --role worker core/examples/captures/v0_engine_to_worker.bin

# `sluice serve` on a free port, one service program per language attached to
# it (cli/examples/services.rs), each called by name through the Locator.
demo-services: toolchain $(DEMO_DEPS)
	$(CARGO) build --locked --release -q -p sluice-cli --bin sluice --example services
	$(CARGO) build --locked --release -q -p sluice-core --example service
	@echo
	$(DEMO_TARGET_DIR)/release/examples/services --sluice $(DEMO_TARGET_DIR)/release/sluice $(DEMO_SERVICES)

# A sluice engine (core/examples/engine.rs) starts one worker per language
# with the runtime's arguments and drives sessions through each.
demo-engine: toolchain $(DEMO_DEPS)
	$(CARGO) build --locked --release -q -p sluice-core --example engine --example worker
	@echo
	$(DEMO_TARGET_DIR)/release/examples/engine $(DEMO_WORKERS)

test: $(TESTS)

rust-test: toolchain
	$(CARGO) test --locked --lib --tests --examples
	$(CARGO) test --locked --doc

# Formatting (rustfmt.toml) and clippy with warnings as errors, every crate.
lint: toolchain
	$(CARGO) fmt --all --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

# The workspace's declared rust-version (Cargo.toml) checked with that very
# compiler, installed with rustup if missing.
MSRV := $(shell sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
msrv: toolchain
	rustup toolchain list | grep -q '^$(MSRV)' || rustup toolchain install $(MSRV) --profile minimal
	$(CARGO) +$(MSRV) check --locked --workspace --all-targets

fuzz: toolchain
	bash fuzz/run.sh $(FUZZ_SECONDS)

clean:
	$(CARGO) clean
