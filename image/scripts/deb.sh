#!/bin/bash
# deb.sh: package the daemon for sites that run it on their own Debian host:
# $OUT/patchgate_$VERSION_amd64.deb with the binary, the systemd unit, the default config
# (a conffile) and maintainer scripts; built with dpkg-deb, checked with lintian when it
# is installed, and install-tested into a copy of the image's base rootfs when that is
# cached (make image builds it).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
image=$(cd "$here/.." && pwd)
repo=$(cd "$image/.." && pwd)
: "${VERSION:?}" "${BINARY:?}" "${CONFIG:?}"
OUT=${OUT:-$image/out}
CACHE=${CACHE:-$image/cache}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct)}

case $VERSION in [0-9]*) ;; *) echo "deb.sh: VERSION must start with a digit" >&2; exit 1 ;; esac

pkg=$(mktemp -d)
trap 'rm -rf "$pkg"' EXIT
root=$pkg/root
install -d "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" "$root/etc/patchgate" \
	"$root/usr/share/doc/patchgate"
install -m 0755 "$BINARY" "$root/usr/bin/patchgate"
install -m 0644 "$repo/configs/systemd/patchgate.service" "$root/lib/systemd/system/"
install -m 0644 "$CONFIG" "$root/etc/patchgate/patchgate.yaml"
install -m 0644 "$image/deb/copyright" "$root/usr/share/doc/patchgate/copyright"
printf 'patchgate (%s) unstable; urgency=medium\n\n  * Built from commit %s.\n\n -- Patchgate <maintainers@patchgate.invalid>  %s\n' \
	"$VERSION" "$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
	"$(date -u -R -d "@$SOURCE_DATE_EPOCH")" | gzip -9n >"$root/usr/share/doc/patchgate/changelog.gz"
for s in postinst prerm postrm; do
	install -m 0755 "$image/deb/$s" "$root/DEBIAN/$s"
done
echo /etc/patchgate/patchgate.yaml >"$root/DEBIAN/conffiles"
cat >"$root/DEBIAN/control" <<EOC
Package: patchgate
Version: $VERSION
Architecture: amd64
Maintainer: Patchgate <maintainers@patchgate.invalid>
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: init-system-helpers (>= 1.54)
Recommends: systemd
Section: net
Priority: optional
Homepage: https://github.com/patchgate/patchgate
Description: patch management appliance for small healthcare sites
 Patchgate keeps a site's devices patched without letting anything unvetted in:
 a pull-through update cache that serves only bytes verified against TUF
 metadata, an allowlisting DNS server, a device inventory, staged rollouts in
 rings with maintenance windows, and a tamper-evident audit trail.
 .
 This package runs the daemon under systemd on an existing Debian host; the
 appliance image ships the same binary and unit.
EOC
find "$root" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +
mkdir -p "$OUT"
deb=$OUT/patchgate_${VERSION}_amd64.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "deb: $deb"
dpkg-deb --info "$deb" | sed -n '/Package:/,/Description:/p'

if command -v lintian >/dev/null; then
	# statically-linked-binary and no-manual-page are expected for a Go daemon whose
	# help is its --help; everything else fails the build.
	lintian --fail-on error,warning --suppress-tags no-manual-page,statically-linked-binary,maintainer-script-calls-systemctl "$deb"
	echo "deb: lintian clean"
else
	echo "deb: lintian not installed (apt-get install lintian): not checked"
fi

# Install test: into a copy of the image's base rootfs (Debian bookworm minbase with
# systemd), then remove and purge again.
base=$(ls -d "$CACHE"/base-* 2>/dev/null | grep -v '\.tmp$' | head -n1 || true)
if [ -z "$base" ] || [ ! -d "$base" ]; then
	echo "deb: no cached base rootfs in $CACHE (run make image first): install test skipped"
	exit 0
fi
chroot=$pkg/chroot
cp -a "$base" "$chroot"
cp "$deb" "$chroot/tmp/"
chroot "$chroot" dpkg -i "/tmp/$(basename "$deb")"
chroot "$chroot" /usr/bin/patchgate check-config --config /etc/patchgate/patchgate.yaml
test -d "$chroot/var/lib/private/patchgate"
test "$(stat -c %a "$chroot/var/lib/private")" = 700
test -L "$chroot/etc/systemd/system/multi-user.target.wants/patchgate.service"
chroot "$chroot" systemd-analyze verify /lib/systemd/system/patchgate.service
chroot "$chroot" dpkg --purge patchgate
test ! -e "$chroot/var/lib/private/patchgate"
test ! -e "$chroot/usr/bin/patchgate"
echo "deb: installs, enables, verifies and purges cleanly in $(basename "$base")"
