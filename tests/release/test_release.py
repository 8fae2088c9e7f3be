"""`invoke release` end to end: temp git repo + bare origin + local registry + real builds."""

from __future__ import annotations

import time

from releasekit import (
    LINES,
    SUFFIX,
    ReleaseRepo,
    commands_run,
    planned_commands,
    registry_tags,
    remote_labels,
    stable_tags,
)


def test_stable_release(release_repo: ReleaseRepo) -> None:
    source = release_repo.git("rev-parse", "HEAD")
    result = release_repo.invoke("release", "--bump", "patch")
    assert result.returncode == 0

    head = release_repo.git("rev-parse", "HEAD")
    assert release_repo.git("log", "-1", "--format=%s") == "release: v0.1.1"
    assert release_repo.git("rev-parse", "HEAD^") == source
    assert (release_repo.path / "VERSION").read_text() == "0.1.1\n"
    assert release_repo.git("cat-file", "-t", "v0.1.1") == "tag"  # annotated
    assert release_repo.git("rev-parse", "v0.1.1^{commit}") == head
    remote = release_repo.git("ls-remote", str(release_repo.origin))
    assert f"{head}\trefs/heads/main" in remote
    assert "refs/tags/v0.1.1" in remote
    assert release_repo.git("status", "--porcelain") == ""

    tags = registry_tags(release_repo.registry, release_repo.repo)
    assert set(tags) == stable_tags("0.1.1", source)
    assert len(set(tags.values())) == 1  # every tag is the one tested image
    # the summary names the pushed digest
    pushed = f"{release_repo.registry}/{release_repo.repo}@{tags['v0.1.1']}"
    assert f"released v0.1.1 as {pushed}" in result.stdout

    built = remote_labels(f"{release_repo.registry}/{release_repo.repo}:v0.1.1")
    assert built["org.opencontainers.image.version"] == "0.1.1"
    assert built["org.opencontainers.image.revision"] == source


def test_prerelease_then_promotion(release_repo: ReleaseRepo) -> None:
    result = release_repo.invoke("release", "--bump", "minor", "--pre", "rc")
    assert result.returncode == 0
    rc_source = release_repo.git("rev-parse", "HEAD^")
    assert (release_repo.path / "VERSION").read_text() == "0.2.0-rc.1\n"
    assert "refs/tags/v0.2.0-rc.1" in release_repo.git("ls-remote", str(release_repo.origin))
    tags = registry_tags(release_repo.registry, release_repo.repo)
    # no latest, no floating
    assert set(tags) == {"v0.2.0-rc.1", f"sha-{rc_source[:7]}", f"v0.2.0-rc.1{SUFFIX}"}

    promoted = release_repo.invoke("release", "--bump", "minor")
    assert promoted.returncode == 0
    assert (release_repo.path / "VERSION").read_text() == "0.2.0\n"
    tags = registry_tags(release_repo.registry, release_repo.repo)
    assert {"v0.2.0", "0.2", "0", "latest"} <= set(tags)
    assert tags["latest"] == tags["v0.2.0"] == tags["0.2"]
    built = remote_labels(f"{release_repo.registry}/{release_repo.repo}:v0.2.0")
    assert built["org.opencontainers.image.version"] == "0.2.0"


def test_failing_image_test_changes_nothing(release_repo: ReleaseRepo) -> None:
    before = release_repo.state()
    result = release_repo.invoke("release", "--bump", "patch", INVOKE_RELEASE_TEST_COMMAND="false")
    assert result.returncode == 8
    assert "image tests failed" in result.stderr
    assert release_repo.state() == before
    assert before["registry"] == {}
    # fixed (here: the default test command again), a re-run releases
    rerun = release_repo.invoke("release", "--bump", "patch")
    assert rerun.returncode == 0
    assert (release_repo.path / "VERSION").read_text() == "0.1.1\n"
    assert "latest" in registry_tags(release_repo.registry, release_repo.repo)


def test_dry_run_plan_is_what_the_release_runs(release_repo: ReleaseRepo) -> None:
    """The dry run changes nothing and lists, command for command, what the release then
    runs: both come from the same step code (a recording runner for the dry run)."""
    before = release_repo.state()
    dry = release_repo.invoke("release", "--bump", "patch", "--dry-run")
    assert dry.returncode == 0
    assert release_repo.state() == before
    planned = planned_commands(dry.stdout)
    for expected in ("docker buildx build", "git push --atomic", ":latest"):
        assert any(expected in command for command in planned), expected

    real = release_repo.invoke("release", "--bump", "patch")
    assert real.returncode == 0
    assert commands_run(real.stderr) == planned


