#!/bin/sh
# Builds the Debian and RPM packages from already built artefacts (`make
# package` builds them first):
#   scripts/package.sh [deb] [rpm]        (default: both)
# into $OUT_DIR (default target/package):
#   dyndns_<version>_amd64.deb, dyndns-<version>.x86_64.rpm
# Environment: VERSION (default: the workspace version in Cargo.toml),
# TARGET_DIR (default: target), OUT_DIR.
#
# Both packages hold the same files, staged here from the repository
# (deploy/, examples/, packaging/, docs) and the build: dpkg-deb and rpmbuild
# only wrap them. The folders and their modes come from packaging/folders.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

TARGET_DIR=${TARGET_DIR:-target}
MUSL=x86_64-unknown-linux-musl
OUT_DIR=${OUT_DIR:-$TARGET_DIR/package}
if [ -z "${VERSION:-}" ]; then
    VERSION=$(awk '/^\[workspace.package\]/ { p = 1; next } /^\[/ { p = 0 }
        p && $1 == "version" { gsub(/"/, "", $3); print $3; exit }' Cargo.toml)
fi
# The applier is linked statically (musl): one binary for Debian 11/12,
# Ubuntu 20.04+ and AlmaLinux/Rocky 8/9, whose C libraries differ.
applier=$TARGET_DIR/$MUSL/release/dyndns-applier
wasm=$TARGET_DIR/wasm32-wasip2/release/dyndns_handler.wasm
for f in "$applier" "$wasm"; do
    [ -f "$f" ] || { echo "package: $f missing (run make package)" >&2; exit 1; }
done
case "$VERSION" in
    [0-9]*) ;;
    *) echo "package: bad version '$VERSION'" >&2; exit 1 ;;
esac

formats=${*:-deb rpm}
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/dyndns-package.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"

# stage DIR UNITDIR: the files both packages install, as root would see them
stage() {
    dir=$1
    unitdir=$2
    install -D -m 0755 "$applier" "$dir/usr/sbin/dyndns-applier"
    install -D -m 0644 "$wasm" "$dir/usr/share/dyndns/dyndns_handler.wasm"
    install -D -m 0644 deploy/spin.toml "$dir/usr/share/dyndns/spin.toml"
    install -D -m 0644 deploy/nginx/plesk-additional-directives.conf \
        "$dir/usr/share/dyndns/plesk-additional-directives.conf"
    install -D -m 0644 deploy/systemd/dyndns-applier.service "$dir$unitdir/dyndns-applier.service"
    install -D -m 0644 deploy/systemd/dyndns-spin.service "$dir$unitdir/dyndns-spin.service"
    install -d -m 0755 "$dir/etc/dyndns"
    install -m 0600 examples/dyndns.toml "$dir/etc/dyndns/dyndns.toml"
    install -D -m 0644 deploy/cron/dyndns-applier "$dir/etc/cron.d/dyndns-applier"
    install -D -m 0644 deploy/fail2ban/filter.d/dyndns.conf "$dir/etc/fail2ban/filter.d/dyndns.conf"
    install -D -m 0644 deploy/fail2ban/jail.d/dyndns.conf "$dir/etc/fail2ban/jail.d/dyndns.conf"
    install -d -m 0755 "$dir/usr/share/doc/dyndns" "$dir/usr/share/man/man8"
    help2man --no-info --section 8 --name "apply queued dyndns updates to Plesk DNS" \
        "$applier" | gzip -9n >"$dir/usr/share/man/man8/dyndns-applier.8.gz"
    chmod 0644 "$dir/usr/share/man/man8/dyndns-applier.8.gz"
}

# folder lines from packaging/folders, formatted by the awk program $1
folders() {
    grep -v '^[[:space:]]*\(#\|$\)' packaging/folders | awk "$1"
}

# fill TEMPLATE: @VERSION@, and @FOLDERS@ by the lines in file $2
fill() {
    awk -v version="$VERSION" -v folders="$2" '
        /@FOLDERS@/ { while ((getline line < folders) > 0) print line; next }
        { gsub(/@VERSION@/, version); print }' "$1"
}

build_deb() {
    pkg=$work/deb
    stage "$pkg" /lib/systemd/system
    doc=$pkg/usr/share/doc/dyndns
    gzip -9n -c README.md >"$doc/README.md.gz"
    gzip -9n -c CHANGELOG.md >"$doc/CHANGELOG.md.gz"
    install -m 0644 packaging/deb/copyright "$doc/copyright"
    date=$(date -u -R -d "@$SOURCE_DATE_EPOCH")
    printf 'dyndns (%s) unstable; urgency=medium\n\n  * Release %s; the changes are in CHANGELOG.md.gz.\n\n -- dyndns developers <dyndns@example.org>  %s\n' \
        "$VERSION" "$VERSION" "$date" | gzip -9n >"$doc/changelog.gz"
    chmod 0644 "$doc"/*
    install -D -m 0644 packaging/deb/lintian-overrides "$pkg/usr/share/lintian/overrides/dyndns"

    install -d -m 0755 "$pkg/DEBIAN"
    folders '{ printf "    install -d -m %s -o %s -g %s %s\n", $1, $2, $3, $4 }' >"$work/folders.sh"
    fill packaging/deb/postinst "$work/folders.sh" >"$pkg/DEBIAN/postinst"
    install -m 0755 packaging/deb/prerm packaging/deb/postrm "$pkg/DEBIAN/"
    chmod 0755 "$pkg/DEBIAN/postinst"
    (cd "$pkg" && find etc -type f | sort | sed 's|^|/|') >"$pkg/DEBIAN/conffiles"
    chmod 0644 "$pkg/DEBIAN/conffiles"

    size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
    sed -e "s/@VERSION@/$VERSION/" -e "s/@INSTALLED_SIZE@/$size/" \
        packaging/deb/control >"$pkg/DEBIAN/control"
    (cd "$pkg" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | sort |
        xargs md5sum) >"$pkg/DEBIAN/md5sums"
    chmod 0644 "$pkg/DEBIAN/control" "$pkg/DEBIAN/md5sums"

    deb=$OUT_DIR/dyndns_${VERSION}_amd64.deb
    dpkg-deb --root-owner-group -Zxz --build "$pkg" "$deb" >/dev/null
    echo "$deb"
}

build_rpm() {
    top=$work/rpm
    stage "$top/stage" /usr/lib/systemd/system
    install -m 0644 README.md CHANGELOG.md "$top/stage/usr/share/doc/dyndns/"
    for dir in $(folders '{ print $4 }'); do mkdir -p "$top/stage$dir"; done
    folders '{ printf "%%dir %%attr(%s,%s,%s) %s\n", $1, $2, $3, $4 }' >"$work/folders.rpm"
    fill packaging/rpm/dyndns.spec "$work/folders.rpm" |
        sed "s|@STAGE@|$top/stage|" >"$top/dyndns.spec"
    rpmbuild -bb --quiet --target x86_64-linux \
        --define "_topdir $top" \
        --define "_build_name_fmt %%{NAME}-%%{VERSION}.%%{ARCH}.rpm" \
        --define "_rpmdir $OUT_DIR" \
        "$top/dyndns.spec" >"$top/build.log" 2>&1 || { cat "$top/build.log" >&2; exit 1; }
    echo "$OUT_DIR/dyndns-$VERSION.x86_64.rpm"
}

for f in $formats; do
    case "$f" in
        deb) build_deb ;;
        rpm) build_rpm ;;
        *) echo "package: unknown format '$f' (deb, rpm)" >&2; exit 1 ;;
    esac
done
