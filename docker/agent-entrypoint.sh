#!/bin/bash -p
# Entrypoint of the AgentGate agent image; runs as tini's only child.
#
#   no arguments   validate and prepare, then keep the container alive for `docker exec`
#   -flag ...      arguments for claude: `docker run IMAGE --version` runs `claude --version`
#   a command      validate and prepare, then exec the command as the agent user
#
# `bash -p` (privileged mode) ignores BASH_ENV, ENV and functions exported in the
# environment: nothing the environment names runs before this script's own code.
#
# Configuration (environment; each value is checked before anything changes, see exit 78):
#   AGENT_WORKSPACE        the mounted workspace (default /workspace): an absolute path to a
#                          directory that is not a system directory; used resolved
#   AGENT_USER             the user a root start drops to (default agentgate): never root
#   AGENT_CREDENTIALS_FILE Claude subscription credentials, mounted read-only
#                          (default /run/secrets/claude-credentials.json)
#   CLAUDE_CONFIG_DIR      the CLI's config dir (default ~/.claude): outside the workspace
#   ANTHROPIC_API_KEY, CLAUDE_CODE_OAUTH_TOKEN pass through untouched and are never printed.
#
# Started as root, the entrypoint gives the workspace to AGENT_USER without following a
# symlink, touching a hard-linked file or crossing into another mount, then drops to that user
# with no capabilities left (bounding set cleared) and no_new_privs set.
#
# When it hands over to the workload it writes READY_FILE (the PID and start time of that
# process); agent-healthcheck.sh reports the container starting until then.
#
# Exit codes of its own (a command's exit code is passed through):
#   64 workspace missing   65 workspace not a directory   66 workspace not writable
#   67 credentials file unusable   68 no writable home   69 cannot drop root privileges
#   78 a setting is invalid (AGENT_WORKSPACE, AGENT_USER, CLAUDE_CONFIG_DIR)
#
# The functions are a small library: tests source this file and call them one at a time.
set -Eeuo pipefail

: "${AGENT_WORKSPACE:=/workspace}"
: "${AGENT_USER:=agentgate}"
: "${AGENT_CREDENTIALS_FILE:=/run/secrets/claude-credentials.json}"
: "${AGENT_READY_FILE:=/tmp/agentgate-ready}"

readonly AGENT_EXIT_WORKSPACE_MISSING=64
readonly AGENT_EXIT_WORKSPACE_NOT_DIR=65
readonly AGENT_EXIT_WORKSPACE_NOT_WRITABLE=66
readonly AGENT_EXIT_CREDENTIALS=67
readonly AGENT_EXIT_NO_HOME=68
readonly AGENT_EXIT_PRIVILEGES=69
readonly AGENT_EXIT_CONFIG=78

# Directories a workspace may never be, and trees it may never lie in: giving one of them to
# the agent would hand it the system.
readonly AGENT_SYSTEM_DIRS=" / /bin /boot /dev /etc /home /lib /lib32 /lib64 /libx32 /media /mnt /opt /proc /root /run /sbin /srv /sys /tmp /usr /var "
readonly AGENT_SYSTEM_TREES=" /bin /boot /dev /etc /lib /lib32 /lib64 /libx32 /opt /proc /root /run /sbin /sys /usr /var "

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

