#!/usr/bin/env bash
# Fuzzes the sluice-core wire codec: builds the seed corpora, then runs each
# target for SECONDS seconds and prints executions and coverage per target.
#
#   fuzz/run.sh SECONDS [TARGET...]      (targets: decode headers roundtrip session)
#
# The summary ends with one parsable line per target, also written to
# fuzz/target/fuzz-summary.txt (docs/RELIABILITY.md quotes it):
#   fuzz-summary target=decode result=ok seconds=60 execs=123 exec_per_s=2 cov=1 ft=2 corpus=3 rss_mb=40 crashes=0
#
# Exits non-zero if any target crashes, panics, times out on one input or
# runs out of memory; the input is left in fuzz/artifacts/TARGET/.
#
# Environment:
#   SLUICE_FUZZ_TOLERATE  known findings whose check is skipped ("1,3", "all");
#                         see README.md. Default: none, every check is on.
#   FUZZ_SANITIZER        cargo fuzz --sanitizer (default: address).
#   FUZZ_ARGS             more libFuzzer flags, e.g. "-jobs=2 -workers=2".
#
# cargo-fuzz needs nightly-only flags (-Zsanitizer, -Cpasses=sancov); the
# machine has the stable toolchain only, so RUSTC_BOOTSTRAP=1 lets stable
# rustc accept them.
set -euo pipefail

usage() { echo "usage: $0 SECONDS [decode|headers|roundtrip|session ...]" >&2; exit 2; }
[[ $# -ge 1 && $1 =~ ^[0-9]+$ && $1 -gt 0 ]] || usage
secs=$1
shift
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(decode headers roundtrip session)

here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
export RUSTC_BOOTSTRAP=1
unset CARGO_TARGET_DIR
sanitizer=${FUZZ_SANITIZER:-address}
# The build stays in fuzz/target (gitignored), whatever the environment says.
opts=(--sanitizer "$sanitizer" --target-dir "$here/target")

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

echo "== seeds"
python3 seed.py
mkdir -p corpus artifacts "$here/target/fuzz-logs"
for t in "${targets[@]}"; do mkdir -p "corpus/$t"; done

echo "== build (${targets[*]}, sanitizer $sanitizer)"
for t in "${targets[@]}"; do
    cargo fuzz build "${opts[@]}" "$t"
done

declare -A status
failed=0
for t in "${targets[@]}"; do
    log="$here/target/fuzz-logs/$t.log"
    echo "== $t: ${secs}s (log: ${log#"$here"/})"
    set +e
    # shellcheck disable=SC2086  # FUZZ_ARGS is a list of flags
    cargo fuzz run "${opts[@]}" "$t" "corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        ${FUZZ_ARGS:-} >"$log" 2>&1
    rc=$?
    set -e
    if [[ $rc -ne 0 ]]; then
        failed=1
        status[$t]="FAILED (exit $rc)"
        echo "!! $t failed; the end of its log:"
        tail -n 80 "$log"
    else
        status[$t]="ok"
    fi
done

echo
echo "== summary (${secs}s per target)"
printf '%-10s %-18s %12s %9s %7s %7s %10s %8s\n' target result executions exec/s cov ft corpus rss
summary="$here/target/fuzz-summary.txt"
: >"$summary"
for t in "${targets[@]}"; do
    log="$here/target/fuzz-logs/$t.log"
    # libFuzzer's last status line: "#N DONE cov: X ft: Y corp: A/Bb ... rss: R"
    # (or the last "#N pulse/NEW ..." line when the run ended on a crash).
    line=$(grep -E '^#[0-9]+[[:space:]]+(DONE|NEW|REDUCE|pulse|INITED)' "$log" | tail -n 1 || true)
    execs=$(sed -nE 's/^#([0-9]+).*/\1/p' <<<"$line")
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$line")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$line")
    corp=$(sed -nE 's/.* corp: ([0-9]+)\/.*/\1/p' <<<"$line")
    rss=$(sed -nE 's/.* rss: ([0-9]+)Mb.*/\1/p' <<<"$line")
    eps=$(sed -nE 's/^stat::average_exec_per_sec:[[:space:]]*([0-9]+).*/\1/p' "$log" | tail -n 1)
    printf '%-10s %-18s %12s %9s %7s %7s %10s %8s\n' "$t" "${status[$t]}" \
        "${execs:-?}" "${eps:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "${rss:+${rss}Mb}"
    crashes=0
    [[ ${status[$t]} == ok ]] || crashes=1
    printf 'fuzz-summary target=%s result=%s seconds=%s execs=%s exec_per_s=%s cov=%s ft=%s corpus=%s rss_mb=%s crashes=%s\n' \
        "$t" "$([[ $crashes == 0 ]] && echo ok || echo failed)" "$secs" "${execs:-0}" "${eps:-0}" "${cov:-0}" \
        "${ft:-0}" "${corp:-0}" "${rss:-0}" "$crashes" >>"$summary"
done
echo
cat "$summary"
exit $failed
