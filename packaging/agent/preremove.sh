#!/bin/sh
# Stop and disable the agent when the package is removed; not on an upgrade (dpkg
# "upgrade NEW-VERSION", rpm "1"), which would leave the upgraded agent disabled.
# Arguments: dpkg "remove", rpm "0" on removal.
set -e
case "${1:-}" in
remove | 0) ;;
*) exit 0 ;;
esac
if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
	systemctl stop patchgate-agent.service >/dev/null 2>&1 || true
	systemctl disable patchgate-agent.service >/dev/null 2>&1 || true
fi
