"""invoke verify-release checks every Node line the release commit's Dockerfile builds:
vX.Y.Z (the default line) and vX.Y.Z-node<line> of each other line; a line the release left
out (release.lines) is reported, not failed; a missing vX.Y.Z fails (exit 10)."""

from __future__ import annotations

from pathlib import Path

import pytest
from git_helpers import checked

from agentimage import releaseverify
from agentimage.errors import AgentImageError, ExitCode
from agentimage.imagetools import RemoteImage

REPOSITORY = "registry.example/agentgate/agent"
DOCKERFILE = """\
ARG NODE_VERSION=18
FROM scratch AS system
FROM system AS node18
ARG CLAUDE_CODE_VERSION=9.8.7
FROM system AS node30
ARG CLAUDE_CODE_VERSION=9.9.0
"""


class FakeRegistry:
    """Tags -> images, and the verification each digest was asked for."""

    def __init__(self, tags: dict[str, str]) -> None:
        self.tags = tags
        self.verified: list[str] = []

    def inspect(self, ref: str) -> RemoteImage | None:
        digest = self.tags.get(ref.rsplit(":", 1)[1])
        return RemoteImage(digest, "0.2.0", ("linux/amd64",)) if digest else None

    def verify(self, repository: str, digest: str, public_key: Path, expected: object) -> list[str]:
        assert repository == REPOSITORY
        assert isinstance(expected, releaseverify.Expected)
        self.verified.append(digest)
        return [f"  ok {digest} {expected.version} {expected.revision[:7]}"]


@pytest.fixture
def released(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    checked(["git", "init", "-q", "-b", "main", str(work)])
    (work / "docker").mkdir()
    (work / "docker" / "Dockerfile.agent").write_text(DOCKERFILE)
    checked(["git", "-C", str(work), "add", "-A"])
    checked(["git", "-C", str(work), "commit", "-qm", "feat: two lines"])
    (work / "VERSION").write_text("0.2.0\n")
    checked(["git", "-C", str(work), "add", "-A"])
    checked(["git", "-C", str(work), "commit", "-qm", "release: v0.2.0"])
    checked(["git", "-C", str(work), "tag", "-a", "-m", "v0.2.0", "v0.2.0"])
    return work


def test_every_line_of_the_release_is_verified(released: Path, tmp_path: Path) -> None:
    fake = FakeRegistry({"v0.2.0": "sha256:default", "v0.2.0-node30": "sha256:other"})
    report = releaseverify.verify_release(
        released,
        "v0.2.0",
        REPOSITORY,
        tmp_path / "cosign.pub",
        fake,  # type: ignore[arg-type]
    )
    assert fake.verified == ["sha256:default", "sha256:other"]
    assert report[0] == f"verified v0.2.0: {REPOSITORY}@sha256:default"
    assert f"verified v0.2.0-node30: {REPOSITORY}@sha256:other" in report


def test_a_line_left_out_is_reported_not_failed(released: Path, tmp_path: Path) -> None:
    fake = FakeRegistry({"v0.2.0": "sha256:default"})
    report = releaseverify.verify_release(
        released,
        "v0.2.0",
        REPOSITORY,
        tmp_path / "cosign.pub",
        fake,  # type: ignore[arg-type]
    )
    assert fake.verified == ["sha256:default"]
    assert report[-1] == "not published: v0.2.0-node30 (release.lines left Node 30 out)"


def test_an_unpublished_release_fails(released: Path, tmp_path: Path) -> None:
    with pytest.raises(AgentImageError) as raised:
        releaseverify.verify_release(
            released,
            "v0.2.0",
            REPOSITORY,
            tmp_path / "cosign.pub",
            FakeRegistry({}),  # type: ignore[arg-type]
        )
    assert raised.value.code == ExitCode.SUPPLY_CHAIN
    assert "v0.2.0 is not in the registry" in str(raised.value)
