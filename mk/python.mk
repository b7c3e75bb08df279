# The Python binding: the `sluice` package in bindings/python (pyo3, built by
# maturin). Included by the top-level Makefile, which provides `toolchain`
# and runs the targets in TESTS from `make test`.
#
#   make py-venv     the virtualenv .venv (maturin, pytest, msgpack), created once
#   make py-install  pip install ./bindings/python into .venv (release build in
#                    the workspace target dir; cargo rebuilds only what changed)
#   make py-test     the Python tests (bindings/python/tests) against the installed package
#   make py-bench    bindings/python/bench.py: receive rates of sluice against the
#                    pure-Python channel (PY_BENCH_ARGS, e.g. --quick)

PYTHON ?= python3
PY_VENV := $(CURDIR)/.venv
PY := $(PY_VENV)/bin/python
PY_STAMP := $(PY_VENV)/.sluice-py-tools
PY_BENCH_ARGS ?=
# maturin (the venv's) and cargo, also when `toolchain` has just installed it.
PY_PATH := $(PY_VENV)/bin:$(HOME)/.cargo/bin:$(PATH)

TESTS += py-test
# The demo engine starts the example echo worker with the runtime's arguments.
DEMO_DEPS += py-install
DEMO_WORKERS += "python=$(PY) $(CURDIR)/bindings/python/examples/worker.py"
# The services demo attaches the example service program to `sluice serve`.
DEMO_SERVICES += "python=$(PY) $(CURDIR)/bindings/python/examples/service.py"

.PHONY: py-venv py-install py-test py-bench

$(PY_STAMP):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 9))' || \
	  { echo "the Python binding needs Python 3.9 or newer: set PYTHON=..."; exit 1; }
	$(PYTHON) -m venv $(PY_VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet maturin pytest msgpack
	@touch $@

py-venv: $(PY_STAMP)

# --no-build-isolation: build with the venv's maturin instead of fetching one
# per install (a plain `pip install ./bindings/python` works too).
py-install: toolchain py-venv
	PATH="$(PY_PATH)" $(PY) -m pip install --quiet --no-build-isolation --force-reinstall --no-deps ./bindings/python

py-test: py-install
	cd bindings/python && $(PY) -m pytest -q tests

py-bench: py-install
	$(PY) bindings/python/bench.py $(PY_BENCH_ARGS)