def test_rejected_git_push_publishes_nothing_and_rerun_completes_the_same_version(
    release_repo: ReleaseRepo,
) -> None:
    """Git decides: a rejected push leaves no v0.1.1 anywhere, and a plain re-run, once the
    remote accepts pushes, releases the same version to git and the registry."""
    hook = release_repo.origin / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'rejected by test hook' >&2\nexit 1\n")
    hook.chmod(0o755)
    source = release_repo.git("rev-parse", "HEAD")
    before = release_repo.state()

    failed = release_repo.invoke("release", "--bump", "patch")
    assert failed.returncode == 9
    assert "rejected by test hook" in failed.stderr
    assert "git, VERSION and CHANGELOG.md were restored" in failed.stderr.strip().splitlines()[-1]
    after = release_repo.state()
    assert {k: v for k, v in after.items() if k != "registry"} == {
        k: v for k, v in before.items() if k != "registry"
    }
    assert set(after["registry"]) == {f"sha-{source[:7]}"}  # type: ignore[arg-type]

    hook.unlink()
    rerun = release_repo.invoke("release", "--bump", "patch")
    assert rerun.returncode == 0
    assert "already published" in rerun.stdout  # build/test/push not repeated
    assert release_repo.git("log", "-1", "--format=%s") == "release: v0.1.1"
    assert "refs/tags/v0.1.1" in release_repo.git("ls-remote", str(release_repo.origin))
    tags = registry_tags(release_repo.registry, release_repo.repo)
    assert set(tags) == stable_tags("0.1.1", source)
    assert len(set(tags.values())) == 1


def test_remote_moved_during_the_release_then_the_same_version_after_a_pull(
    release_repo: ReleaseRepo,
) -> None:
    """The push is refused because someone else's commit reached main first: after a pull,
    the re-run makes the same v0.1.1 from the new HEAD. The registry never held a v0.1.1
    of the old commit, so nothing refuses the version or asks for a later one."""
    old_source = release_repo.git("rev-parse", "HEAD")
    theirs_tree = release_repo.git("rev-parse", "HEAD^{tree}")
    theirs = release_repo.git(
        "-c", "user.name=Someone", "commit-tree", theirs_tree, "-p", old_source, "-m", "fix: x"
    )
    hook = release_repo.origin / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'main moved: fetch first' >&2\nexit 1\n")
    hook.chmod(0o755)

    failed = release_repo.invoke("release", "--bump", "patch")
    assert failed.returncode == 9
    assert "main moved: fetch first" in failed.stderr
    hook.unlink()
    release_repo.git("push", "-q", "origin", f"{theirs}:refs/heads/main")  # theirs lands
    assert set(registry_tags(release_repo.registry, release_repo.repo)) == {f"sha-{old_source[:7]}"}

    release_repo.git("pull", "-q", "--ff-only", "origin", "main")
    rerun = release_repo.invoke("release", "--bump", "patch")
    assert rerun.returncode == 0
    assert release_repo.git("rev-parse", "HEAD^") == theirs
    tags = registry_tags(release_repo.registry, release_repo.repo)
    assert tags["v0.1.1"] == tags[f"sha-{theirs[:7]}"] == tags["latest"]
    built = remote_labels(f"{release_repo.registry}/{release_repo.repo}:v0.1.1")
    assert built["org.opencontainers.image.revision"] == theirs


def test_auto_with_nothing_releasable(release_repo: ReleaseRepo) -> None:
    release_repo.git("tag", "-a", "v0.1.0", "-m", "baseline")
    release_repo.commit("docs: notes")
    before = release_repo.state()
    result = release_repo.invoke("release", "--bump", "auto")
    assert result.returncode == 4
    assert "nothing releasable" in result.stderr
    assert release_repo.state() == before


