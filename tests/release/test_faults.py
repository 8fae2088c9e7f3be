"""Faults during `invoke release` (issues 5 and 10): the registry dies, the build or the git
push fails, Ctrl-C arrives at each step, two releases race.

After each fault, nothing is released anywhere (VERSION, the git tags, vX.Y.Z and the
floating tags all unchanged; only the commit's sha-<7> build may be in the registry), or the
release is recorded whole in git and a plain re-run finishes it; then the re-run completes
the release. The registry sits behind a FaultProxy so a test acts at an exact
request (the version's manifest upload, the first floating tag) instead of guessing with
sleeps; a terminal's Ctrl-C is SIGINT to the release's whole process group.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fault_proxy import FaultProxy
from releasekit import (
    SUFFIX,
    LocalRegistry,
    ReleaseRepo,
    configure_identity,
    make_release_repo,
    registry_tags,
    remote_labels,
    remove_local_images,
)

NODE_CHECK = 'docker run --rm --entrypoint node "$AGENT_IMAGE" --version'
RELEASED = "0.1.1\n"
FLOATING = {"0.1", "0", "latest", f"0.1{SUFFIX}", f"0{SUFFIX}", SUFFIX[1:]}
DEADLINE = 300


class Running:
    """An `invoke release` in its own process group, its merged output read line by line."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, marker: str) -> None:
        deadline = time.monotonic() + DEADLINE
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                pytest.fail(f"release ended before {marker!r}:\n{self.output}")
            if line.startswith(marker):
                return
        pytest.fail(f"no {marker!r} within {DEADLINE} s:\n{self.output}")

    def interrupt(self) -> None:
        os.killpg(self.process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does

    def finish(self) -> int:
        code = self.process.wait(timeout=DEADLINE)
        deadline = time.monotonic() + 10
        while self._queue.get(timeout=max(0.1, deadline - time.monotonic())) is not None:
            pass
        print(self.output)  # shown when a test fails
        return code

    @property
    def output(self) -> str:
        return "".join(self.lines)

    @property
    def last_line(self) -> str:
        return [line for line in self.lines if line.strip()][-1].strip()


def last_line(result: subprocess.CompletedProcess[str]) -> str:
    """The error a failed release ends with: one line, no traceback."""
    assert "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: "), line
    return line


def assert_unchanged_or_released(repo: ReleaseRepo, before: dict[str, object]) -> str:
    """Either nothing a user relies on moved, or the release is recorded whole in git."""
    after = repo.state()
    assert after["status"] == ""
    published = after["registry"]
    assert isinstance(published, dict)
    if after["version"] == before["version"]:
        for key in ("head", "local_tags", "remote_refs"):
            assert after[key] == before[key], key
        assert not {"v0.1.1", *FLOATING} & set(published), "a registry release without git"
        return "unchanged"
    assert after["version"] == RELEASED
    head = after["head"]
    assert repo.git("log", "-1", "--format=%s") == "release: v0.1.1"
    assert repo.git("rev-parse", "v0.1.1^{commit}") == head
    remote = str(after["remote_refs"])
    assert f"{head}\trefs/heads/main" in remote
    assert "refs/tags/v0.1.1" in remote
    source = repo.git("rev-parse", "HEAD^")
    assert f"sha-{source[:7]}" in published  # the image was pushed before git
    assert published.get("v0.1.1", published[f"sha-{source[:7]}"]) == published[f"sha-{source[:7]}"]
    return "released"


def assert_rerun_completes(repo: ReleaseRepo, source: str) -> subprocess.CompletedProcess[str]:
    result = repo.invoke("release", "--bump", "patch")
    assert result.returncode == 0
    assert (repo.path / "VERSION").read_text() == RELEASED
    subjects = repo.git("log", "--format=%s").splitlines()
    assert subjects.count("release: v0.1.1") == 1
    assert repo.git("rev-parse", "HEAD^") == source
    remote = repo.git("ls-remote", str(repo.origin))
    assert f"{repo.git('rev-parse', 'HEAD')}\trefs/heads/main" in remote
    assert "refs/tags/v0.1.1" in remote
    assert repo.git("status", "--porcelain") == ""
    published = registry_tags(repo.registry_api or repo.registry, repo.image)
    assert set(published) == {"v0.1.1", f"v0.1.1{SUFFIX}", f"sha-{source[:7]}", *FLOATING}
    # the release is one image; sha-<7> names a build of the same commit, which a push cut
    # off by the fault may still have finished after the re-run pushed its own
    assert len({published[tag] for tag in ("v0.1.1", *FLOATING)}) == 1
    labels = remote_labels(f"{repo.registry_api or repo.registry}/{repo.image}:v0.1.1")
    assert labels["org.opencontainers.image.revision"] == source
    return result


