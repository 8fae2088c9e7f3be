"""Faults inside the release steps, without Docker: Ctrl-C or an error at an exact point of
the git step, a release that wins the registry race, a fault after git recorded the release.
The end-to-end versions (real CLI, registry, SIGINT to the process group) are in
tests/release/test_faults.py.
"""

from __future__ import annotations

from pathlib import Path

import git
import pytest
from git_helpers import GitRun, make_repo
from test_release_plan import FakeRegistry, plan, settings

from agentimage import release
from agentimage.errors import AgentImageError, ExitCode


@pytest.fixture
def published(tmp_path: Path) -> tuple[Path, GitRun, FakeRegistry, release.ReleasePlan]:
    """A repo whose next release's images are already in the registry (build/test/publish done)."""
    work, git_run = make_repo(tmp_path)
    sha = git_run("rev-parse", "HEAD")
    registry = FakeRegistry({"v0.1.1": "sha256:a", f"sha-{sha[:7]}": "sha256:a"})
    return work, git_run, registry, plan(work, registry)


def _state(work: Path, git_run: GitRun) -> tuple[str, str, str, str]:
    return (
        git_run("rev-parse", "HEAD"),
        (work / "VERSION").read_text(),
        git_run("tag", "--list"),
        git_run("ls-remote", "origin"),
    )


def _fail_at(monkeypatch, command: str, error: BaseException, *, after: bool = False) -> None:
    """Make release._git raise `error` once, at `command` (before or after really running it)."""
    real = release._git
    fired: list[bool] = []

    def fake(root: Path, *args: str) -> str:
        if args[0] != command or fired:
            return real(root, *args)
        fired.append(True)
        if after:
            real(root, *args)
        raise error

    monkeypatch.setattr(release, "_git", fake)


def test_interrupt_while_tagging_restores_git(published, monkeypatch) -> None:
    work, git_run, _, result = published
    before = _state(work, git_run)
    _fail_at(monkeypatch, "tag", KeyboardInterrupt(), after=True)  # the tag exists, then ^C
    with pytest.raises(AgentImageError, match=r"interrupted while recording v0\.1\.1") as err:
        release.step_git(result, release.gitinfo.open_repo(work), work, dry_run=False)
    assert err.value.code == ExitCode.INTERRUPTED
    assert "were restored" in err.value.message
    assert _state(work, git_run) == before
    assert git_run("status", "--porcelain") == ""


def test_interrupt_after_the_push_landed_keeps_the_release(published, monkeypatch) -> None:
    work, git_run, _, result = published
    _fail_at(monkeypatch, "push", KeyboardInterrupt(), after=True)
    with pytest.raises(AgentImageError, match=r"interrupted after v0\.1\.1 was pushed") as err:
        release.step_git(result, release.gitinfo.open_repo(work), work, dry_run=False)
    assert err.value.code == ExitCode.INTERRUPTED
    head = git_run("rev-parse", "HEAD")
    assert git_run("log", "-1", "--format=%s") == "release: v0.1.1"
    assert f"{head}\trefs/heads/main" in git_run("ls-remote", "origin")
    assert git_run("rev-parse", "v0.1.1^{commit}") == head  # local and remote agree


def test_push_error_after_it_landed_is_not_rolled_back(published, monkeypatch) -> None:
    """A connection lost after the remote updated: the release is recorded, so go on."""
    work, git_run, _, result = published
    _fail_at(monkeypatch, "push", git.GitCommandError(["git", "push"], 128, "hung up"), after=True)
    release.step_git(result, release.gitinfo.open_repo(work), work, dry_run=False)
    assert (work / "VERSION").read_text() == "0.1.1\n"
    assert "refs/tags/v0.1.1" in git_run("ls-remote", "origin")


def test_interrupt_before_the_push_started_restores_git(published, monkeypatch) -> None:
    work, git_run, _, result = published
    before = _state(work, git_run)
    _fail_at(monkeypatch, "push", KeyboardInterrupt())
    with pytest.raises(AgentImageError, match="restored") as err:
        release.step_git(result, release.gitinfo.open_repo(work), work, dry_run=False)
    assert err.value.code == ExitCode.INTERRUPTED
    assert _state(work, git_run) == before


def test_publish_stops_when_another_release_pushed_the_version(tmp_path, monkeypatch) -> None:
    work, _ = make_repo(tmp_path)
    registry = FakeRegistry()
    result = plan(work, registry)

    def docker(*args: str, **_: object) -> None:
        if args[0] == "push":  # while our image uploads, another release tags 0.1.1
            registry.tags[args[-1].rsplit(":", 1)[1]] = "sha256:ours"
            registry.tags["v0.1.1"] = "sha256:theirs"

    monkeypatch.setattr(release, "_docker", docker)
    with pytest.raises(AgentImageError, match="another release won") as err:
        release.step_publish(result, settings(), registry, work, dry_run=False)  # type: ignore[arg-type]
    assert err.value.code == ExitCode.REGISTRY
    assert registry.tags["v0.1.1"] == "sha256:theirs"  # not overwritten
    assert registry.retagged == []


def _execute_with(monkeypatch, work: Path, result: release.ReleasePlan, floating) -> None:
    for name in ("step_build", "step_test", "step_publish"):
        monkeypatch.setattr(release, name, lambda *a, **k: None)
    monkeypatch.setattr(release, "step_floating", floating)
    release.execute(result, settings(), work, registry_factory=FakeRegistry())


@pytest.mark.parametrize(
    ("fault", "code", "message"),
    [
        (KeyboardInterrupt(), ExitCode.INTERRUPTED, "interrupted after v0.1.1 was recorded"),
        (
            AgentImageError("registry gone; start it", ExitCode.REGISTRY),
            ExitCode.REGISTRY,
            "registry gone; start it; v0.1.1 is already recorded in git: re-run invoke release",
        ),
    ],
    ids=["interrupt", "registry-error"],
)
def test_fault_after_git_says_a_rerun_finishes(
    published, monkeypatch, fault: BaseException, code: ExitCode, message: str
) -> None:
    work, git_run, _, result = published

    def floating(*_: object) -> None:
        raise fault

    with pytest.raises(AgentImageError) as err:
        _execute_with(monkeypatch, work, result, floating)
    assert err.value.code == code
    assert message in err.value.message
    assert "refs/tags/v0.1.1" in git_run("ls-remote", "origin")
