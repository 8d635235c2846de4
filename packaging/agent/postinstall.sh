#!/bin/sh
# Reload units. A fresh install starts nothing: the admin enables and starts the agent
# once agent.yaml is filled. An upgrade restarts a running agent on the new binary
# (try-restart: only when running), except when the agent itself runs this upgrade
# (its install commands have PATCHGATE_DEPLOYMENT set): restarting would kill the
# package manager it started; that agent runs the new binary at its next start.
# Arguments: dpkg "configure OLD-VERSION", rpm "1" (install) or "2" (upgrade).
set -e
if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	if [ -z "${PATCHGATE_DEPLOYMENT:-}" ]; then
		systemctl try-restart patchgate-agent.service >/dev/null 2>&1 || true
	fi
fi
