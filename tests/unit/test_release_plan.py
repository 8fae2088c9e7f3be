"""The release plan, its guards and its steps, against a temp git repo and an in-memory
registry (release_helpers.FakeRegistry). No Docker: build, test and push are marked done
by putting the commit's image in the fake registry.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from git_helpers import GitRun, checked, commit, make_repo
from release_helpers import (
    REPOSITORY,
    FakeRegistry,
    commands,
    image,
    plan,
    pushed,
    run,
    settings,
)

from agentimage import release
from agentimage.errors import AgentImageError, ExitCode
from agentimage.imagebuild import BuildOptions
from agentimage.labels import labels_from_build_args
from agentimage.runner import HostRunner


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, GitRun]:
    return make_repo(tmp_path)


def index_of(lines: list[str], text: str) -> int:
    return next(i for i, line in enumerate(lines) if text in line)


def test_first_release_plan(repo) -> None:
    work, git = repo
    result = plan(work)
    sha = git("rev-parse", "HEAD")
    assert str(result.version) == "0.1.1"
    assert result.tags.immutable == ("v0.1.1", f"sha-{sha[:7]}", "v0.1.1-node18")
    assert result.tags.floating == ("0.1", "0", "latest", "0.1-node18", "0-node18", "node18")
    assert result.test_ref == f"{REPOSITORY}:sha-{sha[:7]}"
    ran = commands(work, result)
    text = "\n".join(ran)
    for expected in ("--load", "IMAGE_VERSION=0.1.1", "git add -- VERSION", "refs/tags/v0.1.1"):
        assert expected in text
    # the order that keeps a release from existing in one place only
    order = [
        "docker buildx build",
        f"AGENT_IMAGE={REPOSITORY}:sha-{sha[:7]} AGENT_IMAGE_LABELS=",
        "docker push",
        "echo 0.1.1 > VERSION",
        "git commit -q -m 'release: v0.1.1' -- VERSION",
        "git tag -a v0.1.1",
        "git push --atomic origin refs/heads/main refs/tags/v0.1.1",
        f"imagetools create --tag {REPOSITORY}:v0.1.1 '{REPOSITORY}@<digest-of-sha-{sha[:7]}>'",
        f"imagetools inspect --format '{{{{json .}}}}' {REPOSITORY}:latest",
        f"imagetools create --tag {REPOSITORY}:latest",
    ]
    positions = [index_of(ran, text) for text in order]
    assert positions == sorted(positions), ran


def test_every_line_is_built_and_tested_before_anything_is_pushed_and_git_is_recorded_once(
    repo,
) -> None:
    """One release, two Node lines: each line its own image, pin and tags; all are built and
    tested before the first push, git is recorded once, then each line's tags are set."""
    work, git = repo
    other = BuildOptions("slim", "30", "9.9.0", tag_suffix="-node30")
    two = settings(other_lines=(other,))
    result = plan(work, other_lines=(other,))
    sha = git("rev-parse", "HEAD")[:7]
    [line30] = result.others
    assert (result.line, line30.line, line30.default) == ("18", "30", False)
    assert line30.tags.immutable == ("v0.1.1-node30", f"sha-{sha}-node30")
    assert line30.tags.floating == ("0.1-node30", "0-node30", "node30")
    assert line30.test_ref == f"{REPOSITORY}:sha-{sha}-node30"
    ran = [
        line.strip().removeprefix("$ ")
        for line in release.describe(result, two, work)
        if line.strip().startswith("$ ")
    ]
    builds = [c for c in ran if c.startswith("docker buildx build")]
    assert len(builds) == 2
    assert "NODE_VERSION=18 " in builds[0]
    assert "CLAUDE_CODE_VERSION=9.8.7 " in builds[0]
    assert "NODE_VERSION=30 " in builds[1]
    assert "CLAUDE_CODE_VERSION=9.9.0 " in builds[1]
    tests = [c for c in ran if "sh -c true" in c]
    assert [("AGENT_NODE_LINE=18" in t, "AGENT_NODE_LINE=30" in t) for t in tests] == [
        (True, False),
        (False, True),
    ]
    pushed_as = (f"{REPOSITORY}:sha-{sha}", f"{REPOSITORY}:sha-{sha}-node30")
    pushes = [ran.index(f"docker push {ref}") for ref in pushed_as]
    assert ran.index(tests[1]) < min(pushes)
    assert len([c for c in ran if c.startswith("git push")]) == 1
    git_push = index_of(ran, "git push --atomic")
    assert max(pushes) < git_push < index_of(ran, f"--tag {REPOSITORY}:v0.1.1-node30")
    assert index_of(ran, f"--tag {REPOSITORY}:node30 ") > git_push


