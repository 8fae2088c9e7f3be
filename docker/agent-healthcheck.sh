#!/bin/sh
# Health check of the AgentGate agent image: cheap enough to run every 30 s.
#
# Checks that Node.js runs, that the claude CLI is installed and executable (without
# starting its 245 MB binary), and that the workspace is a writable directory. Prints the
# first failing check and exits 1; prints "healthy" and exits 0 otherwise.
# POSIX sh: Docker runs it in a fresh process every interval; dash/busybox start fastest.
set -eu

workspace=${AGENT_WORKSPACE:-/workspace}

unhealthy() {
	echo "unhealthy: $*"
	exit 1
}

node -e 0 2>/dev/null || unhealthy "node does not run"
# `command -v` finds only executable files, so this covers "missing" and "not executable".
command -v claude >/dev/null || unhealthy "no executable claude on PATH ($PATH)"
[ -d "$workspace" ] || unhealthy "workspace $workspace is missing or not a directory"
[ -w "$workspace" ] || unhealthy "workspace $workspace is not writable by uid $(id -u)"
echo healthy