@pytest.fixture
def proxied(
    tmp_path: Path,
    private_registry: Callable[..., LocalRegistry],
    npm_registry: str,
) -> Iterator[tuple[ReleaseRepo, LocalRegistry, FaultProxy]]:
    """A release repo whose registry (its own, restartable) is reached through a FaultProxy."""
    registry = private_registry()
    proxy = FaultProxy(registry.address)
    repo = make_release_repo(
        tmp_path / "repo", proxy.address, npm_registry, registry_api=registry.address
    )
    yield repo, registry, proxy
    proxy.close()
    remove_local_images(proxy.address, repo.image)


def _stop_registry(registry: LocalRegistry) -> Callable[[], bool]:
    def action() -> bool:
        registry.kill()
        return False  # and drop the request that was on its way

    return action


def test_registry_stops_while_the_image_is_pushed(proxied) -> None:
    repo, registry, proxy = proxied
    source = repo.git("rev-parse", "HEAD")
    # docker push of the tested image, its blobs already up
    stop = proxy.on(f"PUT /v2/{repo.image}/manifests/sha-", _stop_registry(registry))
    before = repo.state()

    result = repo.invoke("release", "--bump", "patch")
    assert stop.fired.is_set()
    assert result.returncode == 9
    line = last_line(result)
    assert "pushing" in line
    assert "git was not changed; re-run once the registry accepts pushes" in line

    registry.start()  # same port, same storage
    assert assert_unchanged_or_released(repo, before) == "unchanged"
    assert_rerun_completes(repo, source)


@pytest.mark.parametrize("tag", ["v0.1.1", "0.1"], ids=["version-tag", "floating-tag"])
def test_registry_stops_after_git_recorded_the_release(proxied, tag: str) -> None:
    repo, registry, proxy = proxied
    source = repo.git("rev-parse", "HEAD")
    stop = proxy.on(f"PUT /v2/{repo.image}/manifests/{tag} ", _stop_registry(registry))
    before = repo.state()

    result = repo.invoke("release", "--bump", "patch")
    assert stop.fired.is_set()
    assert result.returncode == 6
    line = last_line(result)
    assert f"registry {repo.registry} " in line
    assert "v0.1.1 is already recorded in git: re-run invoke release to finish publishing" in line

    registry.start()
    assert assert_unchanged_or_released(repo, before) == "released"
    rerun = assert_rerun_completes(repo, source)
    assert "resuming an unfinished release" in rerun.stdout


def test_build_failure_changes_nothing_and_rerun_completes(release_repo: ReleaseRepo) -> None:
    dockerfile = release_repo.path / "docker" / "Dockerfile.agent"
    dockerfile.write_text(dockerfile.read_text() + "\nRUN echo 'broken on purpose' >&2; exit 3\n")
    release_repo.git("commit", "-q", "-am", "fix: a step that fails")
    before = release_repo.state()

    result = release_repo.invoke("release", "--bump", "patch")
    assert result.returncode == 7
    line = last_line(result)
    assert "docker buildx build failed" in line
    assert "read the build log above, fix the cause and re-run" in line
    assert "broken on purpose" in result.stderr  # the build log is shown
    assert release_repo.state() == before

    release_repo.git("revert", "--no-edit", "HEAD")
    assert_rerun_completes(release_repo, release_repo.git("rev-parse", "HEAD"))


def _pause(release: threading.Event) -> Callable[[], bool]:
    def action() -> bool:
        release.wait(DEADLINE)
        return False

    return action


def _hook(repo: ReleaseRepo, body: str) -> Path:
    hook = repo.origin / "hooks" / "pre-receive"
    hook.write_text(f"#!/bin/sh\n{body}\n")
    hook.chmod(0o755)
    return hook


# step -> how the release is held there, and whether the release is recorded afterwards
SIGINT_STEPS = {
    "plan": "unchanged",
    "build": "unchanged",
    "test": "unchanged",
    "publish-sha-tag": "unchanged",
    "publish-version-tag": "released",  # vX.Y.Z is written after git recorded the release
    "git-push-rejected": "unchanged",
    "git-push-lands": "released",
    "floating-tags": "released",
}


