#!/usr/bin/env bash
# Start a local OCI registry (Debian's docker-registry) on a loopback port, idempotently.
#
# Usage: start-local-registry.sh [PORT [STORAGE_DIR]]
#   PORT         loopback port to listen on (default 5000: the base-image mirror)
#   STORAGE_DIR  where blobs, config and log live (default /var/lib/agentgate-registry-PORT)
#
# Prints nothing on success but a log line; exits 0 when the registry answers /v2/.
set -Eeuo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

port=${1:-5000}
storage=${2:-/var/lib/agentgate-registry-$port}
[[ $port =~ ^[0-9]+$ ]] && ((port > 0 && port < 65536)) ||
	die "port '$port' is not a TCP port number; pass 1-65535"

registry_answers() {
	curl -fs --max-time 2 "http://127.0.0.1:$port/v2/" >/dev/null 2>&1
}

install_registry() {
	command -v docker-registry >/dev/null && return 0
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-registry curl >/dev/null
}

main() {
	if registry_answers; then
		log "registry on 127.0.0.1:$port already answers"
		return 0
	fi
	install_registry
	mkdir -p "$storage/data"
	cat >"$storage/config.yml" <<-YAML
		version: 0.1
		log:
		  level: warn
		storage:
		  filesystem:
		    rootdirectory: $storage/data
		  delete:
		    enabled: true
		http:
		  addr: 127.0.0.1:$port
	YAML
	nohup docker-registry serve "$storage/config.yml" >>"$storage/registry.log" 2>&1 &
	echo $! >"$storage/registry.pid"
	wait_for "registry on 127.0.0.1:$port" 30 registry_answers ||
		die "registry did not answer on 127.0.0.1:$port within 30 s; see $storage/registry.log"
}

main "$@"
