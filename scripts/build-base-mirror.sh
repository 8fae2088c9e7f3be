#!/usr/bin/env bash
# Build faithful debian:bookworm-slim and node:<major>-bookworm-slim images offline and push
# them to the local registry mirror.
#
# Docker Hub is unreachable on our CI hosts, so `FROM node:<line>-bookworm-slim` (the agent
# image, one base per Node.js line of docker/Dockerfile.agent) and `FROM debian:bookworm-slim`
# (the gateway image) resolve through the daemon's registry mirror (127.0.0.1:5000). This
# script fills that mirror with equivalents of the official images, built only from Debian
# packages and npm packages:
#   - debian:bookworm-slim: a debootstrap --variant=minbase bookworm root, slimmed the way the
#     official image is (dpkg path excludes for docs, man pages and locales; no apt lists);
#   - node: a copy of that same root plus the official Node.js binary (npm package
#     node-linux-<arch>), npm and yarn, laid out as the official image lays them out under
#     /usr/local and /opt; user and group `node` with UID/GID 1000, and the image's
#     ENTRYPOINT/CMD/ENV. One image per Node release in NODE_RELEASES.
# One image per platform is imported and pushed, then a manifest list ties them under the
# tags bookworm-slim (debian) and <major>-bookworm-slim, <full version>-bookworm-slim (node).
# Idempotent: an image whose tags the mirror already serves for every platform is left alone
# unless FORCE=1, and a root is built (once per platform, shared by every image of that
# platform: debootstrap is the slow part, ~100 s under arm64 emulation) only when one of the
# images is missing.
#
# Environment:
#   NODE_RELEASES    space-separated NODE/NPM pairs: the Node.js release that stands in for
#                    node:<major>-bookworm-slim and the npm it bundles (default: one per line
#                    of docker/Dockerfile.agent, tests/unit/test_lines.py keeps them in step)
#   YARN_VERSION     yarn classic (default 1.22.22)
#   PLATFORMS        space-separated (default "linux/amd64"; linux/arm64 needs emulation:
#                    scripts/provision-emulation.sh)
#   MIRROR           registry host:port (default 127.0.0.1:5000)
#   FORCE            1 rebuilds even when the tags exist
set -Eeuo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The official images' Node and npm of each line when these stand-ins were made.
: "${NODE_RELEASES:=20.20.2/10.8.2 26.12.1/11.21.2}"
: "${YARN_VERSION:=1.22.22}"
: "${PLATFORMS:=linux/amd64}"
: "${MIRROR:=127.0.0.1:5000}"
: "${FORCE:=0}"

debian_repo=library/debian
debian_tags=(bookworm-slim)
node_repo=library/node
# Which images this run builds; set by main from what the mirror lacks.
want_debian=0
want_node=() # NODE/NPM pairs of NODE_RELEASES the mirror lacks

# node_tags NODE_VERSION: the mirror tags of that release, <major>-bookworm-slim first.
node_tags() {
	printf '%s\n' "${1%%.*}-bookworm-slim" "$1-bookworm-slim"
}

