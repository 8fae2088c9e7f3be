"""OCI image labels and the Dockerfile build args that carry them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

PREFIX = "org.opencontainers.image."
# Set by the Dockerfile from CLAUDE_CODE_VERSION: the CLI release the image carries.
CLAUDE_CODE_VERSION_LABEL = "io.agentgate.image.claude-code-version"
DESCRIPTION = (
    "Minimal, hardened sandbox image for running the Claude Code CLI against a mounted /workspace"
)


@dataclass(frozen=True)
class ImageMetadata:
    version: str  # 0.2.14-dev.3+g1a2b3c4, or the exact release version
    revision: str  # full commit sha
    created: str  # commit time, RFC 3339, so rebuilding a commit gives the same label
    source: str
    variant: str
    title: str = "agentgate/agent"
    description: str = DESCRIPTION
    licenses: str = "Apache-2.0"
    url: str = ""


def oci_labels(meta: ImageMetadata) -> dict[str, str]:
    """Every org.opencontainers.image.* label the built image should carry."""
    labels = {
        "title": meta.title,
        "description": meta.description,
        "url": meta.url or meta.source,
        "source": meta.source,
        "version": meta.version,
        "created": meta.created,
        "revision": meta.revision,
        "licenses": meta.licenses,
    }
    return {PREFIX + key: value for key, value in labels.items()}


def label_build_args(meta: ImageMetadata) -> dict[str, str]:
    """The Dockerfile's IMAGE_* build args; its LABEL instruction turns them into labels."""
    return {
        "IMAGE_VERSION": meta.version,
        "IMAGE_REVISION": meta.revision,
        "IMAGE_CREATED": meta.created,
        "IMAGE_SOURCE": meta.source,
        "IMAGE_VARIANT": meta.variant,
        "IMAGE_TITLE": meta.title,
        "IMAGE_DESCRIPTION": meta.description,
        "IMAGE_LICENSES": meta.licenses,
        "IMAGE_URL": meta.url or meta.source,
    }


def mismatched_labels(expected: Mapping[str, str], actual: Mapping[str, str]) -> dict[str, str]:
    """Labels whose built value differs from the expected one: {name: 'want X, got Y'}."""
    return {
        name: f"want {want!r}, got {actual.get(name)!r}"
        for name, want in expected.items()
        if actual.get(name) != want
    }
