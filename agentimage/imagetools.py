"""Registry reads and remote tagging with `docker buildx imagetools`, through Docker's own
credential chain (config.json auths, credHelpers, credsStore): whatever `docker push` can
reach, this can. Loopback registries are spoken to over plain http, as Docker does.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass

from agentimage.errors import AgentImageError, ExitCode
from agentimage.labels import REVISION_LABEL, VERSION_LABEL
from agentimage.registry import has_login, is_loopback, login_hint, split_reference
from agentimage.runner import HostRunner, RecordingRunner

Runner = HostRunner | RecordingRunner
INSPECT_TIMEOUT = 60
ATTEMPTS = 3  # a connection the registry (or a proxy before it) dropped is tried again
_DROPPED = ("connection reset by peer", "unexpected eof", ": eof", "broken pipe",
            "502 bad gateway", "503 service unavailable", "504 gateway timeout")  # fmt: skip
_ABSENT = re.compile(r": not found$")
_AUTH = (
    "401 unauthorized",
    "403 forbidden",
    "no basic auth credentials",
    "authorization failed",
    "failed to authorize",
    "denied",
)
_UNREACHABLE = (
    "connection refused",
    "no such host",
    "i/o timeout",
    "failed to do request",
    "dial tcp",
    "connection reset",
)


@dataclass(frozen=True)
class RemoteImage:
    digest: str  # of the manifest or index the tag names
    version: str  # its org.opencontainers.image.version label ("" when absent)
    platforms: tuple[str, ...]  # os/arch[/variant], attestation entries left out
    revision: str = ""  # its org.opencontainers.image.revision label: the source commit


def parse_inspect(text: str) -> RemoteImage:
    """`imagetools inspect --format '{{json .}}'` output -> RemoteImage."""
    data = json.loads(text)
    manifest = data.get("manifest") or {}
    platforms = []
    for entry in manifest.get("manifests") or []:
        platform = entry.get("platform") or {}
        os_name, arch = platform.get("os", "unknown"), platform.get("architecture", "unknown")
        if "unknown" not in (os_name, arch):
            platforms.append("/".join(filter(None, (os_name, arch, platform.get("variant")))))
    image = data.get("image") or {}
    # one platform: the image config; several: {platform: config}
    configs = [image] if "config" in image else list(image.values())
    labels = [
        (config.get("config") or {}).get("Labels") or {}
        for config in configs
        if isinstance(config, dict)
    ]
    return RemoteImage(
        digest=str(manifest.get("digest", "")),
        version=_agreed(labels, VERSION_LABEL),
        platforms=tuple(platforms),
        revision=_agreed(labels, REVISION_LABEL),
    )


def _agreed(labels: list[dict[str, str]], name: str) -> str:
    """The label's value when every platform's image carries the same one, else ''."""
    values = {str(found.get(name, "")) for found in labels}
    return values.pop() if len(values) == 1 else ""


def repository_of(ref: str) -> str:
    """'host:5000/a/b:tag' or 'host:5000/a/b@sha256:...' -> 'host:5000/a/b'."""
    name = ref.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    last = last.split(":", 1)[0]
    return f"{head}/{last}" if head else last


def failure(ref: str, detail: str) -> AgentImageError:
    """imagetools' error line -> what is wrong and how to fix it."""
    host = split_reference(repository_of(ref))[0]
    text = detail.lower()
    if "error getting credentials" in text:
        return AgentImageError(
            f"Docker's credential helper for {host} failed ({detail}); put the "
            "docker-credential-* helper on PATH or fix credHelpers/credsStore in config.json",
            ExitCode.REGISTRY,
        )
    if any(marker in text for marker in _AUTH):
        if not has_login(host):
            return AgentImageError(
                f"not logged in to registry {host}; run {login_hint(host)}", ExitCode.REGISTRY
            )
        return AgentImageError(
            f"registry {host} refused the credentials Docker has for it ({detail}); "
            f"run {login_hint(host)} again",
            ExitCode.REGISTRY,
        )
    if any(marker in text for marker in _UNREACHABLE):
        return AgentImageError(
            f"registry {host} is unreachable ({detail}); start it or pass another --registry",
            ExitCode.REGISTRY,
        )
    return AgentImageError(f"registry {host} failed ({detail}); check it", ExitCode.REGISTRY)


class Registry:
    """The registry operations a release needs, each one `docker buildx imagetools` call."""

    def __init__(self, runner: Runner, timeout: float = INSPECT_TIMEOUT) -> None:
        self.runner = runner
        self.timeout = timeout

    def _run(self, argv: list[str], ref: str, timeout: float) -> str:
        """One imagetools call; a dropped connection is tried again (reads and tags by
        digest are idempotent), any other failure raised as imagetools' own line."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return self.runner.run(argv, failure=ref, code=ExitCode.REGISTRY, timeout=timeout)
            except AgentImageError as exc:
                detail = exc.message.removeprefix(f"{ref}: ").removeprefix("ERROR: ")
                if attempt == ATTEMPTS or not any(m in detail.lower() for m in _DROPPED):
                    raise AgentImageError(detail, ExitCode.REGISTRY) from None
                time.sleep(attempt)
        raise AssertionError("unreachable")  # the loop returns or raises

    def inspect(self, ref: str) -> RemoteImage | None:
        """What `ref` names, or None when the tag does not exist (and in a dry run)."""
        argv = ["docker", "buildx", "imagetools", "inspect", "--format", "{{json .}}", ref]
        try:
            out = self._run(argv, ref, self.timeout)
        except AgentImageError as exc:
            if _ABSENT.search(exc.message):
                return None
            raise failure(ref, exc.message) from None
        return parse_inspect(out) if out else None

    def copy(self, source: str, tag_ref: str, *, timeout: float | None = None) -> None:
        """Point tag_ref at exactly what `source` (best: repo@digest) names, by reference:
        no image data moves, the digest stays the same."""
        argv = ["docker", "buildx", "imagetools", "create", "--tag", tag_ref, source]
        try:
            self._run(argv, tag_ref, timeout or self.timeout)
        except AgentImageError as exc:
            raise failure(tag_ref, f"tagging {tag_ref}: {exc.message}") from None

    def check_access(self, repository: str, probe_tag: str) -> RemoteImage | None:
        """Refuse an unreachable registry, or one Docker holds no login for (loopback
        registries may be open); return what probe_tag names there."""
        host = split_reference(repository)[0]
        if not is_loopback(host) and not has_login(host):
            raise AgentImageError(
                f"not logged in to registry {host}; run {login_hint(host)}", ExitCode.REGISTRY
            )
        return self.inspect(f"{repository}:{probe_tag}")
