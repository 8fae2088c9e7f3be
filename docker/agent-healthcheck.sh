#!/bin/sh
# Health check of the AgentGate agent image: cheap enough to run every 30 s.
#
# Healthy means: the entrypoint has finished and the process it handed over to is still the
# one running (its ready marker names that process by PID and start time), Node.js runs, the
# claude CLI is installed and executable (without starting its 245 MB binary), and the
# workspace is a writable directory. Prints the first failing check and exits 1; prints
# "healthy" and exits 0 otherwise.
#
# Started as root (after a root start, Docker runs health checks as the container's user),
# it first drops to the agent user with no capabilities and no_new_privs: nothing the agent
# can write (the workspace, /tmp, its HOME) is ever read or run by a root process.
# POSIX sh: Docker runs it in a fresh process every interval; dash/busybox start fastest.
set -eu

workspace=${AGENT_WORKSPACE:-/workspace}
ready_file=${AGENT_READY_FILE:-/tmp/agentgate-ready}
agent=${AGENT_USER:-agentgate}

unhealthy() {
	echo "unhealthy: $*"
	exit 1
}

# The effective UID without a fork: the `Uid:` line of our own status.
while read -r key _ euid _; do
	[ "$key" != "Uid:" ] || break
done </proc/self/status

if [ "$euid" = 0 ]; then
	uid=$(id -u "$agent" 2>/dev/null) || uid=0
	[ "$uid" != 0 ] || unhealthy "AGENT_USER=$agent is not an unprivileged user"
	set -- setpriv --reuid="$uid" --regid="$(id -g "$agent")" --init-groups \
		--inh-caps=-all --ambient-caps=-all --bounding-set=-all --no-new-privs
	"$@" /bin/sh -c : 2>/dev/null ||
		unhealthy "running as root without CAP_SETUID/CAP_SETGID/CAP_SETPCAP: cannot drop to $agent"
	exec "$@" -- "$0"
fi

[ -r "$ready_file" ] || unhealthy "starting: the entrypoint has not finished ($ready_file is missing)"
read -r pid started <"$ready_file" || unhealthy "the ready marker $ready_file is empty"
{ read -r stat <"/proc/$pid/stat"; } 2>/dev/null || unhealthy "the entrypoint's process $pid has exited"
# shellcheck disable=SC2086 # split the fields after the command name on purpose
set -- ${stat##*) }
[ "${20:-}" = "$started" ] || unhealthy "the ready marker $ready_file is stale (pid $pid was reused)"

node -e 0 2>/dev/null || unhealthy "node does not run"
# `command -v` finds only executable files, so this covers "missing" and "not executable".
command -v claude >/dev/null || unhealthy "no executable claude on PATH ($PATH)"
[ -d "$workspace" ] || unhealthy "workspace $workspace is missing or not a directory"
[ -w "$workspace" ] || unhealthy "workspace $workspace is not writable by uid $euid"
echo healthy
