"""The `docker buildx build` argument list: one pure function of a BuildSpec."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from agentimage.errors import AgentImageError

CA_SECRET_ID = "ca-certificates"  # noqa: S105 (a secret id, not a secret)


@dataclass(frozen=True)
class BuildSpec:
    tags: tuple[str, ...]  # fully qualified refs
    build_args: Mapping[str, str] = field(default_factory=dict)
    platforms: tuple[str, ...] = ()  # empty: the builder's host platform
    dockerfile: str = "docker/Dockerfile.agent"
    context: str = "."
    ca_cert: Path | None = None
    builder: str = ""
    cache_from: tuple[str, ...] = ()
    cache_to: tuple[str, ...] = ()
    no_cache: bool = False
    load: bool = False
    push: bool = False
    output: str = ""  # e.g. type=oci,dest=dist/agent.oci.tar
    metadata_file: Path | None = None
    pull: bool = False  # ask the registry for the base image even when it is cached
    provenance: str = ""  # --provenance value (e.g. mode=max); empty: buildx's default


def buildx_argv(spec: BuildSpec) -> list[str]:
    """The exact command `invoke build`/`buildx`/`release` run (and print with --dry-run)."""
    destinations = [bool(spec.load), bool(spec.push), bool(spec.output)]
    if sum(destinations) > 1:
        raise AgentImageError("choose one destination: --load, --push or --output, not several")
    if not spec.tags and not spec.output:
        raise AgentImageError("no image tag given; pass at least one --tag")
    argv = ["docker", "buildx", "build"]
    if spec.builder:
        argv += ["--builder", spec.builder]
    argv += ["--file", spec.dockerfile]
    if spec.platforms:
        argv += ["--platform", ",".join(spec.platforms)]
    for tag in spec.tags:
        argv += ["--tag", tag]
    for name, value in spec.build_args.items():
        argv += ["--build-arg", f"{name}={value}"]
    if spec.ca_cert is not None:
        argv += ["--secret", f"id={CA_SECRET_ID},src={spec.ca_cert}"]
    for source in spec.cache_from:
        argv += ["--cache-from", source]
    for dest in spec.cache_to:
        argv += ["--cache-to", dest]
    if spec.no_cache:
        argv.append("--no-cache")
    if spec.pull:
        argv.append("--pull")
    if spec.provenance:
        argv += ["--provenance", spec.provenance]
    if spec.metadata_file is not None:
        argv += ["--metadata-file", str(spec.metadata_file)]
    if spec.load:
        argv.append("--load")
    if spec.push:
        argv.append("--push")
    if spec.output:
        argv += ["--output", spec.output]
    argv.append(spec.context)
    return argv


def cache_ref(value: str) -> str:
    """'127.0.0.1:5000/agent:cache' -> 'type=registry,ref=...'; explicit type=... kept as is."""
    return value if "=" in value else f"type=registry,ref={value}"
