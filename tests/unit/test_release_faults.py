"""Faults inside the release steps, without Docker: Ctrl-C or an error at an exact point of
the git step, work someone did while the release ran, a foreign vX.Y.Z in the registry, a
fault after git recorded the release. The end-to-end versions (real CLI, registry, SIGINT to
the process group) are in tests/release/test_faults.py.
"""

from __future__ import annotations

from pathlib import Path

import git
import pytest
from git_helpers import GitRun, commit, make_repo
from release_helpers import FakeRegistry, context, image, plan, pushed, run

from agentimage import gitrun, releaseplan, releasesteps
from agentimage.errors import AgentImageError, ExitCode


@pytest.fixture
def published(tmp_path: Path) -> tuple[Path, GitRun, FakeRegistry, releaseplan.ReleasePlan]:
    """A repo whose next release's image is already in the registry (build/test/push done)."""
    work, git_run = make_repo(tmp_path)
    registry = pushed(work, git_run)
    return work, git_run, registry, plan(work, registry)


def _state(work: Path, git_run: GitRun) -> tuple[str, str, str, str]:
    return (
        git_run("rev-parse", "HEAD"),
        (work / "VERSION").read_text(),
        git_run("tag", "--list"),
        git_run("ls-remote", "origin"),
    )


def _fail_at(monkeypatch, command: str, error: BaseException, *, after: bool = False, before=None):
    """Make gitrun.run raise `error` once, at `command` (before or after really running it);
    `before` runs first, as someone working in the tree while the release runs."""
    real = gitrun.run
    fired: list[bool] = []

    def fake(root: Path, *args: str, **kwargs: object) -> str:
        if args[0] != command or fired:
            return real(root, *args, **kwargs)  # type: ignore[arg-type]
        fired.append(True)
        if before is not None:
            before()
        if after:
            real(root, *args, **kwargs)  # type: ignore[arg-type]
        raise error

    monkeypatch.setattr(gitrun, "run", fake)


def _record(work: Path, result: releaseplan.ReleasePlan, registry: FakeRegistry) -> None:
    releasesteps.record(context(work, result, registry))


def test_interrupt_while_tagging_restores_git(published, monkeypatch) -> None:
    work, git_run, registry, result = published
    before = _state(work, git_run)
    _fail_at(monkeypatch, "tag", KeyboardInterrupt(), after=True)  # the tag exists, then ^C
    with pytest.raises(AgentImageError, match=r"interrupted while recording v0\.1\.1") as err:
        _record(work, result, registry)
    assert err.value.code == ExitCode.INTERRUPTED
    assert "were restored" in err.value.message
    assert _state(work, git_run) == before
    assert git_run("status", "--porcelain") == ""


def test_interrupt_after_the_push_landed_keeps_the_release(published, monkeypatch) -> None:
    work, git_run, registry, result = published
    _fail_at(monkeypatch, "push", KeyboardInterrupt(), after=True)
    with pytest.raises(AgentImageError, match=r"interrupted after v0\.1\.1 was pushed") as err:
        _record(work, result, registry)
    assert err.value.code == ExitCode.INTERRUPTED
    head = git_run("rev-parse", "HEAD")
    assert git_run("log", "-1", "--format=%s") == "release: v0.1.1"
    assert f"{head}\trefs/heads/main" in git_run("ls-remote", "origin")
    assert git_run("rev-parse", "v0.1.1^{commit}") == head  # local and remote agree


def test_push_error_after_it_landed_is_not_rolled_back(published, monkeypatch) -> None:
    """A connection lost after the remote updated: the release is recorded, so go on."""
    work, git_run, registry, result = published
    _fail_at(monkeypatch, "push", git.GitCommandError(["git", "push"], 128, "hung up"), after=True)
    _record(work, result, registry)
    assert (work / "VERSION").read_text() == "0.1.1\n"
    assert "refs/tags/v0.1.1" in git_run("ls-remote", "origin")


