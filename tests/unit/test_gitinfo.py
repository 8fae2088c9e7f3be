"""Describe-like versions, cleanliness and commit metadata from a real (temporary) git repo."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from git_helpers import GitRun, commit, make_repo

from agentimage import gitinfo
from agentimage.errors import AgentImageError, ExitCode
from agentimage.versioning import Version


@pytest.fixture
def git_repo(tmp_path: Path) -> tuple[Path, GitRun]:
    return make_repo(tmp_path)


def test_no_tags_uses_version_file_as_base(git_repo) -> None:
    work, git = git_repo
    info = gitinfo.source_info(gitinfo.open_repo(work), Version.parse("0.1.0"))
    sha = git("rev-parse", "HEAD")
    assert info.sha == sha
    assert info.branch == "main"
    assert not info.dirty
    assert info.version == f"0.1.1-dev.1+g{sha[:7]}"


def test_exact_version_on_tagged_commit(git_repo) -> None:
    work, git = git_repo
    git("tag", "-a", "v0.1.0", "-m", "r")
    assert gitinfo.source_info(gitinfo.open_repo(work)).version == "0.1.0"


def test_distance_after_tag_and_dirty_marker(git_repo) -> None:
    work, git = git_repo
    git("tag", "-a", "v0.2.13", "-m", "r")
    for n in range(3):
        sha = commit(work, git, f"fix: {n}")
    info = gitinfo.source_info(gitinfo.open_repo(work))
    assert info.version == f"0.2.14-dev.3+g{sha[:7]}"
    (work / "untracked.txt").write_text("x")
    info = gitinfo.source_info(gitinfo.open_repo(work))
    assert info.dirty
    assert info.version.endswith(".dirty")


def test_created_is_commit_time_rfc3339(git_repo) -> None:
    work, _ = git_repo
    info = gitinfo.source_info(gitinfo.open_repo(work))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", info.created)
    # same commit, same value: labels are reproducible
    assert gitinfo.source_info(gitinfo.open_repo(work)).created == info.created


def test_detached_head_has_no_branch(git_repo) -> None:
    work, git = git_repo
    git("checkout", "-q", "--detach")
    assert gitinfo.source_info(gitinfo.open_repo(work)).branch is None


def test_last_release_ignores_unreachable_and_non_release_tags(git_repo) -> None:
    work, git = git_repo
    git("tag", "-a", "v0.1.0", "-m", "r")
    git("tag", "nightly")
    git("checkout", "-q", "-b", "other")
    commit(work, git, "feat: x")
    git("tag", "-a", "v9.0.0", "-m", "r")
    git("checkout", "-q", "main")
    assert str(gitinfo.last_release(gitinfo.open_repo(work))) == "0.1.0"


def test_commit_messages_since(git_repo) -> None:
    work, git = git_repo
    git("tag", "-a", "v0.1.0", "-m", "r")
    commit(work, git, "feat: one")
    commit(work, git, "docs: two")
    messages = gitinfo.commit_messages_since(gitinfo.open_repo(work), Version.parse("0.1.0"))
    assert [m.strip() for m in messages] == ["docs: two", "feat: one"]


def test_not_a_repository(tmp_path: Path) -> None:
    with pytest.raises(AgentImageError, match="not inside a git repository") as err:
        gitinfo.open_repo(tmp_path)
    assert err.value.code == ExitCode.GIT_STATE


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("git@github.com:agentgate/agent-image.git", "https://github.com/agentgate/agent-image"),
        (
            "https://github.com/agentgate/agent-image.git",
            "https://github.com/agentgate/agent-image",
        ),
        ("ssh://git@github.com/a/b.git", "https://github.com/a/b"),
        ("", ""),
    ],
)
def test_https_source(url: str, expected: str) -> None:
    assert gitinfo.https_source(url) == expected
