"""Properties of the version and tag functions (hypothesis)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from agentimage.errors import AgentImageError
from agentimage.tags import release_tags, stable_versions
from agentimage.versioning import (
    Version,
    next_version,
    parse_version,
    read_version_file,
    tag_name,
    version_from_tag,
    write_version_file,
)

numbers = st.integers(min_value=0, max_value=10_000)
identifiers = st.sampled_from(["alpha", "beta", "rc", "pre", "dev"])
stable = st.builds(Version, numbers, numbers, numbers)


@st.composite
def versions(draw: st.DrawFn) -> Version:
    base = draw(stable)
    if draw(st.booleans()):
        return base
    return base.replace(prerelease=f"{draw(identifiers)}.{draw(st.integers(1, 50))}")


SHA = "0123456789abcdef0123456789abcdef01234567"


@given(versions())
def test_text_and_tag_round_trip(version: Version) -> None:
    assert parse_version(str(version)) == version
    assert version_from_tag(tag_name(version)) == version


@given(versions())
def test_version_file_round_trip(version: Version) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "VERSION"
        write_version_file(path, version)
        assert read_version_file(path) == version


@given(
    versions(),
    st.sampled_from(["patch", "minor", "major", "prerelease"]),
    st.one_of(st.none(), identifiers),
)
def test_next_version_always_sorts_above(current: Version, bump: str, pre: str | None) -> None:
    try:
        result = next_version(current, bump, pre)
    except AgentImageError as exc:  # only the documented refusal (identifier going down)
        refusal = str(exc)
    else:
        refusal = ""
    if refusal:
        assert "does not sort above" in refusal
        return
    assert result > current
    assert bool(result.prerelease) == (bump == "prerelease" or pre is not None)


@given(versions())
def test_stable_bump_of_prerelease_never_skips_its_release(current: Version) -> None:
    # a final release from an rc lands on the rc's own release when the bump allows it
    if current.prerelease:
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


@given(versions(), st.lists(st.text(max_size=12), max_size=8))
def test_prereleases_never_get_floating_tags(version: Version, junk: list[str]) -> None:
    tags = release_tags(version, SHA, junk)
    if version.prerelease:
        assert tags.floating == ()
        assert "latest" not in tags.all
    assert tags.immutable == (f"v{version}", "sha-0123456")


@given(st.lists(st.text(max_size=20), max_size=20))
def test_stable_versions_ignores_garbage(tags: list[str]) -> None:
    for version in stable_versions(tags):
        assert not version.prerelease