def test_the_test_command_is_told_the_labels_the_build_was_given(repo) -> None:
    """The image tests compare the built image's labels with these: the test command gets
    exactly the values the buildx command passes as build args."""
    work, git = repo
    ran = commands(work, plan(work))
    build = shlex.split(ran[index_of(ran, "docker buildx build")])
    build_args = dict(
        build[i + 1].split("=", 1) for i, word in enumerate(build) if word == "--build-arg"
    )
    test = shlex.split(ran[index_of(ran, "sh -c true")])
    env = dict(word.split("=", 1) for word in test[: test.index("sh")])
    given = json.loads(env["AGENT_IMAGE_LABELS"])
    assert given == labels_from_build_args(build_args)
    assert given["org.opencontainers.image.revision"] == git("rev-parse", "HEAD")
    assert given["org.opencontainers.image.version"] == "0.1.1"
    assert env["AGENT_IMAGE"] == f"{REPOSITORY}:sha-{git('rev-parse', 'HEAD')[:7]}"


def test_dry_run_records_exactly_the_commands_a_real_run_runs(repo, capsys) -> None:
    """describe() is the steps run with a RecordingRunner; a real run logs each command it
    runs as `release: $ ...`: the two lists are the same."""
    work, git = repo
    fake = pushed(work, git)  # the registry side is the fake's, so compare git and VERSION
    result = plan(work, fake)
    planned = [  # the registry's reads are the fake's: imagetools and cosign verification
        c for c in commands(work, result) if "imagetools" not in c and not c.startswith("cosign")
    ]
    run(work, result, fake)
    logged = [
        line.removeprefix("release: $ ")
        for line in capsys.readouterr().err.splitlines()
        if line.startswith("release: $ ")
    ]
    assert logged == planned
    assert logged[0] == "echo 0.1.1 > VERSION  # temp file + rename"
    assert git("log", "-1", "--format=%s") == "release: v0.1.1"


def test_multi_platform_release_pushes_the_sha_tag_with_buildx(repo) -> None:
    work, git = repo
    result = plan(work)
    sha = git("rev-parse", "HEAD")
    described = release.describe(result, settings(platforms=("linux/amd64", "linux/arm64")), work)
    push = [line for line in described if "--push" in line]
    assert len(push) == 1
    assert "--platform linux/amd64,linux/arm64" in push[0]
    assert f"--tag {REPOSITORY}:sha-{sha[:7]}" in push[0]
    assert not any("docker push" in line for line in described)


def test_prerelease_plan_has_no_floating_tags(repo) -> None:
    work, _ = repo
    result = plan(work, bump="minor", pre="rc")
    assert str(result.version) == "0.2.0-rc.1"
    assert result.tags.floating == ()
    assert not any(":latest" in c for c in commands(work, result))


def test_prerelease_keeps_the_current_identifier(repo) -> None:
    work, git = repo
    (work / "VERSION").write_text("1.0.0-beta.2\n")
    git("commit", "-qam", "chore: beta")
    git("tag", "-a", "v1.0.0-beta.2", "-m", "r")
    assert str(plan(work, bump="prerelease", default_pre="rc").version) == "1.0.0-beta.3"
    assert str(plan(work, bump="prerelease", pre="rc").version) == "1.0.0-rc.1"


def test_latest_held_back_by_what_the_registry_tag_names(repo) -> None:
    work, git = repo
    git("tag", "-a", "v0.1.0", "-m", "r")
    fake = FakeRegistry({"latest": image("sha256:b", "2.0.0"), "0": image("sha256:c", "0.0.9")})
    result = plan(work, fake)
    assert result.tags.floating == ("0.1", "0", "0.1-node18", "0-node18")
    assert result.tags.held_back == ("latest", "node18")  # 2.0.0 exists: neither goes back


@pytest.mark.parametrize(
    ("setup", "message", "code"),
    [
        (lambda w, g: (w / "VERSION").write_text("0.1.0\n\n"), "not clean", 3),
        (lambda w, g: (w / "notes.txt").write_text("x"), r"not clean \(notes.txt\)", 3),
        (lambda w, g: g("checkout", "-q", "-b", "feature"), "not the release branch 'main'", 3),
        (lambda w, g: g("checkout", "-q", "--detach"), "detached", 3),
        (lambda w, g: g("tag", "-a", "v0.3.0", "-m", "r"), r"says 0\.1\.0 .* tag is v0\.3\.0", 3),
    ],
    ids=["dirty", "untracked", "branch", "detached", "version-mismatch"],
)
def test_repository_state_is_refused(repo, setup, message: str, code: int) -> None:
    work, git = repo
    setup(work, git)
    with pytest.raises(AgentImageError, match=message) as err:
        plan(work)
    assert err.value.code == code


def test_existing_local_tag_is_refused(repo) -> None:
    work, git = repo
    git("checkout", "-q", "-b", "side")
    commit(work, git, "fix: side")
    git("tag", "-a", "v0.1.1", "-m", "side release")  # not reachable from main
    git("checkout", "-q", "main")
    with pytest.raises(AgentImageError, match=r"v0\.1\.1 already exists locally"):
        plan(work)


def test_existing_remote_tag_is_refused(repo) -> None:
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
        checked(["git", *args], cwd=clone)
    with pytest.raises(AgentImageError, match="has commits that main lacks"):
        plan(work)


