"""The release plan and its guards, against a temp git repo and an in-memory registry.

No Docker: planning only reads git, the remote and the registry; the git step is exercised
with the build/test/publish steps marked as already done.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from git_helpers import GitRun, commit, make_repo

from agentimage import release
from agentimage.errors import AgentImageError, ExitCode
from agentimage.imagebuild import BuildOptions


class FakeRegistry:
    """Tags -> digest, in memory; the calls the planner makes."""

    def __init__(self, tags: dict[str, str] | None = None) -> None:
        self.tags = dict(tags or {})
        self.retagged: list[str] = []

    def __call__(self, host: str) -> FakeRegistry:
        return self

    def ping(self, *, need_push: bool = False) -> None:
        return None

    def list_tags(self, repo: str) -> list[str]:
        return list(self.tags)

    def digest(self, repo: str, ref: str) -> str | None:
        return self.tags.get(ref)

    def retag(self, repo: str, source: str, tag: str) -> str:
        self.tags[tag] = self.tags[source]
        self.retagged.append(tag)
        return self.tags[tag]


def settings(**changes: object) -> release.ReleaseSettings:
    values: dict[str, object] = {
        "bump": "patch",
        "pre": None,
        "push": True,
        "image_name": "agentgate/agent",
        "registry": "127.0.0.1:5999",
        "branch": "main",
        "remote": "origin",
        "test_command": "true",
        "build": BuildOptions("slim", "20", "2.1.197"),
    }
    values.update(changes)
    return release.ReleaseSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, GitRun]:
    return make_repo(tmp_path)


def plan(work: Path, fake: FakeRegistry | None = None, **changes: object) -> release.ReleasePlan:
    return release.plan_release(work, settings(**changes), registry_factory=fake or FakeRegistry())


def test_first_release_plan(repo) -> None:
    work, git = repo
    result = plan(work)
    sha = git("rev-parse", "HEAD")
    assert str(result.version) == "0.1.1"
    assert result.git_tag == "v0.1.1"
    assert result.tags.immutable == ("v0.1.1", f"sha-{sha[:7]}")
    assert result.tags.floating == ("0.1", "0", "latest")
    assert result.repository == "127.0.0.1:5999/agentgate/agent"
    assert result.test_ref == f"127.0.0.1:5999/agentgate/agent:sha-{sha[:7]}"
    text = "\n".join(result.describe())
    for expected in (
        "v0.1.1",
        "docker buildx build",
        "--load",
        "git push --atomic origin",
        "refs/tags/v0.1.1",
        "latest",
        "IMAGE_VERSION=0.1.1",
    ):
        assert expected in text


def test_multi_platform_release_pushes_the_sha_tag_with_buildx(repo) -> None:
    work, git = repo
    result = plan(work, platforms=("linux/amd64", "linux/arm64"))
    sha = git("rev-parse", "HEAD")
    publish = next(step for step in result.steps if step.name == "publish immutable tags")
    push = next(command for command in publish.commands if "--push" in command)
    assert "--platform linux/amd64,linux/arm64" in push
    assert f"--tag 127.0.0.1:5999/agentgate/agent:sha-{sha[:7]}" in push
    assert not any(command.startswith("docker push") for command in publish.commands)


def test_host_platform_release_pushes_the_tested_image(repo) -> None:
    work, _ = repo
    publish = next(step for step in plan(work).steps if step.name == "publish immutable tags")
    assert any(command.startswith("docker push") for command in publish.commands)
    assert not any("--platform" in command for command in publish.commands)


def test_prerelease_plan_has_no_floating_tags(repo) -> None:
    work, _ = repo
    result = plan(work, bump="minor", pre="rc")
    assert str(result.version) == "0.2.0-rc.1"
    assert result.tags.floating == ()


def test_latest_held_back_when_registry_has_newer(repo) -> None:
    work, git = repo
    git("tag", "-a", "v0.1.0", "-m", "r")
    result = plan(work, FakeRegistry({"v2.0.0": "sha256:b", "latest": "sha256:b"}))
    assert "latest" not in result.tags.floating
    assert "latest" in result.tags.held_back


def test_dirty_tree_is_refused(repo) -> None:
    work, _ = repo
    (work / "VERSION").write_text("0.1.0\n\n")
    with pytest.raises(AgentImageError, match="not clean") as err:
        plan(work)
    assert err.value.code == ExitCode.GIT_STATE


def test_untracked_file_is_refused(repo) -> None:
    work, _ = repo
    (work / "notes.txt").write_text("x")
    with pytest.raises(AgentImageError, match=r"not clean \(notes.txt\)"):
        plan(work)


def test_wrong_branch_is_refused(repo) -> None:
    work, git = repo
    git("checkout", "-q", "-b", "feature")
    with pytest.raises(AgentImageError, match="not the release branch 'main'"):
        plan(work)


def test_detached_head_is_refused(repo) -> None:
    work, git = repo
    git("checkout", "-q", "--detach")
    with pytest.raises(AgentImageError, match="detached"):
        plan(work)


def test_version_tag_mismatch_names_both(repo) -> None:
    work, git = repo
    git("tag", "-a", "v0.3.0", "-m", "r")
    with pytest.raises(AgentImageError, match=r"says 0\.1\.0 .* tag is v0\.3\.0") as err:
        plan(work)
    assert err.value.code == ExitCode.GIT_STATE


def test_existing_local_tag_is_refused(repo) -> None:
    work, git = repo
    git("checkout", "-q", "-b", "side")
    commit(work, git, "fix: side")
    git("tag", "-a", "v0.1.1", "-m", "side release")  # not reachable from main
    git("checkout", "-q", "main")
    with pytest.raises(AgentImageError, match=r"v0\.1\.1 already exists locally"):
        plan(work)


def test_existing_remote_tag_is_refused(repo, tmp_path: Path) -> None:
    work, git = repo
    git("tag", "-a", "v0.1.1", "-m", "r")
    git("push", "-q", "origin", "v0.1.1")
    git("tag", "-d", "v0.1.1")
    with pytest.raises(AgentImageError, match=r"v0\.1\.1 already exists on origin"):
        plan(work)


def test_remote_ahead_is_refused(repo, tmp_path: Path) -> None:
    work, git = repo
    clone = tmp_path / "clone"
    git("clone", "-q", str(work.parent / "origin.git"), str(clone))
    (clone / "b.txt").write_text("b")
    for args in (
        ["add", "b.txt"],
        ["-c", "user.name=x", "-c", "user.email=x@x", "commit", "-qm", "feat: b"],
        ["push", "-q", "origin", "main"],
    ):
        subprocess.run(["git", *args], cwd=clone, check=True)
    with pytest.raises(AgentImageError, match="has commits that main lacks"):
        plan(work)


def test_no_push_skips_remote_and_registry(repo) -> None:
    work, git = repo
    git("remote", "remove", "origin")
    result = plan(work, push=False, registry="")
    assert result.repository == "agentgate/agent"
    assert not any("git push" in c for s in result.steps for c in s.commands)


def test_push_without_registry_is_refused(repo) -> None:
    work, _ = repo
    with pytest.raises(AgentImageError, match="no registry configured"):
        plan(work, registry="")


def test_auto_with_nothing_releasable(repo) -> None:
    work, git = repo
    git("tag", "-a", "v0.1.0", "-m", "r")
    commit(work, git, "docs: readme")
    commit(work, git, "chore: tidy")
    with pytest.raises(AgentImageError, match=r"nothing releasable since v0\.1\.0") as err:
        plan(work, bump="auto")
    assert err.value.code == ExitCode.NOTHING_TO_RELEASE


def test_auto_picks_the_largest_bump(repo) -> None:
    work, git = repo
    git("tag", "-a", "v0.1.0", "-m", "r")
    commit(work, git, "fix: a")
    commit(work, git, "feat: b")
    result = plan(work, bump="auto")
    assert (result.bump, str(result.version)) == ("minor", "0.2.0")


def test_registry_tag_with_other_content_is_refused(repo) -> None:
    work, _ = repo
    with pytest.raises(AgentImageError, match="already exists in the registry") as err:
        plan(work, FakeRegistry({"v0.1.1": "sha256:other"}))
    assert err.value.code == ExitCode.REGISTRY


def test_rerun_reuses_images_already_pushed_for_this_commit(repo) -> None:
    work, git = repo
    sha = git("rev-parse", "HEAD")
    result = plan(work, FakeRegistry({"v0.1.1": "sha256:a", f"sha-{sha[:7]}": "sha256:a"}))
    assert result.published
    skipped = [s.name for s in result.steps if s.skip]
    assert skipped[:3] == ["build", "test", "publish immutable tags"]


def test_git_step_commits_tags_pushes_then_resume_finishes_floating(repo) -> None:
    work, git = repo
    before = git("rev-parse", "HEAD")
    registry = FakeRegistry({"v0.1.1": "sha256:a", f"sha-{before[:7]}": "sha256:a"})
    result = plan(work, registry)
    release.step_git(result, release.gitinfo.open_repo(work), work, dry_run=False)
    assert git("log", "-1", "--format=%s") == "release: v0.1.1"
    assert git("cat-file", "-t", "v0.1.1") == "tag"  # annotated
    assert (work / "VERSION").read_text() == "0.1.1\n"
    assert "v0.1.1" in git("ls-remote", "--tags", "origin")
    # floating tags not yet moved (say the registry went away): a re-run resumes
    again = plan(work, registry)
    assert again.resume
    assert again.version == result.version
    assert again.tags.immutable == ("v0.1.1", f"sha-{before[:7]}")
    release.step_floating(again, registry, dry_run=False)  # type: ignore[arg-type]
    assert registry.retagged == ["0.1", "0", "latest"]
    # now complete: the next run is a new release, not a resume
    assert not plan(work, registry).resume
    assert str(plan(work, registry).version) == "0.1.2"


def test_git_push_failure_rolls_back_exactly(repo) -> None:
    work, git = repo
    before = git("rev-parse", "HEAD")
    registry = FakeRegistry({"v0.1.1": "sha256:a", f"sha-{before[:7]}": "sha256:a"})
    result = plan(work, registry)
    git("remote", "set-url", "origin", str(work.parent / "gone.git"))
    with pytest.raises(AgentImageError, match="restored") as err:
        release.step_git(result, release.gitinfo.open_repo(work), work, dry_run=False)
    assert err.value.code == ExitCode.PUBLISH_FAILED
    assert git("rev-parse", "HEAD") == before
    assert git("tag", "--list") == ""
    assert (work / "VERSION").read_text() == "0.1.0\n"
    assert git("status", "--porcelain") == ""


def test_dry_run_steps_change_nothing(repo) -> None:
    work, git = repo
    before = (git("rev-parse", "HEAD"), (work / "VERSION").read_text(), git("tag", "--list"))
    registry = FakeRegistry()
    result = plan(work, registry)
    release.execute(result, settings(), work, dry_run=True, registry_factory=registry)
    assert (
        git("rev-parse", "HEAD"),
        (work / "VERSION").read_text(),
        git("tag", "--list"),
    ) == before
    assert registry.tags == {}
