# The side-by-side benchmark (bench/): sluice from Rust/C, Python and Node
# against plain sockets, ZeroMQ and the pure-Python and pure-JS channels.
# Included by the top-level Makefile after mk/python.mk and mk/node.mk.
#
#   make bench        every contender, every workload, over TCP and Unix, 5 rounds:
#                     prints the table and writes bench/results.json, bench/chart.png
#                     and bench/RESULTS.md (BENCH_ARGS: e.g. --rounds 3, --only ...)
#   make bench-quick  the sluice-bench tests (streams and peers over real sockets),
#                     then one small round into target/bench-quick; fails only if a
#                     contender produced no figure (CI)
#   make bench-core   the cargo benches of sluice-core (channel against plain
#                     sockets, the decoder against rmpv)
#   make bench-deps   what the benchmark needs: the Python package and pyzmq +
#                     matplotlib in .venv, the Node addon, sluice-bench, zmq-native

BENCH_ARGS ?=
BENCH_TARGET_DIR := $(if $(CARGO_TARGET_DIR),$(CARGO_TARGET_DIR),$(CURDIR)/target)
BENCH_PEER := $(BENCH_TARGET_DIR)/release/sluice-bench
BENCH_ZMQ := $(BENCH_TARGET_DIR)/bench/zmq-native
BENCH_STAMP := $(PY_VENV)/.sluice-bench-tools
BENCH_RUN = $(PY) bench/run.py --peer $(BENCH_PEER) --zmq-native $(BENCH_ZMQ) --node $(NODE)

.PHONY: bench bench-quick bench-core bench-deps

$(BENCH_STAMP): $(PY_STAMP)
	$(PY) -m pip install --quiet pyzmq matplotlib msgpack
	@touch $@

# zmq-native is built against the libzmq inside pyzmq's wheel (it ships no
# header: bench/zmq_native.c declares what it uses); without one it is
# skipped and the native ZeroMQ column stays empty.
bench-deps: toolchain py-install node-build $(BENCH_STAMP)
	$(CARGO) build --locked --release -p sluice-bench
	@mkdir -p $(dir $(BENCH_ZMQ))
	@lib=$$($(PY) -c 'import glob, os, zmq; d = os.path.dirname(os.path.dirname(zmq.__file__)); print((glob.glob(os.path.join(d, "pyzmq.libs", "libzmq*.so*")) + [""])[0])'); \
	if [ -n "$$lib" ]; then \
	  echo "building zmq-native against $$lib"; \
	  $${CC:-cc} -std=c11 -O2 -Wall -Wextra -Werror -o $(BENCH_ZMQ) bench/zmq_native.c "$$lib" -lpthread -Wl,-rpath,"$$(dirname "$$lib")"; \
	else \
	  echo "pyzmq bundles no libzmq here: no native ZeroMQ contender"; rm -f $(BENCH_ZMQ); \
	fi

bench: bench-deps
	$(BENCH_RUN) $(BENCH_ARGS)

bench-quick: bench-deps
	$(CARGO) test --locked --release -p sluice-bench
	$(BENCH_RUN) --quick $(BENCH_ARGS)

bench-core: toolchain
	$(CARGO) bench --locked -p sluice-core --bench channel
	$(CARGO) bench --locked -p sluice-core --bench decode