def test_a_dry_run_collects_every_failed_precondition_after_the_plan(repo) -> None:
    work, git = repo
    git("tag", "-a", "v0.1.1", "-m", "r")
    git("push", "-q", "origin", "v0.1.1")
    git("tag", "-d", "v0.1.1")
    (work / "notes.txt").write_text("x")
    fake = FakeRegistry({"v0.1.1": image("sha256:other", "0.1.1")})
    result = plan(work, fake, collect=True)
    messages = [p.message for p in result.problems]
    assert len(messages) == 3, messages
    assert "working tree is not clean (notes.txt)" in messages[0]
    assert "git tag v0.1.1 already exists on origin" in messages[1]
    assert "already exists in the registry with another image" in messages[2]
    assert [p.code for p in result.problems] == [3, 3, 6]
    assert any("git push --atomic" in c for c in commands(work, result))  # the plan is whole


def test_no_push_skips_remote_and_registry(repo) -> None:
    work, git = repo
    git("remote", "remove", "origin")
    result = plan(work, push=False, registry="")
    assert result.repository == "agentgate/agent"
    ran = commands(work, result)
    assert not any("git push" in c or "imagetools" in c for c in ran)
    assert "docker tag agentgate/agent:sha-" in "\n".join(ran)


def test_push_without_registry_is_refused(repo) -> None:
    work, _ = repo
    with pytest.raises(AgentImageError, match="no registry configured"):
        plan(work, registry="")


def test_auto_with_nothing_releasable(repo) -> None:
    work, git = repo
    git("tag", "-a", "v0.1.0", "-m", "r")
    commit(work, git, "docs: readme")
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
        plan(work, FakeRegistry({"v0.1.1": image("sha256:other")}))
    assert err.value.code == ExitCode.REGISTRY


def test_rerun_reuses_the_image_already_pushed_for_this_commit(repo) -> None:
    work, git = repo
    result = plan(work, pushed(work, git))
    assert result.pushed_digest == "sha256:a"
    described = release.describe(result, settings(), work)
    skipped = [line for line in described if "[skip: already" in line]
    assert [line.split(".")[1].split("[")[0].strip() for line in skipped] == [
        "build",
        "test",
        "push image",
        "SBOM per platform",  # the fake's image carries its SBOM already
        "vulnerability scan",
        "attach the SBOM (unsigned)",
    ]


def test_release_then_a_rerun_after_git_finishes_the_same_version(repo) -> None:
    work, git = repo
    fake = pushed(work, git)
    source = git("rev-parse", "HEAD")
    first = plan(work, fake)
    steps = {step.name: step for step in release.steps_for(first)}
    ctx = release.Context(first, settings(), work, HostRunner(), fake, digest="sha256:a")  # type: ignore[arg-type]
    steps["record in git"].run(ctx)  # then the registry went away: nothing tagged yet
    assert git("log", "-1", "--format=%s") == "release: v0.1.1"
    assert git("cat-file", "-t", "v0.1.1") == "tag"  # annotated
    assert "v0.1.1" in git("ls-remote", "--tags", "origin")
    assert fake.copied == []

    again = plan(work, fake)
    assert (again.mode, str(again.version), again.source_sha) == ("resume", "0.1.1", source)
    assert again.remote_has_release
    run(work, again, fake)
    assert fake.copied == [
        "v0.1.1",
        "v0.1.1-node18",
        *("0.1", "0", "latest", "0.1-node18", "0-node18", "node18"),
    ]
    assert len({fake.tags[t].digest for t in fake.copied}) == 1
    # complete now: the next run is a new release
    assert plan(work, fake).mode == "new"
    assert str(plan(work, fake).version) == "0.1.2"


def test_git_push_failure_rolls_back_exactly(repo) -> None:
    work, git = repo
    before = git("rev-parse", "HEAD")
    fake = pushed(work, git)
    result = plan(work, fake)
    git("remote", "set-url", "origin", str(work.parent / "gone.git"))
    with pytest.raises(AgentImageError, match="restored") as err:
        run(work, result, fake)
    assert err.value.code == ExitCode.PUBLISH_FAILED
    assert git("rev-parse", "HEAD") == before
    assert git("tag", "--list") == ""
    assert (work / "VERSION").read_text() == "0.1.0\n"
    assert git("status", "--porcelain") == ""
    assert fake.copied == []  # nothing named v0.1.1 anywhere


def test_describe_changes_nothing(repo) -> None:
    work, git = repo
    before = (git("rev-parse", "HEAD"), (work / "VERSION").read_text(), git("tag", "--list"))
    fake = FakeRegistry()
    release.describe(plan(work, fake), settings(), work)
    assert (
        git("rev-parse", "HEAD"),
        (work / "VERSION").read_text(),
        git("tag", "--list"),
    ) == before
    assert fake.tags == {}
    assert git("status", "--porcelain") == ""


def test_a_sha_tag_naming_no_image_of_this_commit_is_pushed_again(repo) -> None:
    """docker pushes an index's children to the tag too: after an interrupted push, sha-<7>
    may name an attestation manifest (no labels). It is not released; it is pushed again."""
    work, git = repo
    sha = git("rev-parse", "HEAD")
    result = plan(work, FakeRegistry({f"sha-{sha[:7]}": image("sha256:attestation")}))
    assert result.pushed_digest == ""
    assert any(c.startswith("docker push") for c in commands(work, result))
