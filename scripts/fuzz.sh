#!/bin/sh
# Runs the cargo-fuzz targets under fuzz/ one after another (see FUZZING.md).
#
#   FUZZ_SECONDS  longest run per target, in seconds (default 60)
#   FUZZ_RUNS     stop a target after this many executions (default: no limit)
#   FUZZ_TARGETS  space-separated subset (default: every target)
#   FUZZ_SANITIZER  none (default) or address, memory, thread, leak
#   FUZZ_SUMMARY  where the summary table goes (default fuzz/logs/summary.md)
#
# Targets are built with debug assertions, so integer overflow panics.
# AddressSanitizer is off by default: the code under test is safe Rust, and
# without it the targets run about twice as fast (see FUZZING.md).
#
# Installs cargo-fuzz when missing. The growing
# corpus is kept in fuzz/corpus/<target>/ (seeded from fuzz/seeds/<target>/),
# logs in fuzz/logs/, crashing inputs in fuzz/artifacts/<target>/. A summary
# table (executions, coverage, corpus, time) is printed at the end and
# written to fuzz/logs/summary.md. Exits non-zero when a target fails.
set -eu
cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_RUNS=${FUZZ_RUNS:--1}
FUZZ_SANITIZER=${FUZZ_SANITIZER:-none}
flags="--debug-assertions --sanitizer $FUZZ_SANITIZER"

# cargo-fuzz needs nightly compiler flags: nightly when the machine has it,
# else the default (stable) toolchain with RUSTC_BOOTSTRAP=1 (machines that reach only
# the package registries cannot fetch another toolchain).
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    toolchain=+nightly
else
    toolchain=""
    RUSTC_BOOTSTRAP=1
    export RUSTC_BOOTSTRAP
    echo "no nightly toolchain: building the fuzz targets with the default toolchain and RUSTC_BOOTSTRAP=1"
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz (a few minutes, once)"
    cargo install cargo-fuzz --locked
fi

targets=${FUZZ_TARGETS:-$(cargo $toolchain fuzz list)}

# Longest input per target: a little above what the real reader accepts.
max_len() {
    case "$1" in
        request) echo 16500 ;;      # 8 KiB URL + 8 KiB body
        config) echo 16384 ;;
        queue_entry) echo 4400 ;;   # name + 4 KiB entry
        zone_listing) echo 8192 ;;
        basic_auth) echo 1100 ;;    # 1 KiB header limit
        *) echo 1024 ;;
    esac
}

mkdir -p fuzz/logs
echo "building the fuzz targets (${toolchain:-default toolchain}, sanitizer: $FUZZ_SANITIZER)"
# shellcheck disable=SC2086 # $flags is several words
nice -n 10 cargo $toolchain fuzz build $flags

summary=${FUZZ_SUMMARY:-fuzz/logs/summary.md}
{
    echo "| target | executions | exec/s | cov | ft | corpus | peak RSS | time | result |"
    echo "|---|---:|---:|---:|---:|---|---:|---:|---|"
} >"$summary"
failed=""
for t in $targets; do
    mkdir -p "fuzz/corpus/$t"
    log="fuzz/logs/$t.log"
    dict=""
    [ -f "fuzz/dicts/$t.dict" ] && dict="-dict=fuzz/dicts/$t.dict"
    echo "fuzzing $t for up to ${FUZZ_SECONDS}s (runs: $FUZZ_RUNS), log in $log"
    start=$(date +%s)
    status=ok
    # shellcheck disable=SC2086 # $flags and $dict are words or nothing
    nice -n 10 cargo $toolchain fuzz run $flags "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
        -max_total_time="$FUZZ_SECONDS" -runs="$FUZZ_RUNS" \
        -max_len="$(max_len "$t")" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 $dict >"$log" 2>&1 || status=FAILED
    secs=$(( $(date +%s) - start ))
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -n 1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
    cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    corp=$(echo "$last" | sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p')
    echo "| $t | ${runs:-?} | ${speed:-?} | ${cov:-?} | ${ft:-?} | ${corp:-?} | ${rss:-?} MB | ${secs}s | $status |" >>"$summary"
    if [ "$status" != ok ]; then
        failed="$failed $t"
        grep -E 'SUMMARY|panicked|Test unit written|ERROR' "$log" | head -n 5 || true
    fi
done
echo
echo "machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1); $(rustc $toolchain --version)"
cat "$summary"
if [ -n "$failed" ]; then
    echo "failed:$failed (inputs in fuzz/artifacts/, logs in fuzz/logs/)" >&2
    exit 1
fi
