#!/usr/bin/env bash
# Build a faithful node:<major>-bookworm-slim offline and push it to the local registry mirror.
#
# Docker Hub is unreachable on our CI hosts, so `FROM node:20-bookworm-slim` resolves through
# the daemon's registry mirror (127.0.0.1:5000). This script fills that mirror with an
# equivalent of the official image, built only from Debian packages and npm packages:
#   - a debootstrap --variant=minbase bookworm root, slimmed the way debian:bookworm-slim is
#     (dpkg path excludes for docs, man pages and locales; no apt lists);
#   - the official Node.js binary (npm package node-linux-<arch>), npm and yarn, laid out as
#     the official image lays them out under /usr/local and /opt;
#   - user and group `node` with UID/GID 1000, and the image's ENTRYPOINT/CMD/ENV.
# One image per platform is imported and pushed, then a manifest list ties them under the
# tags <major>-bookworm-slim and <full version>-bookworm-slim. Idempotent: tags already in the
# mirror are left alone unless FORCE=1.
#
# Environment:
#   NODE_VERSION     full Node.js version (default 20.20.2)
#   NPM_VERSION      npm bundled with it (default 10.8.2)
#   YARN_VERSION     yarn classic (default 1.22.22)
#   PLATFORMS        space-separated (default "linux/amd64"; linux/arm64 needs emulation:
#                    scripts/provision-emulation.sh)
#   MIRROR           registry host:port (default 127.0.0.1:5000)
#   FORCE            1 rebuilds even when the tags exist
set -Eeuo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${NODE_VERSION:=20.20.2}"
: "${NPM_VERSION:=10.8.2}"
: "${YARN_VERSION:=1.22.22}"
: "${PLATFORMS:=linux/amd64}"
: "${MIRROR:=127.0.0.1:5000}"
: "${FORCE:=0}"

repo="$MIRROR/library/node"
major=${NODE_VERSION%%.*}
tags=("$major-bookworm-slim" "$NODE_VERSION-bookworm-slim")

