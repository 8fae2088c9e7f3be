"""Bad input that needs a registry or the Docker engine to show (issue 5); the rest is in
tests/unit/test_bad_input.py. Each: the documented exit code, one `error:` line naming the
problem and the fix, no traceback, and git, VERSION and the registry unchanged.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from releasekit import (
    LINES,
    LocalRegistry,
    ReleaseRepo,
    htpasswd_registry,
    make_release_repo,
    remove_local_images,
    run,
)


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, result.stdout
    assert lines[-1].startswith("error: "), lines[-1]
    return lines[-1]


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """Refused before any work started: the error is all there is on stderr."""
    line = error_line(result)
    assert len([x for x in result.stderr.splitlines() if x.strip()]) == 1, result.stderr
    return line


def test_tag_only_on_the_remote(release_repo: ReleaseRepo) -> None:
    release_repo.git("tag", "-a", "v0.1.1", "-m", "released elsewhere")
    release_repo.git("push", "-q", "origin", "v0.1.1")
    release_repo.git("tag", "-d", "v0.1.1")
    before = release_repo.state()
    result = release_repo.invoke("release", "--bump", "patch")
    assert result.returncode == 3
    line = one_line_error(result)
    assert "git tag v0.1.1 already exists on origin" in line
    assert "fetch it (git fetch --tags) and bump further" in line
    assert release_repo.state() == before


def _docker_config(directory: Path, auths: dict[str, str]) -> str:
    directory.mkdir()
    config = {"auths": {host: {"auth": value} for host, value in auths.items()}}
    (directory / "config.json").write_text(json.dumps(config))
    return str(directory)


def _basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def test_push_refused_by_an_authenticating_registry(
    tmp_path: Path, private_registry: Callable[..., LocalRegistry], npm_registry: str
) -> None:
    registry = htpasswd_registry(private_registry, tmp_path, "right-password")
    repo = make_release_repo(tmp_path / "repo", registry.address, npm_registry)
    before = repo.state(with_registry=False)

    not_logged_in = repo.invoke(
        "release", "--bump", "patch", DOCKER_CONFIG=_docker_config(tmp_path / "none", {})
    )
    assert not_logged_in.returncode == 6
    line = one_line_error(not_logged_in)
    assert f"not logged in to registry {registry.address}" in line
    assert f"run docker login {registry.address}" in line

    wrong = _docker_config(tmp_path / "wrong", {registry.address: _basic("releaser", "wrong")})
    refused = repo.invoke("release", "--bump", "patch", DOCKER_CONFIG=wrong)
    assert refused.returncode == 6
    line = one_line_error(refused)
    assert f"registry {registry.address} refused the credentials Docker has for it" in line
    assert "401 Unauthorized" in line
    assert f"run docker login {registry.address} again" in line

    # the same command with the right password gets past every guard: credentials were the cause
    right = _docker_config(
        tmp_path / "right", {registry.address: _basic("releaser", "right-password")}
    )
    planned = repo.invoke("release", "--bump", "patch", "--dry-run", DOCKER_CONFIG=right)
    assert planned.returncode == 0
    assert repo.state(with_registry=False) == before
    assert registry.repositories() == []  # nothing was pushed


def test_push_refused_by_a_read_only_registry(
    tmp_path: Path, private_registry: Callable[..., LocalRegistry], npm_registry: str
) -> None:
    """The guards pass (reads work) but the registry refuses the upload itself."""
    registry = private_registry(
        "readonly", storage_config="  maintenance:\n    readonly:\n      enabled: true\n"
    )
    repo = make_release_repo(tmp_path / "repo", registry.address, npm_registry)
    before = repo.state()
    try:
        result = repo.invoke("release", "--bump", "patch")
    finally:
        remove_local_images(registry.address, repo.image)
    assert result.returncode == 9
    line = error_line(result)
    assert f"pushing {registry.address}/{repo.image}:sha-" in line
    assert "git was not changed; re-run once the registry accepts pushes" in line
    assert repo.state() == before
    assert registry.repositories() == []


def _buildx_plugin_dir() -> Path:
    out = run(["docker", "info", "--format", "{{json .ClientInfo.Plugins}}"])
    plugin = next(p for p in json.loads(out) if p["Name"] == "buildx")
    return Path(plugin["Path"]).parent


def test_buildx_missing(release_repo: ReleaseRepo, tmp_path: Path) -> None:
    """The real docker client with its buildx plugin hidden (an empty directory mounted over
    the plugin directory in a private mount namespace) and an empty DOCKER_CONFIG."""
    empty = tmp_path / "no-plugins"
    empty.mkdir()
    config = tmp_path / "docker-config"
    config.mkdir()
    before = release_repo.state()
    result = subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            'mount --bind "$1" "$2" && shift 2 && exec "$@"',
            "sh",
            str(empty),
            str(_buildx_plugin_dir()),
            sys.executable,
            "-m",
            "invoke",
            "release",
            "--bump",
            "patch",
            "--no-push",
        ],
        cwd=release_repo.path,
        env=release_repo.environment(DOCKER_CONFIG=str(config)),
        text=True,
        capture_output=True,
        timeout=300,
        check=False,
    )
    print(result.stdout, result.stderr)
    assert result.returncode == 5
    line = error_line(result)
    assert "docker buildx is missing; install docker-buildx" in line
    assert release_repo.state() == before


def test_a_line_whose_base_image_does_not_exist(release_repo: ReleaseRepo) -> None:
    """A Node line whose node:19-bookworm-slim is no published base here: the release of
    every line is refused before any build, asking the engine (and so its registry mirror)
    for each line's base image manifest."""
    dockerfile = release_repo.path / "docker" / "Dockerfile.agent"
    stage = (
        f"FROM system AS node19\nARG CLAUDE_CODE_VERSION={LINES.pins[LINES.default]}\n"
        "ENV CLAUDE_CODE_VERSION=${CLAUDE_CODE_VERSION}\n\n"
    )
    builder = "FROM node${NODE_VERSION} AS builder"
    dockerfile.write_text(dockerfile.read_text().replace(builder, stage + builder, 1))
    release_repo.git("commit", "-q", "-am", "feat: a Node 19 line")
    before = release_repo.state()
    result = release_repo.invoke("release", "--bump", "patch", INVOKE_RELEASE_LINES="")
    assert result.returncode == 6
    line = one_line_error(result)
    assert "base image node:19-bookworm-slim cannot be pulled" in line
    assert "the registry mirror" in line
    assert release_repo.state() == before
