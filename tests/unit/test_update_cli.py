"""`invoke update-cli` against a local npm registry (verdaccio) holding fake Claude Code
releases: engines, optionalDependencies, platform packages, deprecations and dist-tags.

The real CLI in a throwaway clone whose Dockerfile has its own lines; npm is pointed at the
double with npm_config_registry, so nothing reaches the public registry.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import CliRepo, make_cli_repo, one_line_error
from verdaccio import Verdaccio

from agentimage import cliupdate, lines

CLI = cliupdate.CLI_PACKAGE
LINUX = ("linux-x64", "linux-arm64", "linux-x64-musl", "linux-arm64-musl")
OTHERS = ("darwin-arm64", "win32-x64")  # listed by real releases; never checked

# (version, engines.node, platforms published, dist-tag, deprecated)
RELEASES = [
    ("1.0.0", ">=16.0.0", LINUX, "latest", ""),
    ("1.1.0", ">=18.0.0", LINUX, "latest", ""),
    ("1.2.0", ">=30.0.0", LINUX, "latest", ""),
    ("1.3.0", ">=30.0.0", LINUX[:3], "latest", ""),  # no linux-arm64-musl package
    ("1.4.0", ">=30.0.0", LINUX, "latest", "broken auth flow, use 1.2.0"),
    ("1.5.0-rc.1", ">=30.0.0", LINUX, "next", ""),  # a prerelease
    ("1.6.0", ">=30.0.0", LINUX, "next", ""),  # newer than latest (1.4.0): not yet out
]

DOCKERFILE = """\
ARG NODE_VERSION=18
ARG BASE_IMAGE=node:${{NODE_VERSION}}-alpine

FROM ${{BASE_IMAGE}} AS system
RUN true

FROM system AS node16
ARG CLAUDE_CODE_VERSION={pin16}
ENV CLAUDE_CODE_VERSION=${{CLAUDE_CODE_VERSION}}

FROM system AS node18
ARG CLAUDE_CODE_VERSION={pin18}
ENV CLAUDE_CODE_VERSION=${{CLAUDE_CODE_VERSION}}

FROM system AS node30
ARG CLAUDE_CODE_VERSION={pin30}
ENV CLAUDE_CODE_VERSION=${{CLAUDE_CODE_VERSION}}

