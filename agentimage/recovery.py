"""What a failed git step leaves behind: either the release is on the remote (go on), or git
is put back exactly as the release found it, undoing only what the release itself created.

Never `git reset --hard`: the rollback re-reads HEAD and the tag, removes the release commit
only while HEAD still is that commit, and uses `git reset --keep`, which refuses rather than
overwrite a file someone edited while the release ran.
"""

from __future__ import annotations

from pathlib import Path

import git

from agentimage import changelog, gitrun
from agentimage.changelog import CHANGELOG_FILE
from agentimage.errors import AgentImageError, ExitCode
from agentimage.releaseguards import VERSION_FILE, remote_refs
from agentimage.releaseplan import ReleasePlan
from agentimage.runner import say


def remote_has_release(root: Path, plan: ReleasePlan) -> bool:
    """Does the remote hold the release tag on the local release commit (the push landed)?

    Fresh git processes only: Ctrl-C may also have ended GitPython's long-lived helpers.
    """
    try:
        refs = remote_refs(root, plan.remote, f"refs/tags/{plan.git_tag}^{{}}")
        release = gitrun.run(root, "rev-parse", "-q", "--verify", f"{plan.git_tag}^{{commit}}")
    except (AgentImageError, git.GitCommandError, OSError):
        return False
    return refs.get(f"refs/tags/{plan.git_tag}^{{}}") == release.strip()


def _read(root: Path, *args: str) -> str:
    try:
        return gitrun.run(root, *args).strip()
    except git.GitCommandError:
        return ""


def _release_commit_at_head(root: Path, plan: ReleasePlan) -> str:
    """HEAD, when it is the release commit this run made on top of plan.head_sha; else ''."""
    head = _read(root, "rev-parse", "HEAD")
    parent_and_subject = _read(root, "log", "-1", "--format=%P%n%s", head)
    if head != plan.head_sha and parent_and_subject == f"{plan.head_sha}\nrelease: {plan.git_tag}":
        return head
    return ""


def restore_changelog(root: Path, plan: ReleasePlan) -> None:
    """CHANGELOG.md back as HEAD has it, if it is exactly what this release wrote (a file the
    release created is removed, and unstaged)."""
    path = root / CHANGELOG_FILE
    try:
        now = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return
    committed = _exists(root, f"HEAD:{CHANGELOG_FILE}")
    before = gitrun.run(root, "show", f"HEAD:{CHANGELOG_FILE}") if committed else None
    if now != changelog.updated(before, plan.changelog_section()):
        return  # not (only) the release's edit: leave it
    if committed:
        gitrun.run(root, "checkout", "-q", "HEAD", "--", CHANGELOG_FILE)
    else:
        gitrun.run(root, "rm", "-q", "--cached", "--ignore-unmatch", "--", CHANGELOG_FILE)
        path.unlink()


def _exists(root: Path, rev: str) -> bool:
    try:
        gitrun.run(root, "cat-file", "-e", rev)
    except git.GitCommandError:
        return False
    return True


def rollback(root: Path, plan: ReleasePlan) -> None:
    """Undo this run's VERSION edit, release commit and tag; nothing else."""
    tag = plan.git_tag
    ours = _release_commit_at_head(root, plan)
    head = _read(root, "rev-parse", "HEAD")
    if not ours and head != plan.head_sha:
        raise AgentImageError(
            f"recording {tag} in git failed, and HEAD moved while the release ran, so nothing "
            f"was rolled back; undo by hand what is the release's: git tag -d {tag} and its "
            f"commit on top of {plan.head_sha[:12]}",
            ExitCode.PUBLISH_FAILED,
        )
    try:
        tagged = _read(root, "rev-parse", "-q", "--verify", f"refs/tags/{tag}^{{commit}}")
        if ours and tagged == ours:
            gitrun.run(root, "tag", "-d", tag)
        if ours:
            gitrun.run(root, "reset", "-q", "--keep", plan.head_sha)
        else:
            if (root / VERSION_FILE).read_text(encoding="utf-8") == f"{plan.version}\n":
                gitrun.run(root, "checkout", "-q", "HEAD", "--", VERSION_FILE)
            restore_changelog(root, plan)
    except (git.GitCommandError, OSError) as exc:
        detail = gitrun.error_line(exc) if isinstance(exc, git.GitCommandError) else str(exc)
        raise AgentImageError(
            f"recording {tag} in git failed and so did the rollback ({detail}); restore by "
            f"hand: git tag -d {tag}; git reset --keep {plan.head_sha[:12]}",
            ExitCode.PUBLISH_FAILED,
        ) from exc
    say(
        f"rolled back: HEAD at {plan.head_sha[:7]}, tag {tag} removed"
        if ours
        else "rolled back VERSION and CHANGELOG.md"
    )


def after_git_failure(root: Path, plan: ReleasePlan, exc: BaseException, pushing: bool) -> bool:
    """Decide from the real state after git failed or Ctrl-C: True when the push landed (the
    release stands, go on); otherwise roll back what this run created and raise."""
    tag = plan.git_tag
    interrupted = isinstance(exc, KeyboardInterrupt)
    with gitrun.interrupts_held() as held:
        landed = pushing and remote_has_release(root, plan)
        if not landed and plan.mode == "new":
            rollback(root, plan)
    interrupted = interrupted or bool(held)
    if landed:
        if interrupted:
            raise AgentImageError(
                f"interrupted after {tag} was pushed to {plan.remote}; re-run invoke release "
                "to finish publishing it",
                ExitCode.INTERRUPTED,
            ) from None
        return True  # the push reported an error but the remote has the release: go on
    restored = (
        f"git, {VERSION_FILE} and {CHANGELOG_FILE} were restored"
        if plan.mode == "new"
        else f"the release commit stays as it is, {tag} is not on {plan.remote}"
    )
    if interrupted:
        raise AgentImageError(
            f"interrupted while recording {tag} in git; {restored} (the pushed image is "
            "reused): re-run invoke release",
            ExitCode.INTERRUPTED,
        ) from None
    if isinstance(exc, AgentImageError):
        detail = exc.message
    elif isinstance(exc, git.GitCommandError):
        detail = gitrun.error_line(exc)
    else:
        detail = str(exc)
    raise AgentImageError(
        f"recording {tag} in git failed ({detail}); {restored}, re-run invoke release once "
        "the cause is fixed",
        ExitCode.PUBLISH_FAILED,
    ) from exc
