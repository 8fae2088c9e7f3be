"""Bad input to the tooling (issue 5), through the real `invoke` CLI in a throwaway clone.

Each case: the documented exit code, ONE line on stderr naming the problem and the fix, no
traceback, and nothing changed (VERSION bytes, HEAD, branch, tags, the bare origin's refs).
No Docker engine is needed: every case is refused before one would be used (DOCKER_HOST
points at a dead socket to prove it). Cases that need a registry or the engine are in
tests/release/test_release_bad_input.py.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cli_helpers import (
    KNOWN_CLI_VERSION,
    ROOT,
    CliRepo,
    fake_npm_registry,
    make_cli_repo,
    one_line_error,
)

from agentimage import preflight

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
NOBODY = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")

Setup = Callable[[CliRepo], None]


@pytest.fixture(scope="module")
def npm_registry() -> Iterator[str]:
    with fake_npm_registry() as url:
        yield url


@pytest.fixture
def cli(tmp_path: Path, npm_registry: str) -> CliRepo:
    return make_cli_repo(tmp_path, npm_registry)


def _nothing(_: CliRepo) -> None:
    return None


def _version(content: str) -> Setup:
    def setup(repo: CliRepo) -> None:
        repo.commit_file("VERSION", content, "chore: edit VERSION")

    return setup


def _no_version(repo: CliRepo) -> None:
    repo.git("rm", "-q", "VERSION")
    repo.git("commit", "-q", "-m", "chore: drop VERSION")


def _tag_ahead(repo: CliRepo) -> None:
    repo.git("tag", "-a", "v0.3.0", "-m", "release v0.3.0")


def _not_a_repo(repo: CliRepo) -> None:
    shutil.rmtree(repo.path / ".git")


def _detached(repo: CliRepo) -> None:
    repo.git("checkout", "-q", "--detach")


def _other_branch(repo: CliRepo) -> None:
    repo.git("checkout", "-q", "-b", "feature")


def _dirty(repo: CliRepo) -> None:
    (repo.path / "NOTES.md").write_text("edited, not committed\n")


def _untracked(repo: CliRepo) -> None:
    (repo.path / "scratch.txt").write_text("not added\n")


def _local_tag(repo: CliRepo) -> None:
    # a tag on a side branch (not reachable from main) takes the version main would get next
    repo.git("checkout", "-q", "-b", "side")
    repo.commit_file("side.txt", "x\n", "fix: side")
    repo.git("tag", "-a", "v0.1.1", "-m", "side release")
    repo.git("checkout", "-q", "main")


def _nothing_releasable(repo: CliRepo) -> None:
    repo.git("tag", "-a", "v0.1.0", "-m", "release v0.1.0")
    repo.commit_file("NOTES.md", "more notes\n", "docs: notes")
    repo.commit_file("NOTES.md", "tidier notes\n", "chore: tidy")


def _pem_file(name: str, content: bytes) -> Setup:
    def setup(repo: CliRepo) -> None:
        (repo.path.parent / name).write_bytes(content)

    return setup


RELEASE = ("release", "--bump", "patch", "--no-push")

# (id, setup, argv, exit code, what is wrong, how to fix it)
CASES: list[tuple[str, Setup, tuple[str, ...], int, str, str]] = [
    (
        "bump-unknown",
        _nothing,
        ("release", "--bump", "sideways", "--no-push"),
        2,
        "unknown bump 'sideways'",
        "pass --bump patch|minor|major|prerelease|auto",
    ),
    (
        "pre-invalid",
        _nothing,
        ("release", "--bump", "minor", "--pre", "r c", "--no-push"),
        2,
        "prerelease identifier 'r c' is invalid",
        "e.g. rc, beta",
    ),
    (
        "platform-malformed",
        _nothing,
        ("buildx", "--platform", "linux/amd64;linux/arm64"),
        2,
        "platform 'linux/amd64;linux/arm64' is malformed",
        "like linux/arm64",
    ),
    (
        "platform-no-arch",
        _nothing,
        ("buildx", "--platform", "linux"),
        2,
        "platform 'linux' is malformed",
        "use os/arch[/variant]",
    ),
    (
        "variant-unknown",
        _nothing,
        (*RELEASE, "--variant", "debian"),
        2,
        "unknown variant 'debian'",
        "pass --variant alpine or slim",
    ),
    (
        "node-not-a-version",
        _nothing,
        ("build", "--node-version", "twenty"),
        2,
        "Node version 'twenty' is not a version",
        "pass a major like",
    ),
    (
        "node-not-a-line",
        _nothing,
        ("build", "--node-version", "7"),
        2,
        "Node 7 is not a line of docker/Dockerfile.agent (its lines: ",
        "add a stage `FROM system AS node7` with `ARG CLAUDE_CODE_VERSION=X.Y.Z`",
    ),
    (
        "cli-not-a-version",
        _nothing,
        ("build", "--claude-code-version", "latest"),
        2,
        "Claude Code version 'latest' is not a version",
        "pass X.Y.Z",
    ),
    (
        "release-with-a-pin-flag",
        _nothing,
        (*RELEASE, "--claude-code-version", "9.9.9"),
        2,
        "a release publishes every line of the Dockerfile with its own pin",
        "change a pin with invoke update-cli",
    ),
    (
        "release-without-the-default-line",
        _nothing,
        (*RELEASE, "--lines", "7"),
        2,
        "Node 7 is not a line of docker/Dockerfile.agent",
        "build one of those",
    ),
    (
        "cli-does-not-exist-build",
        _nothing,
        ("build", "--claude-code-version", "9.9.9"),
        2,
        "does not exist on the npm registry",
        "pick one from",
    ),
    (
        "ca-cert-missing",
        _nothing,
        (*RELEASE, "--ca-cert", "../missing.pem"),
        2,
        "missing.pem does not exist",
        "pass an existing PEM file or --ca-cert none",
    ),
    (
        "ca-cert-not-pem",
        _pem_file("ca.der", b"\x30\x82\x01\x0a DER, not PEM"),
        (*RELEASE, "--ca-cert", "../ca.der"),
        2,
        "holds no PEM certificate",
        "pass a PEM bundle or --ca-cert none",
    ),
    (
        "ca-cert-directory",
        _nothing,
        (*RELEASE, "--ca-cert", ".."),
        2,
        "is not a file",
        "pass a PEM file or --ca-cert none",
    ),
    ("version-missing", _no_version, RELEASE, 3, "VERSION is missing", "create it"),
    ("version-empty", _version(""), RELEASE, 3, "VERSION is empty", "write the last released"),
    (
        "version-short",
        _version("1.2\n"),
        RELEASE,
        3,
        "'1.2' is not a semantic version",
        "write X.Y.Z",
    ),
    (
        "version-v-prefix",
        _version("v1.2.3\n"),
        RELEASE,
        3,
        "'v1.2.3' starts with 'v'",
        "write the bare version like '1.2.3'",
    ),
    (
        "version-trailing-garbage",
        _version("1.2.3 beta\n"),
        RELEASE,
        3,
        "'1.2.3 beta' is not a semantic version",
        "write X.Y.Z",
    ),
    (
        "version-second-line",
        _version("0.1.0\n0.2.0\n"),
        RELEASE,
        3,
        "is not a semantic version",
        "write X.Y.Z",
    ),
    (
        "version-disagrees-with-tag",
        _tag_ahead,
        RELEASE,
        3,
        "VERSION says 0.1.0 but the latest release tag is v0.3.0",
        "write 0.3.0 to VERSION, or tag v0.1.0",
    ),
    (
        "not-a-git-repo",
        _not_a_repo,
        RELEASE,
        3,
        "is not inside a git repository",
        "run from a clone",
    ),
    ("detached-head", _detached, RELEASE, 3, "HEAD is detached", "git switch main"),
    (
        "not-release-branch",
        _other_branch,
        RELEASE,
        3,
        "on branch 'feature', not the release branch 'main'",
        "git switch main",
    ),
    (
        "dirty-tree",
        _dirty,
        RELEASE,
        3,
        "working tree is not clean (NOTES.md)",
        "commit, stash or remove",
    ),
    (
        "untracked-file",
        _untracked,
        RELEASE,
        3,
        "working tree is not clean (scratch.txt)",
        "commit, stash or remove",
    ),
    (
        "tag-exists-locally",
        _local_tag,
        RELEASE,
        3,
        "git tag v0.1.1 already exists locally",
        "git tag -d v0.1.1",
    ),
    (
        "auto-nothing-releasable",
        _nothing_releasable,
        ("release", "--bump", "auto", "--no-push"),
        4,
        "nothing releasable since v0.1.0",
        "pass --bump patch|minor|major",
    ),
    (
        "docker-engine-unreachable",
        _nothing,
        RELEASE,
        5,
        "Docker engine not reachable",
        "start it with scripts/provision-docker-engine.sh",
    ),
    (
        "docker-engine-unreachable-build",
        _nothing,
        ("build",),
        5,
        "Docker engine not reachable",
        "is dockerd running and DOCKER_HOST right?",
    ),
]


@pytest.mark.parametrize(
    ("setup", "argv", "code", "problem", "fix"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_bad_input_is_refused_and_changes_nothing(
    cli: CliRepo, setup: Setup, argv: tuple[str, ...], code: int, problem: str, fix: str
) -> None:
    setup(cli)
    before = cli.state()
    result = cli.invoke(*argv)
    assert result.returncode == code
    line = one_line_error(result)
    assert problem in line
    assert fix in line
    assert cli.state() == before
    assert not (cli.path / "dist").exists()  # buildx writes its OCI archive there


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the block ends


def test_unreachable_registry_is_refused_before_anything(cli: CliRepo) -> None:
    port = _closed_port()
    before = cli.state()
    result = cli.invoke("release", "--bump", "patch", "--registry", f"127.0.0.1:{port}")
    assert result.returncode == 6
    line = one_line_error(result)
    assert f"registry 127.0.0.1:{port} is unreachable" in line
    assert "start it or pass another --registry" in line
    assert cli.state() == before


@pytest.fixture
def world_readable_dir() -> Iterator[Path]:
    """A directory another user can enter (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="agentimage-nobody-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def _as_nobody(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run as uid/gid 65534 when root (root reads any file), else as the current user."""
    prefix = list(NOBODY) if os.geteuid() == 0 else []
    env = {**os.environ, "HOME": str(cwd)}
    return subprocess.run(
        [*prefix, *argv], cwd=cwd, env=env, text=True, capture_output=True, timeout=60, check=False
    )


def test_unreadable_ca_cert(world_readable_dir: Path) -> None:
    """A PEM bundle that exists but cannot be read: checked as an unprivileged user."""
    for name in ("tasks.py", "invoke.yaml", "docker/Dockerfile.agent"):
        (world_readable_dir / name).parent.mkdir(exist_ok=True)
        shutil.copy2(ROOT / name, world_readable_dir / name)
    bundle = world_readable_dir / "ca.pem"
    bundle.write_text(PEM)
    bundle.chmod(0o600 if os.geteuid() == 0 else 0)  # root's file: nobody cannot read it
    # the user must be able to run the tool at all, or this test would prove nothing
    sanity = _as_nobody([sys.executable, "-c", "import agentimage, invoke"], world_readable_dir)
    assert sanity.returncode == 0, f"the test user cannot import the tooling: {sanity.stderr}"

    result = _as_nobody(
        [sys.executable, "-m", "invoke", "build", "--dry-run", "--ca-cert", str(bundle)],
        world_readable_dir,
    )
    assert result.returncode == 2
    line = one_line_error(result)
    assert f"CA bundle {bundle} is not readable (Permission denied)" in line
    assert "fix its permissions or pass another" in line
    assert bundle.read_text() == PEM


def test_cli_version_check_against_the_npm_registry(npm_registry: str, monkeypatch) -> None:
    monkeypatch.setenv("npm_config_registry", npm_registry)
    assert preflight.cli_version_published(KNOWN_CLI_VERSION) is True
    assert preflight.cli_version_published("9.9.9") is False
    preflight.cli_version(KNOWN_CLI_VERSION)  # no error


def test_confirmed_cli_versions_are_remembered_per_registry(npm_registry: str, monkeypatch) -> None:
    """A warm build skips `npm view` for a version the same registry already confirmed."""
    monkeypatch.setenv("npm_config_registry", npm_registry)
    assert preflight.cli_version_published(KNOWN_CLI_VERSION) is True
    monkeypatch.setenv("PATH", "/nonexistent")  # npm can no longer be asked
    assert preflight.cli_version_published(KNOWN_CLI_VERSION) is True
    assert preflight.cli_version_published("9.9.9") is None  # refusals are never remembered
    monkeypatch.setenv("npm_config_registry", f"http://127.0.0.1:{_closed_port()}/")
    assert preflight.cli_version_published(KNOWN_CLI_VERSION) is None  # another registry: ask it


def test_cli_version_check_tolerates_an_unreachable_npm_registry(monkeypatch, capsys) -> None:
    """Offline hosts can still build from cache: a warning, not an error, and no long stall."""
    monkeypatch.setenv("npm_config_registry", f"http://127.0.0.1:{_closed_port()}/")
    assert preflight.cli_version_published(KNOWN_CLI_VERSION) is None
    preflight.cli_version(KNOWN_CLI_VERSION)
    assert "could not ask the npm registry" in capsys.readouterr().err


def test_cli_version_check_without_npm(monkeypatch, capsys) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert preflight.cli_version_published(KNOWN_CLI_VERSION) is None
    preflight.cli_version(KNOWN_CLI_VERSION)
    assert "warning:" in capsys.readouterr().err


def test_dry_run_prints_the_whole_plan_then_every_failed_precondition(cli: CliRepo) -> None:
    """A dirty tree, an unreachable registry and no Docker engine: the plan is printed all
    the same, then one `error:` line each, with its fix; the exit code is the first one's."""
    (cli.path / "NOTES.md").write_text("edited, not committed\n")
    before = cli.state()
    registry = f"127.0.0.1:{_closed_port()}"
    result = cli.invoke("release", "--bump", "patch", "--dry-run", "--registry", registry)
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    for step in ("docker buildx build", "docker push", "git push --atomic", ":latest"):
        assert step in result.stdout, step
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 3, result.stderr
    assert all(line.startswith("error: ") for line in errors)
    assert "working tree is not clean (NOTES.md); commit, stash or remove" in errors[0]
    assert f"registry {registry} is unreachable" in errors[1]
    assert "start it or pass another --registry" in errors[1]
    assert "Docker engine not reachable" in errors[2]
    assert cli.state() == before


@pytest.mark.parametrize(
    ("command", "named"),
    [
        ("no-such-test-runner --image", "needs 'no-such-test-runner', which is not on PATH"),
        ("python3 -m no_such_test_runner tests", "runs no_such_test_runner, which python3 cannot"),
    ],
    ids=["program", "python-module"],
)
def test_a_missing_test_runner_is_named_before_any_build(
    cli: CliRepo, command: str, named: str
) -> None:
    before = cli.state()
    result = cli.invoke(*RELEASE, INVOKE_RELEASE_TEST_COMMAND=command)
    assert result.returncode == 5
    line = one_line_error(result)
    assert named in line
    assert "pass --test-command" in line
    assert cli.state() == before


def test_the_readme_install_runs_the_default_test_command() -> None:
    """The default test command is `nox -s image`, and nox comes with `pip install -e .`."""
    import tomllib

    import yaml

    defaults = yaml.safe_load((ROOT / "invoke.yaml").read_text())
    assert defaults["release"]["test_command"] == "nox -s image"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(dep.startswith("nox") for dep in project["dependencies"])
    assert "pip install -e . && invoke build" in (ROOT / "README.md").read_text()
    preflight.test_runner(defaults["release"]["test_command"])  # nox is on this PATH