FROM node${{NODE_VERSION}} AS builder
RUN echo "$CLAUDE_CODE_VERSION"
"""


def publish_releases(registry: Verdaccio) -> None:
    for version, engines, platforms, tag, deprecated in RELEASES:
        for platform in platforms:
            registry.publish({"name": f"{CLI}-{platform}", "version": version}, tag)
        manifest: dict[str, object] = {
            "name": CLI,
            "version": version,
            "engines": {"node": engines},
            "optionalDependencies": {f"{CLI}-{p}": version for p in (*OTHERS, *LINUX)},
        }
        if deprecated:
            manifest["deprecated"] = deprecated
        registry.publish(manifest, tag)


@pytest.fixture(scope="module")
def npm_double(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    registry = Verdaccio(tmp_path_factory.mktemp("verdaccio")).start()
    try:
        publish_releases(registry)
        yield registry.url
    finally:
        registry.stop()


@pytest.fixture
def clone(tmp_path: Path, npm_double: str) -> CliRepo:
    repo = make_cli_repo(tmp_path, npm_double)
    write_pins(repo, pin16="1.0.0", pin18="1.0.0", pin30="1.1.0")
    repo.commit_file("NOTES.md", "lines\n", "test: lines of this clone")
    return repo


def write_pins(repo: CliRepo, **pins: str) -> Path:
    path = repo.path / "docker" / "Dockerfile.agent"
    path.write_text(DOCKERFILE.format(**pins))
    return path


def pins(repo: CliRepo) -> dict[str, str]:
    return dict(lines.read(repo.path).pins)


def test_dry_run_reports_the_newest_release_each_line_can_run_and_changes_nothing(
    clone: CliRepo,
) -> None:
    before = clone.state()
    dockerfile = (clone.path / "docker" / "Dockerfile.agent").read_bytes()
    result = clone.invoke("update-cli", "--dry-run")
    assert result.returncode == 12, result.stderr
    out = result.stdout.splitlines()
    assert f"node 18: {CLI} 1.0.0 -> 1.1.0" in out
    assert f"node 16: {CLI} 1.0.0 (up to date)" in out  # 1.1.0 needs Node >= 18
    assert f"node 30: {CLI} 1.1.0 -> 1.2.0" in out
    # the newer releases were passed over, each for its reason; 1.6.0 is not `latest` yet
    assert "  passed over 1.4.0: deprecated (broken auth flow, use 1.2.0)" in out
    assert "  passed over 1.3.0: no linux-arm64-musl package" in out
    assert not any("1.6.0" in line or "1.5.0" in line for line in out)
    assert out[-1] == "dry run: 2 pins would change; nothing was written"
    assert (clone.path / "docker" / "Dockerfile.agent").read_bytes() == dockerfile
    assert clone.state() == before


def test_update_moves_the_pins_and_a_rerun_finds_nothing_to_do(clone: CliRepo) -> None:
    result = clone.invoke("update-cli")
    assert result.returncode == 12, result.stderr
    assert result.stdout.splitlines()[-1] == "updated 2 pins in the Dockerfile"
    assert pins(clone) == {"16": "1.0.0", "18": "1.1.0", "30": "1.2.0"}
    assert clone.git("status", "--porcelain") == "M docker/Dockerfile.agent"

    again = clone.invoke("update-cli")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1] == "every pin is current; nothing to change"
    assert pins(clone) == {"16": "1.0.0", "18": "1.1.0", "30": "1.2.0"}


def test_a_pin_newer_than_every_qualifying_release_is_kept(clone: CliRepo) -> None:
    write_pins(clone, pin16="1.0.0", pin18="1.1.0", pin30="1.4.0")  # 1.4.0 was deprecated later
    result = clone.invoke("update-cli")
    assert result.returncode == 0, result.stderr
    assert (
        f"node 30: {CLI} 1.4.0 (kept: the newest qualifying release, 1.2.0, is older)"
        in result.stdout.splitlines()
    )
    assert pins(clone)["30"] == "1.4.0"


def test_an_unreachable_registry_changes_nothing(clone: CliRepo) -> None:
    before = clone.state()
    result = clone.invoke("update-cli", npm_config_registry="http://127.0.0.1:9/")
    assert result.returncode == 13
    line = one_line_error(result)
    assert f"asking the npm registry about {CLI} failed (" in line
    assert "ECONNREFUSED" in line
    assert "check the registry, proxy and CA npm uses" in line
    assert clone.state() == before


def test_a_line_the_dockerfile_lacks_is_refused_naming_the_release_it_would_pin(
    clone: CliRepo,
) -> None:
    """invoke build --node-version for a line without a stage: one line naming the lines and
    the newest release whose engines admit it (asked from the same registry)."""
    result = clone.invoke("build", "--dry-run", "--node-version", "32")
    assert result.returncode == 2
    line = one_line_error(result)
    assert "Node 32 is not a line of docker/Dockerfile.agent (its lines: 18, 16, 30)" in line
    assert "(today that is 1.2.0)" in line


def test_a_configured_line_builds_with_its_own_pin(clone: CliRepo) -> None:
    result = clone.invoke("build", "--dry-run", "--node-version", "30")
    assert result.returncode == 0, result.stderr
    assert "--build-arg NODE_VERSION=30 " in result.stdout
    assert "--build-arg CLAUDE_CODE_VERSION=1.1.0 " in result.stdout
    assert ":dev-node30 " in result.stdout


@pytest.mark.parametrize(
    ("engines", "line", "admits"),
    [
        (">=22.0.0", "21", False),
        (">=22.0.0", "28", True),
        (">=18.0.0", "21", True),
        ("^21.17.0 || >=23.9.0", "21", False),  # the early 21.x releases are left out
        ("^21.17.0 || >=23.9.0", "24", True),
        ("21 - 24", "28", False),
        ("", "28", True),
        ("not a range", "28", False),
    ],
)
def test_engines_admit_a_line_only_when_every_release_of_it_qualifies(
    engines: str, line: str, admits: bool
) -> None:
    assert cliupdate.CliRelease("1.0.0", engines).admits(line) is admits
