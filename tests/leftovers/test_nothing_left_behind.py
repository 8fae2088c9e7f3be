"""A verify run leaves the Docker engine as it found it, but for the documented dev tags.

`nox -s verify` saves an inventory before its first session (AGENTGATE_DOCKER_INVENTORY
names the file) and runs this module after its last; the comparison itself is tested on
made-up inventories first, so a check that could not fail would show here.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from inventory import Inventory, leftovers, take

from agentimage import lines, proc, tags

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = "AGENTGATE_DOCKER_INVENTORY"


def dev_tags() -> set[str]:
    """What a verify run (re)builds on purpose: README "Development", for each Node line
    (the default line's tags bare, another's with its -node<line> suffix)."""
    head = proc.run(["git", "rev-parse", "--short=7", "HEAD"], cwd=ROOT, failure="git failed")
    known = lines.read(ROOT)
    suffixes = ["", *(lines.suffix(line) for line in known.names[1:])]
    return {
        *(
            f"agentgate/agent:{tag}"
            for s in suffixes
            for tag in tags.dev_tags(head.stdout.strip(), s)
        ),
        "agentgate/gateway:dev",
    }


def inventory(images: dict[str, set[str]], containers=(), networks=(), volumes=()) -> Inventory:
    return Inventory(
        {image: frozenset(tags) for image, tags in images.items()},
        {f"c-{name}": name for name in containers},
        {f"n-{name}": name for name in networks},
        frozenset(volumes),
    )


BEFORE = inventory(
    {"sha256:old-dev": {"agentgate/agent:dev"}, "sha256:base": {"node:18"}},
    containers=["agt-theirs"],
    networks=["bridge"],
    volumes=["kept"],
)


def test_rebuilt_dev_tags_are_no_leftover() -> None:
    after = inventory(
        {
            "sha256:old-dev": set(),  # the previous dev build, now untagged: not new
            "sha256:new-dev": {"agentgate/agent:dev", "agentgate/agent:sha-1234567"},
            "sha256:base": {"node:18"},
        },
        containers=["agt-theirs"],
        networks=["bridge"],
        volumes=["kept"],
    )
    allowed = {"agentgate/agent:dev", "agentgate/agent:sha-1234567"}
    assert leftovers(BEFORE, after, allowed) == []


def test_every_kind_of_leftover_is_named() -> None:
    after = inventory(
        {
            "sha256:old-dev": {"agentgate/agent:dev"},
            "sha256:other": {"node:18"},  # a tag now naming another image
            "sha256:pushed": {"127.0.0.1:40001/e2e/agent-1-1:sha-1234567"},
            "sha256:dangling": set(),
        },
        containers=["agt-theirs", "agt-test-x"],
        networks=["bridge", "agt-e2e-n"],
        volumes=["kept", "agt-vol"],
    )
    assert leftovers(BEFORE, after, set()) == [
        "image tag 127.0.0.1:40001/e2e/agent-1-1:sha-1234567 was created",
        "image tag node:18 was moved to sha256:other",
        "untagged image sha256:dangling was created",
        "container agt-test-x (c-agt-test-x) was created",
        "network agt-e2e-n (n-agt-e2e-n) was created",
        "volume agt-vol was created",
    ]


def test_a_removed_tag_is_named() -> None:
    after = inventory({"sha256:old-dev": {"agentgate/agent:dev"}}, ["agt-theirs"], ["bridge"])
    assert leftovers(BEFORE, after, set()) == ["image tag node:18 was removed"]


def test_an_inventory_survives_its_file(tmp_path: Path) -> None:
    path = tmp_path / "inventory.json"
    path.write_text(BEFORE.as_json())
    assert Inventory.from_json(path.read_text()) == BEFORE


def test_verify_left_nothing_behind() -> None:
    saved = os.environ.get(INVENTORY)
    if not saved:
        pytest.skip(f"{INVENTORY} is not set: nox -s verify saves the inventory this compares")
    before = Inventory.from_json(Path(saved).read_text())
    found = leftovers(before, take(), dev_tags())
    assert not found, "the run left the Docker engine changed:\n" + "\n".join(found)
