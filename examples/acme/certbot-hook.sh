#!/bin/sh
# certbot manual hook: sets (present) and removes (cleanup) the DNS-01
# challenge value through the dyndns service's httpreq endpoint.
#
#   certbot certonly --manual --preferred-challenges dns \
#     --manual-auth-hook '/etc/dyndns-client/certbot-hook.sh present' \
#     --manual-cleanup-hook '/etc/dyndns-client/certbot-hook.sh cleanup' \
#     -d home.dyn.example.com -d '*.home.dyn.example.com'
#
# Environment (set it in the shell or in the hook line):
#   DYNDNS_ACME_URL  the endpoint's base URL, e.g. https://dyn.example.com/acme
#   DYNDNS_NETRC     a netrc file holding your dyndns user and secret, e.g.
#                    "machine dyn.example.com login alice password SECRET",
#                    mode 0600 (default: /etc/dyndns-client/netrc). The
#                    secret is never put on a command line, where other
#                    local users could read it.
# certbot sets CERTBOT_DOMAIN (without "*.") and CERTBOT_VALIDATION.
# present returns once the value is in the zone (or with an error), so
# certbot may ask for validation right away.
set -eu

action=${1:-}
case $action in
present | cleanup) ;;
*)
    echo "usage: $0 present|cleanup (run by certbot)" >&2
    exit 2
    ;;
esac
: "${DYNDNS_ACME_URL:?set DYNDNS_ACME_URL, e.g. https://dyn.example.com/acme}"
: "${CERTBOT_DOMAIN:?run by certbot: CERTBOT_DOMAIN is not set}"
: "${CERTBOT_VALIDATION:?run by certbot: CERTBOT_VALIDATION is not set}"
netrc=${DYNDNS_NETRC:-/etc/dyndns-client/netrc}

curl --silent --show-error --fail-with-body --max-time 60 \
    --netrc-file "$netrc" \
    --header 'Content-Type: application/json' \
    --data "{\"fqdn\":\"_acme-challenge.${CERTBOT_DOMAIN}.\",\"value\":\"${CERTBOT_VALIDATION}\"}" \
    "${DYNDNS_ACME_URL%/}/$action"
