#!/bin/bash
# build.sh: build the Patchgate appliance image into $OUT (see ../README.md).
#
# Environment:
#   VERSION            appliance version (required), e.g. 0.1.42
#   BINARY             the patchgate binary to install (static, CGO_ENABLED=0)
#   CONFIG             the default config (configs/patchgate.yaml)
#   OUT                output directory (image/out)
#   CACHE              cache directory (image/cache): packages, base rootfs, work files
#   SOURCE_DATE_EPOCH  every timestamp in the image (default: the last commit's time)
#   TEST_ARTIFACTS=1   also build what make image-test boots (smoke UKI, a good and a
#                      broken next version); BAD_TRIES: boots the broken one gets (1)
#   FORMATS            "raw qcow2 vmdk ova update" (default: all); update is the A/B
#                      update bundle in $OUT/update (gzip root image, UKI, manifest)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
image=$(cd "$here/.." && pwd)
: "${VERSION:?VERSION must be set}" "${BINARY:?BINARY must be set}" "${CONFIG:?CONFIG must be set}"
OUT=${OUT:-$image/out}
CACHE=${CACHE:-$image/cache}
FORMATS=${FORMATS:-raw qcow2 vmdk ova update}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$image" log -1 --format=%ct)}
export E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH MTOOLS_SKIP_CHECK=1 LC_ALL=C TZ=UTC

case $VERSION in
*[!0-9A-Za-z.~-]* | "" | [!0-9]*)
	echo "build.sh: VERSION must start with a digit and use only [0-9A-Za-z.~-] (it names a boot entry), got '$VERSION'" >&2
	exit 1 ;;
esac

# Sizes in MiB. Each root slot holds one version; the data partition grows to the disk
# at boot, in the initramfs (../initramfs/growdata-premount).
ESP_MB=${ESP_MB:-256}
ROOT_MB=${ROOT_MB:-1024}
DATA_MB=${DATA_MB:-256}

log() { printf '%s build: %s\n' "$(date +%T)" "$*" >&2; }

# uuid NAME: a UUID derived from NAME, so the same input gives the same image.
uuid() {
	local h
	h=$(printf '%s' "patchgate-image:$1" | sha256sum | cut -c1-32)
	printf '%s-%s-4%s-8%s-%s\n' "${h:0:8}" "${h:8:4}" "${h:13:3}" "${h:17:3}" "${h:20:12}"
}

# fixtimes IMG SRCDIR: mke2fs 1.47.0 -d copies each file's ctime and atime from the
# build host, where they are the time of the build; set both to SOURCE_DATE_EPOCH
# (mtimes are already clamped to it by rootfs.sh).
fixtimes() {
	local t=@$SOURCE_DATE_EPOCH cmds
	cmds=$(mktemp)
	{
		echo "sif / ctime $t"
		echo "sif / atime $t"
		(cd "$2" && find . -mindepth 1 -printf '%P\n') |
			sed -e "s|.*|sif \"/&\" ctime $t\nsif \"/&\" atime $t|"
	} >"$cmds"
	debugfs -w -f "$cmds" "$1" >/dev/null 2>&1
	rm -f "$cmds"
}

# mkroot ROOTFS OUT VERSION: the root filesystem image of one version (read-only, so no
# journal), its UUID derived from the version, sized to its content plus 15% and 32 MiB
# (an update transfers the filesystem, not the slot), at most the slot.
mkroot() {
	local u mb
	u=$(uuid "root:$3")
	mb=$(( $(du -sm --apparent-size "$1" | cut -f1) * 115 / 100 + 32 ))
	if [ "$mb" -gt "$ROOT_MB" ]; then
		echo "build.sh: root filesystem needs ${mb} MiB, the slot has ${ROOT_MB} MiB (ROOT_MB)" >&2
		exit 1
	fi
	rm -f "$2"
	# Clamp again: removing the kernel from /boot dated that directory now.
	find "$1" -newermt "@$SOURCE_DATE_EPOCH" -print0 | xargs -0r touch --no-dereference --date="@$SOURCE_DATE_EPOCH"
	mkfs.ext4 -q -F -L pg-root -U "$u" -E "hash_seed=$u,root_owner=0:0" -O ^has_journal \
		-m 0 -b 4096 -d "$1" "$2" "${mb}M"
	fixtimes "$2" "$1"
}

mkdir -p "$OUT" "$CACHE"
work=$CACHE/work
mkdir -p "$work"

