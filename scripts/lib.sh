#!/usr/bin/env bash
# Shared helpers for the host provisioning scripts. Sourced, never run.

# log MESSAGE...: progress to stderr, prefixed with the calling script's name.
log() {
	printf '%s: %s\n' "${0##*/}" "$*" >&2
}

# die MESSAGE...: one-line error to stderr, then exit 1.
die() {
	log "error: $*"
	exit 1
}

# require_root: the scripts install packages and start daemons.
require_root() {
	[[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages and starts daemons); re-run with sudo"
}

# wait_for DESCRIPTION SECONDS COMMAND...: poll COMMAND until it succeeds or the deadline passes.
wait_for() {
	local what=$1 seconds=$2
	shift 2
	local deadline=$((SECONDS + seconds))
	until "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || return 1
		sleep 0.2
	done
	log "$what is ready"
}

# debian_archive_url: the Debian archive this host's apt already uses (deb822 or one-line
# sources), so no mirror host is ever written into the project.
debian_archive_url() {
	local url
	url=$(
		{
			awk '/^URIs:/ { uri = $2 } /^Suites:/ && / bookworm( |$)/ { print uri; exit }' \
				/etc/apt/sources.list.d/*.sources 2>/dev/null || :
			awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' \
				/etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || :
		} | head -n 1
	)
	[[ -n $url ]] || die "no Debian bookworm archive found in /etc/apt/sources.list*; configure apt for bookworm first"
	printf '%s\n' "${url%/}"
}

# add_trixie_suite: Debian 13's packages (Docker Engine, runsc, cosign) install on bookworm;
# the suite is added at pin priority 100, so only packages asked for by name (pkg/trixie)
# come from it and nothing else on the host is upgraded.
add_trixie_suite() {
	local sources=/etc/apt/sources.list.d/agentgate-trixie.sources
	local pin=/etc/apt/preferences.d/agentgate-trixie
	[[ -f $sources && -f $pin ]] && return 0
	local archive
	archive=$(debian_archive_url)
	cat >"$sources" <<-SOURCES
		Types: deb
		URIs: $archive
		Suites: trixie
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	SOURCES
	# Priority 100: trixie packages are installed only when asked for by name (pkg/trixie).
	cat >"$pin" <<-PIN
		Package: *
		Pin: release n=trixie
		Pin-Priority: 100
	PIN
	log "added the trixie suite from $archive at pin priority 100"
}
