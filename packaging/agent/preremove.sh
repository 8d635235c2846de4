#!/bin/sh
set -e
if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
	systemctl stop patchgate-agent.service >/dev/null 2>&1 || true
	systemctl disable patchgate-agent.service >/dev/null 2>&1 || true
fi
