"""Registry names and logins, the way Docker spells and looks them up.

Docker Hub has four spellings (`docker.io`, `index.docker.io`, `registry-1.docker.io`, none at
all) and one key in Docker's config (`https://index.docker.io/v1/`, what `docker login`
writes). Credentials are never read here: Docker's own credential chain (`auths`,
`credHelpers`, `credsStore` and their `docker-credential-*` helpers) answers through the
docker SDK, and docker, buildx and the daemon use the same chain for every registry call.
"""

from __future__ import annotations

import ipaddress
import warnings

import docker.auth
import docker.errors

from agentimage.errors import AgentImageError, ExitCode

DOCKER_HUB = "docker.io"
DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
# the key `docker login` (no argument) writes for Docker Hub, in auths and for helpers
DOCKER_HUB_CONFIG_KEY = "https://index.docker.io/v1/"


def is_registry_host(component: str) -> bool:
    """Docker's rule: the first path component names a registry if it has '.', ':' or is
    localhost; otherwise the reference is on Docker Hub."""
    return "." in component or ":" in component or component == "localhost"


def normalize_host(host: str) -> str:
    """Every spelling of Docker Hub -> docker.io; any other host unchanged."""
    return DOCKER_HUB if host.lower() in DOCKER_HUB_ALIASES else host


def split_reference(repository: str) -> tuple[str, str]:
    """'127.0.0.1:5000/agentgate/agent' -> ('127.0.0.1:5000', 'agentgate/agent');
    'agentgate/agent' and 'index.docker.io/agentgate/agent' -> ('docker.io', 'agentgate/agent');
    'node' -> ('docker.io', 'library/node')."""
    head, _, rest = repository.partition("/")
    if rest and is_registry_host(head):
        host, path = normalize_host(head), rest
    else:
        host, path = DOCKER_HUB, repository
    if host == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    return host, path


def config_key(host: str) -> str:
    """The key Docker's config and credential helpers file a registry's login under."""
    host = normalize_host(host)
    return DOCKER_HUB_CONFIG_KEY if host == DOCKER_HUB else host


def is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:].split("]")[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def has_login(host: str) -> bool:
    """Does Docker's credential chain hold credentials for host? (DOCKER_CONFIG is honoured.)

    A credential helper is asked with `get`, exactly as docker push would ask it.
    """
    host = normalize_host(host)
    try:
        with warnings.catch_warnings():  # the SDK warns of a missing helper, then raises
            warnings.simplefilter("ignore")
            auth = docker.auth.load_config().resolve_authconfig(config_key(host))
    except docker.errors.DockerException as exc:
        raise AgentImageError(
            f"Docker's credential helper for {host} failed ({exc}); check credHelpers/"
            "credsStore in Docker's config.json and that the docker-credential-* helper is "
            "on PATH",
            ExitCode.REGISTRY,
        ) from exc
    # the SDK answers with the helper's spelling (Password, IdentityToken) or the decoded
    # auths entry's (password); an entry `docker login` left empty is no login
    return any(auth.get(key) for key in ("Password", "password", "IdentityToken") if auth)


def login_hint(host: str) -> str:
    host = normalize_host(host)
    return "docker login" if host == DOCKER_HUB else f"docker login {host}"
