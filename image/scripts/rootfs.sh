#!/bin/bash
# rootfs.sh BASE DIR VERSION BINARY CONFIG: make the appliance root filesystem DIR from
# the cached base (base.sh): Patchgate's binary, unit and config, the image's own units
# and settings (../rootfs, ../units). /var moves out to DIR.var (the data partition's
# initial content); /boot's kernel and initrd stay for uki.sh to take and are removed by
# it.
set -euo pipefail

base=${1:?usage: rootfs.sh BASE DIR VERSION BINARY CONFIG}
dir=${2:?}
version=${3:?}
binary=${4:?}
config=${5:?}
here=$(cd "$(dirname "$0")/.." && pwd)
repo=$(cd "$here/.." && pwd)
: "${SOURCE_DATE_EPOCH:?SOURCE_DATE_EPOCH must be set}"

rm -rf "$dir" "$dir.var"
mkdir -p "$dir"
cp -a "$base/." "$dir/"

# Our files over the base. Modes are set here, not taken from the checkout (umask).
cp -a --no-preserve=ownership "$here/rootfs/." "$dir/"
install -m 0755 "$binary" "$dir/usr/bin/patchgate"
install -m 0644 "$repo/configs/systemd/patchgate.service" "$dir/usr/lib/systemd/system/"
install -m 0644 "$here"/units/*.service "$here"/units/*.path "$dir/usr/lib/systemd/system/"
install -d -m 0755 "$dir/etc/patchgate" "$dir/efi"
# The production default config, with the admin listener on the management network
# instead of loopback (an appliance is administered from another machine) and its TLS
# certificate the one first boot makes (patchgate image firstboot), whose fingerprint the
# console shows. Each edit is checked, and so is the result.
cfg=$dir/etc/patchgate/patchgate.yaml
sed -e 's|^\(  listen:\) 127\.0\.0\.1:9080$|\1 :9080  # appliance image: on the management segment|' \
	-e 's|^\(    mode:\) self-signed$|\1 files  # appliance image: made at first boot|' \
	-e 's|^\(    cert_file:\) ""$|\1 /var/lib/patchgate/tls/admin.crt|' \
	-e 's|^\(    key_file:\) ""$|\1 /var/lib/patchgate/tls/admin.key|' \
	"$config" >"$cfg"
for want in '  listen: :9080' '    mode: files' '    cert_file: /var/lib/patchgate/tls/admin.crt' '    key_file: /var/lib/patchgate/tls/admin.key'; do
	if ! grep -q "^$want" "$cfg"; then
		echo "rootfs.sh: $config changed shape: could not set '$want' for the image" >&2
		exit 1
	fi
done
"$binary" check-config --config "$cfg"
chmod 0644 "$dir/etc/patchgate/patchgate.yaml"
echo "$version" >"$dir/usr/lib/patchgate/version"

# os-release: still Debian underneath, named for the appliance; the UKI carries it too.
sed -i -e "s|^PRETTY_NAME=.*|PRETTY_NAME=\"Patchgate $version (Debian 12)\"|" "$dir/usr/lib/os-release"
printf 'IMAGE_ID=patchgate\nIMAGE_VERSION=%s\n' "$version" >>"$dir/usr/lib/os-release"

# Read-only root: machine-id is made up at each boot (systemd mounts it over the empty
# file), resolv.conf and the console banner live in /run.
: >"$dir/etc/machine-id"
rm -f "$dir/var/lib/dbus/machine-id"
ln -sfn ../run/systemd/resolve/resolv.conf "$dir/etc/resolv.conf"
install -d -m 0755 "$dir/etc/issue.d"
ln -sfn /run/patchgate-console/patchgate.issue "$dir/etc/issue.d/50-patchgate.issue"

systemctl --root="$dir" enable --quiet \
	systemd-networkd.service systemd-networkd-wait-online.service systemd-resolved.service \
	systemd-timesyncd.service patchgate.service \
	patchgate-netconfig.service patchgate-firstboot.service patchgate-console.service \
	patchgate-smoke.service patchgate-bootmark.service patchgate-selfupdate.path
# Nothing may prompt or write to /etc at boot, and nothing updates packages in place.
systemctl --root="$dir" mask --quiet \
	systemd-firstboot.service systemd-machine-id-commit.service \
	apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer \
	e2scrub_reap.service
# The root account stays locked (no password): the appliance is run through its web UI.

# /var becomes the data partition's first content; the root keeps an empty mount point.
mv "$dir/var" "$dir.var"
install -d -m 0755 "$dir/var"
install -d -m 0700 "$dir.var/lib/private"

# Reproducibility: every file dated SOURCE_DATE_EPOCH.
find "$dir" "$dir.var" -newermt "@$SOURCE_DATE_EPOCH" -print0 |
	xargs -0r touch --no-dereference --date="@$SOURCE_DATE_EPOCH"
