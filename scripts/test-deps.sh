#!/bin/sh
# Installs what the tests drive, from Debian: the real update clients
# ddclient and inadyn, fail2ban (fail2ban-regex checks the shipped filter),
# curl, openssl, strace (to see the handler flush before it answers),
# chromium with a font (renders the status page headless), iproute2 (the
# Spin tests add a peer address to lo), for the ACME DNS-01
# tests BIND (named, rndc, named-checkzone, dig), the pebble ACME test
# server and the lego and certbot clients, and the packaging tools (rpm, help2man,
# musl-tools, lintian, systemd-analyze); from PyPI: the aiosmtpd SMTP
# server. Skips what is there.
#   scripts/test-deps.sh            everything the tests need
#   scripts/test-deps.sh package    only what `make package` needs
set -eu
missing=""
need() { # need COMMAND DEBIAN-PACKAGE
    command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || missing="$missing $2"
}
need dpkg-deb dpkg
need rpmbuild rpm
need help2man help2man
need musl-gcc musl-tools
if [ "${1:-}" != package ]; then
    need lintian lintian
    need systemd-analyze systemd
    need adduser adduser
    need ddclient ddclient
    need inadyn inadyn
    need fail2ban-regex fail2ban
    need curl curl
    need openssl openssl
    need strace strace
    need ip iproute2
    need named bind9
    need rndc bind9-utils
    need named-checkzone bind9-utils
    need dig bind9-dnsutils
    need pebble pebble
    need lego lego
    need certbot certbot
    need chromium chromium
    [ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing="$missing fonts-dejavu-core"
fi
if [ -n "$missing" ]; then
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "need root to install:$missing" >&2; exit 1; fi
    echo "installing:$missing"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # ddclient's package would start a daemon and ask questions: neither is wanted.
    echo "ddclient ddclient/service select none" | $SUDO debconf-set-selections 2>/dev/null || true
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
if [ "${1:-}" != package ] && ! python3 -c 'import aiosmtpd' 2>/dev/null; then
    echo "installing aiosmtpd"
    python3 -m pip install --quiet 'aiosmtpd==1.4.6'
fi
