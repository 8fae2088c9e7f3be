"""Builds of the current checkout (`invoke build`, `invoke buildx`): what names the build, the
buildx spec, the host checks before it, and what is shown after it.

A release builds through releasesteps instead; both assemble their spec with imagebuild.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Unpack

from agentimage import config, gitinfo, imagebuild, preflight, proc, versioning
from agentimage.buildx import BuildSpec
from agentimage.errors import AgentImageError
from agentimage.imagebuild import BuildOptions, Destination
from agentimage.imagetools import Registry
from agentimage.labels import CLAUDE_CODE_VERSION_LABEL, Identity, ImageMetadata
from agentimage.tags import dev_tags, qualify

INSPECT_TIMEOUT = 60
TOOL_TIMEOUT = 120


@dataclass(frozen=True)
class CheckoutBuild:
    options: BuildOptions
    metadata: ImageMetadata
    refs: tuple[str, ...]  # dev, sha-<7>, then the extra tags
    spec: BuildSpec

    @property
    def sha_ref(self) -> str:
        return self.refs[1]


def source_info(root: Path) -> gitinfo.SourceInfo:
    """HEAD described for the labels; VERSION is the base version while no tag exists."""
    repo = gitinfo.open_repo(root)
    try:
        base = versioning.read_version_file(root / "VERSION")
    except AgentImageError:
        base = None
    return gitinfo.source_info(repo, base)


def metadata(root: Path, identity: Identity, variant: str) -> ImageMetadata:
    """The label values of a build of the checkout as it is now."""
    source = source_info(root)
    return identity.metadata(
        version=source.version, revision=source.sha, created=source.created, variant=variant
    )


def extra_refs(repository: str, tags: Iterable[str]) -> list[str]:
    """--tag values: a full reference as given, a bare tag checked and put in repository."""
    return [t if ":" in t or "/" in t else f"{repository}:{config.check_tag(t)}" for t in tags]


def plan(
    root: Path,
    identity: Identity,
    options: BuildOptions,
    repository: str,
    extra_tags: Sequence[str] = (),
    **destination: Unpack[Destination],
) -> CheckoutBuild:
    """The build of HEAD tagged dev and sha-<7> (another line: dev-node<line>,
    sha-<7>-node<line>), plus extra_tags, in repository."""
    meta = metadata(root, identity, options.variant)
    tags = dev_tags(meta.revision, options.tag_suffix)
    refs = qualify(repository, tags) + extra_refs(repository, extra_tags)
    spec = imagebuild.make_spec(options, meta, refs, **destination)
    return CheckoutBuild(options, meta, tuple(refs), spec)


def check_host(build: CheckoutBuild) -> CheckoutBuild:
    """Refuse before building: an unpublished CLI version, no engine or buildx, a store
    that cannot load several platforms, a base image that cannot be resolved. Returns the
    build pinned to the digest its base resolved to (what the base.* labels record)."""
    preflight.cli_version(build.options.claude_code_version)
    preflight.build_environment(build.options.builder, build.spec.platforms, load=build.spec.load)
    digest = preflight.base_image(build.options.variant, build.options.node_version)
    options = replace(build.options, base_digest=digest)
    spec = replace(build.spec, build_args=imagebuild.build_args(options, build.metadata))
    return replace(build, options=options, spec=spec)


def run(build: CheckoutBuild, root: Path) -> str:
    """Build; return the image digest. An OCI archive's directory is made first."""
    if build.spec.output.startswith("type=oci,dest="):
        archive_path(build).parent.mkdir(parents=True, exist_ok=True)
    return imagebuild.run_build(build.spec, build.options.variant, root)


def archive_path(build: CheckoutBuild) -> Path:
    return Path(build.spec.output.split("dest=", 1)[1])


@dataclass(frozen=True)
class ImageFacts:
    """What a build summary shows, read from the image's config without starting it."""

    size: int | None  # compressed content size: what a pull transfers
    node_version: str
    claude_code_version: str


def image_facts(ref: str) -> ImageFacts:
    """One `docker image inspect`: the base's NODE_VERSION env and our CLI version label.

    Starting containers to ask `node --version` and `claude --version` cost 0.6 s per build,
    more than a warm build itself; the build's own RUN steps already ran both.
    """
    argv = ["docker", "image", "inspect", "--format", "{{json .}}", ref]
    try:
        data = json.loads(proc.run(argv, timeout=INSPECT_TIMEOUT).stdout)
    except (AgentImageError, ValueError):
        return ImageFacts(None, "unknown", "unknown")
    image_config = data.get("Config") or {}
    env = dict(item.split("=", 1) for item in image_config.get("Env") or [] if "=" in item)
    size = data.get("Size")
    return ImageFacts(
        size=size if isinstance(size, int) else None,
        node_version=f"v{env['NODE_VERSION']}" if "NODE_VERSION" in env else "unknown",
        claude_code_version=(image_config.get("Labels") or {}).get(
            CLAUDE_CODE_VERSION_LABEL, "unknown"
        ),
    )


def human_size(size: int | None) -> str:
    if size is None:
        return "unknown"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


def summary(build: CheckoutBuild, digest: str) -> list[str]:
    """What `invoke build` prints after a build."""
    facts = image_facts(build.refs[0])
    meta, options = build.metadata, build.options
    base = config.base_image(options.variant, options.node_version)
    pinned = f"{base}@{options.base_digest}" if options.base_digest else base
    return [
        "built " + build.refs[0].rsplit(":", 1)[0],
        f"  tags      {' '.join(ref.rsplit(':', 1)[1] for ref in build.refs)}",
        f"  digest    {digest or 'unknown'}",
        f"  size      {human_size(facts.size)} compressed (what a pull transfers)",
        f"  variant   {options.variant} ({pinned})",
        f"  node      {facts.node_version}",
        f"  claude    {facts.claude_code_version}",
        f"  version   {meta.version}  revision {meta.revision[:12]}  created {meta.created}",
    ]


def tool_version(ref: str, tool: str, platform: str = "") -> str:
    """`<tool> --version` inside the image (entrypoint bypassed, no network)."""
    argv = ["docker", "run", "--rm", "--network", "none", "--entrypoint", tool]
    if platform:
        argv += ["--platform", platform]
    try:
        result = proc.run([*argv, ref, "--version"], timeout=TOOL_TIMEOUT)
    except proc.CommandTimedOut:
        return "unknown (timed out)"
    lines = result.stdout.strip().splitlines()
    return lines[0] if result.ok and lines else "unknown"


def verify_pushed(registry: Registry, build: CheckoutBuild, *, run_tools: bool = True) -> list[str]:
    """After a push: the manifest list holds every platform built, and (run_tools) node and
    claude run on each. Lines to show; a missing platform raises."""
    ref = build.sha_ref
    pushed = registry.inspect(ref)
    found = list(pushed.platforms) if pushed else []
    lines = [f"  manifest  {ref} -> {', '.join(found)}"]
    missing = sorted(set(build.spec.platforms) - set(found))
    if missing:
        raise AgentImageError(
            f"the pushed manifest list lacks {', '.join(missing)}; check the builder"
        )
    if run_tools:
        for platform in build.spec.platforms:
            node = tool_version(ref, "node", platform)
            cli = tool_version(ref, "claude", platform)
            lines.append(f"  {platform:<14} node {node}, claude {cli}")
    return lines
