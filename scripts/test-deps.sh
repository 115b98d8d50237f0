#!/bin/sh
# Installs what the end-to-end tests drive, from Debian: the real update
# clients ddclient and inadyn, fail2ban (fail2ban-regex checks the shipped
# filter), curl, openssl, and strace (to see the handler flush before it
# answers); from PyPI: the aiosmtpd SMTP server. Skips what is there.
set -eu
missing=""
command -v ddclient >/dev/null 2>&1 || [ -x /usr/sbin/ddclient ] || missing="$missing ddclient"
command -v inadyn >/dev/null 2>&1 || [ -x /usr/sbin/inadyn ] || missing="$missing inadyn"
command -v fail2ban-regex >/dev/null 2>&1 || missing="$missing fail2ban"
command -v curl >/dev/null 2>&1 || missing="$missing curl"
command -v openssl >/dev/null 2>&1 || missing="$missing openssl"
command -v strace >/dev/null 2>&1 || missing="$missing strace"
if [ -n "$missing" ]; then
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "need root to install:$missing" >&2; exit 1; fi
    echo "installing:$missing"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # ddclient's package would start a daemon and ask questions: neither is wanted.
    echo "ddclient ddclient/service select none" | $SUDO debconf-set-selections 2>/dev/null || true
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
if ! python3 -c 'import aiosmtpd' 2>/dev/null; then
    echo "installing aiosmtpd"
    python3 -m pip install --quiet 'aiosmtpd==1.4.6'
fi
