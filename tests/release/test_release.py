"""`invoke release` end to end: temp git repo + bare origin + local registry + real builds."""

from __future__ import annotations

import json
import subprocess

from conftest import ReleaseRepo, registry_tags


def labels(ref: str) -> dict[str, str]:
    out = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", ref],
        check=True,
        text=True,
        capture_output=True,
    ).stdout
    return json.loads(out)


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
    assert set(tags) == {"v0.1.1", f"sha-{source[:7]}", "0.1", "0", "latest"}
    assert len(set(tags.values())) == 1  # every tag is the one tested image

    built = labels(f"{release_repo.registry}/{release_repo.repo}:v0.1.1")
    assert built["org.opencontainers.image.version"] == "0.1.1"
    assert built["org.opencontainers.image.revision"] == source


def test_prerelease_then_promotion(release_repo: ReleaseRepo) -> None:
    result = release_repo.invoke("release", "--bump", "minor", "--pre", "rc")
    assert result.returncode == 0
    rc_source = release_repo.git("rev-parse", "HEAD^")
    assert (release_repo.path / "VERSION").read_text() == "0.2.0-rc.1\n"
    assert "refs/tags/v0.2.0-rc.1" in release_repo.git("ls-remote", str(release_repo.origin))
    tags = registry_tags(release_repo.registry, release_repo.repo)
    assert set(tags) == {"v0.2.0-rc.1", f"sha-{rc_source[:7]}"}  # no latest, no floating

    promoted = release_repo.invoke("release", "--bump", "minor")
    assert promoted.returncode == 0
    assert (release_repo.path / "VERSION").read_text() == "0.2.0\n"
    tags = registry_tags(release_repo.registry, release_repo.repo)
    assert {"v0.2.0", "0.2", "0", "latest"} <= set(tags)
    assert tags["latest"] == tags["v0.2.0"] == tags["0.2"]
    built = labels(f"{release_repo.registry}/{release_repo.repo}:v0.2.0")
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


def test_dry_run_changes_nothing(release_repo: ReleaseRepo) -> None:
    before = release_repo.state()
    result = release_repo.invoke("release", "--bump", "patch", "--dry-run")
    assert result.returncode == 0
    for expected in ("release v0.1.1", "docker buildx build", "git push --atomic", "latest"):
        assert expected in result.stdout
    assert release_repo.state() == before


def test_rejected_git_push_rolls_back_and_rerun_completes(release_repo: ReleaseRepo) -> None:
    hook = release_repo.origin / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'rejected by test hook' >&2\nexit 1\n")
    hook.chmod(0o755)
    before = release_repo.state()

    failed = release_repo.invoke("release", "--bump", "patch")
    assert failed.returncode == 9
    assert "restored" in failed.stderr
    after = release_repo.state()
    # git and VERSION exactly as before; only the immutable image tags were pushed
    assert {k: v for k, v in after.items() if k != "registry"} == {
        k: v for k, v in before.items() if k != "registry"
    }
    assert "latest" not in after["registry"]  # type: ignore[operator]

    hook.unlink()
    rerun = release_repo.invoke("release", "--bump", "patch")
    assert rerun.returncode == 0
    assert "already published" in rerun.stdout  # build/test/push not repeated
    assert release_repo.git("log", "-1", "--format=%s") == "release: v0.1.1"
    tags = registry_tags(release_repo.registry, release_repo.repo)
    assert {"v0.1.1", "0.1", "0", "latest"} <= set(tags)
    assert len(set(tags.values())) == 1


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
