"""A full release to a registry whose login lives only in a docker credential helper.

The registry demands htpasswd (bcrypt) auth. The helper is a real `docker-credential-*`
program on PATH speaking Docker's get/store/erase/list protocol; Docker's config (a temp
DOCKER_CONFIG) names it in credHelpers and holds no secret. `docker login` stores through
it; the release reads the registry (buildx imagetools), pushes (docker push through the
daemon) and tags remotely, all with credentials Docker asked the helper for.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from releasekit import (
    LocalRegistry,
    htpasswd_registry,
    make_release_repo,
    remove_local_images,
    stable_tags,
)

HELPER = Path(__file__).parent / "bin" / "docker-credential-agentgate-test"
PASSWORD = "right-password"


def test_release_through_a_credential_helper(
    tmp_path: Path, private_registry: Callable[..., LocalRegistry], npm_registry: str
) -> None:
    registry = htpasswd_registry(private_registry, tmp_path, PASSWORD)
    helper_dir = tmp_path / "credential-helper"
    helper_dir.mkdir()
    shutil.copy2(HELPER, helper_dir / HELPER.name)
    config_dir = tmp_path / "docker-config"
    config_dir.mkdir()
    (config_dir / "config.json").write_text(
        json.dumps({"credHelpers": {registry.address: "agentgate-test"}})
    )
    env = {"DOCKER_CONFIG": str(config_dir), "PATH": f"{helper_dir}:{os.environ['PATH']}"}

    login = subprocess.run(
        ["docker", "login", "--username", "releaser", "--password-stdin", registry.address],
        input=PASSWORD,
        env={**os.environ, **env},
        text=True,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert login.returncode == 0, login.stderr
    assert PASSWORD not in (config_dir / "config.json").read_text()  # the helper holds it
    assert PASSWORD in (helper_dir / "credentials.json").read_text()

    repo = make_release_repo(tmp_path / "repo", registry.address, npm_registry)
    source = repo.git("rev-parse", "HEAD")
    try:
        result = repo.invoke("release", "--bump", "patch", **env)
    finally:
        remove_local_images(registry.address, repo.image)
    assert result.returncode == 0, result.stderr[-3000:]

    tags = registry.tags(repo.image)
    assert set(tags) == stable_tags("0.1.1", source)
    assert len(set(tags.values())) == 1
    assert f"@{tags['v0.1.1']}" in result.stdout  # the summary names the pushed digest
    assert "refs/tags/v0.1.1" in repo.git("ls-remote", str(repo.origin))
    calls = (helper_dir / "calls.log").read_text().splitlines()
    assert "store " in calls
    assert f"get {registry.address}" in calls
