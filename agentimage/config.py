"""Validation of configuration values and the fixed facts of the image.

The default *values* live in invoke.yaml (one place, overridable by flags and INVOKE_* env
vars); this module checks whatever arrives and maps a variant to its base image.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from agentimage.errors import AgentImageError
from agentimage.registry import normalize_host, split_reference

DOCKERFILE = "docker/Dockerfile.agent"
BUILD_CONTEXT = "."

# variant -> base image template; the Dockerfile takes the result as BASE_IMAGE.
VARIANT_BASES: Mapping[str, str] = {
    "alpine": "node:{node}-alpine",
    "slim": "node:{node}-bookworm-slim",
}

SYSTEM_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

_NODE_VERSION = re.compile(r"^[0-9]+(\.[0-9]+){0,2}$")
_CLI_VERSION = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$")
_PLATFORM = re.compile(r"^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
# registry host[:port] plus optional path, e.g. 127.0.0.1:5000 or ghcr.io/agentgate
_REGISTRY = re.compile(
    r"^(?P<host>[A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\])(:(?P<port>[0-9]{1,5}))?(?P<path>(/[a-z0-9._-]+)*)$"
)
_IMAGE_NAME = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$")


def base_image(variant: str, node_version: str) -> str:
    """The BASE_IMAGE build arg for a variant: alpine -> node:<node_version>-alpine."""
    return VARIANT_BASES[check_variant(variant)].format(node=check_node_version(node_version))


def qualified_image(ref: str) -> str:
    """Docker's full spelling of an image reference, as the base.name label records it:
    node:18-alpine -> docker.io/library/node:18-alpine; a registry host is kept."""
    name, at, digest = ref.partition("@")
    head, slash, last = name.rpartition("/")
    last, colon, tag = last.partition(":")
    host, path = split_reference(f"{head}{slash}{last}")
    return f"{host}/{path}" + (f":{tag}" if colon else "") + (f"@{digest}" if at else "")


def check_variant(variant: str) -> str:
    if variant not in VARIANT_BASES:
        raise AgentImageError(
            f"unknown variant {variant!r}; pass --variant {' or '.join(sorted(VARIANT_BASES))}"
        )
    return variant


def check_node_version(version: str) -> str:
    if not _NODE_VERSION.match(str(version)):
        raise AgentImageError(
            f"Node version {version!r} is not a version; pass a major like 20 or a full 20.18.1"
        )
    return str(version)


def check_cli_version(version: str) -> str:
    if not _CLI_VERSION.match(str(version)):
        raise AgentImageError(
            f"Claude Code version {version!r} is not a version; pass X.Y.Z such as 2.1.0"
        )
    return str(version)


def parse_platforms(value: str) -> tuple[str, ...]:
    """'linux/amd64,linux/arm64' -> ('linux/amd64', 'linux/arm64'), each checked."""
    platforms = tuple(p.strip() for p in str(value).split(",") if p.strip())
    if not platforms:
        raise AgentImageError("no platform given; pass e.g. --platform linux/amd64,linux/arm64")
    for platform in platforms:
        if not _PLATFORM.match(platform):
            raise AgentImageError(
                f"platform {platform!r} is malformed; use os/arch[/variant] like linux/arm64"
            )
    if len(set(platforms)) != len(platforms):
        raise AgentImageError(f"platform list {value!r} repeats an entry; list each once")
    return platforms


def check_tag(tag: str) -> str:
    if not _TAG.match(tag):
        raise AgentImageError(
            f"image tag {tag!r} is invalid; use up to 128 of [A-Za-z0-9_.-], "
            "not starting with . or -"
        )
    return tag


def check_image_name(name: str) -> str:
    if not _IMAGE_NAME.match(name):
        raise AgentImageError(
            f"image name {name!r} is invalid; use lowercase path components like agentgate/agent"
        )
    return name


def check_registry(registry: str) -> str:
    """A registry prefix: host[:port][/path], no scheme, no trailing slash."""
    match = _REGISTRY.match(registry)
    if not match or not (
        "." in match["host"]
        or match["port"]
        or match["host"] == "localhost"
        or match["host"].startswith("[")
    ):
        raise AgentImageError(
            f"registry {registry!r} is not HOST[:PORT][/PATH]; "
            "pass e.g. 127.0.0.1:5000 or ghcr.io/org"
        )
    if match["port"] and not 0 < int(match["port"]) < 65536:
        raise AgentImageError(f"registry port in {registry!r} is out of range; use 1-65535")
    return registry


def image_repository(name: str, registry: str = "") -> str:
    """Full repository reference: '127.0.0.1:5000' + 'agentgate/agent'. Docker Hub is
    spelled docker.io however it was given, so Docker finds its `docker login`."""
    check_image_name(name)
    if not registry:
        return name
    host, _, path = check_registry(registry).partition("/")
    return "/".join(filter(None, (normalize_host(host), path, name)))


def resolve_ca_cert(value: str | None, environ: Mapping[str, str] | None = None) -> Path | None:
    """'auto' (SSL_CERT_FILE, else the system bundle, else none), 'none', or a checked path."""
    environ = os.environ if environ is None else environ
    text = (value or "none").strip()
    if text.lower() == "none" or not text:
        return None
    if text.lower() == "auto":
        for candidate in (environ.get("SSL_CERT_FILE", ""), str(SYSTEM_CA_BUNDLE)):
            if candidate and Path(candidate).is_file():
                return check_ca_file(Path(candidate))
        return None
    return check_ca_file(Path(text))


def check_ca_file(path: Path) -> Path:
    if not path.exists():
        raise AgentImageError(
            f"CA bundle {path} does not exist; pass an existing PEM file or --ca-cert none"
        )
    if not path.is_file():
        raise AgentImageError(f"CA bundle {path} is not a file; pass a PEM file or --ca-cert none")
    try:
        head = path.read_bytes()[:1_000_000]
    except OSError as exc:
        raise AgentImageError(
            f"CA bundle {path} is not readable ({exc.strerror}); "
            "fix its permissions or pass another"
        ) from exc
    if b"-----BEGIN CERTIFICATE-----" not in head:
        raise AgentImageError(
            f"CA bundle {path} holds no PEM certificate; pass a PEM bundle or --ca-cert none"
        )
    return path.resolve()


def check_timeout(value: object, flag: str) -> float:
    """A time limit in seconds: a positive number."""
    try:
        seconds = float(str(value))
    except ValueError:
        seconds = -1.0
    if not seconds > 0 or seconds == float("inf"):
        raise AgentImageError(f"{flag} {value!r} is not a number of seconds; pass e.g. {flag} 600")
    return seconds
