#!/bin/bash
# formats.sh RAW VERSION "FORMATS": convert the raw disk into the other formats beside
# it (qcow2 with zstd clusters, streamOptimized vmdk, an OVA holding OVF + vmdk + a
# SHA256 manifest) and write SHA256SUMS for everything.
set -euo pipefail

raw=${1:?usage: formats.sh RAW VERSION FORMATS}
version=${2:?}
formats=${3:-raw qcow2 vmdk ova}
here=$(cd "$(dirname "$0")/.." && pwd)
out=$(dirname "$raw")
name=patchgate-$version
: "${SOURCE_DATE_EPOCH:?}"

has() { [[ " $formats " == *" $1 "* ]]; }
cd "$out"
rm -f "$name.qcow2" "$name.vmdk" "$name.ova" "$name.ovf" "$name.mf" SHA256SUMS
if has qcow2; then
	qemu-img convert -f raw -O qcow2 -c -o compression_type=zstd "$name.raw" "$name.qcow2"
fi
if has vmdk || has ova; then
	qemu-img convert -f raw -O vmdk -o subformat=streamOptimized "$name.raw" "$name.vmdk"
	# qemu-img writes a random content ID into the descriptor: derive it from the
	# version instead, so the vmdk (and the OVA) are reproducible.
	cid=$(printf '%s' "patchgate-vmdk:$version" | sha256sum | cut -c1-8)
	off=$(head -c 4096 "$name.vmdk" | grep -obUa 'CID=[0-9a-f]\{8\}' | head -n1 | cut -d: -f1)
	if [ -n "$off" ]; then
		printf 'CID=%s' "$cid" | dd of="$name.vmdk" bs=1 seek="$off" conv=notrunc status=none
	fi
fi
if has ova; then
	sed -e "s|@VERSION@|$version|g" -e "s|@VMDK@|$name.vmdk|g" \
		-e "s|@VMDK_SIZE@|$(stat -c %s "$name.vmdk")|g" -e "s|@CAPACITY@|$(stat -c %s "$name.raw")|g" \
		"$here/ovf/patchgate.ovf.in" >"$name.ovf"
	{
		echo "SHA256($name.ovf)= $(sha256sum "$name.ovf" | cut -d' ' -f1)"
		echo "SHA256($name.vmdk)= $(sha256sum "$name.vmdk" | cut -d' ' -f1)"
	} >"$name.mf"
	touch -d "@$SOURCE_DATE_EPOCH" "$name.ovf" "$name.mf" "$name.vmdk"
	# OVF wants the descriptor first, then the manifest, then the disk.
	tar --format=ustar --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
		-cf "$name.ova" "$name.ovf" "$name.mf" "$name.vmdk"
	rm -f "$name.ovf" "$name.mf"
	has vmdk || rm -f "$name.vmdk"
fi
has raw || rm -f "$name.raw"
files=()
for f in raw qcow2 vmdk ova; do
	if [ -f "$name.$f" ]; then files+=("$name.$f"); fi
done
sha256sum "${files[@]}" >SHA256SUMS
