"""Assemble a BuildSpec from options + git metadata, run it, and describe the result."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from agentimage import config, labels
from agentimage.buildx import BuildSpec, buildx_argv
from agentimage.errors import AgentImageError, ExitCode
from agentimage.labels import CLAUDE_CODE_VERSION_LABEL
from agentimage.proc import quote

PULL_FAILURE_MARKERS = (
    "failed to resolve source metadata",
    "pull access denied",
    "failed to do request",
    "not found: manifest unknown",
    "failed to authorize",
)


@dataclass(frozen=True)
class BuildOptions:
    variant: str
    node_version: str
    claude_code_version: str
    ca_cert: Path | None = None
    builder: str = ""
    cache_from: tuple[str, ...] = ()
    cache_to: tuple[str, ...] = ()
    no_cache: bool = False
    dockerfile: str = config.DOCKERFILE
    context: str = config.BUILD_CONTEXT


def build_args(options: BuildOptions, meta: labels.ImageMetadata) -> dict[str, str]:
    """Every --build-arg: base image, pinned versions, then the label values."""
    args = {
        "BASE_IMAGE": config.base_image(options.variant, options.node_version),
        "NODE_VERSION": config.check_node_version(options.node_version),
        "CLAUDE_CODE_VERSION": config.check_cli_version(options.claude_code_version),
    }
    args.update(labels.label_build_args(meta))
    return args


def make_spec(
    options: BuildOptions,
    meta: labels.ImageMetadata,
    tags: Sequence[str],
    *,
    platforms: tuple[str, ...] = (),
    load: bool = False,
    push: bool = False,
    output: str = "",
    metadata_file: Path | None = None,
) -> BuildSpec:
    return BuildSpec(
        tags=tuple(tags),
        build_args=build_args(options, meta),
        platforms=platforms,
        dockerfile=options.dockerfile,
        context=options.context,
        ca_cert=options.ca_cert,
        builder=options.builder,
        cache_from=options.cache_from,
        cache_to=options.cache_to,
        no_cache=options.no_cache,
        load=load,
        push=push,
        output=output,
        metadata_file=metadata_file,
    )


def failure_hint(variant: str, output_tail: str, base: str = "") -> str:
    """The fix to suggest for a failed build, judged from the end of its log."""
    text = output_tail.lower()
    if any(marker in text for marker in PULL_FAILURE_MARKERS):
        if variant == "alpine":
            return (
                "the alpine base image cannot be pulled here; use --variant slim "
                "(or configure a registry mirror that holds node:*-alpine)"
            )
        image = f"base image {base}" if base else "a base image"
        return (
            f"{image} cannot be pulled; check --node-version (a published node tag) and the "
            "registry mirror in /etc/docker/daemon.json"
        )
    if "self_signed_cert_in_chain" in text or "unable to get local issuer" in text:
        return "TLS is intercepted; pass the proxy's CA bundle with --ca-cert PATH"
    return "read the build log above, fix the cause and re-run"


def run_build(spec: BuildSpec, variant: str, cwd: Path) -> str:
    """Run buildx (log streamed to stderr); return the image digest from the metadata file."""
    with tempfile.TemporaryDirectory(prefix="agentimage-") as tmp:
        metadata = spec.metadata_file or Path(tmp) / "metadata.json"
        if spec.metadata_file is None:
            spec = BuildSpec(**{**spec.__dict__, "metadata_file": metadata})
        argv = buildx_argv(spec)
        print(f"$ {quote(argv)}", file=sys.stderr, flush=True)
        tail: deque[str] = deque(maxlen=60)
        try:
            process = subprocess.Popen(
                argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
        except FileNotFoundError as exc:
            raise AgentImageError(
                "docker client not found on PATH; install docker-cli", ExitCode.ENVIRONMENT
            ) from exc
        assert process.stdout is not None
        try:
            for line in process.stdout:
                sys.stderr.write(line)
                tail.append(line)
            code = process.wait()
        except BaseException:
            process.terminate()
            process.wait(timeout=30)
            raise
        if code != 0:
            raise AgentImageError(
                f"docker buildx build failed (exit {code}); "
                + failure_hint(variant, "".join(tail), spec.build_args.get("BASE_IMAGE", "")),
                ExitCode.BUILD_FAILED,
            )
        return read_digest(metadata)


def read_digest(metadata_file: Path) -> str:
    try:
        data = json.loads(metadata_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    return str(data.get("containerimage.digest") or data.get("containerimage.config.digest") or "")


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
    result = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{json .}}", ref],
        text=True,
        capture_output=True,
        check=False,
    )
    try:
        data = json.loads(result.stdout)
    except ValueError:
        return ImageFacts(None, "unknown", "unknown")
    config = data.get("Config") or {}
    env = dict(item.split("=", 1) for item in config.get("Env") or [] if "=" in item)
    labels = config.get("Labels") or {}
    size = data.get("Size")
    return ImageFacts(
        size=size if isinstance(size, int) else None,
        node_version=f"v{env['NODE_VERSION']}" if "NODE_VERSION" in env else "unknown",
        claude_code_version=labels.get(CLAUDE_CODE_VERSION_LABEL, "unknown"),
    )


def tool_version(ref: str, tool: str, platform: str = "") -> str:
    """`<tool> --version` inside the image (entrypoint bypassed, no network)."""
    argv = ["docker", "run", "--rm", "--network", "none", "--entrypoint", tool]
    if platform:
        argv += ["--platform", platform]
    try:
        result = subprocess.run(
            [*argv, ref, "--version"], text=True, capture_output=True, check=False, timeout=120
        )
    except subprocess.TimeoutExpired:
        return "unknown (timed out)"
    return (
        result.stdout.strip().splitlines()[0]
        if result.returncode == 0 and result.stdout.strip()
        else "unknown"
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
