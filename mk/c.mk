# The C library: libsluice, include/sluice.h, the C tests and the C demo.
# Included by the top-level Makefile, which provides `toolchain`.
#
#   make c-lib         release build of libsluice.so (soname libsluice.so.0) and libsluice.a
#   make header        regenerate include/sluice.h with the pinned cbindgen
#   make header-check  fail if include/sluice.h is not what cbindgen generates (CI)
#   make install       header, libraries and sluice.pc under $(DESTDIR)$(PREFIX),
#                      and the protocol spec the header cites (docs/PROTOCOL.md)
#                      as $(DOCDIR)/PROTOCOL.md
#   make c-test        install into a temporary prefix, build the C tests against it
#                      with pkg-config, run them, then run them under valgrind
#   make c-demo        build examples/c/echo.c against the installed library and run it
#                      (and build the example worker, as c-worker does)
#   make c-worker      build examples/c/worker.c (a worker an engine starts with the
#                      runtime's argv) into $(C_WORK)/worker
#   make c-service     build examples/c/service.c (a service attached to a Locator:
#                      service --locator HOST:PORT --name NAME) into $(C_WORK)/service
#   make c-service-demo  run it alone against `sluice serve`, called with the sluice tool
#                      (make demo attaches it with the other languages' services)

# Wherever this file is included, it does not change the default goal.
C_MK_SAVED_GOAL := $(.DEFAULT_GOAL)

CARGO ?= cargo
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
DOCDIR ?= $(PREFIX)/share/doc/sluice
INSTALL ?= install

# cbindgen is pinned: the header must not change with the tool's version.
CBINDGEN_VERSION := 0.29.0
C_TOOLS := $(CURDIR)/.tools
CBINDGEN := $(C_TOOLS)/bin/cbindgen

# The version comes from the workspace Cargo.toml ([workspace.package]).
SLUICE_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' $(CURDIR)/Cargo.toml | head -n 1)
SLUICE_MAJOR := $(word 1,$(subst ., ,$(SLUICE_VERSION)))

C_TARGET_DIR := $(if $(CARGO_TARGET_DIR),$(CARGO_TARGET_DIR),$(CURDIR)/target)
C_LIB_OUT := $(C_TARGET_DIR)/release
# What a program linked against libsluice.a also needs (rustc's
# --print native-static-libs on Linux).
C_STATIC_LIBS := -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc

C_WORK := $(C_TARGET_DIR)/c
C_TEST_PREFIX := $(C_WORK)/prefix

.PHONY: c-lib header header-check cbindgen install c-test c-demo c-worker c-service c-service-demo c-clean

c-lib: toolchain
	$(CARGO) build --locked --release -p sluice-ffi

cbindgen: toolchain
	@if [ "$$($(CBINDGEN) --version 2>/dev/null)" != "cbindgen $(CBINDGEN_VERSION)" ]; then \
	  echo "installing cbindgen $(CBINDGEN_VERSION) into $(C_TOOLS)"; \
	  $(CARGO) install --locked --quiet --version $(CBINDGEN_VERSION) --root $(C_TOOLS) cbindgen; \
	fi

header: cbindgen
	cd ffi && $(CBINDGEN) --quiet --config cbindgen.toml --crate sluice-ffi --output ../include/sluice.h .

header-check: cbindgen
	@mkdir -p $(C_WORK)
	cd ffi && $(CBINDGEN) --quiet --config cbindgen.toml --crate sluice-ffi --output $(C_WORK)/sluice.h .
	@if diff -u include/sluice.h $(C_WORK)/sluice.h; then \
	  echo "include/sluice.h is up to date"; \
	else \
	  echo "include/sluice.h differs from the generated header: run 'make header' and commit it"; exit 1; \
	fi

