#!/bin/bash
# uki.sh ROOTFS OUT VERSION ROOT_UUID [EXTRA_CMDLINE]: build a unified kernel image (the
# systemd EFI stub with the kernel, initrd, command line and os-release of ROOTFS as PE
# sections) with objcopy, as bookworm has no ukify. The command line names the root
# filesystem by UUID, so each UKI boots exactly the root of its own version.
set -euo pipefail

root=${1:?usage: uki.sh ROOTFS OUT VERSION ROOT_UUID [EXTRA_CMDLINE]}
out=${2:?}
version=${3:?}
uuid=${4:?}
extra=${5:-}

stub=$root/usr/lib/systemd/boot/efi/linuxx64.efi.stub
kernels=("$root"/boot/vmlinuz-*)
initrds=("$root"/boot/initrd.img-*)
if [ ${#kernels[@]} -ne 1 ] || [ ${#initrds[@]} -ne 1 ]; then
	echo "uki.sh: want exactly one kernel and one initrd in $root/boot" >&2
	exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# ro: the root is never written; panic=10: a boot that cannot find its root reboots, so
# boot counting moves on to the previous version instead of waiting at a shell.
cmdline="root=UUID=$uuid ro rootfstype=ext4 rootwait panic=10 console=tty0 console=ttyS0,115200 loglevel=4"
[ -n "$extra" ] && cmdline="$cmdline $extra"
printf '%s' "$cmdline" >"$tmp/cmdline"
cp "$root/usr/lib/os-release" "$tmp/osrel"

# Place the new sections after the stub's own, each aligned to the section alignment.
align=$((16#$(objdump -p "$stub" | awk '$1 == "SectionAlignment" {print $2}')))
end=0
while read -r size vma; do
	e=$((16#$size + 16#$vma))
	[ "$e" -gt "$end" ] && end=$e
done < <(objdump -h "$stub" | awk 'NF == 7 && $1 ~ /^[0-9]+$/ {print $3, $4}')
args=()
off=$end
for s in osrel:"$tmp/osrel" cmdline:"$tmp/cmdline" linux:"${kernels[0]}" initrd:"${initrds[0]}"; do
	name=${s%%:*}
	file=${s#*:}
	off=$(( (off + align - 1) / align * align ))
	args+=(--add-section ".$name=$file" --change-section-vma ".$name=$(printf '0x%x' "$off")")
	off=$((off + $(stat -c %s "$file")))
done
objcopy "${args[@]}" "$stub" "$out"

# objcopy stamps the PE header with the current time: use SOURCE_DATE_EPOCH instead, and
# clear the optional header's checksum that covered it (UEFI does not check it; sbsign
# writes a new one when the image is signed).
if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
	pe=$(od -An -tu4 -j60 -N4 "$out" | tr -d ' ')
	le32() { printf "$(printf '\\%03o\\%03o\\%03o\\%03o' $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24 & 255)))"; }
	le32 "$SOURCE_DATE_EPOCH" | dd of="$out" bs=1 seek=$((pe + 8)) conv=notrunc status=none
	le32 0 | dd of="$out" bs=1 seek=$((pe + 24 + 64)) conv=notrunc status=none
fi
