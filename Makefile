# sluice — the commands a user runs. Each target installs what it needs.
#   make demo   a C engine and worker talking through libsluice, then the
#               captured engine → worker streams of both dialects decoded
#   make test   every test: Rust (unit, vectors, properties, sockets), the C
#               programs against the installed library, natively and under valgrind
#   make bench  channel throughput/latency against plain sockets, and the decoder
#   make fuzz   the fuzz targets, FUZZ_SECONDS each (default 60)
#   make soak   churn through Rust, C, Python and Node, DURATION s each (mk/reliability.mk)

CARGO ?= cargo
export CARGO_INCREMENTAL ?= 0
export CARGO_TERM_COLOR ?= never
FUZZ_SECONDS ?= 60

.PHONY: all demo test rust-test bench fuzz toolchain clean

all: test

include mk/c.mk
# Binding suites add themselves to TESTS (and DEMOS) when present.
TESTS := rust-test c-test
DEMOS := c-demo
-include mk/python.mk mk/node.mk
ifneq ($(wildcard mk/node.mk),)
TESTS += node-test
endif
-include mk/reliability.mk

toolchain:
	@command -v $(CARGO) >/dev/null 2>&1 || { \
	  echo "cargo not found: installing the stable Rust toolchain with rustup"; \
	  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal; }

demo: toolchain $(DEMOS)
	@echo
	$(CARGO) run --locked -q -p sluice-core --example dump -- --dialect v1 --role worker core/examples/captures/v1_engine_to_worker.bin
	@echo
	$(CARGO) run --locked -q -p sluice-core --example dump -- --dialect v0 --role worker core/examples/captures/v0_engine_to_worker.bin

test: $(TESTS)

rust-test: toolchain
	$(CARGO) test --locked --lib --tests --examples
	$(CARGO) test --locked --doc

bench: toolchain
	$(CARGO) bench --locked -p sluice-core --bench channel
	$(CARGO) bench --locked -p sluice-core --bench decode

fuzz: toolchain
	bash fuzz/run.sh $(FUZZ_SECONDS)

clean:
	$(CARGO) clean
