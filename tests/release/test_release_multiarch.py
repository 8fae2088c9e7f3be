"""`invoke release --platform linux/amd64,linux/arm64`: the release is one manifest list,
and each platform image carries its own provenance and its own SBOM.

Marked multiarch: the arm64 half builds under qemu, so `nox -s multiarch` runs it, not
`nox -s release`.
"""

from __future__ import annotations

import json

import pytest
from releasekit import LINES, ReleaseRepo, registry_tags, run

from agentimage.imagetools import Registry
from agentimage.runner import HostRunner

PLATFORMS = ("linux/amd64", "linux/arm64")

pytestmark = pytest.mark.multiarch


def test_release_publishes_a_manifest_list_of_both_platforms(release_repo: ReleaseRepo) -> None:
    result = release_repo.invoke("release", "--bump", "patch", "--platform", ",".join(PLATFORMS))
    assert result.returncode == 0, result.stderr[-3000:]

    tags = registry_tags(release_repo.registry, release_repo.repo)
    assert {"v0.1.1", "0.1", "0", "latest"} <= set(tags)
    assert tags["latest"] == tags["v0.1.1"]
    released = Registry(HostRunner()).inspect(f"{release_repo.registry}/{release_repo.repo}:v0.1.1")
    assert released is not None
    assert sorted(released.platforms) == sorted(PLATFORMS)
    assert release_repo.git("log", "-1", "--format=%s") == "release: v0.1.1"

    ref = f"{release_repo.registry}/{release_repo.repo}:v0.1.1"
    inspect = ["docker", "buildx", "imagetools", "inspect", "--format", "{{json .Provenance}}"]
    provenance = json.loads(run([*inspect, ref]))
    assert sorted(provenance) == sorted(PLATFORMS)
    for platform in PLATFORMS:
        assert provenance[platform]["SLSA"]["materials"], platform
        # no key here: each platform image's SBOM is attached unsigned, and names its platform
        sbom = json.loads(run(["cosign", "download", "sbom", "--platform", platform, ref]))
        properties = {p["name"]: p["value"] for p in sbom["metadata"]["component"]["properties"]}
        assert properties["agentgate:image:platform"] == platform
        names = {(c.get("group"), c["name"]): c["version"] for c in sbom["components"]}
        assert names[("@anthropic-ai", "claude-code")] == LINES.pins[LINES.default]
        assert (None, "node") in names
