#!/usr/bin/env bash
# Install and start a Docker Engine with buildx and compose on a bare Debian 12 host, with
# gVisor's runsc registered as the runtime `runsc` for the most isolated sandbox profile.
#
# Debian 12 has no usable engine of its own for our needs, but Debian 13's docker.io,
# docker-cli, docker-buildx and docker-compose need only libc6 >= 2.34, so they install on
# bookworm beside bookworm's runc and tini. The trixie suite is added at pin priority 100 so
# nothing else on the host is upgraded from it. runsc (trixie, 2024-07) cannot give a
# container a network of its own under this engine, so it is registered with
# --network=none and --host-uds=open: the sandbox reaches the model API only through the
# gateway's Unix socket (docs/SECURITY.md). Idempotent: an engine that already answers keeps
# running, and reloads its configuration only if that changed.
#
# Environment:
#   DOCKER_MIRROR_URL  registry mirror for docker.io pulls (default http://127.0.0.1:5000,
#                      the local base-image mirror; empty to configure none)
#   DOCKERD_LOG        where dockerd logs (default /var/log/dockerd.log)
set -Eeuo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${DOCKER_MIRROR_URL=http://127.0.0.1:5000}"
: "${DOCKERD_LOG:=/var/log/dockerd.log}"

engine_answers() {
	docker info --format '{{.ServerVersion}}' >/dev/null 2>&1
}

install_engine() {
	if command -v dockerd >/dev/null && docker buildx version >/dev/null 2>&1 &&
		docker compose version >/dev/null 2>&1; then
		return 0
	fi
	add_trixie_suite
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		docker.io/trixie docker-cli/trixie docker-buildx/trixie docker-compose/trixie \
		iptables ca-certificates >/dev/null
	log "installed $(dockerd --version)"
}

install_gvisor() {
	command -v runsc >/dev/null && return 0
	add_trixie_suite
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends runsc/trixie >/dev/null
	log "installed $(runsc --version | head -n 1)"
}

# write_daemon_config: 0 when the file changed, 1 when it already said this.
write_daemon_config() {
	local config=/etc/docker/daemon.json
	mkdir -p /etc/docker
	local mirrors='[]'
	[[ -n $DOCKER_MIRROR_URL ]] && mirrors="[\"$DOCKER_MIRROR_URL\"]"
	# The containerd image store holds multi-platform images and manifest lists, which the
	# classic store cannot; the mirror lets FROM node:... resolve without Docker Hub.
	local wanted
	wanted=$(
		cat <<-JSON
			{
			  "features": {"containerd-snapshotter": true},
			  "registry-mirrors": $mirrors,
			  "runtimes": {
			    "runsc": {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=none", "--host-uds=open"]}
			  }
			}
		JSON
	)
	if [[ -f $config ]] && [[ $(<"$config") == "$wanted" ]]; then
		return 1
	fi
	printf '%s\n' "$wanted" >"$config"
	log "wrote $config"
}

start_engine() {
	engine_answers && return 0
	# No systemd on these hosts: dockerd starts its own managed containerd.
	nohup dockerd >>"$DOCKERD_LOG" 2>&1 &
	wait_for "Docker Engine" 60 engine_answers ||
		die "dockerd did not answer within 60 s; see $DOCKERD_LOG"
}

# reload_engine: dockerd re-reads daemon.json (registry mirrors, runtimes) on SIGHUP, so a
# running engine picks up a changed configuration without stopping its containers.
reload_engine() {
	pkill -HUP -x dockerd || die "cannot signal dockerd to reload $DOCKERD_LOG"
	wait_for "runtime runsc" 30 sh -c 'docker info --format "{{json .Runtimes}}" | grep -q runsc' ||
		die "dockerd did not take the runsc runtime from /etc/docker/daemon.json; see $DOCKERD_LOG"
}

main() {
	require_root
	install_engine
	install_gvisor
	if write_daemon_config && engine_answers; then
		reload_engine
	fi
	if engine_answers; then
		log "Docker Engine $(docker info --format '{{.ServerVersion}}') answers"
	else
		start_engine
	fi
	docker buildx version >/dev/null || die "docker buildx is missing after install; install docker-buildx"
}

main "$@"
