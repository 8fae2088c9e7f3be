"""A build's inputs (BuildOptions), the BuildSpec assembled from them and the label values,
and running it: the one way the tooling builds the image."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypedDict, Unpack

from agentimage import config, labels, proc
from agentimage.buildx import BuildSpec, buildx_argv
from agentimage.errors import AgentImageError, ExitCode
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
    node_version: str  # a line (major) or a full release of it: the base image's tag
    claude_code_version: str
    ca_cert: Path | None = None
    builder: str = ""
    cache_from: tuple[str, ...] = ()
    cache_to: tuple[str, ...] = ()
    no_cache: bool = False
    dockerfile: str = config.DOCKERFILE
    context: str = config.BUILD_CONTEXT
    # What this line adds to tag names: "" for the Dockerfile's default line, -node<line>
    # for another (tags.py has the scheme).
    tag_suffix: str = ""
    # The digest the base image resolved to (preflight.base_image): FROM is pinned to it and
    # the base.digest label names it. Empty only where nothing is built (a --dry-run).
    base_digest: str = ""

    @property
    def line(self) -> str:
        """The Node line (major) built: the Dockerfile stage node<line> that pins the CLI."""
        return config.check_node_version(self.node_version).split(".", 1)[0]


def build_args(options: BuildOptions, meta: labels.ImageMetadata) -> dict[str, str]:
    """Every --build-arg: base image (pinned to its digest), the line, the CLI version, then
    the label values. NODE_VERSION is the line (the Dockerfile picks its stage by it);
    BASE_IMAGE carries a full --node-version when one was given."""
    base = config.base_image(options.variant, options.node_version)
    args = {
        "BASE_IMAGE": f"{base}@{options.base_digest}" if options.base_digest else base,
        "NODE_VERSION": options.line,
        "CLAUDE_CODE_VERSION": config.check_cli_version(options.claude_code_version),
    }
    args.update(labels.label_build_args(meta))
    args.update(labels.base_build_args(config.qualified_image(base), options.base_digest))
    return args


class Destination(TypedDict, total=False):
    """Where a build goes (BuildSpec's fields of the same names): the platforms built, and
    loaded into the local store, pushed, or written to an output such as an OCI archive."""

    platforms: tuple[str, ...]
    load: bool
    push: bool
    output: str
    metadata_file: Path | None
    pull: bool
    provenance: str


def make_spec(
    options: BuildOptions,
    meta: labels.ImageMetadata,
    tags: Sequence[str],
    **destination: Unpack[Destination],
) -> BuildSpec:
    return BuildSpec(
        tags=tuple(tags),
        build_args=build_args(options, meta),
        dockerfile=options.dockerfile,
        context=options.context,
        ca_cert=options.ca_cert,
        builder=options.builder,
        cache_from=options.cache_from,
        cache_to=options.cache_to,
        no_cache=options.no_cache,
        **destination,
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


def lock_dir() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "agentgate-agent-image" / "build-locks"


@contextmanager
def tags_taken(tags: Sequence[str]) -> Iterator[None]:
    """Hold each tag while it is built: two builds of one tag on one Docker host take turns.

    The containerd image store cannot create an image name twice at once: the second
    concurrent export fails with 'image "...": already exists' (two releases of one commit,
    two CI jobs on one runner). Locks are taken in sorted order, so builds sharing several
    tags cannot deadlock; the operating system drops them when the process ends. Without a
    writable cache directory the build runs unlocked, as a lone build may.
    """
    try:
        lock_dir().mkdir(parents=True, exist_ok=True)
    except OSError:
        yield
        return
    with ExitStack() as held:
        for tag in sorted(set(tags)):
            name = hashlib.sha256(tag.encode()).hexdigest()[:24]
            handle = held.enter_context((lock_dir() / f"{name}.lock").open("a"))
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print(f"waiting for another build of {tag} on this host", file=sys.stderr)
                sys.stderr.flush()
                fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def run_build(spec: BuildSpec, variant: str, cwd: Path) -> str:
    """Run buildx (its log copied to stderr); return the image digest from the metadata file."""
    with tempfile.TemporaryDirectory(prefix="agentimage-") as tmp, tags_taken(spec.tags):
        metadata = spec.metadata_file or Path(tmp) / "metadata.json"
        argv = buildx_argv(replace(spec, metadata_file=metadata))
        print(f"$ {quote(argv)}", file=sys.stderr, flush=True)
        built = proc.run(argv, cwd=cwd, output="tee")
        if not built.ok:
            raise AgentImageError(
                f"docker buildx build failed (exit {built.returncode}); "
                + failure_hint(variant, built.stdout, spec.build_args.get("BASE_IMAGE", "")),
                ExitCode.BUILD_FAILED,
            )
        return read_digest(metadata)


def read_digest(metadata_file: Path) -> str:
    try:
        data = json.loads(metadata_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    return str(data.get("containerimage.digest") or data.get("containerimage.config.digest") or "")