@pytest.mark.parametrize("step", list(SIGINT_STEPS))
def test_sigint_at_each_step(proxied, step: str) -> None:
    repo, _, proxy = proxied
    source = repo.git("rev-parse", "HEAD")
    before = repo.state()
    env: dict[str, str] = {}
    marker = ""
    release = threading.Event()
    rule = None
    hook = None
    if step == "plan":
        marker = "release v0.1.1 ("
    elif step == "build":
        marker = "$ docker buildx build"
    elif step == "test":
        env["INVOKE_RELEASE_TEST_COMMAND"] = f"sleep {DEADLINE}; {NODE_CHECK}"
        marker = "release: testing"
    elif step.startswith("publish"):
        tag = "sha-" if step == "publish-sha-tag" else "v0.1.1 "
        rule = proxy.on(f"PUT /v2/{repo.image}/manifests/{tag}", _pause(release))
    elif step.startswith("git"):
        verdict = "exit 0" if step == "git-push-lands" else "echo 'rejected by hook' >&2; exit 1"
        pushing = repo.path.parent / "push-started"
        hook = _hook(repo, f'touch "{pushing}"; sleep 3; {verdict}')
    else:
        rule = proxy.on(f"PUT /v2/{repo.image}/manifests/0.1 ", _pause(release))

    running = Running(repo.start("release", "--bump", "patch", **env))
    try:
        if rule is not None:
            assert rule.fired.wait(DEADLINE), running.output
        elif hook is not None:  # the origin's hook runs: the push is under way
            deadline = time.monotonic() + DEADLINE
            while not pushing.exists() and running.process.poll() is None:
                assert time.monotonic() < deadline, running.output
                time.sleep(0.05)
        else:
            running.wait_for(marker)
        running.interrupt()
        code = running.finish()
    finally:
        release.set()
        if running.process.poll() is None:
            running.process.kill()
    assert code == 130
    assert "Traceback" not in running.output
    assert "error: interrupted" in running.last_line  # stderr; a cut stdout line may precede
    if step == "build":
        assert "release: testing" not in running.output  # it really stopped in the build
    if hook is not None:
        hook.unlink()

    assert assert_unchanged_or_released(repo, before) == SIGINT_STEPS[step]
    expected = {
        "unchanged": "re-run",
        "released": "re-run invoke release to finish publishing it",
    }[SIGINT_STEPS[step]]
    assert expected in running.last_line
    assert_rerun_completes(repo, source)


def test_two_releases_race_from_two_clones(release_repo: ReleaseRepo, tmp_path: Path) -> None:
    """Both plan v0.1.1 from the same origin and reach the push together: one wins."""
    first = release_repo
    clone = tmp_path / "second"
    first.git("clone", "-q", str(first.origin), str(clone))
    second = ReleaseRepo(clone, first.origin, first.registry, first.image, first.npm_registry)
    configure_identity(second, "Other Releaser")  # a different person: a different commit
    source = first.git("rev-parse", "HEAD")
    before = first.state()

    # each waits in its test step until both got there, so both pass every guard first
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    both_tested = (
        f'touch "{barrier}/$$"; i=0; '
        f'while [ "$(ls "{barrier}" | wc -l)" -lt 2 ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); '
        f"done; {NODE_CHECK}"
    )
    runs = [
        Running(repo.start("release", "--bump", "patch", INVOKE_RELEASE_TEST_COMMAND=both_tested))
        for repo in (first, second)
    ]
    codes = [run.finish() for run in runs]
    both = "\n".join(
        f"--- release {i} exited {c} ---\n{r.output}"
        for i, (c, r) in enumerate(zip(codes, runs, strict=True))
    )
    assert sorted(codes)[0] == 0, both
    assert sorted(codes)[1] in (6, 9), both
    winner, loser = (first, second) if codes[0] == 0 else (second, first)
    lost = runs[codes.index(sorted(codes)[1])]
    assert "Traceback" not in lost.output
    assert lost.last_line.startswith("error: ")
    assert "re-run" in lost.last_line or "another release won" in lost.last_line

    # the loser changed nothing of its own
    assert (loser.path / "VERSION").read_text() == "0.1.0\n"
    assert loser.git("rev-parse", "HEAD") == source
    assert loser.git("tag", "--list") == ""
    assert loser.git("status", "--porcelain") == ""
    # the origin holds exactly the winner's release
    released = winner.git("rev-parse", "HEAD")
    assert winner.git("log", "-1", "--format=%an") in ("Release Test", "Other Releaser")
    remote = first.git("ls-remote", str(first.origin))
    assert f"{released}\trefs/heads/main" in remote
    assert first.git("ls-remote", str(first.origin), "refs/tags/v0.1.1^{}").startswith(released)
    # the registry: the release's tags are one image, built and tested from the released source
    published = registry_tags(first.registry, first.image)
    assert before["registry"] == {}
    assert set(published) == {"v0.1.1", f"v0.1.1{SUFFIX}", f"sha-{source[:7]}", *FLOATING}
    assert len({published[tag] for tag in ("v0.1.1", *FLOATING)}) == 1
    # (sha-<7> names an image of the same commit; the loser may have pushed its own build)
    labels = remote_labels(f"{first.registry}/{first.image}@{published['latest']}")
    assert labels["org.opencontainers.image.revision"] == source
    assert labels["org.opencontainers.image.version"] == "0.1.1"


