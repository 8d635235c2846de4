#!/bin/bash
# base.sh DIR: build the appliance's base root filesystem (Debian bookworm minbase,
# systemd, kernel, and an initramfs with the data partition's grow step from
# ../initramfs) into DIR with mmdebstrap. It holds nothing else of Patchgate's own:
# rootfs.sh adds that. The result only depends on the package list below, the files in
# ../initramfs, the mirror's state and SOURCE_DATE_EPOCH, so build.sh caches it by a hash
# of those files.
#
# Environment: CACHE (package cache directory), MIRROR (apt sources file or URL,
# default: the build host's own /etc/apt/sources.list.d/debian.sources),
# SOURCE_DATE_EPOCH.
set -euo pipefail

dir=${1:?usage: base.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
cache=${CACHE:?CACHE must name the package cache directory}
mirror=${MIRROR:-/etc/apt/sources.list.d/debian.sources}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:?SOURCE_DATE_EPOCH must be set}

packages=(
	systemd-sysv udev dbus kmod
	linux-image-amd64 initramfs-tools zstd
	systemd-boot systemd-timesyncd systemd-resolved
	iproute2 e2fsprogs fdisk dosfstools ca-certificates
)

# Keep the image small: no documentation, manuals or translations (copyright files
# stay), and no kernel drivers an appliance VM or small box never needs.
excludes=(
	'/usr/share/doc/*/*' '/usr/share/man/*.gz' '/usr/share/info/*.gz' '/usr/share/locale/*.mo'
	'/usr/share/lintian/*' '/usr/share/linda/*'
)
# Package paths are unmerged (/lib/modules); "*" crosses "/" in dpkg's patterns.
for d in drivers/gpu drivers/media drivers/net/wireless sound drivers/infiniband \
	drivers/staging drivers/bluetooth net/bluetooth net/wireless net/mac80211 drivers/iio \
	drivers/isdn drivers/hid drivers/input/joystick drivers/input/touchscreen \
	drivers/video/fbdev; do
	excludes+=("/lib/modules/*/kernel/$d/*.ko")
done
dpkgopts=()
for p in "${excludes[@]}"; do dpkgopts+=(--dpkgopt="path-exclude=$p"); done
dpkgopts+=(--dpkgopt='path-include=/usr/share/doc/*/copyright')

mkdir -p "$cache"
rm -rf "$dir"
mkdir -p "$(dirname "$dir")"

mmdebstrap --variant=minbase --mode=root --format=directory \
	--include="$(IFS=,; echo "${packages[*]}")" \
	"${dpkgopts[@]}" \
	--skip=essential/unlink \
	--setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
	--setup-hook="sync-in $cache /var/cache/apt/archives/" \
	--setup-hook="mkdir -p \"\$1\"/etc/initramfs-tools/conf.d" \
	--setup-hook="copy-in $here/../initramfs/patchgate.conf /etc/initramfs-tools/conf.d/" \
	--customize-hook="sync-out /var/cache/apt/archives $cache" \
	--customize-hook="copy-in $here/../initramfs/modules /etc/initramfs-tools/" \
	--customize-hook='mkdir -p "$1"/etc/initramfs-tools/hooks "$1"/etc/initramfs-tools/scripts/local-premount' \
	--customize-hook="upload $here/../initramfs/growdata-hook /etc/initramfs-tools/hooks/patchgate-growdata" \
	--customize-hook="upload $here/../initramfs/growdata-premount /etc/initramfs-tools/scripts/local-premount/patchgate-growdata" \
	--customize-hook='chmod 0755 "$1"/etc/initramfs-tools/hooks/patchgate-growdata "$1"/etc/initramfs-tools/scripts/local-premount/patchgate-growdata' \
	--customize-hook='chroot "$1" update-initramfs -u -k all' \
	--customize-hook='rm -f "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*_* "$1"/var/log/*.log "$1"/var/log/apt/* "$1"/var/cache/ldconfig/aux-cache' \
	bookworm "$dir" "$mirror"
