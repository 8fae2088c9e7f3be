#!/usr/bin/env bash
# Provision a bare Debian 12 host for building and testing the agent image, idempotently:
#   1. qemu-user-static + binfmt so arm64 images build and run under emulation
#   2. Docker Engine with buildx and compose, containerd image store, mirror 127.0.0.1:5000
#   3. a local registry on 127.0.0.1:5000 serving as that mirror
#   4. debian:bookworm-slim and node:<line>-bookworm-slim, one per Node.js line the agent
#      image builds, built offline into the mirror (amd64 and arm64)
#   5. cosign, which releases attach SBOMs and sign with
# A host that already has each part is left as it is, so re-running costs seconds.
#
# Environment: BASE_PLATFORMS (default "linux/amd64 linux/arm64") is passed to
# build-base-mirror.sh as PLATFORMS; see each script for its own settings.
set -Eeuo pipefail

here=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=scripts/lib.sh
source "$here/lib.sh"

: "${BASE_PLATFORMS:=linux/amd64 linux/arm64}"

# Host tools the unit tests call: jq (the entrypoint's credentials check runs on the host
# in unit tests), setpriv (util-linux) to run them as an unprivileged uid, git, and gpg
# with gpgconf (gnupg) for the signed release tag.
ensure_host_tools() {
	local missing=() tool
	for tool in jq setpriv git curl gpg gpgconf; do
		command -v "$tool" >/dev/null || missing+=("$tool")
	done
	((${#missing[@]} == 0)) && return 0
	missing=("${missing[@]/setpriv/util-linux}")
	missing=("${missing[@]/gpgconf/gnupg}")
	missing=("${missing[@]/gpg/gnupg}")
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	log "installed ${missing[*]}"
}

require_root
start=$SECONDS
ensure_host_tools
# Emulation first: BuildKit inside dockerd lists the platforms it can build at start-up.
[[ $BASE_PLATFORMS != *arm64* ]] || bash "$here/provision-emulation.sh"
bash "$here/provision-docker-engine.sh"
bash "$here/start-local-registry.sh" 5000
PLATFORMS=$BASE_PLATFORMS bash "$here/build-base-mirror.sh"
bash "$here/provision-release-tools.sh"
log "host provisioned in $((SECONDS - start)) s"
