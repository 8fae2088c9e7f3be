"""Registry names, Docker's config keys and the credential chain, and imagetools' answers;
no registry server (the end-to-end tests in tests/release use real ones).
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
from pathlib import Path

import pytest

from agentimage import config, imagetools, registry
from agentimage.errors import AgentImageError, ExitCode
from agentimage.runner import HostRunner

HELPER = (
    Path(__file__).resolve().parents[1] / "release" / "bin" / "docker-credential-agentgate-test"
)


@pytest.mark.parametrize(
    ("repository", "expected"),
    [
        ("127.0.0.1:5000/agentgate/agent", ("127.0.0.1:5000", "agentgate/agent")),
        ("localhost/agentgate/agent", ("localhost", "agentgate/agent")),
        ("ghcr.io/org/agent", ("ghcr.io", "org/agent")),
        ("agentgate/agent", ("docker.io", "agentgate/agent")),
        ("docker.io/agentgate/agent", ("docker.io", "agentgate/agent")),
        ("index.docker.io/agentgate/agent", ("docker.io", "agentgate/agent")),
        ("registry-1.docker.io/agentgate/agent", ("docker.io", "agentgate/agent")),
        ("node", ("docker.io", "library/node")),
        ("docker.io/node", ("docker.io", "library/node")),
    ],
)
def test_split_reference_follows_dockers_rules(repository: str, expected: tuple[str, str]) -> None:
    assert registry.split_reference(repository) == expected


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("docker.io", "https://index.docker.io/v1/"),
        ("index.docker.io", "https://index.docker.io/v1/"),
        ("registry-1.docker.io", "https://index.docker.io/v1/"),
        ("ghcr.io", "ghcr.io"),
        ("127.0.0.1:5000", "127.0.0.1:5000"),
    ],
)
def test_config_key_is_what_docker_login_writes(host: str, key: str) -> None:
    assert registry.config_key(host) == key


@pytest.mark.parametrize(
    ("registry_flag", "repository"),
    [
        ("index.docker.io/agentgate", "docker.io/agentgate/agent"),
        ("registry-1.docker.io", "docker.io/agentgate/agent"),
        ("ghcr.io/agentgate", "ghcr.io/agentgate/agent"),
        ("127.0.0.1:5000", "127.0.0.1:5000/agentgate/agent"),
    ],
)
def test_release_repository_spells_docker_hub_once(registry_flag: str, repository: str) -> None:
    name = "agent" if registry_flag.endswith("agentgate") else "agentgate/agent"
    assert config.image_repository(name, registry_flag) == repository


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1:5000", True), ("localhost:5000", True), ("[::1]:5000", True),
     ("ghcr.io", False), ("127.example.com", False)],
)  # fmt: skip
def test_loopback(host: str, loopback: bool) -> None:
    assert registry.is_loopback(host) is loopback


@pytest.fixture
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Write a DOCKER_CONFIG/config.json; the real helper script is on PATH."""
    directory = tmp_path / "docker-config"
    directory.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shutil.copy2(HELPER, bin_dir / HELPER.name)
    monkeypatch.setenv("DOCKER_CONFIG", str(directory))
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path(shutil.which('python3') or '').parent}")

    def write(data: dict, helper_store: dict | None = None) -> Path:
        (directory / "config.json").write_text(json.dumps(data))
        if helper_store is not None:
            (bin_dir / "credentials.json").write_text(json.dumps(helper_store))
        return bin_dir

    return write


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def test_docker_hub_login_is_found_under_its_config_key(docker_config) -> None:
    docker_config({"auths": {"https://index.docker.io/v1/": {"auth": _auth("u", "p")}}})
    for host in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        assert registry.has_login(host), host
    assert not registry.has_login("ghcr.io")


def test_an_empty_auths_entry_is_no_login(docker_config) -> None:
    docker_config({"auths": {"ghcr.io": {}}})  # what `docker login` leaves beside a helper
    assert not registry.has_login("ghcr.io")


def test_credential_helper_is_asked(docker_config) -> None:
    bin_dir = docker_config(
        {"credHelpers": {"ghcr.io": "agentgate-test"}},
        {"ghcr.io": {"Username": "u", "Secret": "token"}},
    )
    assert registry.has_login("ghcr.io")
    assert not registry.has_login("quay.io")  # no helper for it, no auths
    assert "get ghcr.io" in (bin_dir / "calls.log").read_text()


def test_credentials_store_answers_for_docker_hub(docker_config) -> None:
    bin_dir = docker_config(
        {"credsStore": "agentgate-test"},
        {"https://index.docker.io/v1/": {"Username": "u", "Secret": "p"}},
    )
    assert registry.has_login("docker.io")
    assert not registry.has_login("ghcr.io")  # the store has nothing for it
    assert "get https://index.docker.io/v1/" in (bin_dir / "calls.log").read_text()


