#!/usr/bin/env bash
# Builds the C tests against an installed libsluice (header, libraries and
# sluice.pc under PREFIX, found with pkg-config), runs them, then runs them
# again under valgrind.
#
#   bash tests/c/run.sh PREFIX BUILD_DIR
#
# Environment: CC, CXX (default cc, c++); SLUICE_TEST_VALGRIND=0 skips the
# valgrind pass; SLUICE_TEST_CYCLES overrides the connect/close cycle count.
set -uo pipefail

prefix=$(cd "$1" && pwd)
out=$2
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
CC=${CC:-cc}
CXX=${CXX:-c++}
cflags="-std=c11 -Wall -Wextra -Werror -O1 -g $(pkg-config --cflags sluice)"
libs="$(pkg-config --libs sluice) -lpthread -Wl,-rpath,$prefix/lib"

passed=0
failed=0
failures=()

note() { printf '%s\n' "$*"; }

build() { # name command...
  local name=$1
  shift
  if "$@"; then return 0; fi
  note "FAIL build $name"
  failed=$((failed + 1))
  failures+=("build $name")
  return 1
}

note "== building the C tests against $prefix (pkg-config sluice $(pkg-config --modversion sluice))"
programs=()
for src in "$here"/test_*.c; do
  name=$(basename "$src" .c)
  [ "$name" = test_static ] && continue
  build "$name" $CC $cflags -o "$out/$name" "$src" $libs && programs+=("$name")
done
# The same library linked statically: libsluice.a and its Libs.private.
build test_static $CC $cflags -o "$out/test_static" "$here/test_static.c" \
  "$prefix/lib/libsluice.a" $(pkg-config --static --libs-only-l sluice | sed 's/-lsluice//') -lpthread &&
  programs+=(test_static)
# examples/c/worker.c, which test_example_worker starts as ./example_worker.
build example_worker $CC $cflags -o "$out/example_worker" "$here/../../examples/c/worker.c" $libs
# examples/c/service.c, which test_example_service starts as ./example_service.
build example_service $CC $cflags -o "$out/example_service" "$here/../../examples/c/service.c" $libs

# The header compiles as C++ (extern "C" guards), warnings as errors.
build test_cxx $CXX -std=c++11 -Wall -Wextra -Werror -O1 $(pkg-config --cflags sluice) -o "$out/test_cxx" \
  "$here/test_cxx.cpp" $libs && programs+=(test_cxx)

# The README's C blocks (the quick start, the services example) compile as
# written, as one program (not run: they need an engine and a Locator).
# The same for docs/c.md (the worker and the services example).
for doc in README docs/c; do
  name=$(basename "$doc")_c
  src="$out/$name.c"
  sed -n '/^```c$/,/^```$/{/^```/!p}' "$here/../../$doc.md" >"$src"
  if [ -s "$src" ]; then
    build "$name" $CC $cflags -o "$out/$name" "$src" $libs
  fi
done

run_all() { # label, prefix command...
  local label=$1
  shift
  for p in "${programs[@]}"; do
    note "== $label: $p"
    local start=$SECONDS
    if (cd "$out" && "$@" "./$p"); then
      passed=$((passed + 1))
      note "   $p passed ($((SECONDS - start)) s)"
    else
      failed=$((failed + 1))
      failures+=("$label $p")
      note "FAIL $label: $p"
    fi
  done
}

run_all native env SLUICE_TEST_VALGRIND=0

if [ "${SLUICE_TEST_VALGRIND:-1}" != 0 ]; then
  if ! command -v valgrind >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      note "== installing valgrind"
      apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
    fi
  fi
  if command -v valgrind >/dev/null 2>&1; then
    # Slower by far: longer waits, fewer connect/close cycles (the full
    # count ran natively above).
    run_all valgrind env SLUICE_TEST_VALGRIND=1 SLUICE_TEST_TIMEOUT_MS=120000 \
      valgrind --quiet --error-exitcode=1 --errors-for-leak-kinds=definite --leak-check=full \
      --show-leak-kinds=definite --suppressions="$here/valgrind.supp"
  else
    note "valgrind is not available: the valgrind pass is skipped"
    if [ "${CI:-}" = true ]; then
      failed=$((failed + 1))
      failures+=("valgrind missing")
    fi
  fi
fi

for f in "${failures[@]}"; do note "failed: $f"; done
note "c-test: $passed passed, $failed failed"
[ "$failed" = 0 ]
