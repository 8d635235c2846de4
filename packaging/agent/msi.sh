#!/bin/sh
# msi.sh BINARY VERSION OUTDIR: the Windows agent's MSI (amd64) from the GOOS=windows
# build BINARY, with wixl (Debian: apt-get install wixl msitools). `make agent-msi`
# runs it. VERSION is the package version (e.g. 1.4.2 or 0.0.0+g1234abc); the MSI gets
# its leading numeric x.y.z, as Windows Installer wants (0.0.0 when there is none).
set -eu
if [ $# -ne 3 ]; then
	echo "usage: $0 BINARY VERSION OUTDIR" >&2
	exit 2
fi
bin=$1 version=$2 out=$3
command -v wixl >/dev/null || { echo "msi.sh: wixl is not installed (apt-get install wixl)" >&2; exit 1; }
[ -f "$bin" ] || { echo "msi.sh: $bin: no such file" >&2; exit 1; }
# x.y.z within Windows Installer's limits (255.255.65535), padded; else 0.0.0 (a
# commit hash that starts with digits is not a version).
numeric=$(printf '%s\n' "$version" | sed -nE 's/^([0-9]+(\.[0-9]+){0,2})([.~+-].*)?$/\1/p' |
	awk -F. '{ x = $1 + 0; y = $2 + 0; z = $3 + 0; if (x > 255 || y > 255 || z > 65535) print "0.0.0"; else print x "." y "." z }')
[ -n "$numeric" ] || numeric=0.0.0
mkdir -p "$out"
msi="$(cd "$out" && pwd)/patchgate-agent_${version}_amd64.msi"
# wixl finds sources relative to the working directory only (no absolute paths).
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$(dirname "$0")/patchgate-agent.wxs" "$work/"
cp "$bin" "$work/patchgate-agent.exe"
(cd "$work" && wixl -a x64 -D Binary=patchgate-agent.exe -D Version="$numeric" -o "$msi" patchgate-agent.wxs)
echo "$msi"
