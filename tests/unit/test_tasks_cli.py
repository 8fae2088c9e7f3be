"""tasks.py as a user sees it: the manual, dry runs, and one-line errors with exit codes.

Runs `invoke` in a subprocess (no Docker needed: only --help, --list and --dry-run paths).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentimage import lines

ROOT = Path(__file__).resolve().parents[2]
LINES = lines.read(ROOT)


def invoke(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        text=True,
        capture_output=True,
        env={**os.environ, **(env or {})},
        check=False,
        timeout=60,
    )


def test_list_shows_every_task() -> None:
    out = invoke("--list").stdout
    for name in ("build", "buildx", "release", "update-cli"):
        assert f"  {name} " in out


@pytest.mark.parametrize("task", ["build", "buildx", "release", "update-cli"])
def test_every_flag_is_documented(task: str) -> None:
    out = invoke("--help", task).stdout
    options = [line for line in out.splitlines() if line.strip().startswith("--")]
    assert options
    for line in options:
        flag, _, text = line.strip().partition("  ")
        assert text.strip(), f"{flag} has no help text"


def test_build_dry_run_prints_the_command() -> None:
    result = invoke(
        "build",
        "--dry-run",
        "--variant",
        "slim",
        "--ca-cert",
        "none",
        "--tag",
        "extra",
        "--node-version",
        LINES.names[1],
    )
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip()
    assert line.startswith("docker buildx build ")
    for expected in (
        "--load",
        f"--tag agentgate/agent:dev-node{LINES.names[1]} ",
        "--tag agentgate/agent:sha-",
        "--tag agentgate/agent:extra",
        f"BASE_IMAGE=node:{LINES.names[1]}-bookworm-slim",
        f"NODE_VERSION={LINES.names[1]} ",
        f"CLAUDE_CODE_VERSION={LINES.pins[LINES.names[1]]} ",
    ):
        assert expected in line
    assert "--secret" not in line


def test_env_var_overrides_the_default() -> None:
    result = invoke("build", "--dry-run", "--ca-cert", "none", env={"INVOKE_IMAGE_VARIANT": "slim"})
    assert f"BASE_IMAGE=node:{LINES.default}-bookworm-slim" in result.stdout


def test_buildx_dry_run_without_registry_writes_oci_archive() -> None:
    result = invoke("buildx", "--dry-run", "--ca-cert", "none")
    assert result.returncode == 0, result.stderr
    assert "--platform linux/amd64,linux/arm64" in result.stdout
    assert "--output type=oci,dest=" in result.stdout
    assert "--load" not in result.stdout


def test_buildx_dry_run_with_registry_pushes() -> None:
    result = invoke("buildx", "--dry-run", "--ca-cert", "none", "--registry", "127.0.0.1:5999")
    assert "--push" in result.stdout
    assert "--tag 127.0.0.1:5999/agentgate/agent:dev" in result.stdout


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["build", "--dry-run", "--variant", "debian"], "unknown variant", 2),
        (["build", "--dry-run", "--node-version", "twenty"], "Node version", 2),
        (["build", "--dry-run", "--claude-code-version", "latest"], "Claude Code version", 2),
        (["build", "--dry-run", "--ca-cert", "/nonexistent.pem"], "does not exist", 2),
        (["build", "--dry-run", "--tag", "-bad"], "image tag", 2),
        (["buildx", "--dry-run", "--platform", "linux"], "malformed", 2),
        (["release", "--bump", "sideways", "--dry-run"], "unknown bump", 2),
        (["release", "--dry-run"], "--bump is required", 2),
        (
            ["release", "--bump", "prerelease", "--pre", "r c", "--dry-run"],
            "prerelease identifier",
            2,
        ),
        (["release", "--bump", "patch", "--registry", "http://x", "--dry-run"], "registry", 2),
    ],
)
def test_bad_input_is_one_line_and_a_distinct_exit(
    args: list[str], message: str, code: int
) -> None:
    result = invoke(*args)
    assert result.returncode == code
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert message in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("task", "shown"),
    [
        (
            "release",
            ["Required: --bump, or --publish-only vX.Y.Z", "Examples:",
             "invoke release --bump patch --registry", "default main", "default 1800",
             "default 'nox -s image'"],
        ),
        ("build", ["No flag is required", "Examples:", "invoke build --variant slim",
                   f"default {LINES.default}", "default alpine"]),
    ],
)  # fmt: skip
def test_help_shows_required_flags_defaults_and_an_example(task: str, shown: list[str]) -> None:
    out = " ".join(invoke("--help", task, env={"COLUMNS": "200"}).stdout.split())
    for text in shown:
        assert text in out, text
