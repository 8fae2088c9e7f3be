"""Image labels: the values a build passes, the Dockerfile build args that carry them, and the
labels the built image then carries."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

PREFIX = "org.opencontainers.image."
VARIANT_LABEL = "io.agentgate.image.variant"
# Set by the Dockerfile from CLAUDE_CODE_VERSION: the CLI release the image carries.
CLAUDE_CODE_VERSION_LABEL = "io.agentgate.image.claude-code-version"
VERSION_LABEL = PREFIX + "version"
REVISION_LABEL = PREFIX + "revision"
# The base image the build started from (OCI annotation names): its reference, fully
# qualified, and the digest FROM was pinned to.
BASE_NAME_LABEL = PREFIX + "base.name"
BASE_DIGEST_LABEL = PREFIX + "base.digest"
DESCRIPTION = (
    "Minimal, hardened sandbox image for running the Claude Code CLI against a mounted /workspace"
)

# The Dockerfile's LABEL instruction: each label and the build arg it is set from
# (tests/unit/test_labels.py reads the Dockerfile to keep the two in step).
LABEL_BUILD_ARGS: Mapping[str, str] = {
    PREFIX + "title": "IMAGE_TITLE",
    PREFIX + "description": "IMAGE_DESCRIPTION",
    PREFIX + "url": "IMAGE_URL",
    PREFIX + "source": "IMAGE_SOURCE",
    VERSION_LABEL: "IMAGE_VERSION",
    REVISION_LABEL: "IMAGE_REVISION",
    PREFIX + "created": "IMAGE_CREATED",
    PREFIX + "licenses": "IMAGE_LICENSES",
    VARIANT_LABEL: "IMAGE_VARIANT",
    CLAUDE_CODE_VERSION_LABEL: "CLAUDE_CODE_VERSION",
    BASE_NAME_LABEL: "IMAGE_BASE_NAME",
    BASE_DIGEST_LABEL: "IMAGE_BASE_DIGEST",
}


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


@dataclass(frozen=True)
class Identity:
    """What every build of the project says about itself: invoke.yaml's image section."""

    source: str = ""  # the source repository's URL
    title: str = "agentgate/agent"
    description: str = DESCRIPTION
    licenses: str = "Apache-2.0"

    def metadata(self, *, version: str, revision: str, created: str, variant: str) -> ImageMetadata:
        """The label values of one build: this identity plus what names the build."""
        return ImageMetadata(
            version=version,
            revision=revision,
            created=created,
            source=self.source,
            variant=variant,
            title=self.title,
            description=self.description,
            licenses=self.licenses,
        )


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


def base_build_args(name: str, digest: str) -> dict[str, str]:
    """The Dockerfile's IMAGE_BASE_* build args: the base.name and base.digest labels."""
    return {"IMAGE_BASE_NAME": name, "IMAGE_BASE_DIGEST": digest}


def labels_from_build_args(build_args: Mapping[str, str]) -> dict[str, str]:
    """The labels an image built with these --build-arg values carries."""
    return {label: build_args[arg] for label, arg in LABEL_BUILD_ARGS.items()}


def mismatched_labels(expected: Mapping[str, str], actual: Mapping[str, str]) -> dict[str, str]:
    """Labels whose built value differs from the expected one: {name: 'want X, got Y'}."""
    return {
        name: f"want {want!r}, got {actual.get(name)!r}"
        for name, want in expected.items()
        if actual.get(name) != want
    }