def test_buildx_pushes_a_manifest_list(release_repo: ReleaseRepo) -> None:
    # host platform only: the two-platform run needs arm64 emulation (its own nox session)
    result = release_repo.invoke(
        "buildx", "--platform", "linux/amd64", "--registry", release_repo.registry, "--no-verify"
    )
    assert result.returncode == 0
    assert "manifest" in result.stdout
    assert "linux/amd64" in result.stdout
    sha = release_repo.git("rev-parse", "HEAD")[:7]
    assert {"dev", f"sha-{sha}"} <= set(registry_tags(release_repo.registry, release_repo.repo))


def test_a_no_push_release_is_published_later(release_repo: ReleaseRepo) -> None:
    source = release_repo.git("rev-parse", "HEAD")
    local = release_repo.invoke("release", "--bump", "patch", "--no-push")
    assert local.returncode == 0
    head = release_repo.git("rev-parse", "HEAD")
    assert registry_tags(release_repo.registry, release_repo.repo) == {}
    assert "v0.1.1" not in release_repo.git("ls-remote", str(release_repo.origin))

    published = release_repo.invoke("release", "--publish-only", "v0.1.1")
    assert published.returncode == 0
    assert "publishing the --no-push release v0.1.1" in published.stdout
    assert "docker buildx build" not in published.stderr  # the tested image, not a rebuild
    remote = release_repo.git("ls-remote", str(release_repo.origin))
    assert f"{head}\trefs/heads/main" in remote
    assert release_repo.git(
        "ls-remote", str(release_repo.origin), "refs/tags/v0.1.1^{}"
    ).startswith(head)
    tags = registry_tags(release_repo.registry, release_repo.repo)
    assert set(tags) == stable_tags("0.1.1", source)
    assert len(set(tags.values())) == 1
    labels = remote_labels(f"{release_repo.registry}/{release_repo.repo}:v0.1.1")
    assert labels["org.opencontainers.image.revision"] == source

    again = release_repo.invoke("release", "--publish-only", "v0.1.1")
    assert again.returncode == 0  # converged: nothing left to do, nothing changed
    assert registry_tags(release_repo.registry, release_repo.repo) == tags


def test_the_test_command_has_a_time_limit(release_repo: ReleaseRepo) -> None:
    before = release_repo.state()
    started = time.monotonic()
    result = release_repo.invoke(
        "release", "--bump", "patch", "--test-timeout", "3", INVOKE_RELEASE_TEST_COMMAND="sleep 120"
    )
    assert time.monotonic() - started < 100
    assert result.returncode == 8
    line = result.stderr.strip().splitlines()[-1]
    assert "did not finish within 3 s; raise --test-timeout" in line
    assert "nothing was published or committed" in line
    assert release_repo.state() == before


def test_one_release_publishes_every_node_line(release_repo: ReleaseRepo) -> None:
    """release.lines empty: every line of the Dockerfile, each its own image with its own
    CLI pin, tested with its AGENT_NODE_LINE; one git tag; the default line also under the
    seed's bare names."""
    source = release_repo.git("rev-parse", "HEAD")
    check = 'docker run --rm --entrypoint claude "$AGENT_IMAGE" --version; echo "$AGENT_NODE_LINE"'
    result = release_repo.invoke(
        "release", "--bump", "patch", INVOKE_RELEASE_LINES="", INVOKE_RELEASE_TEST_COMMAND=check
    )
    assert result.returncode == 0
    assert release_repo.git("tag", "--list") == "v0.1.1"
    tags = registry_tags(release_repo.registry, release_repo.repo)
    expected = stable_tags("0.1.1", source)
    for line in LINES.names[1:]:
        suffix = f"-node{line}"
        expected |= {f"v0.1.1{suffix}", f"0.1{suffix}", f"0{suffix}", f"node{line}"}
        expected |= {f"sha-{source[:7]}{suffix}"}
    assert set(tags) == expected
    for line in LINES.names:
        ref = f"{release_repo.registry}/{release_repo.repo}:v0.1.1-node{line}"
        labels = remote_labels(ref)
        assert labels["io.agentgate.image.claude-code-version"] == LINES.pins[line]
        assert labels["org.opencontainers.image.version"] == "0.1.1"
        assert tags[f"node{line}"] == tags[f"v0.1.1-node{line}"]
        assert f"{LINES.pins[line]} (Claude Code)\n{line}" in result.stderr + result.stdout
    assert tags["latest"] == tags["v0.1.1"] == tags[f"v0.1.1-node{LINES.default}"]
    assert len({tags[f"v0.1.1-node{line}"] for line in LINES.names}) == len(LINES.names)
