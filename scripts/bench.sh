#!/bin/sh
# `make bench`: installs wrk (Debian) when missing, then runs the benchmark
# driver, which writes BENCHMARKS.md and prints a summary.
set -eu
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
    echo "installing wrk"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
# the driver runs the release applier and Plesk emulator next to itself
cargo build --quiet --release -p dyndns-applier -p dyndns-tests --bins
exec cargo run --quiet --release -p dyndns-tests --bin dyndns-bench
