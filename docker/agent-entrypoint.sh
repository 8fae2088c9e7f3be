#!/usr/bin/env bash
# Entrypoint of the AgentGate agent image; runs as tini's only child.
#
#   no arguments   validate and prepare, then keep the container alive for `docker exec`
#   a command      validate and prepare, then exec the command as the agent user
#
# Configuration (environment):
#   AGENT_WORKSPACE        the mounted workspace (default /workspace)
#   AGENT_USER             the unprivileged user to drop to from root (default agentgate)
#   AGENT_CREDENTIALS_FILE Claude subscription credentials, mounted read-only
#                          (default ~/.claude/.credentials.json)
#   ANTHROPIC_API_KEY, CLAUDE_CODE_OAUTH_TOKEN pass through untouched and are never printed.
#
# Exit codes of its own (a command's exit code is passed through):
#   64 workspace missing   65 workspace not a directory   66 workspace not writable
#   67 credentials file unusable   68 no writable home   69 cannot drop root privileges
#
# The functions are a small library: tests source this file and call them one at a time.
set -Eeuo pipefail

: "${AGENT_WORKSPACE:=/workspace}"
: "${AGENT_USER:=agentgate}"
: "${HOME:=/home/$AGENT_USER}"
: "${AGENT_CREDENTIALS_FILE:=$HOME/.claude/.credentials.json}"

readonly AGENT_EXIT_WORKSPACE_MISSING=64
readonly AGENT_EXIT_WORKSPACE_NOT_DIR=65
readonly AGENT_EXIT_WORKSPACE_NOT_WRITABLE=66
readonly AGENT_EXIT_CREDENTIALS=67
readonly AGENT_EXIT_NO_HOME=68
readonly AGENT_EXIT_PRIVILEGES=69

agent_log() {
	printf 'agent-entrypoint: %s\n' "$*" >&2
}

# agent_fail CODE MESSAGE: one line naming the problem and the fix, then exit CODE.
agent_fail() {
	local code=$1
	shift
	agent_log "error: $*"
	exit "$code"
}

# EUID is what `id -u` prints, without a fork (this runs on every container start).
agent_is_root() {
	((EUID == 0))
}

# agent_verify_workspace: the workspace exists, is a directory and (unless we are root and
# about to fix ownership) is writable by the current user.
agent_verify_workspace() {
	local ws=$AGENT_WORKSPACE
	if [[ ! -e $ws ]]; then
		agent_fail "$AGENT_EXIT_WORKSPACE_MISSING" \
			"workspace $ws does not exist; mount one with -v /path/on/host:$ws"
	fi
	if [[ ! -d $ws ]]; then
		agent_fail "$AGENT_EXIT_WORKSPACE_NOT_DIR" \
			"workspace $ws is not a directory; mount a directory there, not a file"
	fi
	if ! agent_is_root && [[ ! -w $ws ]]; then
		agent_fail "$AGENT_EXIT_WORKSPACE_NOT_WRITABLE" \
			"workspace $ws is not writable by uid $(id -u); mount it read-write and owned by uid $(id -u) (or run with --user \$(id -u):\$(id -g))"
	fi
}

# agent_prepare_workspace_as_root: give the agent user what it does not own in the workspace.
# Only files with another owner are touched, so a second start changes nothing.
agent_prepare_workspace_as_root() {
	agent_is_root || return 0
	local ws=$AGENT_WORKSPACE
	if ! find "$ws" -xdev \! -user "$AGENT_USER" -exec chown "$AGENT_USER:$AGENT_USER" {} + 2>/dev/null; then
		agent_fail "$AGENT_EXIT_WORKSPACE_NOT_WRITABLE" \
			"cannot give $ws to $AGENT_USER (read-only mount or CAP_CHOWN dropped); mount it owned by uid $(id -u "$AGENT_USER") or run with --user $(id -u "$AGENT_USER"):$(id -g "$AGENT_USER")"
	fi
}

# agent_drop_privileges ARGS...: when root, re-run this script as the agent user. setpriv
# changes ids with the capabilities root already has; no setuid helper is involved.
agent_drop_privileges() {
	agent_is_root || return 0
	if ! setpriv --reuid="$AGENT_USER" --regid="$AGENT_USER" --init-groups true 2>/dev/null; then
		agent_fail "$AGENT_EXIT_PRIVILEGES" \
			"started as root without CAP_SETUID/CAP_SETGID, so cannot drop to $AGENT_USER; run with --user $(id -u "$AGENT_USER"):$(id -g "$AGENT_USER") instead"
	fi
	HOME=$(getent passwd "$AGENT_USER" | cut -d: -f6)
	export HOME
	exec setpriv --reuid="$AGENT_USER" --regid="$AGENT_USER" --init-groups -- "${BASH_SOURCE[0]}" "$@"
}

# agent_private_dir DIR: DIR exists, is writable and private to us (mode 0700 when we own it).
agent_private_dir() {
	[[ -d $1 ]] || mkdir -p "$1" 2>/dev/null || return 1
	[[ -w $1 ]] || return 1
	if [[ -O $1 ]]; then
		chmod 0700 "$1"
	fi
}

