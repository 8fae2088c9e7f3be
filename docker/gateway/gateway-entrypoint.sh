#!/usr/bin/env bash
# Entrypoint of the AgentGate gateway image; runs as tini's only child and supervises both
# daemons:
#   nginx on :8080   model API: POST /v1/messages and /v1/messages/count_tokens go to
#                    GATEWAY_UPSTREAM with the real credential; everything else gets 403
#   squid on :3128   forward proxy: plain HTTP to port 80 and CONNECT to port 443, for the
#                    allowed domains only
# It validates the environment, writes both configurations into a private directory under
# /tmp (a tmpfs under --read-only), starts both daemons in the foreground, exits 70 as soon as
# either ends, and stops both at once on SIGTERM or SIGINT (exit 0).
#
# Configuration (environment; docker/gateway/README.md is the manual):
#   GATEWAY_UPSTREAM                model API base URL (default https://api.anthropic.com)
#   exactly one credential:
#     ANTHROPIC_API_KEY, ANTHROPIC_API_KEY_FILE            sent upstream as x-api-key
#     CLAUDE_CODE_OAUTH_TOKEN, CLAUDE_CODE_OAUTH_TOKEN_FILE sent as authorization: Bearer
#   GATEWAY_ALLOWED_DOMAINS         forward-proxy allowlist, comma- or space-separated;
#                                   .example.com allows example.com and its subdomains;
#                                   "none" allows nothing (default: GATEWAY_DEFAULT_DOMAINS)
#   GATEWAY_CA_BUNDLE               CA bundle for the upstream's TLS (default the system one)
#   GATEWAY_API_SOCKET              also serve the model API on this Unix socket (default
#                                   none), for sandboxes with no network at all (gVisor)
#   GATEWAY_TEMPLATE_DIR            where the config templates are (set by tests only)
#
# Exit codes:
#   64 no credential, or more than one      65 the credential is unusable
#   66 GATEWAY_ALLOWED_DOMAINS malformed    67 GATEWAY_UPSTREAM malformed, or no nameserver
#   68 GATEWAY_CA_BUNDLE unusable           69 no writable directory for the configuration
#                                              or for GATEWAY_API_SOCKET
#   70 nginx or squid ended (their own log lines above say why)
#
# The credential is never printed, logged or passed on a command line; the daemons do not
# inherit it in their environment; it is written only into nginx's config file (mode 0600).
# The functions are a small library: tests source this file and call them one at a time.
set -Eeuo pipefail

# Well-known code hosts. The model API is not here: the sandbox reaches it through :8080 with
# the gateway's key; through the proxy it could use a key of its own (say, to upload the
# workspace to another account). Package registries are not here either: the operator adds
# the ones a site uses (docker/gateway/README.md says how).
readonly GATEWAY_DEFAULT_DOMAINS=".github.com .githubusercontent.com .gitlab.com .bitbucket.org"
readonly GATEWAY_CREDENTIAL_NAMES=(ANTHROPIC_API_KEY ANTHROPIC_API_KEY_FILE
	CLAUDE_CODE_OAUTH_TOKEN CLAUDE_CODE_OAUTH_TOKEN_FILE)

: "${GATEWAY_UPSTREAM:=https://api.anthropic.com}"
: "${GATEWAY_CA_BUNDLE:=/etc/ssl/certs/ca-certificates.crt}"
: "${GATEWAY_TEMPLATE_DIR:=/usr/local/share/agentgate-gateway}"
GATEWAY_RUNTIME_DIR=${TMPDIR:-/tmp}/agentgate-gateway

readonly GATEWAY_EXIT_NO_CREDENTIAL=64
readonly GATEWAY_EXIT_CREDENTIAL=65
readonly GATEWAY_EXIT_DOMAINS=66
readonly GATEWAY_EXIT_UPSTREAM=67
readonly GATEWAY_EXIT_CA_BUNDLE=68
readonly GATEWAY_EXIT_RUNTIME_DIR=69
readonly GATEWAY_EXIT_DAEMON=70