def test_interrupt_before_the_push_started_restores_git(published, monkeypatch) -> None:
    work, git_run, registry, result = published
    before = _state(work, git_run)
    _fail_at(monkeypatch, "push", KeyboardInterrupt())
    with pytest.raises(AgentImageError, match="restored") as err:
        _record(work, result, registry)
    assert err.value.code == ExitCode.INTERRUPTED
    assert _state(work, git_run) == before


def test_rollback_keeps_work_done_while_the_release_ran(published, monkeypatch) -> None:
    """An edit to a tracked file and a new file, made after the release committed: a failed
    push undoes the release commit and tag, and leaves both edits alone (git reset --keep)."""
    work, git_run, _, _ = published
    commit(work, git_run, "docs: a tracked file", name="NOTES.md")
    registry = pushed(work, git_run)
    result = plan(work, registry)
    start = git_run("rev-parse", "HEAD")

    def edit() -> None:
        (work / "NOTES.md").write_text("written while the release ran\n")
        (work / "VERSION.orig").write_text("keep me\n")

    rejected = git.GitCommandError(["git", "push"], 1, "! [remote rejected] main (hook declined)")
    _fail_at(monkeypatch, "push", rejected, before=edit)
    with pytest.raises(AgentImageError, match=r"git, VERSION and CHANGELOG\.md were restored"):
        _record(work, result, registry)
    assert git_run("rev-parse", "HEAD") == start
    assert git_run("tag", "--list") == ""
    assert (work / "VERSION").read_text() == "0.1.0\n"
    assert (work / "NOTES.md").read_text() == "written while the release ran\n"
    assert (work / "VERSION.orig").read_text() == "keep me\n"


def test_rollback_leaves_a_commit_made_on_top_of_the_release(published, monkeypatch) -> None:
    work, git_run, registry, result = published

    def commit_on_top() -> None:
        (work / "NOTES.md").write_text("someone's commit\n")
        git_run("add", "NOTES.md")
        git_run("commit", "-q", "-m", "docs: notes")

    rejected = git.GitCommandError(["git", "push"], 1, "! [remote rejected] main")
    _fail_at(monkeypatch, "push", rejected, before=commit_on_top)
    with pytest.raises(AgentImageError, match="HEAD moved while the release ran") as err:
        _record(work, result, registry)
    assert "git tag -d v0.1.1" in err.value.message
    assert git_run("log", "-1", "--format=%s") == "docs: notes"  # nothing discarded
    assert (work / "NOTES.md").read_text() == "someone's commit\n"


def test_git_step_rechecks_the_tree_before_recording(published) -> None:
    work, git_run, registry, result = published
    (work / "NOTES.md").write_text("edited during the build\n")
    before = _state(work, git_run)
    with pytest.raises(AgentImageError, match=r"working tree changed during the release") as err:
        _record(work, result, registry)
    assert err.value.code == ExitCode.GIT_STATE
    assert _state(work, git_run) == before
    assert (work / "NOTES.md").read_text() == "edited during the build\n"


def test_a_foreign_version_tag_is_not_overwritten(published) -> None:
    """Git decided the release; a vX.Y.Z that appeared meanwhile naming another image is
    reported, not overwritten."""
    work, _, registry, result = published
    registry.tags["v0.1.1"] = image("sha256:theirs", "0.1.1")
    with pytest.raises(AgentImageError, match="names another image") as err:
        releasesteps.tag_version(context(work, result, registry))
    assert err.value.code == ExitCode.REGISTRY
    assert registry.tags["v0.1.1"].digest == "sha256:theirs"
    assert registry.copied == []


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
    work, git_run, registry, result = published

    def tag_version(*_: object) -> None:
        raise fault

    monkeypatch.setattr(releasesteps, "tag_version", tag_version)
    with pytest.raises(AgentImageError) as err:
        run(work, result, registry)
    assert err.value.code == code
    assert message in err.value.message
    assert "refs/tags/v0.1.1" in git_run("ls-remote", "origin")
    again = plan(work, registry)
    assert (again.mode, str(again.version)) == ("resume", "0.1.1")
