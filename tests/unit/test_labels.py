"""OCI label values and the build args that carry them."""

from __future__ import annotations

import re
from pathlib import Path

from agentimage.labels import (
    LABEL_BUILD_ARGS,
    ImageMetadata,
    base_build_args,
    label_build_args,
    labels_from_build_args,
    mismatched_labels,
    oci_labels,
)

META = ImageMetadata(
    version="0.2.14-dev.3+g1a2b3c4",
    revision="1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b",
    created="2026-01-02T03:04:05Z",
    source="https://github.com/agentgate/agent-image",
    variant="slim",
)


def test_oci_labels_has_every_required_key() -> None:
    labels = oci_labels(META)
    keys = {k.removeprefix("org.opencontainers.image.") for k in labels}
    assert keys == {
        "title",
        "description",
        "url",
        "source",
        "version",
        "created",
        "revision",
        "licenses",
    }
    assert labels["org.opencontainers.image.version"] == "0.2.14-dev.3+g1a2b3c4"
    assert labels["org.opencontainers.image.revision"] == META.revision
    assert labels["org.opencontainers.image.created"] == "2026-01-02T03:04:05Z"
    assert labels["org.opencontainers.image.url"] == META.source  # url falls back to source
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"


def test_label_build_args_match_the_dockerfile_args() -> None:
    assert label_build_args(META) == {
        "IMAGE_VERSION": META.version,
        "IMAGE_REVISION": META.revision,
        "IMAGE_CREATED": META.created,
        "IMAGE_SOURCE": META.source,
        "IMAGE_VARIANT": "slim",
        "IMAGE_TITLE": META.title,
        "IMAGE_DESCRIPTION": META.description,
        "IMAGE_LICENSES": META.licenses,
        "IMAGE_URL": META.source,
    }
    dockerfile = (Path(__file__).parents[2] / "docker/Dockerfile.agent").read_text()
    declared = set(re.findall(r"^ARG (\w+)", dockerfile, flags=re.MULTILINE))
    assert set(label_build_args(META)) <= declared, "every label build arg is an ARG"


def test_mismatched_labels() -> None:
    expected = oci_labels(META)
    actual = {**expected, "org.opencontainers.image.revision": "unknown"}
    assert list(mismatched_labels(expected, actual)) == ["org.opencontainers.image.revision"]
    assert mismatched_labels(expected, expected) == {}


def test_label_build_args_are_what_the_dockerfile_labels_from() -> None:
    """The image tests expect labels_from_build_args(what the build passed): that holds only
    while the Dockerfile's LABEL sets exactly these labels, each from its build arg."""
    dockerfile = (Path(__file__).parents[2] / "docker/Dockerfile.agent").read_text()
    joined = dockerfile.replace("\\\n", " ")
    [instruction] = [line for line in joined.splitlines() if line.startswith("LABEL ")]
    labelled = dict(re.findall(r'([\w.-]+)="\$\{(\w+)\}"', instruction))
    assert labelled == dict(LABEL_BUILD_ARGS)


def test_labels_from_build_args_reads_every_label_from_its_arg() -> None:
    base = base_build_args("docker.io/library/node:18-bookworm-slim", "sha256:" + "b" * 64)
    args = {**label_build_args(META), **base, "CLAUDE_CODE_VERSION": "9.8.7"}
    assert labels_from_build_args(args) == {
        **oci_labels(META),
        "io.agentgate.image.variant": "slim",
        "io.agentgate.image.claude-code-version": "9.8.7",
        "org.opencontainers.image.base.name": "docker.io/library/node:18-bookworm-slim",
        "org.opencontainers.image.base.digest": "sha256:" + "b" * 64,
    }
