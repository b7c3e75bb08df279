#!/usr/bin/env bash
# examples/c/service.c against a real Locator: `sluice serve` on a free
# port, the C service attached to it as demo-c, then the sluice tool calls
# its methods through the Locator, lists the registry, and closes the
# service's stdin: it detaches and exits 0. (make c-service-demo)
#
#   bash examples/c/service_demo.sh SLUICE_TOOL SERVICE_PROGRAM
set -euo pipefail

sluice=$1
service=$2
work=$(mktemp -d)
serve_pid=
svc_pid=
cleanup() {
  [ -n "$svc_pid" ] && kill "$svc_pid" 2>/dev/null || true
  [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$sluice" serve --port 0 >"$work/serve.log" 2>&1 &
serve_pid=$!
ep=
for _ in $(seq 1 200); do
  ep=$(sed -n 's/^sluice: locator listening on \([^ ]*\) .*/\1/p' "$work/serve.log")
  [ -n "$ep" ] && break
  sleep 0.05
done
[ -n "$ep" ] || { cat "$work/serve.log"; echo "service demo: the Locator did not start" >&2; exit 1; }
echo "\$ sluice serve --port 0    # listening on $ep"

mkfifo "$work/stdin"
"$service" --locator "$ep" --name demo-c <"$work/stdin" >"$work/stdout" &
svc_pid=$!
exec 3>"$work/stdin"
for _ in $(seq 1 200); do
  [ -s "$work/stdout" ] && break
  sleep 0.05
done
echo "\$ service --locator $ep --name demo-c"
cat "$work/stdout"

run() {
  local shown="\$ sluice" a
  for a in "$@"; do
    if [[ $a =~ ^[A-Za-z0-9_.,:/=-]+$ ]]; then shown+=" $a"; else shown+=" '$a'"; fi
  done
  echo "$shown"
  "$sluice" -l "$ep" "$@" || echo "(exit status $?)"
}
run call demo-c ping 1 '"two"' '[3]'
run call demo-c count 3
run call demo-c fail
run list

echo "(end of the service's stdin)"
exec 3>&-
wait "$svc_pid"
echo "service exited with status $?"
svc_pid=
