# Reliability: the fault matrix, the hostile peers and the soak, with the
# figures docs/RELIABILITY.md quotes. Included by the top-level Makefile
# (after mk/c.mk and the binding files, whose targets the soak uses).
#
#   make faults              the fault-injection matrix (core/tests/faults.rs,
#                            core/tests/faults/*.rs) and the hostile peers
#                            (core/tests/hostile.rs), with their summary (cases
#                            passed per role) in target/reliability/summary.txt
#   make soak DURATION=60    churn connections, sessions and reconnects through
#                            Rust, C, Python and Node (DURATION seconds each,
#                            SOAK_LANGS to choose), sampling RSS and open fds;
#                            each program fails if either drifts past its
#                            bound after the warm-up. Summary lines in
#                            target/soak/summary.txt, samples in target/soak/LANG.log
#   make hostile             hostile peers against a real `sluice serve` (garbage,
#                            declared 4 GiB strings, nesting, oversized frames, nil
#                            floods, streams never closed, a late reader of 1,000,000
#                            pipelined calls, publish floods) with its RSS sampled
#                            from /proc and a well-behaved client's p99 beside each
#                            (tests/hostile/serve.py), and the services the C,
#                            Python and Node service programs host; `make
#                            hostile-quick` is the short form CI runs
#   make fuzz                (Makefile) the fuzz targets; summary in
#                            fuzz/target/fuzz-summary.txt

DURATION ?= 60
SOAK_LANGS ?= rust c python node
REL_TARGET_DIR := $(if $(CARGO_TARGET_DIR),$(CARGO_TARGET_DIR),$(CURDIR)/target)
SOAK_OUT := $(REL_TARGET_DIR)/soak
REL_OUT := $(REL_TARGET_DIR)/reliability

.PHONY: faults hostile hostile-quick soak soak-rust soak-c soak-python soak-node

faults: toolchain
	@mkdir -p $(REL_OUT)
	$(CARGO) test --locked -p sluice-core --test faults --test hostile -- --nocapture 2>&1 | tee $(REL_OUT)/tests.log
	@{ echo "fault-matrix cases passed: $$(grep -c '^fault-matrix: .*: passed' $(REL_OUT)/tests.log)"; \
	   for r in V1 V0 Plain Session+resume Worker/Engine 'Service call' 'Locator resolve'; do \
	     echo "  $$r: $$(grep -c "^fault-matrix: $$r .*: passed" $(REL_OUT)/tests.log)"; done; \
	   grep '^hostile: ' $(REL_OUT)/tests.log; } | tee $(REL_OUT)/summary.txt

HOSTILE_ARGS ?=
# The services hosted by the C, Python and Node service programs are attacked
# too (through serve, which they attach to).
HOSTILE_PROGRAMS := c=$(C_WORK)/service "python=$(PY) $(CURDIR)/bindings/python/examples/service.py" \
	"node=$(NODE) $(NODE_DIR)/examples/service.js"
hostile hostile-quick: toolchain py-install node-build c-service
	$(CARGO) build --locked -p sluice-cli
	$(PY) tests/hostile/serve.py --sluice $(REL_TARGET_DIR)/debug/sluice $(if $(filter hostile,$@),--full) $(HOSTILE_ARGS) \
	  $(HOSTILE_PROGRAMS)

soak: $(addprefix soak-,$(SOAK_LANGS))
	@echo
	@cat $(SOAK_OUT)/*.summary | tee $(SOAK_OUT)/summary.txt

# Each run writes its samples to LANG.log and its last line to LANG.summary;
# a failed run shows the end of its log.
define soak_run
	@mkdir -p $(SOAK_OUT)
	@echo "== soak $(1): $(DURATION) s"
	@if $(2) >$(SOAK_OUT)/$(1).log 2>&1; then grep '^soak-summary' $(SOAK_OUT)/$(1).log | tee $(SOAK_OUT)/$(1).summary; \
	 else tail -n 30 $(SOAK_OUT)/$(1).log; exit 1; fi
endef

soak-rust: toolchain
	$(CARGO) build --locked --release -p sluice-core --example soak
	$(call soak_run,rust,$(REL_TARGET_DIR)/release/examples/soak --seconds $(DURATION))

soak-c: PREFIX = $(C_TEST_PREFIX)
soak-c: DESTDIR =
soak-c: install
	@mkdir -p $(SOAK_OUT)
	PKG_CONFIG_PATH=$(C_TEST_PREFIX)/lib/pkgconfig; export PKG_CONFIG_PATH; \
	  $${CC:-cc} -std=c11 -Wall -Wextra -Werror -O2 -o $(SOAK_OUT)/soak-c tests/soak/soak.c \
	    $$(pkg-config --cflags sluice) $$(pkg-config --libs sluice) -lpthread -Wl,-rpath,$(C_TEST_PREFIX)/lib
	$(call soak_run,c,$(SOAK_OUT)/soak-c $(DURATION))

soak-python: py-install
	$(call soak_run,python,$(PY) tests/soak/soak.py $(DURATION))

soak-node: node-build
	$(call soak_run,node,$(NODE) --expose-gc tests/soak/soak.js $(DURATION))