install: c-lib
	$(INSTALL) -d $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(DOCDIR)
	$(INSTALL) -m 644 include/sluice.h $(DESTDIR)$(INCLUDEDIR)/sluice.h
	$(INSTALL) -m 644 docs/PROTOCOL.md $(DESTDIR)$(DOCDIR)/PROTOCOL.md
	$(INSTALL) -m 755 $(C_LIB_OUT)/libsluice.so $(DESTDIR)$(LIBDIR)/libsluice.so.$(SLUICE_VERSION)
	ln -sf libsluice.so.$(SLUICE_VERSION) $(DESTDIR)$(LIBDIR)/libsluice.so.$(SLUICE_MAJOR)
	ln -sf libsluice.so.$(SLUICE_MAJOR) $(DESTDIR)$(LIBDIR)/libsluice.so
	$(INSTALL) -m 644 $(C_LIB_OUT)/libsluice.a $(DESTDIR)$(LIBDIR)/libsluice.a
	printf '%s\n' \
	  'prefix=$(PREFIX)' \
	  'libdir=$(LIBDIR)' \
	  'includedir=$(INCLUDEDIR)' \
	  '' \
	  'Name: sluice' \
	  'Description: Native channel for the Cocaine RPC protocol' \
	  'Version: $(SLUICE_VERSION)' \
	  'Libs: -L$${libdir} -lsluice' \
	  'Libs.private: $(C_STATIC_LIBS)' \
	  'Cflags: -I$${includedir}' \
	  > $(DESTDIR)$(PKGCONFIGDIR)/sluice.pc
	chmod 644 $(DESTDIR)$(PKGCONFIGDIR)/sluice.pc

# The tests and the demo build against the installed files only, as a user
# would: `install` runs first with PREFIX set to a temporary prefix.
c-test c-demo c-worker c-service: PREFIX = $(C_TEST_PREFIX)
c-test c-demo c-worker c-service: DESTDIR =

c-test: install
	bash tests/c/run.sh $(C_TEST_PREFIX) $(C_WORK)/tests

c-demo: install c-worker
	mkdir -p $(C_WORK)
	PKG_CONFIG_PATH=$(C_TEST_PREFIX)/lib/pkgconfig; export PKG_CONFIG_PATH; \
	  $${CC:-cc} -std=c11 -Wall -Wextra -Werror -O2 -o $(C_WORK)/echo examples/c/echo.c \
	    $$(pkg-config --cflags sluice) $$(pkg-config --libs sluice) -lpthread -Wl,-rpath,$(C_TEST_PREFIX)/lib
	$(C_WORK)/echo

c-worker: install
	mkdir -p $(C_WORK)
	PKG_CONFIG_PATH=$(C_TEST_PREFIX)/lib/pkgconfig; export PKG_CONFIG_PATH; \
	  $${CC:-cc} -std=c11 -Wall -Wextra -Werror -O2 -o $(C_WORK)/worker examples/c/worker.c \
	    $$(pkg-config --cflags sluice) $$(pkg-config --libs sluice) -lpthread -Wl,-rpath,$(C_TEST_PREFIX)/lib
	@echo "built $(C_WORK)/worker"

c-service: install
	mkdir -p $(C_WORK)
	PKG_CONFIG_PATH=$(C_TEST_PREFIX)/lib/pkgconfig; export PKG_CONFIG_PATH; \
	  $${CC:-cc} -std=c11 -Wall -Wextra -Werror -O2 -o $(C_WORK)/service examples/c/service.c \
	    $$(pkg-config --cflags sluice) $$(pkg-config --libs sluice) -lpthread -Wl,-rpath,$(C_TEST_PREFIX)/lib
	@echo "built $(C_WORK)/service"

c-service-demo: c-service
	$(CARGO) build --locked --release -q -p sluice-cli
	bash examples/c/service_demo.sh $(C_TARGET_DIR)/release/sluice $(C_WORK)/service

c-clean:
	rm -rf $(C_WORK)

.DEFAULT_GOAL := $(C_MK_SAVED_GOAL)
