"""Release notes: conventional commits grouped into CHANGELOG.md and the tag message, written
in the release commit, and put back exactly when the git step fails."""

from __future__ import annotations

from pathlib import Path

import git
import pytest
from git_helpers import commit, make_repo
from release_helpers import context, plan, pushed, run

from agentimage import changelog, gitrun, releasesteps
from agentimage.errors import AgentImageError, ExitCode

SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    ("message", "group", "text"),
    [
        ("feat: a flag", "feature", "a flag"),
        ("feat(cli): a flag\n\nwhy it helps", "feature", "cli: a flag"),
        ("fix: a crash", "fix", "a crash"),
        ("perf(build): half the time", "fix", "build: half the time"),
        ("feat!: drop Node 18", "breaking", "drop Node 18"),
        ("fix(api)!: rename a key", "breaking", "api: rename a key"),
        ("chore: x\n\nBREAKING CHANGE: the config moved", "breaking", "the config moved"),
        ("refactor: y\n\nBREAKING-CHANGE: z", "breaking", "z"),
    ],
)
def test_a_commit_becomes_one_note(message: str, group: str, text: str) -> None:
    assert changelog.entry(SHA, message) == changelog.Entry(group, text, SHA[:7])


@pytest.mark.parametrize(
    "message",
    ["docs: readme", "chore: bump", "release: v0.1.1", "Merge branch 'x'", "feat:no space", ""],
)
def test_other_commits_make_no_note(message: str) -> None:
    assert changelog.entry(SHA, message) is None


def test_notes_are_grouped_oldest_first_in_the_section_and_the_tag_message() -> None:
    newest_first = [
        ("c" * 40, "fix: third"),
        ("b" * 40, "docs: not listed"),
        ("a" * 40, "feat: first"),
        ("d" * 40, "fix: second"),
    ]
    notes = changelog.entries(newest_first)
    assert [n.text for n in notes] == ["second", "first", "third"]
    section = changelog.section("v1.2.0", "2026-01-02", notes)
    assert section == (
        "## v1.2.0 (2026-01-02)\n\n"
        "### Features\n\n- first (aaaaaaa)\n\n"
        "### Fixes\n\n- second (ddddddd)\n- third (ccccccc)\n"
    )
    message = changelog.tag_message("v1.2.0", notes)
    assert message == (
        "release v1.2.0\n\nFeatures:\n- first (aaaaaaa)\n\n"
        "Fixes:\n- second (ddddddd)\n- third (ccccccc)"
    )
    assert not any(line.startswith("#") for line in message.splitlines())  # git strips those


def test_a_release_with_nothing_to_note_says_so() -> None:
    assert changelog.NOTHING in changelog.section("v1.0.1", "2026-01-02", ())
    assert changelog.tag_message("v1.0.1", ()) == f"release v1.0.1\n\n{changelog.NOTHING}"


def test_a_new_section_goes_above_the_newest_release() -> None:
    first = changelog.updated(None, changelog.section("v0.1.0", "2026-01-01", ()))
    assert first.startswith("# Changelog\n")
    second = changelog.updated(first, changelog.section("v0.2.0", "2026-02-01", ()))
    assert second.index("## v0.2.0") < second.index("## v0.1.0")
    assert second.startswith(first[: first.index("## v0.1.0")])  # the header is kept
    assert "\n\n## v0.1.0" in second
    assert "\n\n\n" not in second
    kept = changelog.updated("# Our notes\n\nhand written\n", "## v1.0.0 (d)\n")
    assert kept == "# Our notes\n\nhand written\n\n## v1.0.0 (d)\n"
    assert changelog.has_section(second, "v0.2.0")
    assert not changelog.has_section(second, "v0.2")


@pytest.fixture
def repo(tmp_path: Path):
    return make_repo(tmp_path)


def test_the_release_commit_and_tag_carry_the_notes_since_the_last_release(repo) -> None:
    work, git_run = repo
    git_run("tag", "-a", "v0.1.0", "-m", "release v0.1.0")
    fix = commit(work, git_run, "fix(entrypoint): exit 64 names the path")
    commit(work, git_run, "docs: readme")
    feat = commit(work, git_run, "feat: verify-release")
    fake = pushed(work, git_run)
    result = plan(work, fake)
    assert str(result.version) == "0.1.1"
    run(work, result, fake)

    assert git_run("log", "-1", "--format=%s") == "release: v0.1.1"
    assert set(git_run("show", "--name-only", "--format=", "HEAD").split()) == {
        "VERSION",
        "CHANGELOG.md",
    }
    text = (work / "CHANGELOG.md").read_text()
    assert f"## v0.1.1 ({result.released_on})" in text
    assert f"### Features\n\n- verify-release ({feat[:7]})" in text
    assert f"### Fixes\n\n- entrypoint: exit 64 names the path ({fix[:7]})" in text
    assert "readme" not in text
    message = git_run("tag", "-l", "--format=%(contents)", "v0.1.1")
    assert f"Features:\n- verify-release ({feat[:7]})" in message
    assert f"Fixes:\n- entrypoint: exit 64 names the path ({fix[:7]})" in message
    assert git_run("status", "--porcelain") == ""


def test_a_section_already_there_is_refused(repo) -> None:
    work, git_run = repo
    (work / "CHANGELOG.md").write_text("# Changelog\n\n## v0.1.1 (2026-01-01)\n\nhand made\n")
    git_run("add", "CHANGELOG.md")
    git_run("commit", "-q", "-m", "docs: notes")
    with pytest.raises(AgentImageError, match=r"already has a section for v0\.1\.1") as err:
        plan(work)
    assert err.value.code == ExitCode.GIT_STATE


@pytest.mark.parametrize("existing", [None, "# Changelog\n\n## v0.1.0 (2026-01-01)\n\nfirst\n"])
def test_a_failed_commit_puts_changelog_back(repo, monkeypatch, existing: str | None) -> None:
    """The commit fails after VERSION and CHANGELOG.md were written and staged: both are back
    as HEAD has them; a CHANGELOG.md the release created is gone from disk and index."""
    work, git_run = repo
    if existing is not None:
        (work / "CHANGELOG.md").write_text(existing)
        git_run("add", "CHANGELOG.md")
        git_run("commit", "-q", "-m", "docs: changelog")
    commit(work, git_run, "feat: something")
    fake = pushed(work, git_run)
    result = plan(work, fake)
    real = gitrun.run

    def failing_commit(root: Path, *args: str, **kwargs: object) -> str:
        if args[0] == "commit":
            raise git.GitCommandError(["git", "commit"], 1, "pre-commit hook said no")
        return real(root, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(gitrun, "run", failing_commit)
    with pytest.raises(AgentImageError, match="were restored"):
        releasesteps.record(context(work, result, fake))
    assert git_run("status", "--porcelain") == ""
    assert (work / "VERSION").read_text() == "0.1.0\n"
    if existing is None:
        assert not (work / "CHANGELOG.md").exists()
    else:
        assert (work / "CHANGELOG.md").read_text() == existing