# mirror_has REPO TAG: the mirror already serves REPO:TAG for every platform in PLATFORMS.
mirror_has() {
	local repo=$1 tag=$2 index platform
	index=$(curl -fs --max-time 5 \
		-H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' \
		-H 'Accept: application/vnd.oci.image.index.v1+json' \
		"http://$MIRROR/v2/$repo/manifests/$tag" 2>/dev/null) || return 1
	for platform in $PLATFORMS; do
		grep -q "\"architecture\":\"${platform#linux/}\"" <<<"${index// /}" || return 1
	done
}

# mirror_serves REPO TAG...: every TAG of REPO is there (FORCE=1 pretends none is).
mirror_serves() {
	local repo=$1 tag
	shift
	[[ $FORCE != 1 ]] || return 1
	for tag in "$@"; do
		mirror_has "$repo" "$tag" || return 1
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

# add_node ROOT ARCH NODE_VERSION NPM_VERSION: Node.js, npm, yarn and the node user, as the
# official image has them.
add_node() {
	local root=$1 arch=$2 node_version=$3 npm_version=$4 tmp
	tmp=$(mktemp -d)
	npm_unpack "node-linux-$arch@$node_version" "$tmp/node"
	install -D -m 0755 "$tmp/node/bin/node" "$root/usr/local/bin/node"
	npm_unpack "npm@$npm_version" "$root/usr/local/lib/node_modules/npm"
	ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
	ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
	npm_unpack "yarn@$YARN_VERSION" "$root/opt/yarn-v$YARN_VERSION"
	ln -sf "/opt/yarn-v$YARN_VERSION/bin/yarn" "$root/usr/local/bin/yarn"
	ln -sf "/opt/yarn-v$YARN_VERSION/bin/yarnpkg" "$root/usr/local/bin/yarnpkg"
	rm -rf "$tmp"
	add_linked_libs "$root"
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

# add_linked_libs ROOT: the Debian libraries the node binary links beyond minbase. The
# official image installs libatomic1 and keeps it when `ldd node` names it, as Node 24 and
# later do (older lines do not); without it node fails to start. apt runs inside the root
# (under emulation for a foreign architecture), against the archive debootstrap used.
add_linked_libs() {
	local root=$1 resolv
	grep -qa 'libatomic\.so\.1' "$root/usr/local/bin/node" || return 0
	resolv=$(mktemp)
	cp -a "$root/etc/resolv.conf" "$resolv" 2>/dev/null || : # none yet: nothing to restore
	cp /etc/resolv.conf "$root/etc/resolv.conf"
	chroot "$root" apt-get update -qq
	DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y -qq --no-install-recommends \
		libatomic1 >/dev/null
	if [[ -s $resolv ]]; then cp -a "$resolv" "$root/etc/resolv.conf"; else rm -f "$root/etc/resolv.conf"; fi
	rm -f "$resolv"
	rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/apt \
		"$root"/var/log/dpkg.log
	chroot "$root" /usr/local/bin/node --version >/dev/null # smoke check: node starts
}

# push_root ROOT PLATFORM REF CHANGE...: import ROOT as a PLATFORM image (Dockerfile CHANGEs
# applied) under REF, and push it.
push_root() {
	local root=$1 platform=$2 ref=$3
	shift 3
	local changes=() change
	for change in "$@"; do
		changes+=(--change "$change")
	done
	log "import and push $ref"
	tar -C "$root" -c . | docker import --platform "$platform" "${changes[@]}" - "$ref" >/dev/null
	docker push --quiet "$ref" >/dev/null
}

build_platform() {
	local platform=$1 arch=${1#linux/} root release node_version node_root tag
	local path='ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
	root=$(mktemp -d /var/tmp/bookworm-rootfs.XXXXXX)
	log "debootstrap bookworm for $platform"
	# Minbase is what debian:bookworm-slim starts from; the archive is the host's own.
	debootstrap --variant=minbase --arch="$arch" bookworm "$root" "$(debian_archive_url)" >/dev/null
	slimify "$root"
	if ((want_debian)); then
		push_root "$root" "$platform" "$MIRROR/$debian_repo:${debian_tags[0]}-$arch" \
			"$path" 'CMD ["bash"]'
	fi
	for release in "${want_node[@]}"; do
		node_version=${release%/*}
		node_root=$(mktemp -d /var/tmp/bookworm-node-rootfs.XXXXXX)
		cp -a "$root/." "$node_root"
		add_node "$node_root" "${arch/amd64/x64}" "$node_version" "${release#*/}"
		tag=$(node_tags "$node_version" | head -n 1)
		push_root "$node_root" "$platform" "$MIRROR/$node_repo:$tag-$arch" \
			"ENV NODE_VERSION=$node_version" "ENV YARN_VERSION=$YARN_VERSION" "$path" \
			'ENTRYPOINT ["docker-entrypoint.sh"]' 'CMD ["node"]'
		rm -rf "$node_root"
	done
	rm -rf "$root"
}

# publish_list REPO TAG...: one manifest list per TAG over the per-platform images of REPO,
# which build_platform pushed as <first TAG>-<arch>.
publish_list() {
	local repo=$1 tag platform members=()
	shift
	for platform in $PLATFORMS; do
		members+=("$MIRROR/$repo:$1-${platform#linux/}")
	done
	for tag in "$@"; do
		docker manifest rm "$MIRROR/$repo:$tag" >/dev/null 2>&1 || :  # no local list yet is fine
		docker manifest create --insecure "$MIRROR/$repo:$tag" "${members[@]}" >/dev/null
		docker manifest push --insecure --purge "$MIRROR/$repo:$tag" >/dev/null
		log "pushed $MIRROR/$repo:$tag ($PLATFORMS)"
	done
}

main() {
	require_root
	docker info >/dev/null 2>&1 || die "Docker Engine not reachable; run scripts/provision-docker-engine.sh first"
	local release tags=()
	mirror_serves "$debian_repo" "${debian_tags[@]}" || want_debian=1
	for release in $NODE_RELEASES; do
		[[ $release == */* ]] || die "NODE_RELEASES entry '$release' is not NODE/NPM; write e.g. 26.12.1/11.21.2"
		mapfile -t tags < <(node_tags "${release%/*}")
		if mirror_serves "$node_repo" "${tags[@]}"; then
			log "mirror already serves node:${tags[0]} (${release%/*}) for $PLATFORMS"
		else
			want_node+=("$release")
		fi
	done
	if ((!want_debian && ${#want_node[@]} == 0)); then
		log "mirror already serves debian:${debian_tags[0]} and every node release for $PLATFORMS"
		return 0
	fi
	install_tools
	local platform
	for platform in $PLATFORMS; do
		build_platform "$platform"
	done
	((!want_debian)) || publish_list "$debian_repo" "${debian_tags[@]}"
	for release in "${want_node[@]}"; do
		mapfile -t tags < <(node_tags "${release%/*}")
		publish_list "$node_repo" "${tags[@]}"
	done
}

main "$@"
