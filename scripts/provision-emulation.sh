#!/usr/bin/env bash
# Let an x86-64 host build and run linux/arm64 images: qemu-user-static registered with
# binfmt_misc (fix-binary mode, so it works inside containers and chroots). Idempotent.
set -Eeuo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# arm64_runs: registered, enabled, and its interpreter still installed (a registration
# outlives the package that made it).
arm64_runs() {
	local entry=/proc/sys/fs/binfmt_misc/qemu-aarch64 interpreter
	[[ -e $entry ]] && grep -qx enabled "$entry" || return 1
	interpreter=$(awk '$1 == "interpreter" { print $2 }' "$entry")
	[[ -x $interpreter ]]
}

main() {
	require_root
	[[ $(uname -m) == aarch64 ]] && return 0
	if arm64_runs; then
		log "arm64 emulation already registered"
		return 0
	fi
	if [[ ! -x /usr/bin/qemu-aarch64-static || ! -d /usr/libexec/qemu-binfmt ]]; then
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			qemu-user-static binfmt-support >/dev/null
	fi
	[[ -e /proc/sys/fs/binfmt_misc/register ]] ||
		mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc ||
		die "binfmt_misc is not available; arm64 emulation needs it (a privileged host)"
	update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || :  # "already enabled" is not an error
	arm64_runs || die "qemu-aarch64 did not register with binfmt_misc; see update-binfmts --display"
	log "arm64 emulation registered"
}

main "$@"
