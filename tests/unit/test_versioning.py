"""Version arithmetic, conventional commits and the VERSION file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import semver

from agentimage.errors import AgentImageError, ExitCode
from agentimage.versioning import (
    Version,
    bump_from_commits,
    classify_commit,
    dev_version,
    latest_tagged,
    next_version,
    parse_version,
    read_version_file,
    version_from_tag,
    write_version_file,
)

V = Version.parse


@pytest.mark.parametrize(
    ("current", "bump", "pre", "expected"),
    [
        # stable bumps
        ("0.1.0", "patch", None, "0.1.1"),
        ("0.1.9", "minor", None, "0.2.0"),
        ("0.9.3", "major", None, "1.0.0"),
        ("1.2.3", "patch", None, "1.2.4"),
        # first prerelease of a bump
        ("1.2.3", "patch", "rc", "1.2.4-rc.1"),
        ("1.2.3", "minor", "rc", "1.3.0-rc.1"),
        ("1.2.3", "major", "beta", "2.0.0-beta.1"),
        # --bump prerelease on a stable version: next patch, never below (semver 3.0.4 pitfall)
        ("3.4.5", "prerelease", None, "3.4.6-rc.1"),
        ("3.4.5", "prerelease", "rc", "3.4.6-rc.1"),
        ("3.4.5", "prerelease", "alpha", "3.4.6-alpha.1"),
        # next prerelease of the same release
        ("3.4.6-rc.1", "prerelease", None, "3.4.6-rc.2"),
        ("3.4.6-rc.9", "prerelease", "rc", "3.4.6-rc.10"),
        ("1.3.0-rc.1", "minor", "rc", "1.3.0-rc.2"),
        ("2.0.0-rc.1", "major", "rc", "2.0.0-rc.2"),
        # switching identifier upwards
        ("3.4.6-alpha.3", "prerelease", "beta", "3.4.6-beta.1"),
        ("3.4.6-beta.2", "prerelease", "rc", "3.4.6-rc.1"),
        # promotions: a final release from a prerelease
        ("1.3.0-rc.2", "minor", None, "1.3.0"),
        ("1.2.4-rc.1", "patch", None, "1.2.4"),
        ("2.0.0-rc.1", "major", None, "2.0.0"),
        ("2.0.0-rc.1", "patch", None, "2.0.0"),
        ("2.0.0-rc.1", "minor", None, "2.0.0"),
        # a prerelease of a patch line asked for a minor moves on
        ("1.2.4-rc.1", "minor", None, "1.3.0"),
        ("1.2.4-rc.1", "major", None, "2.0.0"),
        ("1.3.0-rc.1", "major", "rc", "2.0.0-rc.1"),
        # prerelease of an unnumbered prerelease
        ("1.0.0-rc", "prerelease", None, "1.0.0-rc.1"),
    ],
)
def test_next_version(current: str, bump: str, pre: str | None, expected: str) -> None:
    result = next_version(V(current), bump, pre)
    assert str(result) == expected
    assert result > V(current)


@pytest.mark.parametrize(
    ("current", "pre", "expected"),
    [
        ("1.0.0-beta.2", None, "1.0.0-beta.3"),  # the configured default does not replace beta
        ("1.0.0-beta.2", "rc", "1.0.0-rc.1"),  # --pre names another: switch to it
        ("1.0.0", None, "1.0.1-alpha.1"),  # a stable version gets the configured default
        ("1.0.0", "rc", "1.0.1-rc.1"),
    ],
)
def test_prerelease_keeps_the_current_identifier_unless_pre_names_another(
    current: str, pre: str | None, expected: str
) -> None:
    assert str(next_version(V(current), "prerelease", pre, default_pre="alpha")) == expected


def test_semver_library_pitfall_is_guarded() -> None:
    # the library's own answer sorts *below* 3.4.5; ours must not
    assert semver.Version.parse("3.4.5").bump_prerelease("rc") < V("3.4.5")
    assert next_version(V("3.4.5"), "prerelease") > V("3.4.5")


@pytest.mark.parametrize(
    ("current", "bump", "pre"),
    [
        ("3.4.6-rc.2", "prerelease", "alpha"),  # alpha sorts below rc
        ("1.0.0-zeta.1", "patch", "alpha"),  # promotion target 1.0.0 then alpha.1 < zeta
    ],
)
def test_next_version_refuses_going_down(current: str, bump: str, pre: str) -> None:
    with pytest.raises(AgentImageError, match="does not sort above"):
        next_version(V(current), bump, pre)


@pytest.mark.parametrize("bump", ["pach", "", "PATCH", "next"])
def test_unknown_bump(bump: str) -> None:
    with pytest.raises(AgentImageError, match="unknown bump") as err:
        next_version(V("1.0.0"), bump)
    assert err.value.code == ExitCode.USAGE


@pytest.mark.parametrize("pre", ["", "1rc", "r c", "rc.1", "rc!", "-rc"])
def test_invalid_prerelease_identifier(pre: str) -> None:
    with pytest.raises(AgentImageError, match="prerelease identifier"):
        next_version(V("1.0.0"), "prerelease", pre)


@pytest.mark.parametrize("text", ["1.2", "v1.2.3", "1.2.3 garbage", "1.2.3+build.1", "", "01.2.3"])
def test_parse_version_rejects(text: str) -> None:
    with pytest.raises(AgentImageError):
        parse_version(text)


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("v1.2.3", "1.2.3"),
        ("v1.0.0-rc.1", "1.0.0-rc.1"),
        ("1.2.3", None),
        ("v1.2", None),
        ("vfoo", None),
        ("release-1", None),
        ("v1.2.3.4", None),
    ],
)
def test_version_from_tag(tag: str, expected: str | None) -> None:
    result = version_from_tag(tag)
    assert (str(result) if result else None) == expected


def test_latest_tagged_orders_semantically() -> None:
    tags = ["v0.9.0", "v0.10.0", "v0.10.0-rc.2", "junk", "v0.2.0"]
    assert str(latest_tagged(tags)) == "0.10.0"
    assert latest_tagged(["junk"]) is None
    assert str(latest_tagged(["v1.0.0-rc.1", "v0.9.0"])) == "1.0.0-rc.1"


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("feat: add jq", "minor"),
        ("feat(entrypoint): keep-alive", "minor"),
        ("fix: healthcheck path", "patch"),
        ("perf: smaller layer", "patch"),
        ("fix(build)!: drop node 18", "major"),
        ("feat!: new entrypoint", "major"),
        ("refactor: tidy\n\nBREAKING CHANGE: AGENT_HOME removed", "major"),
        ("chore: deps\n\nBREAKING-CHANGE: x", "major"),
        ("docs: readme", None),
        ("chore(release): v1.0.0", None),
        ("release: v0.1.1", None),
        ("Fix the thing", None),
        ("feature: not a type we know", None),
        ("feat:missing space", None),
        ("Merge branch 'x'\n\nBREAKING CHANGE: not conventional", None),
    ],
)
def test_classify_commit(message: str, kind: str | None) -> None:
    assert classify_commit(message) == kind


@pytest.mark.parametrize(
    ("messages", "bump"),
    [
        (["docs: a", "fix: b"], "patch"),
        (["fix: a", "feat: b", "chore: c"], "minor"),
        (["feat: a", "fix!: b"], "major"),
        (["docs: a", "chore: b"], None),
        ([], None),
    ],
)
def test_bump_from_commits(messages: list[str], bump: str | None) -> None:
    assert bump_from_commits(messages) == bump


@pytest.mark.parametrize(
    ("base", "distance", "dirty", "expected"),
    [
        ("0.2.13", 3, False, "0.2.14-dev.3+g1a2b3c4"),
        ("0.2.13", 0, False, "0.2.13"),
        ("0.2.13", 0, True, "0.2.13+g1a2b3c4.dirty"),
        ("0.2.13", 5, True, "0.2.14-dev.5+g1a2b3c4.dirty"),
        ("0.3.0-rc.1", 2, False, "0.3.0-rc.1.dev.2+g1a2b3c4"),
        (None, 4, False, "0.0.1-dev.4+g1a2b3c4"),
    ],
)
def test_dev_version(base: str | None, distance: int, dirty: bool, expected: str) -> None:
    result = dev_version(V(base) if base else None, distance, "1a2b3c4", dirty)
    assert result == expected
    parsed = V(result)  # always valid semver
    if base and distance:
        assert parsed > V(base)  # sorts after the release it descends from


def test_version_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "VERSION"
    path.write_text("0.1.0\n")
    os.chmod(path, 0o640)
    assert str(read_version_file(path)) == "0.1.0"
    write_version_file(path, V("0.2.0-rc.1"))
    assert path.read_text() == "0.2.0-rc.1\n"
    assert path.stat().st_mode & 0o777 == 0o640  # mode kept
    assert [p.name for p in tmp_path.iterdir()] == ["VERSION"]  # no temp file left


def test_version_file_write_is_atomic_on_failure(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "VERSION"
    path.write_text("0.1.0\n")

    def boom(*_args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_version_file(path, V("0.1.1"))
    assert path.read_text() == "0.1.0\n"
    assert [p.name for p in tmp_path.iterdir()] == ["VERSION"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty"),
        ("\n", "empty"),
        ("1.2\n", "not a semantic version"),
        ("v1.2.3\n", "starts with 'v'"),
        ("1.2.3 garbage\n", "not a semantic version"),
        ("1.2.3\n\n", "not a semantic version"),
    ],
)
def test_version_file_bad_content(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "VERSION"
    path.write_text(content)
    with pytest.raises(AgentImageError, match=message) as err:
        read_version_file(path)
    assert err.value.code == ExitCode.GIT_STATE


def test_version_file_missing(tmp_path: Path) -> None:
    with pytest.raises(AgentImageError, match="missing"):
        read_version_file(tmp_path / "VERSION")
