"""`invoke buildx` end to end: a two-platform push to a loopback registry, then both run.

Needs a Docker Engine with buildx, arm64 emulation (scripts/provision-emulation.sh) and the
two-platform base mirror (scripts/build-base-mirror.sh with PLATFORMS including arm64).
About two minutes cold: the arm64 half builds under qemu. Marked multiarch, so
`nox -s multiarch` runs it, not `nox -s release`; `registry` is the release suite's
loopback registry. The pushed image goes to a repository name of the module's own, and
every tag the push and the runs leave in the local image store is removed afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from releasekit import ROOT, remove_local_images, unique_image_name

from agentimage import lines
from agentimage.imagetools import Registry
from agentimage.runner import HostRunner

PLATFORMS = ("linux/amd64", "linux/arm64")
TAG = "multiarch-test"

pytestmark = pytest.mark.multiarch


def invoke_buildx(*args: str, image_name: str = "agentgate/agent") -> None:
    """`invoke buildx --variant slim ARGS` in the project; fails the test with its log."""
    result = subprocess.run(
        [sys.executable, "-m", "invoke", "buildx", "--variant", "slim", *args],
        cwd=ROOT,
        env={**os.environ, "INVOKE_IMAGE_NAME": image_name},
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert result.returncode == 0, f"invoke buildx failed:\n{result.stdout[-4000:]}{result.stderr}"


@pytest.fixture(scope="module")
def pushed(registry: str) -> Iterator[str]:
    """Run `invoke buildx` once for the module; the pushed reference. With the containerd
    image store the push also leaves its tags in the local store: removed after."""
    image_name = unique_image_name()
    platforms = ",".join(PLATFORMS)
    try:
        invoke_buildx(
            "--platform", platforms, "--registry", registry, "--tag", TAG, "--no-verify",
            image_name=image_name,
        )  # fmt: skip
        yield f"{registry}/{image_name}:{TAG}"
    finally:
        remove_local_images(registry, image_name)


def test_pushed_tag_is_a_manifest_list_of_both_platforms(registry: str, pushed: str) -> None:
    found = Registry(HostRunner()).inspect(pushed)
    assert found is not None, f"{pushed} is not in the registry"
    assert sorted(found.platforms) == sorted(PLATFORMS), f"{pushed} holds {found.platforms}"


@pytest.mark.parametrize("platform", PLATFORMS)
def test_each_platform_runs_node_and_claude(pushed: str, platform: str) -> None:
    result = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--pull",
            "always",
            "--platform",
            platform,
            pushed,
            "bash",
            "-c",
            "uname -m; node --version; claude --version",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    machine, node, claude = result.stdout.split("\n")[:3]
    assert machine == {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}[platform]
    known = lines.read()
    assert node.startswith(f"v{known.default}.")
    assert claude.startswith(f"{known.pins[known.default]} ")


def test_without_a_registry_buildx_writes_a_two_platform_oci_archive(tmp_path: Path) -> None:
    archive = tmp_path / "agent.oci.tar"
    invoke_buildx("--output", str(archive))
    with tarfile.open(archive) as tar:

        def blob(digest: str) -> dict:
            member = tar.extractfile(f"blobs/sha256/{digest.removeprefix('sha256:')}")
            assert member is not None
            return json.load(member)

        top = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        image_index = blob(top["manifests"][0]["digest"])
        platforms = {
            f"{entry['platform']['os']}/{entry['platform']['architecture']}"
            for entry in image_index["manifests"]
            if entry.get("platform", {}).get("os") != "unknown"  # attestation entries
        }
    assert platforms == set(PLATFORMS)
