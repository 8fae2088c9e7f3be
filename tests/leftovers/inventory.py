"""What a test run may leave in the Docker engine: an inventory before, a comparison after.

`nox -s verify` takes an inventory first (`python tests/leftovers/inventory.py save PATH`)
and compares at the end (tests/leftovers/test_nothing_left_behind.py): every image, tag,
container, network and volume the run created and did not remove is a leftover, and so is
a tag it removed that it had not made. The documented exception is the development tags a
verify run (re)builds: agentgate/agent:dev and :sha-<HEAD>, agentgate/gateway:dev.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from agentimage import proc

LISTINGS = {
    "images": ["docker", "image", "ls", "--all", "--no-trunc", "--format", "{{json .}}"],
    "containers": ["docker", "container", "ls", "--all", "--no-trunc", "--format", "{{json .}}"],
    "networks": ["docker", "network", "ls", "--no-trunc", "--format", "{{json .}}"],
    "volumes": ["docker", "volume", "ls", "--format", "{{json .}}"],
}


@dataclass(frozen=True)
class Inventory:
    images: dict[str, frozenset[str]]  # image id -> its repo:tag names (empty: dangling)
    containers: dict[str, str]  # id -> name
    networks: dict[str, str]  # id -> name
    volumes: frozenset[str]

    def as_json(self) -> str:
        return json.dumps(
            {
                "images": {image: sorted(tags) for image, tags in self.images.items()},
                "containers": self.containers,
                "networks": self.networks,
                "volumes": sorted(self.volumes),
            },
            indent=1,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Inventory:
        data = json.loads(text)
        return cls(
            {image: frozenset(tags) for image, tags in data["images"].items()},
            dict(data["containers"]),
            dict(data["networks"]),
            frozenset(data["volumes"]),
        )


def _rows(kind: str) -> list[dict[str, str]]:
    listed = proc.run(LISTINGS[kind], timeout=60, failure=f"listing docker {kind} failed")
    return [json.loads(line) for line in listed.stdout.splitlines() if line.strip()]


def take() -> Inventory:
    """The engine's images, containers, networks and volumes now."""
    images: dict[str, set[str]] = {}
    for row in _rows("images"):
        tags = images.setdefault(row["ID"], set())
        if row["Repository"] != "<none>" and row["Tag"] != "<none>":
            tags.add(f"{row['Repository']}:{row['Tag']}")
    return Inventory(
        {image: frozenset(tags) for image, tags in images.items()},
        {row["ID"]: row["Names"] for row in _rows("containers")},
        {row["ID"]: row["Name"] for row in _rows("networks")},
        frozenset(row["Name"] for row in _rows("volumes")),
    )


def tags_of(inventory: Inventory) -> dict[str, str]:
    """repo:tag -> the image id it names."""
    return {tag: image for image, tags in inventory.images.items() for tag in tags}


def leftovers(before: Inventory, after: Inventory, allowed_tags: Iterable[str]) -> list[str]:
    """One line for each change from `before` to `after`: an image tag created, moved or
    removed (except the allowed tags), an untagged image, container, network or volume
    created."""
    allowed = set(allowed_tags)
    tagged_before, tagged_after = tags_of(before), tags_of(after)
    found = []
    for tag in sorted((tagged_before.keys() | tagged_after.keys()) - allowed):
        if tag not in tagged_before:
            found.append(f"image tag {tag} was created")
        elif tag not in tagged_after:
            found.append(f"image tag {tag} was removed")
        elif tagged_before[tag] != tagged_after[tag]:
            found.append(f"image tag {tag} was moved to {tagged_after[tag]}")
    found += [
        f"untagged image {image} was created"
        for image, tags in sorted(after.images.items())
        if image not in before.images and not tags
    ]
    found += [
        f"container {name} ({cid[:12]}) was created"
        for cid, name in sorted(after.containers.items())
        if cid not in before.containers
    ]
    found += [
        f"network {name} ({nid[:12]}) was created"
        for nid, name in sorted(after.networks.items())
        if nid not in before.networks
    ]
    found += [f"volume {name} was created" for name in sorted(after.volumes - before.volumes)]
    return found


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "save":
        sys.exit("usage: python tests/leftovers/inventory.py save PATH")
    Path(sys.argv[2]).write_text(take().as_json())
