"""Registry reads and remote tagging with `docker buildx imagetools`, through Docker's own
credential chain (config.json auths, credHelpers, credsStore): whatever `docker push` can
reach, this can. Loopback registries are spoken to over plain http, as Docker does.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

from agentimage import cosign
from agentimage.errors import AgentImageError, ExitCode
from agentimage.labels import (
    BASE_DIGEST_LABEL,
    BASE_NAME_LABEL,
    CLAUDE_CODE_VERSION_LABEL,
    REVISION_LABEL,
    VERSION_LABEL,
)
from agentimage.registry import has_login, is_loopback, login_hint, split_reference
from agentimage.runner import HostRunner, RecordingRunner

Runner = HostRunner | RecordingRunner
INSPECT_TIMEOUT = 60
# A transient failure is tried again: a connection the registry (or a proxy before it)
# dropped, or a 5xx. The reference registry answers 500 when a manifest it is writing for one
# client is read by another (two releases of one repository at once): the next read succeeds.
ATTEMPTS = 3
_DROPPED = ("connection reset by peer", "unexpected eof", ": eof", "broken pipe",
            "500 internal server error", "502 bad gateway", "503 service unavailable",
            "504 gateway timeout")  # fmt: skip
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
    base_name: str = ""  # org.opencontainers.image.base.name
    base_digest: str = ""  # org.opencontainers.image.base.digest: what FROM was pinned to
    cli_version: str = ""  # io.agentgate.image.claude-code-version


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
        base_name=_agreed(labels, BASE_NAME_LABEL),
        base_digest=_agreed(labels, BASE_DIGEST_LABEL),
        cli_version=_agreed(labels, CLAUDE_CODE_VERSION_LABEL),
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

    def _run(self, argv: list[str], ref: str, timeout: float, dry_stdout: str = "") -> str:
        """One imagetools call; a dropped connection is tried again (reads and tags by
        digest are idempotent), any other failure raised as imagetools' own line."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return self.runner.run(
                    argv,
                    failure=ref,
                    code=ExitCode.REGISTRY,
                    timeout=timeout,
                    dry_stdout=dry_stdout,
                )
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

    def platform_images(self, ref: str, planned: tuple[str, ...] = ()) -> list[tuple[str, str]]:
        """(platform, manifest digest) of each image in the index `ref` names, attestation
        manifests left out; a single manifest is its own one image. `planned`: the platforms
        a dry run assumes."""
        stand_in = {
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {
                    "digest": f"<digest-of-{p.replace('/', '-')}-image>",
                    "platform": dict(zip(("os", "architecture"), p.split("/")[:2], strict=True)),
                }
                for p in planned
            ],
        }
        argv = ["docker", "buildx", "imagetools", "inspect", "--raw", ref]
        try:
            out = self._run(argv, ref, self.timeout, dry_stdout=json.dumps(stand_in))
        except AgentImageError as exc:
            raise failure(ref, exc.message) from None
        return parse_platform_images(out, ref)

    def provenance(self, ref: str) -> dict[str, dict[str, object]]:
        """platform -> the SLSA provenance predicate BuildKit attached for it ({} if none)."""
        argv = ["docker", "buildx", "imagetools", "inspect", "--format", "{{json .Provenance}}"]
        try:
            out = self._run([*argv, ref], ref, self.timeout, dry_stdout="{}")
        except AgentImageError as exc:
            raise failure(ref, exc.message) from None
        return parse_provenance(out)

    def _cosign(self, argv: list[str], what: str, dry_stdout: str = "") -> str:
        try:
            return self.runner.run(
                argv,
                failure=what,
                code=ExitCode.SUPPLY_CHAIN,
                timeout=self.timeout,
                dry_stdout=dry_stdout,
            )
        except AgentImageError as exc:
            if exc.code == ExitCode.ENVIRONMENT and "not found on PATH" in exc.message:
                raise cosign.tool_missing() from None
            detail = cosign.failure_detail(exc.message.removeprefix(f"{what}: "))
            raise AgentImageError(f"{what}: {detail}", ExitCode.SUPPLY_CHAIN) from None

    def signatures(self, ref: str, public_key: Path, annotations: dict[str, str]) -> list[str]:
        """The digests whose signatures verify with public_key and carry the annotations;
        raises when none does."""
        argv = cosign.verify_argv(ref, public_key, annotations)
        return cosign.signed_digests(self._cosign(argv, f"no valid signature on {ref}"))

    def attestations(self, ref: str, public_key: Path) -> list[cosign.Statement]:
        """The SBOM attestations on ref that verify with public_key; raises when none does."""
        argv = cosign.verify_attestation_argv(ref, public_key)
        return cosign.parse_attestations(self._cosign(argv, f"no valid SBOM attestation on {ref}"))

    def attached_sbom(self, ref: str) -> str:
        """The unsigned SBOM attached to ref; raises when there is none."""
        return self._cosign(cosign.download_sbom_argv(ref), f"no SBOM attached to {ref}")

    def verify(
        self,
        repository: str,
        digest: str,
        public_key: Path | None,
        expected: object,
    ) -> list[str]:
        """Labels, provenance, signatures and SBOMs of repository@digest (releaseverify)."""
        from agentimage import releaseverify  # it builds on this class

        assert isinstance(expected, releaseverify.Expected)
        return releaseverify.verify_image(self, repository, digest, public_key, expected)


def parse_platform_images(text: str, ref: str = "") -> list[tuple[str, str]]:
    """`imagetools inspect --raw` of an index or manifest -> [(platform, digest)]."""
    data = json.loads(text or "{}")
    if "manifests" not in data:
        digest = ref.rsplit("@", 1)[-1] if "@" in ref else ""
        return [("", digest)] if digest else []
    found = []
    for entry in data["manifests"]:
        platform = entry.get("platform") or {}
        os_name, arch = platform.get("os", "unknown"), platform.get("architecture", "unknown")
        if "unknown" in (os_name, arch):
            continue  # an attestation manifest
        name = "/".join(filter(None, (os_name, arch, platform.get("variant"))))
        found.append((name, str(entry.get("digest", ""))))
    return found


def parse_provenance(text: str) -> dict[str, dict[str, object]]:
    """`{{json .Provenance}}`: {"SLSA": ...} for one platform (keyed ""), else per platform."""
    data = json.loads(text or "{}") or {}
    if "SLSA" in data:
        return {"": data["SLSA"]} if isinstance(data["SLSA"], dict) else {}
    return {
        platform: value["SLSA"]
        for platform, value in data.items()
        if isinstance(value, dict) and isinstance(value.get("SLSA"), dict)
    }