# agent_setup_home: HOME and the CLI's config dir must be writable (the CLI writes
# .claude.json with a lock dir and a rename). Under --read-only without a tmpfs on HOME, fall
# back to a directory under TMPDIR for this process tree and say so. The config dir is not
# ~/.claude: that is where the credentials file is mounted, and Docker creates a bind
# mount's missing parents owned by root, so the agent could not write there.
agent_setup_home() {
	local home=$HOME
	if [[ ! -d $HOME || ! -w $HOME ]]; then
		local fallback
		fallback=${TMPDIR:-/tmp}/agentgate-home-$(id -u)
		if ! agent_private_dir "$fallback"; then
			agent_fail "$AGENT_EXIT_NO_HOME" \
				"HOME $HOME is not writable and neither is ${TMPDIR:-/tmp}; add --tmpfs $HOME:uid=$(id -u),gid=$(id -g) (or at least --tmpfs /tmp)"
		fi
		agent_log "warning: HOME $HOME is not writable; using $fallback for this process (add --tmpfs $HOME:uid=$(id -u),gid=$(id -g) so docker exec sessions get a writable HOME too)"
		HOME=$fallback
		export HOME
	fi
	: "${CLAUDE_CONFIG_DIR:=$HOME/.config/claude}"
	# A config dir under the old HOME moves with it.
	if [[ $HOME != "$home" && $CLAUDE_CONFIG_DIR == "$home"/* ]]; then
		CLAUDE_CONFIG_DIR=$HOME/${CLAUDE_CONFIG_DIR#"$home"/}
	fi
	if ! agent_private_dir "$CLAUDE_CONFIG_DIR"; then
		agent_fail "$AGENT_EXIT_NO_HOME" \
			"CLI config dir $CLAUDE_CONFIG_DIR is not writable by uid $(id -u); point CLAUDE_CONFIG_DIR at a tmpfs or volume"
	fi
	export CLAUDE_CONFIG_DIR
}

# agent_check_credentials: a mounted subscription credentials file must be a readable JSON
# file; it should not be world-readable. Its content is never printed.
agent_check_credentials() {
	local file=$AGENT_CREDENTIALS_FILE
	[[ -e $file ]] || return 0
	if [[ -d $file ]]; then
		agent_fail "$AGENT_EXIT_CREDENTIALS" \
			"credentials $file is a directory; mount the file itself: -v ~/.claude/.credentials.json:$file:ro"
	fi
	if [[ ! -r $file ]]; then
		agent_fail "$AGENT_EXIT_CREDENTIALS" \
			"credentials $file is not readable by uid $(id -u); chmod 0640 it and give its group to gid $(id -g), or run with --user matching its owner"
	fi
	# Slurp: exactly one JSON object. `jq -e 'type == "object"'` alone accepts an empty file
	# (jq 1.6 exits 0 when there is no output) and judges only the last of several documents.
	if ! jq -e -s 'length == 1 and (.[0] | type == "object")' "$file" >/dev/null 2>&1; then
		agent_fail "$AGENT_EXIT_CREDENTIALS" \
			"credentials $file is not a JSON object; mount the .credentials.json that 'claude login' wrote"
	fi
	local mode
	mode=$(stat -c %a "$file")
	if ((8#$mode & 8#004)); then
		agent_log "warning: credentials $file is world-readable (mode $mode); chmod 0600 it on the host"
	fi
	# The CLI reads credentials from its config dir; link them when that dir moved.
	local linked=$CLAUDE_CONFIG_DIR/.credentials.json
	if [[ ! -e $linked ]]; then
		ln -s "$file" "$linked"
	fi
}

# agent_setup_git: the system gitconfig (baked into the image) trusts /workspace and holds a
# default identity; a workspace elsewhere is trusted through the user's global config.
# One `git config` read for all three keys: each git process costs milliseconds of every start.
agent_setup_git() {
	local line trusted=0 has_name=0 has_email=0
	while IFS= read -r line; do
		case $line in
		"safe.directory $AGENT_WORKSPACE") trusted=1 ;;
		user.name | "user.name "*) has_name=1 ;;
		user.email | "user.email "*) has_email=1 ;;
		esac
	done < <(git config --get-regexp '^(safe\.directory|user\.name|user\.email)$' 2>/dev/null || :)
	if ((!trusted)); then
		git config --global --add safe.directory "$AGENT_WORKSPACE"
	fi
	if [[ -z ${GIT_AUTHOR_NAME:-} ]] && ((!has_name)); then
		git config --global user.name "AgentGate Agent"
	fi
	if [[ -z ${GIT_AUTHOR_EMAIL:-} ]] && ((!has_email)); then
		git config --global user.email "agent@agentgate.invalid"
	fi
}

_main() {
	agent_verify_workspace
	if agent_is_root; then
		agent_prepare_workspace_as_root
		agent_drop_privileges "$@"
	fi
	agent_setup_home
	agent_check_credentials
	agent_setup_git
	if (($# == 0)); then
		# Keep-alive for docker exec. tini delivers SIGTERM straight to sleep, which dies at
		# once: the container stops in milliseconds with exit status 143 (128 + SIGTERM).
		set -- sleep infinity
	fi
	exec "$@"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	_main "$@"
fi