# agent_resolve PATH: PATH with every symlink resolved; a missing tail is kept as written.
agent_resolve() {
	local path=$1 tail=""
	while [[ ! -d $path ]]; do
		tail=/${path##*/}$tail
		path=${path%/*}
		[[ -n $path ]] || path=/
	done
	path=$(cd -P -- "$path" && pwd -P)
	path=${path%/}$tail
	printf '%s\n' "${path:-/}"
}

# agent_is_within PATH DIR: PATH is DIR or lies below it.
agent_is_within() {
	[[ $1 == "$2" || $1 == "${2%/}"/* ]]
}

# agent_check_workspace_setting: AGENT_WORKSPACE is absolute and, resolved, no system
# directory. Sets AGENT_WORKSPACE to the resolved path: everything after this uses that.
agent_check_workspace_setting() {
	local ws=$AGENT_WORKSPACE
	if [[ $ws != /* ]]; then
		agent_fail "$AGENT_EXIT_CONFIG" \
			"AGENT_WORKSPACE=$ws is not an absolute path; set it to the mount point, e.g. /workspace"
	fi
	if [[ ! -e $ws ]]; then
		agent_fail "$AGENT_EXIT_WORKSPACE_MISSING" \
			"workspace $ws does not exist; mount one with -v /path/on/host:$ws"
	fi
	if [[ ! -d $ws ]]; then
		agent_fail "$AGENT_EXIT_WORKSPACE_NOT_DIR" \
			"workspace $ws is not a directory; mount a directory there, not a file"
	fi
	local resolved tree
	resolved=$(agent_resolve "$ws")
	if [[ $AGENT_SYSTEM_DIRS == *" $resolved "* ]]; then
		agent_fail "$AGENT_EXIT_CONFIG" \
			"AGENT_WORKSPACE=$ws resolves to $resolved, a system directory; mount the workspace at its own path, e.g. /workspace"
	fi
	for tree in $AGENT_SYSTEM_TREES; do
		if agent_is_within "$resolved" "$tree"; then
			agent_fail "$AGENT_EXIT_CONFIG" \
				"AGENT_WORKSPACE=$ws resolves to $resolved, inside $tree; mount the workspace at its own path, e.g. /workspace"
		fi
	done
	AGENT_WORKSPACE=$resolved
}

# agent_check_user_setting: AGENT_USER exists and is not root. Sets AGENT_UID, AGENT_GID and
# AGENT_HOME from its passwd entry.
agent_check_user_setting() {
	local entry
	if ! entry=$(getent passwd "$AGENT_USER"); then
		agent_fail "$AGENT_EXIT_CONFIG" \
			"AGENT_USER=$AGENT_USER has no passwd entry; leave AGENT_USER unset (agentgate)"
	fi
	IFS=: read -r _ _ AGENT_UID AGENT_GID _ AGENT_HOME _ <<<"$entry"
	if ((AGENT_UID == 0)); then
		agent_fail "$AGENT_EXIT_CONFIG" \
			"AGENT_USER=$AGENT_USER is root, and the agent never runs as root; leave AGENT_USER unset (agentgate)"
	fi
}

# agent_check_config_dir_setting: a CLAUDE_CONFIG_DIR the operator set is absolute and lies
# outside the workspace (the agent and the repository must not be able to plant the CLI's
# settings, and a config dir in the workspace would chmod the host's checkout).
agent_check_config_dir_setting() {
	local dir=${CLAUDE_CONFIG_DIR:-}
	[[ -n $dir ]] || return 0
	if [[ $dir != /* ]]; then
		agent_fail "$AGENT_EXIT_CONFIG" \
			"CLAUDE_CONFIG_DIR=$dir is not an absolute path; unset it (default ~/.claude) or give an absolute path outside the workspace"
	fi
	if agent_is_within "$(agent_resolve "$dir")" "$AGENT_WORKSPACE"; then
		agent_fail "$AGENT_EXIT_CONFIG" \
			"CLAUDE_CONFIG_DIR=$dir lies in the workspace $AGENT_WORKSPACE; unset it (default ~/.claude) or point it at a tmpfs or volume outside the workspace"
	fi
}

# agent_verify_workspace: the workspace is writable by the current user (root is about to give
# it to the agent, so root skips this).
agent_verify_workspace() {
	local ws=$AGENT_WORKSPACE
	if ! agent_is_root && [[ ! -w $ws ]]; then
		agent_fail "$AGENT_EXIT_WORKSPACE_NOT_WRITABLE" \
			"workspace $ws is not writable by uid $(id -u); mount it read-write and owned by uid $(id -u) (or run with --user \$(id -u):\$(id -g))"
	fi
}

# agent_mounts_below DIR: mount points strictly below DIR, one per line, from mountinfo
# (field 5, with its octal escapes for space, tab, newline and backslash decoded).
agent_mounts_below() {
	local dir=$1 _id _parent _devno _root point _rest
	while read -r _id _parent _devno _root point _rest; do
		printf -v point '%b' "$point"
		if [[ $point == "${dir%/}"/* ]]; then
			printf '%s\n' "$point"
		fi
	done </proc/self/mountinfo
}

# agent_glob_quote TEXT: TEXT with find's -path metacharacters escaped.
agent_glob_quote() {
	local text=$1 out="" char i
	for ((i = 0; i < ${#text}; i++)); do
		char=${text:i:1}
		case $char in
		'*' | '?' | '[' | ']' | '\') out+="\\$char" ;;
		*) out+=$char ;;
		esac
	done
	printf '%s' "$out"
}

# agent_prepare_workspace_as_root: give the agent user what it does not own in the workspace.
# find runs from the resolved workspace (so no value is read as an option), never follows a
# symlink and never changes one, skips files with more than one link (a `git clone` of a
# local repository hard-links objects owned elsewhere on the host), prunes every mount point
# below the workspace (-xdev alone misses bind mounts of the same filesystem), and changes
# each entry from its own directory (-execdir) so a path swapped for a symlink meanwhile is
# not followed. Only entries with another owner are touched, so a second start changes nothing.
agent_prepare_workspace_as_root() {
	agent_is_root || return 0
	local ws=$AGENT_WORKSPACE point
	local -a prune=()
	while IFS= read -r point; do
		prune+=(-path "./$(agent_glob_quote "${point#"${ws%/}"/}")" -o)
	done < <(agent_mounts_below "$ws")
	local -a skip=(-type l -o \! -type d -links +1)
	if ((${#prune[@]})); then
		skip=(\( "${prune[@]:0:${#prune[@]}-1}" \) -prune -o "${skip[@]}")
	fi
	if ! (cd -P -- "$ws" && find -P . -xdev \( "${skip[@]}" \) -o \
		\! -user "$AGENT_UID" -execdir chown -h -- "$AGENT_UID:$AGENT_GID" {} + 2>/dev/null); then
		agent_fail "$AGENT_EXIT_WORKSPACE_NOT_WRITABLE" \
			"cannot give $ws to $AGENT_USER (read-only mount or CAP_CHOWN dropped); mount it owned by uid $AGENT_UID or run with --user $AGENT_UID:$AGENT_GID"
	fi
}

# agent_has_capabilities MASK: every capability bit in MASK is in our effective set.
agent_has_capabilities() {
	local key value
	while read -r key value; do
		if [[ $key == CapEff: ]]; then
			(((16#$value & $1) == $1))
			return
		fi
	done </proc/self/status
	return 1
}

# agent_drop_privileges ARGS...: when root, re-run this script as the agent user, with no
# capabilities in any set and no_new_privs, so nothing it runs can regain privileges through
# a setuid or file-capability binary. Clearing the bounding set needs CAP_SETPCAP, and setpriv
# skips that silently without it: so the capabilities are checked first.
agent_drop_privileges() {
	agent_is_root || return 0
	local -a drop=(setpriv "--reuid=$AGENT_UID" "--regid=$AGENT_GID" --init-groups
		--inh-caps=-all --ambient-caps=-all --bounding-set=-all --no-new-privs)
	# CAP_SETGID (6), CAP_SETUID (7), CAP_SETPCAP (8)
	if ! agent_has_capabilities $((1 << 6 | 1 << 7 | 1 << 8)) || ! "${drop[@]}" true 2>/dev/null; then
		agent_fail "$AGENT_EXIT_PRIVILEGES" \
			"started as root without CAP_SETUID, CAP_SETGID and CAP_SETPCAP, so cannot drop to $AGENT_USER with no capabilities left; add --cap-add SETUID --cap-add SETGID --cap-add SETPCAP (and CHOWN), or run with --user $AGENT_UID:$AGENT_GID"
	fi
	export HOME=$AGENT_HOME
	unset BASH_ENV ENV
	exec "${drop[@]}" -- "${BASH_SOURCE[0]}" "$@"
}

# agent_private_dir DIR: DIR exists, is writable and private to us (mode 0700 when we own it).
agent_private_dir() {
	[[ -d $1 ]] || mkdir -p "$1" 2>/dev/null || return 1
	[[ -w $1 ]] || return 1
	if [[ -O $1 ]]; then
		chmod 0700 "$1"
	fi
}

# agent_setup_home: HOME must be writable (the CLI writes ~/.claude.json with a lock dir and a
# rename, and ~/.claude). A UID without a passwd entry gets HOME=/ from Docker: it uses the
# agent's home when that is writable (a tmpfs given to its UID), else a directory under
# TMPDIR for this process tree, and says so.
agent_setup_home() {
	if [[ ! -d ${HOME:-} || ! -w ${HOME:-} ]]; then
		local home=$AGENT_HOME fallback
		fallback=${TMPDIR:-/tmp}/agentgate-home-$(id -u)
		if [[ -n $home && -d $home && -w $home ]]; then
			HOME=$home
		elif agent_private_dir "$fallback"; then
			agent_log "warning: HOME ${HOME:-(unset)} is not writable; using $fallback for this process (add --tmpfs $home:uid=$(id -u),gid=$(id -g) and -e HOME=$home so docker exec sessions get a writable HOME too)"
			HOME=$fallback
		else
			agent_fail "$AGENT_EXIT_NO_HOME" \
				"HOME ${HOME:-(unset)} is not writable and neither is ${TMPDIR:-/tmp}; add --tmpfs $home:uid=$(id -u),gid=$(id -g) (or at least --tmpfs /tmp)"
		fi
		export HOME
	fi
}

# agent_setup_config_dir: the CLI's config dir (checked by agent_check_config_dir_setting)
# exists and is private.
agent_setup_config_dir() {
	local dir=${CLAUDE_CONFIG_DIR:-$HOME/.claude}
	if ! agent_private_dir "$dir"; then
		if agent_is_within "$AGENT_CREDENTIALS_FILE" "$dir"; then
			agent_fail "$AGENT_EXIT_CREDENTIALS" \
				"credentials mounted at $AGENT_CREDENTIALS_FILE make Docker create $dir owned by root, so the CLI cannot write there; mount them at /run/secrets/claude-credentials.json instead"
		fi
		agent_fail "$AGENT_EXIT_NO_HOME" \
			"CLI config dir $dir is not writable by uid $(id -u); mount a writable tmpfs or volume on HOME (or set CLAUDE_CONFIG_DIR outside the workspace)"
	fi
	CLAUDE_CONFIG_DIR_RESOLVED=$dir
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
	# The CLI reads credentials from its config dir: link them there.
	local linked=$CLAUDE_CONFIG_DIR_RESOLVED/.credentials.json
	if [[ ! -e $linked ]]; then
		ln -s "$file" "$linked"
	fi
}

# agent_git_global ARGS...: `git config --global ARGS...` run from /, with a time limit:
# nothing in the workspace (a FIFO or garbage at .git/config) can hang or fail the start.
agent_git_global() {
	(cd / && timeout 10 git config --global "$@")
}

# agent_setup_git: git settings live in the agent's own global config, never the system one,
# so a root `git` in the workspace keeps refusing a repository the agent controls (its hooks,
# fsmonitor, pager): a default identity (GIT_AUTHOR_* and GIT_COMMITTER_* override it), and
# trust for a workspace the agent does not own. On a fresh HOME (a tmpfs: the usual case) the
# identity is written without starting git at all: each git process costs milliseconds of
# every start.
agent_setup_git() {
	local line has_name=0 has_email=0 trusted=0
	if [[ -e $HOME/.gitconfig ]]; then
		while IFS= read -r line; do
			case $line in
			user.name | "user.name "*) has_name=1 ;;
			user.email | "user.email "*) has_email=1 ;;
			"safe.directory $AGENT_WORKSPACE") trusted=1 ;;
			esac
		done < <(agent_git_global --get-regexp '^(user\.name|user\.email|safe\.directory)$' \
			2>/dev/null || :)
	elif [[ -z ${GIT_AUTHOR_NAME:-}${GIT_AUTHOR_EMAIL:-} ]] &&
		printf '[user]\n\tname = AgentGate Agent\n\temail = agent@agentgate.invalid\n' \
			2>/dev/null >"$HOME/.gitconfig"; then
		has_name=1 has_email=1
	fi
	if [[ -z ${GIT_AUTHOR_NAME:-} ]] && ((!has_name)); then
		agent_git_global user.name "AgentGate Agent" || agent_log "warning: git has no user.name"
	fi
	if [[ -z ${GIT_AUTHOR_EMAIL:-} ]] && ((!has_email)); then
		agent_git_global user.email "agent@agentgate.invalid" ||
			agent_log "warning: git has no user.email"
	fi
	if ((!trusted)) && [[ ! -O $AGENT_WORKSPACE ]]; then
		agent_git_global --add safe.directory "$AGENT_WORKSPACE" ||
			agent_log "warning: could not trust $AGENT_WORKSPACE in $HOME/.gitconfig; git will refuse it"
	fi
}

# agent_start_time PID: field 22 of /proc/PID/stat, read after the last ')' (the command
# name may hold spaces and parentheses).
agent_start_time() {
	local stat
	local -a fields
	read -r stat <"/proc/$1/stat"
	read -r -a fields <<<"${stat##*) }"
	printf '%s\n' "${fields[19]}"
}

# agent_mark_ready: record this process (which becomes the workload by exec) as the one the
# health check must find alive. PID and start time together never match a stale marker.
agent_mark_ready() {
	if ! printf '%s %s\n' "$$" "$(agent_start_time $$)" 2>/dev/null >"$AGENT_READY_FILE"; then
		agent_fail "$AGENT_EXIT_NO_HOME" \
			"cannot write the ready marker $AGENT_READY_FILE; add --tmpfs ${AGENT_READY_FILE%/*}"
	fi
}

_main() {
	rm -f -- "$AGENT_READY_FILE" 2>/dev/null || :
	agent_check_workspace_setting
	agent_check_user_setting
	agent_check_config_dir_setting
	agent_verify_workspace
	if agent_is_root; then
		agent_prepare_workspace_as_root
		agent_drop_privileges "$@"
	fi
	agent_setup_home
	agent_setup_config_dir
	agent_check_credentials
	agent_setup_git
	if (($# == 0)); then
		# Keep-alive for docker exec. tini delivers SIGTERM straight to sleep, which dies at
		# once: the container stops in milliseconds with exit status 143 (128 + SIGTERM).
		set -- sleep infinity
	elif [[ $1 == -* ]]; then
		set -- claude "$@"
	fi
	agent_mark_ready
	exec -- "$@"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	_main "$@"
fi
