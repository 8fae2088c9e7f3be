"""Properties of the version and tag functions, over generated valid semantic versions.

The strategies build versions from the SemVer 2.0 grammar (numeric identifiers without
leading zeros, alphanumeric identifiers with hyphens, one to four prerelease parts), so
every example reaches the property rather than being thrown away as unparsable text.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from agentimage.errors import AgentImageError
from agentimage.tags import release_tags, stable_versions
from agentimage.versioning import (
    Version,
    dev_version,
    latest_tagged,
    next_version,
    parse_version,
    read_version_file,
    tag_name,
    version_from_tag,
    write_version_file,
)

numbers = st.integers(min_value=0, max_value=100_000)
numeric_ids = numbers.map(str)
# at least one letter or hyphen, so it is not numeric (and may hold leading zeros)
alphanumeric_ids = st.from_regex(r"[0-9A-Za-z-]{0,4}[A-Za-z-][0-9A-Za-z-]{0,4}", fullmatch=True)
prereleases = st.lists(st.one_of(numeric_ids, alphanumeric_ids), min_size=1, max_size=4).map(
    ".".join
)
stable = st.builds(Version, numbers, numbers, numbers)
prerelease_versions = st.builds(lambda base, pre: base.replace(prerelease=pre), stable, prereleases)
versions = st.one_of(stable, prerelease_versions)
pre_ids = st.from_regex(r"[A-Za-z][0-9A-Za-z-]{0,6}", fullmatch=True)
bumps = st.sampled_from(["patch", "minor", "major", "prerelease"])
SHA = "0123456789abcdef0123456789abcdef01234567"
REFUSAL = re.compile(r"gives (\S+), which does not sort above it")


@given(versions)
def test_text_and_tag_round_trip(version: Version) -> None:
    assert parse_version(str(version)) == version
    assert version_from_tag(tag_name(version)) == version


@given(versions)
def test_version_file_round_trip(version: Version) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "VERSION"
        write_version_file(path, version)
        assert path.read_text() == f"{version}\n"
        assert read_version_file(path) == version


@given(versions, bumps)
def test_next_version_without_pre_always_sorts_above(current: Version, bump: str) -> None:
    result = next_version(current, bump)
    assert result > current
    assert bool(result.prerelease) == (bump == "prerelease")
    assert not result.build


@given(versions, bumps, pre_ids)
def test_next_version_with_pre_sorts_above_or_says_what_it_would_give(
    current: Version, bump: str, pre: str
) -> None:
    try:
        result = next_version(current, bump, pre)
    except AgentImageError as exc:  # only the documented refusal: an identifier going down
        refusal = exc.message
    else:
        assert result > current
        assert result.prerelease
        assert result.prerelease.split(".")[0] == pre
        return
    refused = REFUSAL.search(refusal)
    assert refused, refusal
    assert Version.parse(refused.group(1)) <= current


@given(prerelease_versions)
def test_a_stable_patch_bump_of_a_prerelease_is_its_own_release(current: Version) -> None:
    assert next_version(current, "patch") == current.finalize_version()


@given(stable, st.lists(stable, max_size=8))
def test_latest_never_moves_backwards(version: Version, published: list[Version]) -> None:
    tags = release_tags(version, SHA, [str(v) for v in published])
    newest = max(published, default=None)
    assert ("latest" in tags.floating) == (newest is None or version >= newest)
    same_major = [v for v in published if v.major == version.major]
    assert (str(version.major) in tags.floating) == (not same_major or version >= max(same_major))
    assert set(tags.floating) | set(tags.held_back) == {
        f"{version.major}.{version.minor}",
        str(version.major),
        "latest",
    }


@given(prerelease_versions, st.lists(versions, max_size=8))
def test_prereleases_never_get_floating_tags(version: Version, published: list[Version]) -> None:
    tags = release_tags(version, SHA, [f"v{v}" for v in published])
    assert tags.floating == ()
    assert tags.held_back == ()
    assert tags.all == (f"v{version}", "sha-0123456")


@given(
    st.lists(st.tuples(versions, st.booleans()), max_size=12),
    st.lists(st.text(max_size=12), max_size=6),
)
def test_stable_versions_keeps_exactly_the_stable_releases(
    tagged: list[tuple[Version, bool]], junk: list[str]
) -> None:
    def is_semver(text: str) -> bool:
        try:
            Version.parse(text.removeprefix("v"))
        except ValueError:
            return False
        return True

    names = [f"v{v}" if prefixed else str(v) for v, prefixed in tagged]
    noise = [text for text in junk if not is_semver(text)]
    assert stable_versions(names + noise) == [v for v, _ in tagged if not v.prerelease]


@given(st.lists(versions, min_size=1, max_size=8), st.lists(st.text(max_size=8), max_size=4))
def test_latest_tagged_is_the_highest_release_tag(released: list[Version], junk: list[str]) -> None:
    tags = [tag_name(v) for v in released] + [t for t in junk if version_from_tag(t) is None]
    assert latest_tagged(tags) == max(released)


@given(versions, st.integers(min_value=1, max_value=10_000), st.booleans())
def test_a_dev_version_is_semver_above_its_base(base: Version, distance: int, dirty: bool) -> None:
    text = dev_version(base, distance, SHA[:7], dirty)
    version = Version.parse(text)
    assert version > base
    assert version.build == f"g{SHA[:7]}" + (".dirty" if dirty else "")
    assert version.prerelease is not None
    assert f"dev.{distance}" in version.prerelease


@given(versions)
def test_the_release_commit_itself_builds_as_the_release(base: Version) -> None:
    assert dev_version(base, 0, SHA[:7], dirty=False) == str(base)
    assert Version.parse(dev_version(base, 0, SHA[:7], dirty=True)).finalize_version() == (
        base.finalize_version()
    )