def test_push_has_a_time_limit(proxied) -> None:
    """A registry that stops answering mid-push: the release gives up after --push-timeout
    with nothing released, and a re-run completes once the registry answers."""
    repo, _, proxy = proxied
    source = repo.git("rev-parse", "HEAD")
    release = threading.Event()
    stall = proxy.on(f"PUT /v2/{repo.image}/manifests/sha-", _pause(release))
    before = repo.state()
    try:
        result = repo.invoke("release", "--bump", "patch", "--push-timeout", "5")
    finally:
        release.set()
    assert stall.fired.is_set()
    assert result.returncode == 9
    line = last_line(result)
    assert "did not finish within 5 s" in line
    assert "git was not changed" in line
    assert assert_unchanged_or_released(repo, before) == "unchanged"
    assert_rerun_completes(repo, source)


def test_floating_tags_never_move_backwards_when_two_versions_race(
    release_repo: ReleaseRepo, tmp_path: Path
) -> None:
    """0.1.1 (a maintenance branch) and 0.2.0 (main) both plan to move 0 and latest. The
    origin holds 0.1.1's git push until 0.2.0 is completely released; 0.1.1 then re-reads
    each floating tag before moving it, finds 0.2.0 on 0 and latest, and leaves them."""
    main = release_repo
    maintenance_path = tmp_path / "maintenance"
    main.git("clone", "-q", str(main.origin), str(maintenance_path))
    maintenance = ReleaseRepo(
        maintenance_path, main.origin, main.registry, main.image, main.npm_registry
    )
    configure_identity(maintenance, "Maintainer")
    maintenance.git("switch", "-q", "-c", "release-0.1")
    maintenance.commit("fix: a backport")
    maintenance.git("push", "-q", "origin", "release-0.1")
    waiting, go_on = tmp_path / "maintenance-push-waiting", tmp_path / "go-on"
    _hook(
        main,
        "while read old new ref; do\n"
        '  [ "$ref" = refs/heads/release-0.1 ] || continue\n'
        f'  touch "{waiting}"; i=0\n'
        f'  while [ ! -e "{go_on}" ] && [ $i -lt 3000 ]; do sleep 0.1; i=$((i+1)); done\n'
        "done\nexit 0",
    )

    patch = Running(
        maintenance.start("release", "--bump", "patch", INVOKE_RELEASE_BRANCH="release-0.1")
    )
    try:
        deadline = time.monotonic() + DEADLINE
        while not waiting.exists():  # 0.1.1 planned to move 0.1, 0 and latest, and waits
            assert time.monotonic() < deadline, patch.output
            assert patch.process.poll() is None, patch.output
            time.sleep(0.1)
        assert "floating: 0.1 0 latest" in patch.output
        minor = main.invoke("release", "--bump", "minor")
        assert minor.returncode == 0
    finally:
        go_on.touch()
    assert patch.finish() == 0
    tags = registry_tags(main.registry, main.image)
    assert tags["0.1"] == tags["v0.1.1"]
    assert tags["0.2"] == tags["0"] == tags["latest"] == tags["v0.2.0"]
    assert "left 0 on 0.2.0" in patch.output
    assert "left latest on 0.2.0" in patch.output