def test_a_missing_credential_helper_is_one_clear_error(docker_config) -> None:
    docker_config({"credHelpers": {"ghcr.io": "not-installed"}})
    with pytest.raises(AgentImageError, match=r"credential helper for ghcr\.io failed") as err:
        registry.has_login("ghcr.io")
    assert err.value.code == ExitCode.REGISTRY


def test_inspect_output_of_a_multi_platform_index() -> None:
    text = json.dumps(
        {
            "manifest": {
                "digest": "sha256:ab",
                "manifests": [
                    {"platform": {"os": "linux", "architecture": "amd64"}},
                    {"platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
                    {"platform": {"os": "unknown", "architecture": "unknown"}},
                ],
            },
            "image": {
                "linux/amd64": {"config": {"Labels": {imagetools.VERSION_LABEL: "1.2.3"}}},
                "linux/arm64/v8": {"config": {"Labels": {imagetools.VERSION_LABEL: "1.2.3"}}},
            },
        }
    )
    found = imagetools.parse_inspect(text)
    assert found == imagetools.RemoteImage("sha256:ab", "1.2.3", ("linux/amd64", "linux/arm64/v8"))


@pytest.mark.parametrize(
    ("detail", "message"),
    [
        ("failed to do request: dial tcp 127.0.0.1:9: connect: connection refused",
         "registry 127.0.0.1:9 is unreachable"),
        ("unexpected status from HEAD request to http://127.0.0.1:9/v2/a/manifests/b: "
         "401 Unauthorized", "not logged in to registry 127.0.0.1:9; run docker login 127.0.0.1:9"),
        ('error getting credentials - err: exec: "docker-credential-x": executable file not found',
         "credential helper for 127.0.0.1:9 failed"),
    ],
)  # fmt: skip
def test_imagetools_errors_become_one_line_with_the_fix(docker_config, detail, message) -> None:
    docker_config({})
    error = imagetools.failure("127.0.0.1:9/a:b", detail)
    assert message in error.message
    assert error.code == ExitCode.REGISTRY


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_registry_is_one_clear_error() -> None:
    """Real `docker buildx imagetools` (it needs no engine) against a closed loopback port."""
    port = _closed_port()
    with pytest.raises(
        AgentImageError, match=rf"registry 127\.0\.0\.1:{port} is unreachable"
    ) as err:
        imagetools.Registry(HostRunner()).inspect(f"127.0.0.1:{port}/agentgate/agent:v1")
    assert err.value.code == ExitCode.REGISTRY
    assert "start it or pass another --registry" in err.value.message


class _FlakyRunner:
    """Answers imagetools calls from a script of (stderr line or None, stdout)."""

    def __init__(self, *answers: tuple[str | None, str]) -> None:
        self.answers = list(answers)
        self.calls = 0

    def run(self, argv, *, failure: str, code: ExitCode, **_: object) -> str:
        self.calls += 1
        error, out = self.answers.pop(0)
        if error is not None:
            raise AgentImageError(f"{failure}: ERROR: {error}", code)
        return out


@pytest.mark.parametrize(
    "transient",
    [
        "read: connection reset by peer",
        # what the registry answered one of two releases racing on one repository
        "failed to copy: httpReadSeeker: failed open: unexpected status code "
        "http://127.0.0.1:9/v2/a/manifests/sha256:ab: 500 Internal Server Error",
    ],
)
def test_a_transient_failure_is_tried_again(monkeypatch, transient: str) -> None:
    monkeypatch.setattr(imagetools.time, "sleep", lambda _: None)
    found = json.dumps({"manifest": {"digest": "sha256:ab"}, "image": {"config": {}}})
    runner = _FlakyRunner((transient, ""), (None, found))
    image = imagetools.Registry(runner).inspect("127.0.0.1:9/a:b")  # type: ignore[arg-type]
    assert image is not None
    assert image.digest == "sha256:ab"
    assert runner.calls == 2


def test_a_refused_connection_is_not_tried_again(monkeypatch) -> None:
    monkeypatch.setattr(imagetools.time, "sleep", lambda _: None)
    runner = _FlakyRunner(("dial tcp 127.0.0.1:9: connect: connection refused", ""))
    with pytest.raises(AgentImageError, match="is unreachable"):
        imagetools.Registry(runner).copy("127.0.0.1:9/a@sha256:ab", "127.0.0.1:9/a:b")  # type: ignore[arg-type]
    assert runner.calls == 1