# manifest_list_has TAG PLATFORM...: the mirror already serves TAG for every PLATFORM.
mirror_has() {
	local tag=$1
	shift
	local index
	index=$(curl -fs --max-time 5 \
		-H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' \
		-H 'Accept: application/vnd.oci.image.index.v1+json' \
		"http://$MIRROR/v2/library/node/manifests/$tag" 2>/dev/null) || return 1
	local platform
	for platform in "$@"; do
		grep -q "\"architecture\":\"${platform#linux/}\"" <<<"${index// /}" || return 1
	done
}

install_tools() {
	local missing=()
	command -v debootstrap >/dev/null || missing+=(debootstrap)
	command -v curl >/dev/null || missing+=(curl)
	((${#missing[@]} == 0)) && return 0
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# npm_unpack PACKAGE@VERSION DEST: unpack an npm package tarball's package/ dir into DEST.
npm_unpack() {
	local spec=$1 dest=$2 tmp
	tmp=$(mktemp -d)
	(cd "$tmp" && npm pack --silent "$spec" >/dev/null)
	mkdir -p "$dest"
	tar -xzf "$tmp"/*.tgz -C "$dest" --strip-components=1
	rm -rf "$tmp"
}

# slimify ROOT: what debian:bookworm-slim does, so packages installed later stay slim too.
slimify() {
	local root=$1
	cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<-'CFG'
		path-exclude /usr/share/doc/*
		path-include /usr/share/doc/*/copyright
		path-exclude /usr/share/man/*
		path-exclude /usr/share/groff/*
		path-exclude /usr/share/info/*
		path-exclude /usr/share/lintian/*
		path-exclude /usr/share/linda/*
		path-exclude /usr/share/locale/*
		path-include /usr/share/locale/locale.alias
	CFG
	cat >"$root/etc/apt/apt.conf.d/docker-clean" <<-'CFG'
		DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
		APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
		Dir::Cache::pkgcache "";
		Dir::Cache::srcpkgcache "";
	CFG
	printf 'Acquire::GzipIndexes "true";\n' >"$root/etc/apt/apt.conf.d/docker-gzip-indexes"
	find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
	find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
	rm -rf "$root"/usr/share/{man,groff,info,lintian,linda}/* "$root"/var/cache/apt/*.bin \
		"$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*.log
	find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
}

# add_node ROOT ARCH: Node.js, npm, yarn and the node user, as the official image has them.
add_node() {
	local root=$1 arch=$2 tmp
	tmp=$(mktemp -d)
	npm_unpack "node-linux-$arch@$NODE_VERSION" "$tmp/node"
	install -D -m 0755 "$tmp/node/bin/node" "$root/usr/local/bin/node"
	npm_unpack "npm@$NPM_VERSION" "$root/usr/local/lib/node_modules/npm"
	ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
	ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
	npm_unpack "yarn@$YARN_VERSION" "$root/opt/yarn-v$YARN_VERSION"
	ln -sf "/opt/yarn-v$YARN_VERSION/bin/yarn" "$root/usr/local/bin/yarn"
	ln -sf "/opt/yarn-v$YARN_VERSION/bin/yarnpkg" "$root/usr/local/bin/yarnpkg"
	rm -rf "$tmp"
	# The official image creates `node` with groupadd/useradd; editing the files directly
	# gives the same entries without running foreign-architecture binaries.
	echo 'node:x:1000:' >>"$root/etc/group"
	echo 'node:!::' >>"$root/etc/gshadow"
	echo 'node:x:1000:1000::/home/node:/bin/bash' >>"$root/etc/passwd"
	echo "node:!:$(($(date +%s) / 86400)):0:99999:7:::" >>"$root/etc/shadow"
	install -d -m 0755 -o 1000 -g 1000 "$root/home/node"
	cat >"$root/usr/local/bin/docker-entrypoint.sh" <<-'SH'
		#!/bin/sh
		set -e

		# Run command with node if the first argument contains a "-" or is not a system command.
		if [ "${1#-}" != "${1}" ] || [ -z "$(command -v "${1}")" ] || { [ -f "${1}" ] && ! [ -x "${1}" ]; }; then
		  set -- node "$@"
		fi

		exec "$@"
	SH
	chmod 0755 "$root/usr/local/bin/docker-entrypoint.sh"
}

build_platform() {
	local platform=$1 arch=${1#linux/} root
	root=$(mktemp -d /var/tmp/node-rootfs.XXXXXX)
	log "debootstrap bookworm for $platform"
	# Minbase is what debian:bookworm-slim starts from; the archive is the host's own.
	debootstrap --variant=minbase --arch="$arch" bookworm "$root" "$(debian_archive_url)" >/dev/null
	slimify "$root"
	add_node "$root" "${arch/amd64/x64}"
	log "import and push $repo:${tags[0]}-$arch"
	tar -C "$root" -c . | docker import --platform "$platform" \
		--change "ENV NODE_VERSION=$NODE_VERSION" \
		--change "ENV YARN_VERSION=$YARN_VERSION" \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'ENTRYPOINT ["docker-entrypoint.sh"]' \
		--change 'CMD ["node"]' \
		- "$repo:${tags[0]}-$arch" >/dev/null
	docker push --quiet "$repo:${tags[0]}-$arch" >/dev/null
	rm -rf "$root"
}

main() {
	require_root
	docker info >/dev/null 2>&1 || die "Docker Engine not reachable; run scripts/provision-docker-engine.sh first"
	# shellcheck disable=SC2086  # PLATFORMS is a word list
	if [[ $FORCE != 1 ]] && mirror_has "${tags[0]}" $PLATFORMS && mirror_has "${tags[1]}" $PLATFORMS; then
		log "mirror already serves node:${tags[0]} for $PLATFORMS"
		return 0
	fi
	install_tools
	local platform members=()
	for platform in $PLATFORMS; do
		build_platform "$platform"
		members+=("$repo:${tags[0]}-${platform#linux/}")
	done
	local tag
	for tag in "${tags[@]}"; do
		docker manifest rm "$repo:$tag" >/dev/null 2>&1 || :  # no local list yet is fine
		docker manifest create --insecure "$repo:$tag" "${members[@]}" >/dev/null
		docker manifest push --insecure --purge "$repo:$tag" >/dev/null
		log "pushed $repo:$tag ($PLATFORMS)"
	done
}

main "$@"
