"""Size budget of the image under test (AGENT_IMAGE): a content check of its layers.

Fails when the image carries the CLI binary (or any file of 1 MiB or more) twice, or when
its own layers hide 1 MiB or more of files below them (a RUN that rewrites, chmods or
deletes a base file ships the old bytes anyway, invisibly). Each message names the paths.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass

import pytest

import docker
from agentimage import config
from benchmarks import layers

MIB = layers.MIB
SHADOW_BUDGET = 1 * MIB


@dataclass(frozen=True)
class Analysed:
    ref: str
    image: layers.Image
    state: layers.Replay
    base_layers: int
    base_ref: str


@pytest.fixture(scope="module")
def analysed(
    image_ref: str, saved_image: layers.Image, client: docker.DockerClient, node_line: str
) -> Analysed:
    ref, image = image_ref, saved_image
    labels = image.config.get("config", {}).get("Labels") or {}
    variant = labels.get("io.agentgate.image.variant", "")
    # The base of the image's variant and line, whose own layers are not ours to charge;
    # AGENT_BASE_IMAGE overrides.
    base_ref = os.environ.get("AGENT_BASE_IMAGE") or (
        config.base_image(variant, node_line) if variant in config.VARIANT_BASES else ""
    )
    base_layers = 0
    if base_ref:
        try:
            base_ids = client.images.get(base_ref).attrs["RootFS"]["Layers"]
        except docker.errors.ImageNotFound:
            base_ids = []  # base not on this host: charge every layer (stricter)
        base_layers = layers.shared_prefix(base_ids, image.config["rootfs"]["diff_ids"])
    return Analysed(ref, image, layers.replay(image.layers), base_layers, base_ref)


def _claude(result: Analysed) -> layers.Node:
    env = dict(
        item.split("=", 1) for item in result.image.config.get("config", {}).get("Env") or []
    )
    for directory in env.get("PATH", "").split(":"):
        node = layers.resolve(result.state.files, posixpath.join(directory or "/", "claude"))
        if node is not None and node.inode is not None:
            return node
    pytest.fail(f"{result.ref}: no `claude` on the image's PATH ({env.get('PATH')})")


def test_cli_binary_is_carried_once(analysed: Analysed) -> None:
    node = _claude(analysed)
    assert node.inode is not None
    inode = analysed.state.inodes[node.inode]
    assert inode.size >= MIB, f"{node.path} is only {inode.size} bytes; is it the CLI binary?"
    assert inode.digest is not None
    copies = [
        (layer.index, entry.path)
        for layer in analysed.image.layers
        for entry in layer.entries
        if entry.kind is layers.Kind.FILE and entry.digest == inode.digest
    ]
    assert len(copies) == 1, (
        f"{analysed.ref} carries the {inode.size / MIB:.0f} MiB CLI binary {len(copies)} times "
        f"(layer, path): {copies}; a COPY across stages breaks npm's hard link, so copy only "
        "the package directory, once"
    )


def test_no_large_file_is_present_twice(analysed: Analysed) -> None:
    found = layers.duplicates(analysed.state, min_size=MIB)
    listing = "\n".join(
        f"  {dup.size / MIB:.1f} MiB x{len(dup.paths)}: {', '.join(p[0] for p in dup.paths)}"
        for dup in found
    )
    assert not found, (
        f"{analysed.ref} holds files of 1 MiB or more twice by content (hard link them, or "
        f"copy once):\n{listing}"
    )


def test_layers_hide_less_than_one_mib(analysed: Analysed) -> None:
    since = analysed.base_layers
    total = layers.shadowed_total(analysed.state, by_layers_from=since)
    top = layers.shadowed_by_path(analysed.state, top=15, by_layers_from=since)
    listing = "\n".join(
        f"  {item.size:>9} B  {item.path} (layer {item.layer}, {item.how} by layer "
        f"{item.by_layer}: {analysed.image.layers[item.by_layer].step[:60]})"
        for item in top
    )
    assert total < SHADOW_BUDGET, (
        f"{analysed.ref}: layers above the base ({analysed.base_ref or 'none found'}, "
        f"{since} layers) hide {total} bytes of earlier files, budget {SHADOW_BUDGET}; "
        f"avoid rewriting base files in a RUN. Largest:\n{listing}"
    )
