#!/bin/sh
# Runs the handler on $LISTEN (default 127.0.0.1:3000) with var/ mounted, and
# the applier beside it (pass --dry-run to only print Plesk commands). Ctrl-C
# stops both.
#
# The runtime is Spin when there is one: $SPIN, else ../shared/tools/spin next
# to the checkout, else `spin` on PATH; otherwise `wasmtime serve`. Spin
# serves the repository's spin.toml and keeps its own files (component logs
# in var/spin/logs/) under var/spin.
set -eu
cd "$(dirname "$0")/.."
LISTEN=${LISTEN:-127.0.0.1:3000}
WASM=target/wasm32-wasip2/release/dyndns_handler.wasm

if [ -n "${SPIN:-}" ]; then
    spin=$SPIN
elif [ -x ../shared/tools/spin ]; then
    spin=../shared/tools/spin
elif command -v spin >/dev/null 2>&1; then
    spin=spin
else
    spin=""
fi

PLESK_EMU_STATE="$PWD/var/plesk-state.json" PLESK_EMU_LOG="$PWD/var/plesk-calls.jsonl" \
    target/release/dyndns-applier --config var/local.toml run "$@" &
applier=$!
trap 'kill $applier 2>/dev/null; wait $applier 2>/dev/null' EXIT INT TERM

if [ -n "$spin" ]; then
    echo "serving with $("$spin" --version) ($spin)"
    "$spin" up --from spin.toml --direct-mounts --allow-transient-write --listen "$LISTEN" \
        --state-dir var/spin
else
    echo "Spin not found (no \$SPIN, ../shared/tools/spin or spin on PATH); serving with wasmtime serve"
    wasmtime serve --addr "$LISTEN" -Scli \
        --dir var/state::/state --dir var/queue::/queue \
        --env DYNDNS_STATE_DIR=/state --env DYNDNS_QUEUE_DIR=/queue --env DYNDNS_LOG=info \
        "$WASM"
fi
