# The Node.js addon (bindings/node): the package `sluice`, built from source
# with napi-rs. Included by the top-level Makefile (after its default target).
#
#   make node-build   npm ci in bindings/node (the pinned @napi-rs/cli and
#                     msgpackr from package-lock.json), then the release addon
#                     (sluice.node) and index.d.ts
#   make node-test    node-build, then the Node tests (node --test)
#   make node-bench   node-build, then bench.js: 64-byte and 64 KiB chunks
#                     reaching on_chunk, sluice against net.Socket + msgpackr
#
# Needs only node >= 20 with npm and the Rust toolchain. The addon is built
# in the workspace's target directory (CARGO_TARGET_DIR when set).

NPM ?= npm
NODE ?= node
NODE_DIR := $(CURDIR)/bindings/node
NODE_TARGET_DIR := $(if $(CARGO_TARGET_DIR),$(CARGO_TARGET_DIR),$(CURDIR)/target)

.PHONY: node-build node-test node-bench node-clean

# npm ci installs the exact tools of package-lock.json without running
# install scripts (the package's own would build the addon a first time;
# msgpackr's optional accelerator is not wanted for the pure-JS baseline);
# then one release build writes sluice.node and index.d.ts.
# make demo-engine drives the example worker (examples/worker.js).
DEMO_DEPS += node-build
DEMO_WORKERS += "node=$(NODE) $(NODE_DIR)/examples/worker.js"
# make demo-services attaches the example service program (examples/service.js).
DEMO_SERVICES += "node=$(NODE) $(NODE_DIR)/examples/service.js"

node-build: toolchain
	@command -v $(NODE) >/dev/null 2>&1 || { echo "node (>= 20) and npm are needed for the Node binding"; exit 1; }
	cd $(NODE_DIR) && $(NPM) ci --no-audit --no-fund --ignore-scripts
	cd $(NODE_DIR) && CARGO_TARGET_DIR=$(NODE_TARGET_DIR) $(NPM) run --silent build

node-test: node-build
	cd $(NODE_DIR) && $(NPM) test

node-bench: node-build
	cd $(NODE_DIR) && $(NODE) bench.js

node-clean:
	rm -rf $(NODE_DIR)/node_modules $(NODE_DIR)/sluice.node
