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
#   TEST_ARTIFACTS=1   also build what make image-test boots (smoke UKI, broken version)
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
# at first boot (patchgate-growdata.service).
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
	mkfs.ext4 -q -F -L pg-root -U "$u" -E "hash_seed=$u,root_owner=0:0" -O ^has_journal \
		-m 0 -b 4096 -d "$1" "$2" "${mb}M"
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

# 6. Test artifacts: a deliberately broken next version (its config has an unknown key,
# so check-config fails and the daemon never starts) for the fallback test.
if [ "${TEST_ARTIFACTS:-}" = 1 ]; then
	bad=$VERSION.1
	log "test: broken version $bad"
	echo "$bad" >"$work/rootfs/usr/lib/patchgate/version"
	sed -i -e "s|^IMAGE_VERSION=.*|IMAGE_VERSION=$bad|" -e "s|^PRETTY_NAME=.*|PRETTY_NAME=\"Patchgate $bad (Debian 12)\"|" "$work/rootfs/usr/lib/os-release"
	printf '\nthis_key_is_not_known: true\n' >>"$work/rootfs/etc/patchgate/patchgate.yaml"
	mkroot "$work/rootfs" "$OUT/test/root-$bad.img" "$bad"
	# uki.sh needs the kernel again: take it from the base.
	cp -a "$base"/boot/. "$work/rootfs/boot/"
	"$here/uki.sh" "$work/rootfs" "$OUT/test/patchgate_$bad.efi" "$bad" "$(uuid "root:$bad")" patchgate.smoke=1
	rm -f "$work"/rootfs/boot/vmlinuz-* "$work"/rootfs/boot/initrd.img-* "$work"/rootfs/boot/System.map-* "$work"/rootfs/boot/config-*
	cat >"$OUT/test/layout.env" <<EOL
VERSION=$VERSION
BAD_VERSION=$bad
ESP_OFFSET=$((esp_start * 512))
ROOT_B_OFFSET=$((b_start * 512))
EOL
fi

# 7. The update bundle: what `patchgate image install --manifest` takes and what a TUF
# repository publishes as targets (the manifest is their custom metadata).
if [[ " $FORMATS " == *" update "* ]]; then
	log "update bundle"
	u=$OUT/update
	rm -rf "$u"
	mkdir -p "$u"
	gzip -6 -n -c "$work/root.img" >"$u/patchgate-$VERSION.root.img.gz"
	cp "$work/patchgate_$VERSION.efi" "$u/patchgate_$VERSION.efi"
	f() { stat -c %s "$1"; }
	s() { sha256sum "$1" | cut -d' ' -f1; }
	cat >"$u/patchgate-$VERSION.update.json" <<EOJ
{
  "version": "$VERSION",
  "root": {"name": "patchgate-$VERSION.root.img.gz", "length": $(f "$u/patchgate-$VERSION.root.img.gz"), "sha256": "$(s "$u/patchgate-$VERSION.root.img.gz")", "raw_length": $(f "$work/root.img"), "raw_sha256": "$(s "$work/root.img")"},
  "uki": {"name": "patchgate_$VERSION.efi", "length": $(f "$u/patchgate_$VERSION.efi"), "sha256": "$(s "$u/patchgate_$VERSION.efi")"}
}
EOJ
	(cd "$u" && sha256sum -- * >SHA256SUMS)
fi

# 8. Formats and sums.
"$here/formats.sh" "$raw" "$VERSION" "$FORMATS"
log "done: $OUT"
