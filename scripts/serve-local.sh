#!/bin/sh
# Runs the handler on $LISTEN (default 127.0.0.1:3000) with var/ mounted, and
# the applier beside it (pass --dry-run to only print Plesk commands). Spin is
# used when installed, wasmtime serve otherwise. Ctrl-C stops both.
set -eu
cd "$(dirname "$0")/.."
LISTEN=${LISTEN:-127.0.0.1:3000}
WASM=target/wasm32-wasip2/release/dyndns_handler.wasm

PLESK_EMU_STATE="$PWD/var/plesk-state.json" PLESK_EMU_LOG="$PWD/var/plesk-calls.jsonl" \
    target/release/dyndns-applier --config var/local.toml run "$@" &
applier=$!
trap 'kill $applier 2>/dev/null; wait $applier 2>/dev/null' EXIT INT TERM

if command -v spin >/dev/null 2>&1; then
    spin up --from spin.toml --direct-mounts --allow-transient-write --listen "$LISTEN"
else
    echo "spin not found; serving with wasmtime serve"
    wasmtime serve --addr "$LISTEN" -Scli \
        --dir var/state::/state --dir var/queue::/queue \
        --env DYNDNS_STATE_DIR=/state --env DYNDNS_QUEUE_DIR=/queue --env DYNDNS_LOG=info \
        "$WASM"
fi
