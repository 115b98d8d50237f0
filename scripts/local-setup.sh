#!/bin/sh
# Prepares var/ for `make up` / `make demo`: a local config with a fresh demo
# credential (kept between runs), the emulated Plesk zone, the queue
# directories, and the handler's view. Prints how to send an update.
set -eu
cd "$(dirname "$0")/.."
APPLIER=target/release/dyndns-applier
LISTEN=${LISTEN:-127.0.0.1:3000}

mkdir -p var/queue/tmp var/queue/new var/state var/private var/metrics
if [ ! -f var/local.toml ] || [ ! -f var/demo.secret ]; then
    out=$("$APPLIER" new-credential 2>/dev/null)
    secret=$(printf '%s\n' "$out" | awk '/^secret:/ {print $2}')
    cred=$(printf '%s\n' "$out" | awk '/^credential:/ {print $2}')
    sed "s|@CREDENTIAL@|$cred|" examples/local.toml > var/local.toml
    printf '%s\n' "$secret" > var/demo.secret
    chmod 600 var/local.toml var/demo.secret
fi
[ -f var/plesk-state.json ] || cp examples/plesk-zone.json var/plesk-state.json
"$APPLIER" --config var/local.toml publish >/dev/null
secret=$(cat var/demo.secret)
cat <<MSG

  dyndns on http://$LISTEN  (config: var/local.toml, user "demo")
  Try:
    curl -u demo:$secret 'http://$LISTEN/nic/update?hostname=home.dyn.example.com&myip=198.51.100.7'
    curl http://$LISTEN/health
    ls var/queue/new        # queue entries
    cat var/plesk-state.json  # the emulated Plesk zone

MSG
