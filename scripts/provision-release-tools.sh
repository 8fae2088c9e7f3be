#!/usr/bin/env bash
# Install what a release needs beyond Docker, idempotently: cosign, which attaches each
# pushed image's SBOM and, with a key, signs the image and attests the SBOM.
#
# cosign 2.5 comes from Debian 13 (trixie), whose package needs nothing bookworm lacks; the
# trixie suite is added at pin priority 100 (lib.sh), so nothing else is upgraded from it.
# The SBOM itself is made by the Python tooling (cyclonedx-python-lib, pip), not a binary.
# A vulnerability scanner (grype) is not installed here: no vulnerability database can be
# downloaded on these hosts, and the release says so instead of pretending to scan.
set -Eeuo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# cosign_works: installed, and it signs offline (--tlog-upload, cosign >= 2.0; Debian's
# build reports its version as "devel", so the flag is what is checked).
cosign_works() {
	command -v cosign >/dev/null && cosign sign --help 2>/dev/null | grep -q -- '--tlog-upload'
}

main() {
	require_root
	if cosign_works; then
		log "cosign is installed ($(command -v cosign))"
		return 0
	fi
	add_trixie_suite
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends cosign/trixie >/dev/null
	cosign_works || die "cosign from trixie installed, but cannot sign offline (no --tlog-upload); install cosign >= 2.0"
	log "installed cosign $(dpkg-query -W -f '${Version}' cosign)"
}

main "$@"
