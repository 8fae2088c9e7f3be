#!/usr/bin/env bash
# Health check of the AgentGate gateway: both daemons answer HTTP on their ports, as they
# should, without any traffic leaving the container.
#   :8080  HEAD / must get 200: nginx answers it itself, so a slow upstream never makes the
#          gateway unhealthy
#   :3128  a request for a name outside the allowlist must get 403: squid parsed it and applied
#          its rules (and neither resolves nor connects to anything for a denied name)
# Prints the first failing check and exits 1; prints "healthy" and exits 0 otherwise.
# bash, not sh: /dev/tcp spares the image an HTTP client.
set -Eeuo pipefail

unhealthy() {
	echo "unhealthy: $*"
	exit 1
}

# http_status PORT TARGET: the status code of the reply to `HEAD TARGET` on 127.0.0.1:PORT
# (empty when there is none within 3 s).
http_status() {
	local version status=''
	exec 3<>"/dev/tcp/127.0.0.1/$1" || return 0
	printf 'HEAD %s HTTP/1.0\r\n\r\n' "$2" >&3
	read -r -t 3 version status _ <&3 || :
	exec 3>&-
	[[ ${version:-} == HTTP/* ]] && printf '%s' "$status"
}

api=$(http_status 8080 / 2>/dev/null || :)
[[ $api == 200 ]] || unhealthy "model API port 8080 answers HEAD / with '${api:-nothing}', expected 200"
proxy=$(http_status 3128 http://healthcheck.invalid/ 2>/dev/null || :)
[[ $proxy == 403 ]] || unhealthy "forward proxy port 3128 answers a request for a name outside the allowlist with '${proxy:-nothing}', expected 403"
echo healthy
