"""Tag sets for dev builds, stable releases and prereleases."""

from __future__ import annotations

import pytest

from agentimage.errors import AgentImageError
from agentimage.tags import dev_tags, qualify, release_tags, sha_tag
from agentimage.versioning import Version

SHA = "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b"


def test_dev_tags() -> None:
    assert dev_tags(SHA) == ["dev", "sha-1a2b3c4"]


@pytest.mark.parametrize("sha", ["", "123", "zzzzzzzzzz", "1a2b3c"])
def test_sha_tag_rejects_non_sha(sha: str) -> None:
    with pytest.raises(AgentImageError):
        sha_tag(sha)


def test_stable_release_gets_every_tag() -> None:
    tags = release_tags(Version.parse("1.4.2"), SHA, ["1.4.1", "1.4", "1", "latest"])
    assert tags.immutable == ("v1.4.2", "sha-1a2b3c4")
    assert tags.floating == ("1.4", "1", "latest")
    assert tags.held_back == ()


def test_first_release_on_empty_registry() -> None:
    assert release_tags(Version.parse("0.1.1"), SHA).floating == ("0.1", "0", "latest")


def test_prerelease_gets_only_version_and_sha() -> None:
    tags = release_tags(Version.parse("2.0.0-rc.1"), SHA, ["1.9.0"])
    assert tags.all == ("v2.0.0-rc.1", "sha-1a2b3c4")
    assert "latest" not in tags.all


def test_latest_never_moves_backwards() -> None:
    tags = release_tags(Version.parse("1.4.1"), SHA, ["2.0.0", "1.4.0", "1.5.0", "latest"])
    assert tags.floating == ("1.4",)
    assert tags.held_back == ("1", "latest")


def test_prerelease_tags_do_not_hold_back_a_stable_release() -> None:
    # 2.0.0-rc.1 in the registry must not stop 1.5.0 from becoming latest
    tags = release_tags(Version.parse("1.5.0"), SHA, ["2.0.0-rc.1", "1.4.0", "sha-abcdef0"])
    assert tags.floating == ("1.5", "1", "latest")


def test_rerelease_of_same_version_is_not_backwards() -> None:
    # a re-run sees its own X.Y.Z already pushed and must still move the floating tags
    tags = release_tags(Version.parse("1.4.1"), SHA, ["1.4.1", "1.4.0"])
    assert tags.floating == ("1.4", "1", "latest")


def test_git_style_tags_are_understood() -> None:
    tags = release_tags(Version.parse("1.0.1"), SHA, ["v3.0.0", "v1.2.0"])
    assert tags.floating == ("1.0",)
    assert tags.held_back == ("1", "latest")


def test_qualify() -> None:
    assert qualify("127.0.0.1:5000/agentgate/agent", ["dev"]) == [
        "127.0.0.1:5000/agentgate/agent:dev"
    ]