# 1. Base rootfs, cached by the hash of its recipe.
key=$(cat "$here/base.sh" "$image"/initramfs/* | sha256sum | cut -c1-16)
base=$CACHE/base-$key
if [ ! -d "$base" ]; then
	log "base rootfs (mmdebstrap) -> $base"
	rm -rf "$base.tmp"
	CACHE=$CACHE/apt "$here/base.sh" "$base.tmp"
	mv "$base.tmp" "$base"
	find "$CACHE" -maxdepth 1 -name 'base-*' ! -name "base-$key" -exec rm -rf {} +
else
	log "base rootfs: cached $base"
fi

# 2. Appliance rootfs.
log "rootfs $VERSION"
"$here/rootfs.sh" "$base" "$work/rootfs" "$VERSION" "$BINARY" "$CONFIG"

# 3. UKIs: the shipped one, and for the boot test the same with the smoke flag.
rootuuid=$(uuid "root:$VERSION")
log "uki (root=UUID=$rootuuid)"
"$here/uki.sh" "$work/rootfs" "$work/patchgate_$VERSION.efi" "$VERSION" "$rootuuid"
if [ "${TEST_ARTIFACTS:-}" = 1 ]; then
	rm -rf "$OUT/test"
	mkdir -p "$OUT/test"
	"$here/uki.sh" "$work/rootfs" "$OUT/test/patchgate_$VERSION.efi" "$VERSION" "$rootuuid" patchgate.smoke=1
fi
rm -f "$work"/rootfs/boot/vmlinuz-* "$work"/rootfs/boot/initrd.img-* "$work"/rootfs/boot/System.map-* "$work"/rootfs/boot/config-*

# 4. Filesystems.
log "root filesystem"
mkroot "$work/rootfs" "$work/root.img" "$VERSION"
log "data filesystem"
rm -f "$work/data.img"
mkfs.ext4 -q -F -L pg-data -U "$(uuid data)" -E "hash_seed=$(uuid data),root_owner=0:0" \
	-b 4096 -d "$work/rootfs.var" "$work/data.img" "${DATA_MB}M"
fixtimes "$work/data.img" "$work/rootfs.var"

log "ESP"
rm -f "$work/esp.img"
mkfs.fat -C --invariant -F 32 -i 50474154 -n PATCHGATE "$work/esp.img" $((ESP_MB * 1024)) >/dev/null
cat >"$work/loader.conf" <<EOC
timeout 2
editor no
auto-firmware no
console-mode keep
EOC
sdboot=$work/rootfs/usr/lib/systemd/boot/efi/systemd-bootx64.efi
touch -d "@$SOURCE_DATE_EPOCH" "$work/loader.conf" "$work/patchgate_$VERSION.efi"
e="-i $work/esp.img"
mmd $e ::/EFI ::/EFI/BOOT ::/EFI/systemd ::/EFI/Linux ::/loader ::/loader/entries
mcopy $e -m "$sdboot" ::/EFI/BOOT/BOOTX64.EFI
mcopy $e -m "$sdboot" ::/EFI/systemd/systemd-bootx64.efi
mcopy $e -m "$work/loader.conf" ::/loader/loader.conf
mcopy $e -m "$image/firstboot/patchgate-firstboot.yaml.example" ::/patchgate-firstboot.yaml.example
# The factory version carries no boot counter: there is nothing to fall back to.
mcopy $e -m "$work/patchgate_$VERSION.efi" "::/EFI/Linux/patchgate_$VERSION.efi"

# 5. The disk: GPT with ESP, root A (this version), root B (empty), data.
log "disk"
raw=$OUT/patchgate-$VERSION.raw
mib=2048 # sectors
esp_start=$mib
a_start=$((esp_start + ESP_MB * mib))
b_start=$((a_start + ROOT_MB * mib))
data_start=$((b_start + ROOT_MB * mib))
total_mb=$((1 + ESP_MB + 2 * ROOT_MB + DATA_MB + 1))
rm -f "$raw"
truncate -s "${total_mb}M" "$raw"
sfdisk --quiet "$raw" <<EOP
label: gpt
label-id: $(uuid disk)
unit: sectors
first-lba: 2048
start=$esp_start, size=$((ESP_MB * mib)), type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=$(uuid part:esp), name=patchgate-esp
start=$a_start, size=$((ROOT_MB * mib)), type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, uuid=$(uuid part:root-a), name=patchgate-root-a
start=$b_start, size=$((ROOT_MB * mib)), type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, uuid=$(uuid part:root-b), name=patchgate-root-b
start=$data_start, size=$((DATA_MB * mib)), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=$(uuid part:data), name=patchgate-data
EOP
place() { dd if="$1" of="$raw" bs=1M seek=$(($2 / mib)) conv=notrunc,sparse status=none; }
place "$work/esp.img" $esp_start
place "$work/root.img" $a_start
place "$work/data.img" $data_start

# bundle ROOTIMG UKI VERSION DIR: an update bundle in DIR: the gzip-compressed root
# image, the UKI and patchgate-VERSION.update.json (see abupdate.Manifest).
bundle() {
	local root=$1 uki=$2 v=$3 d=$4 gz
	mkdir -p "$d"
	gz=$d/patchgate-$v.root.img.gz
	gzip -6 -n -c "$root" >"$gz"
	cp "$uki" "$d/patchgate_$v.efi"
	cat >"$d/patchgate-$v.update.json" <<EOJ
{
  "version": "$v",
  "root": {"name": "patchgate-$v.root.img.gz", "length": $(stat -c %s "$gz"), "sha256": "$(sha256sum "$gz" | cut -d' ' -f1)", "raw_length": $(stat -c %s "$root"), "raw_sha256": "$(sha256sum "$root" | cut -d' ' -f1)"},
  "uki": {"name": "patchgate_$v.efi", "length": $(stat -c %s "$d/patchgate_$v.efi"), "sha256": "$(sha256sum "$d/patchgate_$v.efi" | cut -d' ' -f1)"}
}
EOJ
}

# 6. Test artifacts (make image-test): two next versions as update bundles on a small
# ext4 disk labelled pgtestupd, which the smoke unit installs with `patchgate image
# install` from inside the VM: VERSION.1, good, and VERSION.2, deliberately broken (its
# config has an unknown key, so check-config fails and the daemon never starts).
if [ "${TEST_ARTIFACTS:-}" = 1 ]; then
	upd=$work/test-updates
	rm -rf "$upd"
	mkdir -p "$upd"
	cp -a "$base"/boot/. "$work/rootfs/boot/" # uki.sh needs the kernel again
	for kind in good bad; do
		if [ $kind = good ]; then v=$VERSION.1; else v=$VERSION.2; fi
		log "test: $kind next version $v"
		echo "$v" >"$work/rootfs/usr/lib/patchgate/version"
		sed -i -e "s|^IMAGE_VERSION=.*|IMAGE_VERSION=$v|" -e "s|^PRETTY_NAME=.*|PRETTY_NAME=\"Patchgate $v (Debian 12)\"|" "$work/rootfs/usr/lib/os-release"
		if [ $kind = bad ]; then
			printf '\nthis_key_is_not_known: true\n' >>"$work/rootfs/etc/patchgate/patchgate.yaml"
			echo "${BAD_TRIES:-1}" >"$upd/$v.tries"
		fi
		mkroot "$work/rootfs" "$work/root-$v.img" "$v"
		"$here/uki.sh" "$work/rootfs" "$work/patchgate_$v.efi" "$v" "$(uuid "root:$v")" patchgate.smoke=1
		bundle "$work/root-$v.img" "$work/patchgate_$v.efi" "$v" "$upd"
		rm -f "$work/root-$v.img" "$work/patchgate_$v.efi"
	done
	rm -f "$work"/rootfs/boot/vmlinuz-* "$work"/rootfs/boot/initrd.img-* "$work"/rootfs/boot/System.map-* "$work"/rootfs/boot/config-*
	# The bundles as files (the test installs them from the host side by default) and on
	# a disk for PATCHGATE_IMAGE_INSTALL_IN_VM=1 (the smoke unit installs them).
	mv "$upd" "$OUT/test/updates"
	mkfs.ext4 -q -F -L pgtestupd -d "$OUT/test/updates" "$OUT/test/updates.img" "$(( $(du -sm "$OUT/test/updates" | cut -f1) + 32 ))M"
	cat >"$OUT/test/layout.env" <<EOL
VERSION=$VERSION
GOOD_VERSION=$VERSION.1
BAD_VERSION=$VERSION.2
BAD_TRIES=${BAD_TRIES:-1}
ESP_OFFSET=$((esp_start * 512))
ROOT_A_OFFSET=$((a_start * 512))
ROOT_B_OFFSET=$((b_start * 512))
EOL
fi

# 7. The update bundle: what `patchgate image install --manifest` takes and what a TUF
# repository publishes as targets (the manifest is their custom metadata).
if [[ " $FORMATS " == *" update "* ]]; then
	log "update bundle"
	u=$OUT/update
	rm -rf "$u"
	bundle "$work/root.img" "$work/patchgate_$VERSION.efi" "$VERSION" "$u"
	(cd "$u" && sha256sum -- * >SHA256SUMS)
fi

# 8. Formats and sums.
"$here/formats.sh" "$raw" "$VERSION" "$FORMATS"
log "done: $OUT"