gateway_log() {
	printf 'gateway-entrypoint: %s\n' "$*" >&2
}

# gateway_fail CODE MESSAGE: one line naming the problem and the fix, then exit CODE.
gateway_fail() {
	local code=$1
	shift
	gateway_log "error: $*"
	exit "$code"
}

# gateway_read_credential: exactly one of GATEWAY_CREDENTIAL_NAMES is set (empty counts as
# unset: compose passes unset host variables as empty). Sets GATEWAY_X_API_KEY or
# GATEWAY_AUTHORIZATION (the other stays empty) and GATEWAY_CREDENTIAL_SOURCE, then unsets
# every credential variable so that no child process inherits one.
gateway_read_credential() {
	local name set=() value
	for name in "${GATEWAY_CREDENTIAL_NAMES[@]}"; do
		[[ -z ${!name:-} ]] || set+=("$name")
	done
	if ((${#set[@]} == 0)); then
		gateway_fail "$GATEWAY_EXIT_NO_CREDENTIAL" \
			"no credential: set exactly one of ANTHROPIC_API_KEY_FILE, CLAUDE_CODE_OAUTH_TOKEN_FILE (a mounted secret, e.g. /run/secrets/<name>), ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN"
	fi
	if ((${#set[@]} > 1)); then
		gateway_fail "$GATEWAY_EXIT_NO_CREDENTIAL" \
			"more than one credential is set (${set[*]}); set exactly one of them"
	fi
	name=${set[0]}
	if [[ $name == *_FILE ]]; then
		local file=${!name}
		if [[ ! -f $file || ! -r $file ]]; then
			gateway_fail "$GATEWAY_EXIT_CREDENTIAL" \
				"$name=$file is not a file readable by uid $(id -u); mount the secret there read-only, readable by that uid"
		fi
		value=$(<"$file")
	else
		value=${!name}
	fi
	value=${value%$'\r'} # a secret file saved with CRLF line ends
	# A header token (RFC 7235 token68): also what keeps the value from breaking nginx's config.
	local token='^[A-Za-z0-9._~+/=-]+$'
	if [[ ! $value =~ $token ]]; then
		gateway_fail "$GATEWAY_EXIT_CREDENTIAL" \
			"$name holds something other than one key or token (empty, spaces, quotes or other characters a header cannot carry); put the bare key or token there"
	fi
	GATEWAY_X_API_KEY=
	GATEWAY_AUTHORIZATION=
	if [[ $name == ANTHROPIC_API_KEY* ]]; then
		GATEWAY_X_API_KEY=$value
	else
		GATEWAY_AUTHORIZATION="Bearer $value"
	fi
	GATEWAY_CREDENTIAL_SOURCE=$name
	unset "${GATEWAY_CREDENTIAL_NAMES[@]}"
}

# gateway_is_domain NAME: a DNS name of two labels or more, lowercase, optionally with a
# leading dot; not an IP address (the last label holds a letter), not localhost.
gateway_is_domain() {
	local label='[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?'
	local pattern="^\\.?($label\\.)+$label\$"
	[[ ${#1} -le 254 && $1 =~ $pattern && ${1##*.} == *[a-z]* ]] || return 1
	[[ ${1#.} != localhost && $1 != *.localhost ]]
}

# gateway_parse_domains: GATEWAY_ALLOWED_DOMAINS (unset or empty: the defaults; "none":
# nothing) into the array GATEWAY_DOMAINS, lowercased and validated.
gateway_parse_domains() {
	local raw=${GATEWAY_ALLOWED_DOMAINS:-$GATEWAY_DEFAULT_DOMAINS} entry entries=()
	GATEWAY_DOMAINS=()
	[[ ${raw,,} != none ]] || return 0
	read -r -a entries <<<"${raw//[$',\n\t']/ }"
	if ((${#entries[@]} == 0)); then
		gateway_fail "$GATEWAY_EXIT_DOMAINS" \
			"GATEWAY_ALLOWED_DOMAINS lists no domain; list domains (example.com, .example.com), set it to none to allow nothing, or unset it for the defaults"
	fi
	for entry in "${entries[@]}"; do
		entry=${entry,,}
		if ! gateway_is_domain "$entry"; then
			gateway_fail "$GATEWAY_EXIT_DOMAINS" \
				"GATEWAY_ALLOWED_DOMAINS: '$entry' is not a domain name; list names like example.com, or .example.com for it and its subdomains, separated by commas or spaces (no schemes, ports, paths, IP addresses, wildcards or localhost)"
		fi
		GATEWAY_DOMAINS+=("$entry")
	done
}

# gateway_squid_domains: GATEWAY_DOMAINS one per line as squid's dstdomain reads them, without
# duplicates and without the names a ".parent" entry already covers (squid warns about both).
gateway_squid_domains() {
	local domain parent covered
	for domain in "${GATEWAY_DOMAINS[@]}"; do
		covered=0
		for parent in "${GATEWAY_DOMAINS[@]}"; do
			if [[ $parent == .* && $domain != "$parent" && (.$domain == "$parent" || $domain == *"$parent") ]]; then
				covered=1
			fi
		done
		((covered)) || printf '%s\n' "$domain"
	done | sort -u
}

# gateway_parse_upstream: GATEWAY_UPSTREAM (scheme, host, optional port and path prefix) into
# GATEWAY_UPSTREAM_BASE (what nginx proxies to), GATEWAY_UPSTREAM_AUTHORITY (the Host header)
# and GATEWAY_UPSTREAM_HOST (the TLS server name). Only characters that are safe in nginx's
# config pass: no userinfo, query, fragment, quotes or '$'.
gateway_parse_upstream() {
	local label='[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?'
	local host="(($label\.)*$label|\[[0-9A-Fa-f:.]+\])"
	local pattern="^(https?)://$host(:([0-9]{1,5}))?(/[A-Za-z0-9._~%/-]*)?\$"
	if [[ ! $GATEWAY_UPSTREAM =~ $pattern ]] || ((10#${BASH_REMATCH[7]:-443} < 1 || 10#${BASH_REMATCH[7]:-443} > 65535)); then
		gateway_fail "$GATEWAY_EXIT_UPSTREAM" \
			"GATEWAY_UPSTREAM is not an http(s) base URL; set it like https://api.anthropic.com (scheme, host, optional :port and /path; no user, query or fragment)"
	fi
	local scheme=${BASH_REMATCH[1]} host=${BASH_REMATCH[2],,} port=${BASH_REMATCH[7]} path=${BASH_REMATCH[8]%/}
	local default_port=443
	[[ $scheme == https ]] || default_port=80
	GATEWAY_UPSTREAM_HOST=$host
	GATEWAY_UPSTREAM_AUTHORITY=$host
	if [[ -n $port && $((10#$port)) != "$default_port" ]]; then
		GATEWAY_UPSTREAM_AUTHORITY=$host:$((10#$port))
	fi
	GATEWAY_UPSTREAM_BASE=$scheme://$GATEWAY_UPSTREAM_AUTHORITY$path
	if [[ $scheme == http ]]; then
		gateway_log "warning: GATEWAY_UPSTREAM is plain http: the credential crosses that network unencrypted"
	fi
}

# gateway_nameservers [RESOLV_CONF]: GATEWAY_RESOLVERS, the nameservers nginx asks for the
# upstream's address at request time (Docker's 127.0.0.11, a cluster DNS...).
gateway_nameservers() {
	local file=${1:-/etc/resolv.conf} key address _ found=()
	if [[ -r $file ]]; then
		while read -r key address _; do
			# nginx takes no IPv6 zone index (fe80::1%eth0): such a server is skipped.
			[[ $key == nameserver && -n $address && $address != *%* ]] || continue
			[[ $address != *:* ]] || address="[$address]"
			found+=("$address")
		done <"$file"
	fi
	if ((${#found[@]} == 0)); then
		gateway_fail "$GATEWAY_EXIT_UPSTREAM" \
			"no usable nameserver in $file to resolve GATEWAY_UPSTREAM's host; run the gateway on a network with DNS (a user-defined Docker network has one)"
	fi
	GATEWAY_RESOLVERS=${found[*]}
}

# gateway_check_ca_bundle: GATEWAY_CA_BUNDLE is a readable file holding a PEM certificate.
gateway_check_ca_bundle() {
	if [[ ! -f $GATEWAY_CA_BUNDLE || ! -r $GATEWAY_CA_BUNDLE ]] ||
		! grep -q -- '-----BEGIN CERTIFICATE-----' "$GATEWAY_CA_BUNDLE"; then
		gateway_fail "$GATEWAY_EXIT_CA_BUNDLE" \
			"GATEWAY_CA_BUNDLE=$GATEWAY_CA_BUNDLE is not a readable PEM certificate bundle; mount the bundle read-only (readable by uid $(id -u)) and point GATEWAY_CA_BUNDLE at it"
	fi
}

# gateway_prepare_runtime_dir: a private directory for configs, pid file and nginx's buffers.
gateway_prepare_runtime_dir() {
	local dir=$GATEWAY_RUNTIME_DIR sub
	for sub in "" /nginx /nginx/client_body /nginx/proxy /nginx/fastcgi /nginx/uwsgi /nginx/scgi; do
		if ! { [[ -d $dir$sub ]] || mkdir -m 0700 "$dir$sub" 2>/dev/null; } || [[ ! -w $dir$sub ]]; then
			gateway_fail "$GATEWAY_EXIT_RUNTIME_DIR" \
				"cannot write $dir$sub for the daemons' configuration; give the container a writable /tmp (--tmpfs /tmp)"
		fi
	done
}

# gateway_api_socket_listen: nginx's listen directive for GATEWAY_API_SOCKET (empty without
# one). The socket's directory is shared with the sandbox (a volume): it must be ours to write,
# and a socket left by an earlier run is removed, or nginx could not bind.
gateway_api_socket_listen() {
	local socket=${GATEWAY_API_SOCKET:-}
	GATEWAY_API_SOCKET_LISTEN=""
	[[ -n $socket ]] || return 0
	local unsafe=0
	case $socket in
	/*[[:space:]]* | *";"* | *"'"* | *'"'* | *"{"* | *"}"*) unsafe=1 ;;
	/*) ;;
	*) unsafe=1 ;;
	esac
	if ((unsafe)); then
		gateway_fail "$GATEWAY_EXIT_RUNTIME_DIR" \
			"GATEWAY_API_SOCKET=$socket is not an absolute path without spaces, quotes, braces or semicolons; use e.g. /run/agentgate-gateway/api.sock"
	fi
	if [[ ! -d ${socket%/*}/ || ! -w ${socket%/*}/ ]] || ! rm -f -- "$socket" 2>/dev/null; then
		gateway_fail "$GATEWAY_EXIT_RUNTIME_DIR" \
			"cannot create GATEWAY_API_SOCKET=$socket; mount a volume at ${socket%/*} writable by uid $(id -u) (a new named volume at /run/agentgate-gateway is)"
	fi
	GATEWAY_API_SOCKET_LISTEN="listen unix:$socket;"
}

# gateway_render TEMPLATE OUTPUT NAME=VALUE...: TEMPLATE with every @NAME@ replaced by VALUE,
# written to OUTPUT readable by us only (nginx's config holds the credential).
gateway_render() {
	local template=$1 output=$2 text pair
	shift 2
	text=$(<"$template")
	for pair in "$@"; do
		text=${text//"@${pair%%=*}@"/"${pair#*=}"}
	done
	(
		umask 077
		printf '%s\n' "$text" >"$output"
	)
}

# gateway_write_configs: nginx.conf, squid.conf and squid's domain list in the runtime dir.
gateway_write_configs() {
	local dir=$GATEWAY_RUNTIME_DIR
	gateway_render "$GATEWAY_TEMPLATE_DIR/nginx.conf.template" "$dir/nginx.conf" \
		"GATEWAY_RUNTIME_DIR=$dir" \
		"GATEWAY_RESOLVERS=$GATEWAY_RESOLVERS" \
		"GATEWAY_API_SOCKET_LISTEN=${GATEWAY_API_SOCKET_LISTEN:-}" \
		"GATEWAY_UPSTREAM_BASE=$GATEWAY_UPSTREAM_BASE" \
		"GATEWAY_UPSTREAM_AUTHORITY=$GATEWAY_UPSTREAM_AUTHORITY" \
		"GATEWAY_UPSTREAM_HOST=$GATEWAY_UPSTREAM_HOST" \
		"GATEWAY_CA_BUNDLE=$GATEWAY_CA_BUNDLE" \
		"GATEWAY_X_API_KEY=$GATEWAY_X_API_KEY" \
		"GATEWAY_AUTHORIZATION=$GATEWAY_AUTHORIZATION"
	gateway_render "$GATEWAY_TEMPLATE_DIR/squid.conf.template" "$dir/squid.conf" \
		"GATEWAY_RUNTIME_DIR=$dir"
	(
		umask 077
		gateway_squid_domains >"$dir/allowed-domains"
	)
}

# gateway_stop PID...: ask the daemons to stop, then make sure they have within a second.
# nginx exits at once; squid's shutdown takes a whole event-loop second plus a tick even with
# shutdown_lifetime 0 (1.8 s measured), which would make `docker stop` miss 2 s. squid keeps
# no state (no cache, no pid file, logs written unbuffered), so the KILL loses nothing.
gateway_stop() {
	local tick
	kill -TERM "$@" 2>/dev/null || : # an already ended daemon is fine
	for ((tick = 0; tick < 20; tick++)); do
		kill -0 "$@" 2>/dev/null || return 0
		sleep 0.05
	done
	kill -KILL "$@" 2>/dev/null || :
}

# gateway_supervise: both daemons in the foreground until one ends or a stop is asked for.
# A stop (SIGTERM from docker stop, SIGINT) ends the gateway with 0; a daemon that ends on its
# own takes the other down and ends the gateway with 70.
gateway_supervise() {
	local dir=$GATEWAY_RUNTIME_DIR stopping=0 ended='' status=0
	local -A names=()
	local pids=()
	# The trap signals whatever has started so far, so a stop that arrives just before `wait`
	# still ends it.
	trap 'stopping=1; kill -TERM "${pids[@]}" 2>/dev/null || :' TERM INT
	# umask 0: the API socket (if any) must be connectable by the sandbox's uid; it lives in a
	# directory only the sandbox and the gateway share.
	(umask 0000 && exec nginx -e stderr -c "$dir/nginx.conf") &
	pids+=($!)
	names[$!]=nginx
	squid -N -f "$dir/squid.conf" &
	pids+=($!)
	names[$!]=squid
	if ((stopping)); then
		kill -TERM "${pids[@]}" 2>/dev/null || : # squid started after the trap ran
	fi
	wait -n -p ended "${pids[@]}" || status=$?
	gateway_stop "${pids[@]}"
	wait "${pids[@]}" 2>/dev/null || : # wait -n reported the status that matters; no "Killed" notice
	if ((stopping)); then
		gateway_log "stopped"
		exit 0
	fi
	local name="a daemon"
	[[ -z $ended ]] || name=${names[$ended]}
	gateway_fail "$GATEWAY_EXIT_DAEMON" \
		"$name ended with status $status, so the gateway stops; its log lines above say why (restart the container once fixed)"
}

_main() {
	gateway_read_credential
	gateway_parse_domains
	gateway_parse_upstream
	gateway_nameservers
	gateway_check_ca_bundle
	gateway_api_socket_listen
	gateway_prepare_runtime_dir
	gateway_write_configs
	gateway_log "model API on :8080${GATEWAY_API_SOCKET:+ and $GATEWAY_API_SOCKET} -> $GATEWAY_UPSTREAM_BASE (credential from $GATEWAY_CREDENTIAL_SOURCE); forward proxy on :3128 for ${#GATEWAY_DOMAINS[@]} domain(s): ${GATEWAY_DOMAINS[*]:-none}"
	gateway_supervise
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	_main "$@"
fi
